"""How fast a gallery of 500 stored jobs opens in the browser, and how much widget state it syncs.

    .venv/bin/python bench/panel_gallery.py [--jobs 500] [--screenshot page.png]

A job store is filled with ``--jobs`` COMPLETED jobs of this notebook, each with its own 1024×1024 PNG on disk
(rows written directly: the bench is about the gallery, not about running jobs). A throw-away JupyterLab on
loopback and Debian's headless chromium then run, in a fresh kernel each time:

- **panel, cold**: ``fal_notebook.panel()`` as a cell's value, the first time ever: no thumbnail on disk yet,
  every one is decoded from its PNG. Timed from the click on "run cell" to (1) the output on screen, (2) every
  tile in the DOM and (3) the thumbnails of the tiles in view loaded (the view asks the kernel for those only);
- **baseline**: the naive gallery, one ``ipywidgets.Image`` per job in a ``GridBox``, each holding the same size
  of JPEG thumbnail (made with ``media.thumbnail_jpeg``), timed the same way (every image loaded), same kernel;
- **panel, warm**: the same notebook opened again later (a new JupyterLab, browser and kernel): the thumbnails
  the first open made are in the panel's disk cache, nothing is in any process's memory.

The warm-up cell does what a notebook using fal_notebook does first, ``%load_ext fal_notebook`` (it imports the
job runtime), and imports the widget libraries; the timed cell still imports the panel's own modules. Python
runs from bytecode compiled beforehand, as an installed package has it (a copy of the package in the bench's
temporary folder: the checkout is left as it was). Also counted: the thumbnails the
view asked the kernel for (from the page's websocket frames; the first tiles' come unasked, with the panel), and
the kernel's CPU seconds from the timed cell to the next one (all its threads; a figure the machine's other load
does not inflate as it does the wall times).

Synced state is the JSON of ``get_state()`` of every widget in the displayed tree, binary buffers counted by
their length. Prints a table, the load average of the machine around each timed open, and the ratio baseline /
panel (> 1x: the panel does better). Needs ``/usr/bin/chromium``; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, ratio, table  # noqa: E402

MODEL = "fal-ai/nano-banana-pro"
STATE_CODE = """
import json
def _state_bytes(widget, seen=None):
    \"\"\"The JSON of every synced trait of ``widget`` and the widgets it holds; binary values by length.\"\"\"
    import ipywidgets as W
    seen = set() if seen is None else seen
    if widget.model_id in seen:
        return 0
    seen.add(widget.model_id)
    total = 0
    for key, value in widget.get_state().items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            total += len(value)
        else:
            total += len(json.dumps(value, default=str))
        held = getattr(widget, key, None)
        for child in (held if isinstance(held, (list, tuple)) else [held]):
            if isinstance(child, W.Widget):
                total += _state_bytes(child, seen)
    return total
"""
CPU_CODE = """import resource
def _cpu():
    \"\"\"The kernel's CPU seconds (all its threads) since the last call: what the timed cell and its
    aftermath cost, whatever else the machine runs.\"\"\"
    global _ru
    ru = resource.getrusage(resource.RUSAGE_SELF)
    used = ru.ru_utime + ru.ru_stime - _ru
    _ru = ru.ru_utime + ru.ru_stime
    return round(used, 3)
_ru = 0.0
_cpu()"""
PANEL_CELL = "panel = fal_notebook.panel('nano-banana-pro')\npanel"
BASELINE_CELL = """import ipywidgets as W
from fal_notebook import media
grid = W.GridBox([W.Image(value=media.thumbnail_jpeg(j.files[0], max_side=320, max_bytes=24_000), format='jpeg',
                          layout=W.Layout(width='132px', height='132px', object_fit='cover'))
                  for j in fal_notebook.jobs(state='COMPLETED', limit=N)],
                 layout=W.Layout(grid_template_columns='repeat(auto-fill, 132px)', max_height='520px',
                                 overflow_y='auto'))
