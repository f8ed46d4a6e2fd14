// The panel's job list and gallery (anywidget front-end module). A view of the model's state, redrawn
// from it: records come from the kernel, thumbnails are asked for when their tile becomes visible, and every
// click is a custom message the kernel acts on. Text goes in with textContent, never innerHTML; only
// http(s) URLs become links and only the kernel's JPEG data URIs become pictures.

const THUMB_PREFIX = "data:image/jpeg;base64,";
const THUMBS_KEPT = 1000; // the gallery's own limit: a gallery scrolled to its end keeps every picture
// job id -> data URI, kept by the model (initialize) and read by every view (render). Keyed by job id, not by
// the model object: anywidget hands initialize and render different proxies of one model. A job's thumbnail is
// the same in any board, so sharing this map (if a module is ever shared by several boards) stays right.
const thumbs = new Map();

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function fill(node, ...children) { // replaceChildren would turn a null into the text "null"
  node.replaceChildren(...children.filter(Boolean));
}

function httpUrl(value) {
  return typeof value === "string" && /^https?:\/\//i.test(value) && !/\s/.test(value) ? value : "";
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 120 ? `${value.toFixed(1)} s` : `${Math.floor(value / 60)} min ${Math.floor(value % 60)} s`;
}

function badge(state) {
  return el("span", { class: `fal-badge fal-${String(state).toLowerCase()}`, text: state });
}

function keep(msg) { // the ids of a "thumbs" message's pictures, now in the cache
  if (!msg || msg.type !== "thumbs" || typeof msg.items !== "object" || msg.items === null) return [];
  const kept = [];
  for (const [id, uri] of Object.entries(msg.items)) {
    if (typeof uri !== "string" || !uri.startsWith(THUMB_PREFIX)) continue;
    thumbs.delete(id); // re-inserted: the newest stay when the oldest go
    thumbs.set(id, uri);
    kept.push(id);
  }
  while (thumbs.size > THUMBS_KEPT) thumbs.delete(thumbs.keys().next().value);
  return kept;
}

// The model keeps the thumbnails the kernel sends before any view exists (the gallery's first tiles, made
// while the view is being built), so a new view paints them at once instead of asking for them.
function initialize({ model }) {
  const onMessage = (msg) => { keep(msg); };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}