grid"""
# resolves when the cell's output shows `count` tiles, then when the images in view are loaded
TIMING_JS = """async ([index, selector, count, imgSelector, boxSelector]) => {
  const app = window.jupyterapp, panel = app.shell.currentWidget, nb = panel.content;
  nb.activeCellIndex = index;
  const t0 = performance.now();
  let output = null;
  void app.commands.execute('notebook:run-cell');
  const area = () => nb.widgets[index].node.querySelector('.jp-OutputArea');
  const frame = () => new Promise(r => requestAnimationFrame(r));
  const inView = (imgs) => new Promise((resolve) => {  // what the browser itself counts as on screen
    if (!imgs.length) { resolve([]); return; }
    const io = new IntersectionObserver((entries) => {
      io.disconnect();
      resolve(entries.filter((e) => e.isIntersecting).map((e) => e.target));
    });
    imgs.forEach((i) => io.observe(i));
  });
  let tiles = null, shown = null, visible = null;
  while (performance.now() - t0 < 120000) {
    await frame();
    const out = area();
    if (!out) continue;
    if (output === null && out.querySelector(".jp-OutputArea-output")) output = performance.now() - t0;
    if (tiles === null && out.querySelectorAll(selector).length >= count) {
      tiles = performance.now() - t0;
      out.querySelector(boxSelector).scrollIntoView({block: "nearest"});  // the user looks at the gallery
      // which pictures are on screen, asked once (tiles keep their size while pictures load): watching
      // hundreds of images at every frame would slow down the page being measured
      visible = await inView([...out.querySelectorAll(imgSelector)]);
    }
    if (visible && visible.length && visible.every(i => i.complete && i.naturalWidth > 0)) {
      shown = performance.now() - t0;
      return {output, tiles, shown, visible: visible.length};
    }
  }
  return {output, tiles, shown, visible: visible ? visible.length : 0};
}"""


def fill_store(home: Path, outputs: Path, origin: str, count: int) -> None:
    from fal_notebook.media import make_test_image
    from fal_notebook.store import JobStore
    from fal_notebook.store.db import JobRecord, JobState, new_job_id, utcnow

    store = JobStore(home / "jobs.sqlite3")
    start = utcnow() - timedelta(hours=1)
    for i in range(count):
        job_id = new_job_id()
        path = outputs / f"{job_id}-0.png"
        path.write_bytes(make_test_image(1024, 1024, "png", text=f"job {i}"))
        created = start + timedelta(seconds=i)
        store.insert(JobRecord(
            id=job_id, endpoint=MODEL, arguments={"prompt": f"stored job {i}: a red fox", "seed": i},
            state=JobState.COMPLETED, request_id=f"req-{i}", created_at=created, submitted_at=created,
            started_at=created, finished_at=created + timedelta(seconds=2), inference_time=1.5,
            result={"images": [{"url": f"http://127.0.0.1:9/{job_id}.png", "content_type": "image/png"}],
                    "seed": i},
            files=[str(path)], logs=["Generating: step 3/3"], origin=origin))
    store.close()


def compiled_copy(tmp: Path) -> Path:
    """The package copied under ``tmp`` with its bytecode compiled (as pip installs it), for the kernel's path."""
    where = tmp / "site"
    shutil.copytree(ROOT / "fal_notebook", where / "fal_notebook",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(where / "fal_notebook", quiet=1)
    return where


def measure(count: int, tmp: Path, site: Path, baseline: bool, shot: str = "") -> dict[str, dict]:
    """Open the notebook in a new JupyterLab and browser; time the panel (and the baseline) in a new kernel."""
    import nbformat
    from browser_conftest import chromium_or_skip, start_jupyterlab, stop_process_group
    from playwright.sync_api import sync_playwright
    from test_browser import KERNEL_READY_JS

    from fal_notebook.emulator import EmulatorServer

    nb_dir, home, outputs = tmp / "notebooks", tmp / "home", tmp / "notebooks" / "fal_outputs"
    origin = str(nb_dir / "bench.ipynb")
    if not (home / "jobs.sqlite3").exists():
        for folder in (nb_dir, home, outputs):
            folder.mkdir(parents=True, exist_ok=True)
        fill_store(home, outputs, origin, count)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        f"%load_ext fal_notebook\nimport fal_notebook, ipywidgets, anywidget, jsonschema  # timed cells start equal\n"
        f"N = {count}\n{CPU_CODE}", PANEL_CELL,
        f"{STATE_CODE}\nprint(json.dumps({{'cpu': _cpu(), 'state_bytes': _state_bytes(panel.widget)}}))",
        BASELINE_CELL, "print(json.dumps({'cpu': _cpu(), 'state_bytes': _state_bytes(grid)}))",
        "print(json.dumps({'cpu': _cpu()}))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nb_dir / "bench.ipynb")
    for name, sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        os.environ[name] = str(tmp / "user-home" / sub)
    lab_home = Path(tempfile.mkdtemp(prefix="lab-", dir=tmp))
    results: dict[str, dict] = {}
    with EmulatorServer(scenario="fast") as server:
        env = {"FAL_NOTEBOOK_ENDPOINT": server.url, "FAL_KEY": "bench-id:bench-secret",
               "FAL_NOTEBOOK_HOME": str(home), "FAL_NOTEBOOK_OUTPUTS": str(outputs),
               "JPY_SESSION_NAME": origin, "JUPYTER_DATA_DIR": str(lab_home / "data"),
               "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
        proc, lab = start_jupyterlab(nb_dir, lab_home, env)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium_or_skip(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                frames: list[str] = []  # what the page sends the kernel: the view's thumbnail requests among them
                page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(
                    payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))))
                page.goto(f"{lab['base']}/lab/tree/bench.ipynb?reset&token={lab['token']}")
                page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
                page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
                run_cell(page, 0)
                page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
                load = os.getloadavg()[0]
                results["panel"] = page.evaluate(TIMING_JS, [1, ".fal-tile", count, ".fal-tile img", ".fal-gallery"])
                results["panel"]["load"] = (load, os.getloadavg()[0])
                if shot:
                    page.screenshot(path=shot)
                results["panel"].update(printed(page, 2))
                results["panel"]["asked"] = asked_thumbnails(frames)
                if baseline:
                    printed(page, 5)  # the kernel's CPU count starts again
                    load = os.getloadavg()[0]
                    results["baseline"] = page.evaluate(TIMING_JS, [3, ".widget-image", count, "img.widget-image",
                                                                         ".widget-gridbox"])
                    results["baseline"]["load"] = (load, os.getloadavg()[0])
                    results["baseline"].update(printed(page, 4))
                browser.close()
        finally:
            stop_process_group(proc)
    return results


def asked_thumbnails(frames: list[str]) -> int:
    """How many thumbnails the panel's view asked for (its ``{"type": "thumbs", "ids": [...]}`` messages)."""
    asked = 0
    for frame in frames:
        for ids in re.findall(r'"type":\s*"thumbs",\s*"ids":\s*\[([^\]]*)\]', frame):
            asked += len(re.findall(r'"[^"]+"', ids))
    return asked


def run_cell(page, index: int) -> None:
    page.evaluate(f"""async () => {{ const nb = window.jupyterapp.shell.currentWidget.content;
        nb.activeCellIndex = {index}; await window.jupyterapp.commands.execute('notebook:run-cell'); }}""")


def printed(page, index: int) -> dict:
    """Run a cell that prints one JSON line; return it parsed."""
    from test_browser import KERNEL_READY_JS

    page.wait_for_function(KERNEL_READY_JS, timeout=120_000, polling=250)
    run_cell(page, index)
    area = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")
    area.locator(".jp-OutputArea-output pre").first.wait_for(timeout=120_000)
    page.wait_for_function(KERNEL_READY_JS, timeout=120_000, polling=250)
    found = re.search(r"\{[^{}]*\}\s*$", area.inner_text().strip())
    if found is None:
        raise RuntimeError(f"cell {index} printed no JSON: {area.inner_text()[-2000:]}")
    return json.loads(found.group(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--screenshot", default="", help="Save the page with the panel open (cold) to this PNG.")
    args = parser.parse_args()
    print(header(f"panel gallery: {args.jobs} stored jobs, JupyterLab + headless chromium"))
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="fal-bench-panel-"))
    try:
        site = compiled_copy(tmp)
        results = measure(args.jobs, tmp, site, baseline=True, shot=args.screenshot)
        warm = measure(args.jobs, tmp, site, baseline=False)["panel"]
        cached = sum(1 for _ in (tmp / "home" / "thumbnails").rglob("*.jpg"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    opens = [("baseline", results["baseline"]), ("panel, cold thumbnail cache", results["panel"]),
             ("panel, warm thumbnail cache", warm)]
    for name, r in opens:
        rows.append([name, f"{(r['output'] or 0) / 1000:.2f}", f"{r['tiles'] / 1000:.2f}",
                     f"{(r['shown'] or 0) / 1000:.2f}", str(r["visible"]), str(r.get("asked", "")),
                     f"{r['state_bytes'] / 1e6:.2f}", f"{r['cpu']:.2f}", "{:.2f} → {:.2f}".format(*r["load"])])
    print(table(["gallery", "output s", "all tiles in DOM s", "visible thumbs loaded s", "visible",
                 "thumbs asked", "synced state MB", "kernel CPU s", "load avg"], rows))
    print(f"thumbnail cache after both opens: {cached} entries (tiles and the snapshot's copies)")
    base, ours = results["baseline"], results["panel"]
    print(f"ratio baseline / panel (cold): tiles {ratio(base['tiles'], ours['tiles'])}, "
          f"visible thumbnails {ratio(base['shown'] or 0, ours['shown'] or 1)}, "
          f"synced state {ratio(base['state_bytes'], ours['state_bytes'])}")
    for name, r in opens[1:]:
        if r["shown"] is None:
            print(f"{name}: the thumbnails in view did not all load within 120 s")
            continue
        print(f"{name}: opens in {r['shown'] / 1000:.2f} s (goal < 1 s), state {r['state_bytes'] / 1e6:.2f} MB "
              f"(goal < 2 MB)")
    print(f"bench took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