function render({ model, el: root }) {
  const send = (type, extra = {}) => model.send({ type, ...extra });
  const received = new Map(); // job id -> performance.now() when its record arrived (elapsed ticks locally)

  const toggle = el("input", { type: "checkbox", class: "fal-all" });
  toggle.addEventListener("change", () => { model.set("show_all", toggle.checked); model.save_changes(); });
  const notice = el("div", { class: "fal-notice", role: "status", "aria-live": "polite" });
  const offer = el("div", { class: "fal-offer" });
  const jobList = el("div", { class: "fal-jobs", role: "list", "aria-label": "jobs of this notebook" });
  const gallery = el("div", { class: "fal-gallery", "aria-label": "gallery" });
  const detail = el("div", { class: "fal-detail", "aria-label": "selected result" });
  const compare = el("div", { class: "fal-compare", "aria-label": "comparison" });
  root.classList.add("fal-board");
  root.append(
    el("div", { class: "fal-head" }, el("b", { text: "Jobs" })), jobList,
    el("div", { class: "fal-head" }, el("b", { text: "Gallery" }),
      el("label", { class: "fal-toggle" }, toggle, document.createTextNode(" every job in the store"))),
    notice, offer,
    el("div", { class: "fal-main" }, gallery, detail),
    compare,
  );

  // --- thumbnails: ask for the visible tiles, batched per animation frame -------------------------------------
  const wanted = new Set();
  let asking = false;
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const id = entry.target.dataset.id;
      if (entry.isIntersecting && !thumbs.has(id)) wanted.add(id);
      if (entry.isIntersecting) observer.unobserve(entry.target);
    }
    if (wanted.size && !asking) {
      asking = true;
      requestAnimationFrame(() => {
        asking = false;
        const ids = [...wanted].filter((id) => !thumbs.has(id)); // some may have come meanwhile, unasked
        wanted.clear();
        if (ids.length) send("thumbs", { ids });
      });
    }
  }, { root: null, rootMargin: "300px" });

  function paint(img, id) {
    const uri = thumbs.get(id);
    if (uri) img.src = uri;
  }

  const onMessage = (msg) => {
    for (const id of keep(msg)) {
      for (const img of root.querySelectorAll(`img[data-thumb="${CSS.escape(id)}"]`)) paint(img, id);
    }
  };
  model.on("msg:custom", onMessage);

  function thumbImg(rec, cls) {
    const img = el("img", { class: cls, alt: rec.prompt || rec.model, "data-thumb": rec.id, decoding: "async" });
    if (thumbs.has(rec.id)) paint(img, rec.id);
    return img;
  }

  // --- job list ----------------------------------------------------------------------------------------------
  function elapsedOf(rec) {
    if (rec.done) return rec.elapsed;
    return rec.elapsed + (performance.now() - (received.get(rec.id) || performance.now())) / 1000;
  }

  function drawJobs() {
    const now = performance.now();
    const jobs = model.get("jobs") || [];
    for (const rec of jobs) received.set(rec.id, now);
    jobList.replaceChildren(...jobs.map((rec) => {
      const where = rec.progress !== null && rec.progress !== undefined
        ? el("progress", { max: "1", value: String(rec.progress), "aria-label": "progress",
          title: `${Math.round(rec.progress * 100)}%` })
        : el("span", { class: "fal-facts",
          text: rec.queue !== null && rec.queue !== undefined ? `queue position ${rec.queue}` : "" });
      const cancel = !rec.done
        ? el("button", { class: "fal-cancel", type: "button", text: "Cancel",
          onclick: () => send("cancel", { id: rec.id }) })
        : null;
      return el("div", { class: "fal-job", role: "listitem", "data-id": rec.id, "data-state": rec.state },
        badge(rec.state),
        el("span", { class: "fal-model", text: rec.model }),
        el("span", { class: "fal-prompt", text: rec.prompt, title: rec.prompt }),
        where,
        el("span", { class: "fal-elapsed", "data-id": rec.id, text: seconds(elapsedOf(rec)) }),
        el("span", { class: "fal-log", text: rec.log, title: rec.log }),
        cancel || el("span"));
    }));
    if (!jobs.length) jobList.append(el("div", { class: "fal-empty", text: "No jobs yet: fill the form and Submit." }));
  }
  const ticker = setInterval(() => { // local clock only: the kernel is never asked
    for (const rec of model.get("jobs") || []) {
      if (rec.done) continue;
      const span = jobList.querySelector(`.fal-elapsed[data-id="${CSS.escape(rec.id)}"]`);
      if (span) span.textContent = seconds(elapsedOf(rec));
    }
  }, 1000);

  // --- gallery ----------------------------------------------------------------------------------------------
  function select(id, event) {
    const current = model.get("selected") || [];
    let next;
    if (event && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      next = current.includes(id) ? current.filter((x) => x !== id) : [...current, id];
    } else {
      next = [id];
    }
    model.set("selected", next);
    model.save_changes();
  }

  // one listener for every tile (hundreds of them): a click or Enter on a tile selects it
  gallery.addEventListener("click", (event) => {
    const tile = event.target.closest(".fal-tile");
    if (tile && gallery.contains(tile)) select(tile.dataset.id, event);
  });

  function drawGallery() {
    observer.disconnect();
    const selected = new Set(model.get("selected") || []);
    const items = model.get("items") || [];
    const tiles = document.createDocumentFragment(); // built off the page, inserted at once: one layout
    for (const rec of items) {
      const tile = el("button", { class: "fal-tile", type: "button", "data-id": rec.id,
        "aria-pressed": selected.has(rec.id) ? "true" : "false", title: rec.prompt },
      thumbImg(rec, "fal-thumb"),
      el("span", { class: "fal-caption" }, el("span", { class: "fal-model", text: rec.model }),
        rec.thumb === "video" ? el("span", { class: "fal-kind", text: "video" }) : null,
        rec.files > 1 ? el("span", { class: "fal-kind", text: `${rec.files} files` }) : null,
        rec.mine ? null : el("span", { class: "fal-kind", text: "store" })));
      if (!thumbs.has(rec.id)) observer.observe(tile);
      tiles.append(tile);
    }
    if (!items.length) tiles.append(el("div", { class: "fal-empty", text: "Finished results appear here." }));
    gallery.replaceChildren(tiles);
  }

  function markSelected() {
    const selected = new Set(model.get("selected") || []);
    for (const tile of gallery.querySelectorAll(".fal-tile")) {
      tile.setAttribute("aria-pressed", selected.has(tile.dataset.id) ? "true" : "false");
    }
  }

  // --- the selected job ----------------------------------------------------------------------------------------
  function table(rows, cls) {
    return el("table", { class: cls }, ...rows.map(([name, value]) =>
      el("tr", {}, el("th", { text: name }), el("td", { text: value }))));
  }

  function drawDetail() {
    const d = model.get("detail") || {};
    if (!d.id) {
      detail.replaceChildren(el("div", { class: "fal-empty", text: "Select a result to see its settings." }));
      return;
    }
    const files = (d.files || []).map((f) => {
      const url = httpUrl(f.url);
      return el("li", {}, url ? el("a", { href: url, target: "_blank", rel: "noopener", text: f.name })
        : el("code", { text: f.path || f.name }));
    });
    const first = (d.files || [])[0] || {};
    const preview = first.kind === "video" && httpUrl(first.url)
      ? el("video", { class: "fal-preview", src: httpUrl(first.url), controls: true, preload: "metadata" })
      : thumbImg({ id: d.id, prompt: d.prompt, model: d.model }, "fal-preview");
    if (!thumbs.has(d.id)) send("thumbs", { ids: [d.id] });
    const button = (label, type, cls) => el("button", { type: "button", class: cls, text: label,
      onclick: () => send(type, { id: d.id }) });
    fill(detail,
      preview,
      el("div", { class: "fal-title" }, badge(d.state), el("b", { text: ` ${d.model}` })),
      d.prompt ? el("div", { class: "fal-prompt-full", text: d.prompt }) : null,
      d.error ? el("div", { class: "fal-error", text: d.error }) : null,
      table([...(d.seed ? [["seed", d.seed]] : []), ...(d.inputs || [])], "fal-inputs"),
      table(d.timings || [], "fal-timings"),
      files.length ? el("ul", { class: "fal-files" }, ...files) : null,
      el("div", { class: "fal-actions" },
        button("Reuse settings", "reuse", "fal-reuse"),
        (d.files || []).length ? button("Use as input", "use", "fal-use") : null,
        button("Compare", "compare", "fal-compare-add")),
    );
  }

  function drawOffer() {
    const o = model.get("offer") || {};
    offer.replaceChildren();
    if (!o.id || !o.model) return;
    offer.append(el("button", { type: "button", class: "fal-use-in", text: `Use as input of ${o.model}`,
      onclick: () => send("use_in", { id: o.id, model: o.model }) }));
  }

  function drawCompare() {
    const c = model.get("comparison") || {};
    const ids = c.ids || [];
    if (!ids.length) { compare.replaceChildren(); return; }
    const head = el("tr", {}, el("th", { text: "" }), ...ids.map((id) => el("th", {},
      thumbImg({ id, prompt: id, model: id }, "fal-compare-thumb"),
      el("button", { type: "button", class: "fal-uncompare", text: "Remove", "aria-label": `remove ${id}`,
        onclick: () => send("uncompare", { id }) }))));
    const rows = (c.rows || []).map((row) => el("tr", { class: row.differs ? "fal-differs" : "" },
      el("th", { text: row.field }), ...row.values.map((v) => el("td", { text: v }))));
    const missing = ids.filter((id) => !thumbs.has(id));
    if (missing.length) send("thumbs", { ids: missing });
    fill(compare,
      el("div", { class: "fal-head" }, el("b", { text: "Compare" }),
        el("button", { type: "button", class: "fal-clear", text: "Clear", onclick: () => send("clear_compare") })),
      el("table", { class: "fal-compare-table" }, head, ...rows));
  }

  const redraw = {
    jobs: drawJobs, items: drawGallery, selected: markSelected, detail: drawDetail, offer: drawOffer,
    comparison: drawCompare,
    notice: () => { notice.textContent = model.get("notice") || ""; },
    show_all: () => { toggle.checked = !!model.get("show_all"); },
  };
  for (const [name, fn] of Object.entries(redraw)) { model.on(`change:${name}`, fn); fn(); }
  return () => {
    clearInterval(ticker);
    observer.disconnect();
    model.off("msg:custom", onMessage);
    for (const [name, fn] of Object.entries(redraw)) model.off(`change:${name}`, fn);
  };
}

export default { initialize, render };
