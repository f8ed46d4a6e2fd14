"""The panel's form: a model picker and one control per input field, generated from the model's schema.

    form = SchemaForm("nano-banana-pro", on_submit=lambda model, args, n: [jobs.submit(model, args)])
    display(form.widget)

Every edit re-checks the input with the catalogue's own validation (no upload, no video probe, no network),
puts each problem next to its field and keeps **Submit** disabled while any remain. **Submit** (or Ctrl/Cmd+
Enter in the prompt) hands ``(model, values, count)`` to ``on_submit`` and does nothing else: the runtime
sends, stores and follows the jobs.

Parameters: ``model`` (endpoint id or alias; None: nano-banana-pro, or the first model listed); ``models`` lists the catalogue the
picker searches (bundled + registered by default; the panel may pass fal's whole catalogue); ``on_submit``
receives the model id, the JSON-ready arguments and the count; ``spec`` turns a model id into its
``ModelSpec`` (default: bundled, cached, or fetched once from fal's OpenAPI route by the job manager).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W

from ... import catalog
from ...catalog import ModelSpec
from ...catalog.validate import validate
from ...errors import FalError, Problem, UnknownModelError, ValidationError
from ...views.html import esc
from ..workers import worker
from .field_groups import ArrayField, close_tree, make_field
from .field_media import MediaInput
from .fields import LABEL_STYLE, UNSET, Field, label_html

__all__ = ["SchemaForm", "default_models", "default_spec", "submit_jobs", "MAX_COUNT", "DEFAULT_MODEL"]

log = logging.getLogger("fal_notebook")

MAX_COUNT = 10  # variations per Submit: each is a paid request
DEFAULT_MODEL = "fal-ai/nano-banana-pro"  # what a form opened without a model shows, when the catalogue has it


def default_models() -> list[ModelSpec]:
    """The models the picker searches: bundled plus those registered this session."""
    return catalog.models()


def default_spec(model: str) -> ModelSpec:
    """Bundled, registered or cached at once; else fetched once from fal (the runtime's one schema lookup)."""
    from ...jobs import model_spec

    return model_spec(model)


def submit_jobs(model: str, arguments: dict, count: int) -> list[Any]:
    """What Submit does without an ``on_submit``: ``count`` jobs through the runtime (returns at once); the
    variations are priced as one group against ``max_cost``."""
    from ...jobs import submit, submit_many

    if count == 1:
        return [submit(model, arguments)]
    return list(submit_many(model, [arguments] * count))


def price_label(spec: ModelSpec, arguments: dict, count: int) -> str:
    """``est. $0.30`` for ``count`` requests, from the price cache only: a keystroke never waits for fal and
    never opens the job store. "" when no price is cached yet (opening a model fetches it in the background)."""
    from ...catalog.pricing import estimate_for, load_prices
    from ...config import load_settings
    from ...views.money import money

    try:
        price = load_prices(load_settings().home).get(spec.id)
        if price is None:
            return ""
        estimate = estimate_for(spec.id, price, [arguments] * count, spec.defaults, spec.limits)
    except Exception as exc:  # the price is advice: it never breaks the form
        log.debug("no estimate for the form: %s", exc)
        return ""
    return f"est. {money(estimate['total'], estimate['currency'])}"


def prefetch_price(model: str) -> None:
    """Ask fal for the model's price in the background (into the price cache), so the next edit shows it."""
    from ..._portal import get_portal
    from ...config import load_settings
    from ...runtime.pricing import PriceBook

    try:
        PriceBook(load_settings(), get_portal()).prefetch([model])
    except Exception as exc:
        log.debug("no price prefetch for the form: %s", exc)


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """One worker thread for schema lookups, shared by every form."""
    return worker("fal-form-lookup")


def _known_spec(model: str) -> ModelSpec | None:
    """Bundled or registered (no I/O), else None."""
    try:
        return catalog.get(model)
    except UnknownModelError:
        return None


def _top(field_path: str) -> str:
    return re.split(r"[.\[]", field_path, maxsplit=1)[0]


class SchemaForm:
    """A form for one model at a time; see the module docstring."""

    def __init__(self, model: str | None = None, *, models: Callable[[], list[ModelSpec]] | None = None,
                 on_submit: Callable[[str, dict, int], Any] | None = None,
                 spec: Callable[[str], ModelSpec] | None = None, max_count: int = MAX_COUNT,
                 price: Callable[[ModelSpec, dict, int], str] | None = None) -> None:
        self._models = models or default_models
        self._spec_for = spec or default_spec
        self._price = price or price_label
        self.on_submit = on_submit
        self.spec: ModelSpec | None = None
        self._fields: dict[str, Field] = {}  # the fields built so far (the folded ones once "More options" opens)
        self._folded: list[str] = []  # optional fields not built yet: no widgets until the user asks for them
        self._extra: dict[str, Any] = {}  # loaded arguments no field shows (kept, sent as they were)
        self._problems: list[Problem] = []
        self._building = False
        self._attempted = False  # a Submit was refused: show every problem, touched or not
        self._known: dict[str, ModelSpec] = {}
        self.lookup: concurrent.futures.Future | None = None  # the last unknown model's schema lookup
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # a plain script or test: callbacks change widgets where they run
            self._loop = None
        self.picker = W.Combobox(placeholder="Search models… (id or alias, Enter to load)", options=(),
                                 ensure_option=False, continuous_update=False, description_allow_html=True,
                                 description=label_html("model", "The fal model this form sends to"),
                                 layout=W.Layout(width="60%"), style=LABEL_STYLE)
        self.picker.observe(self._picked, names="value")
        self.title = W.HTML("")
        self.main = W.VBox([], layout=W.Layout(width="100%"))
        self.more_box = W.VBox([], layout=W.Layout(width="100%"))
        self.more = W.Accordion(children=[self.more_box], titles=("More options",), selected_index=None)
        self.more.observe(self._opened, names="selected_index")
        self.count_input = W.BoundedIntText(
            value=1, min=1, max=max_count, description_allow_html=True, style=LABEL_STYLE,
            description=label_html("Variations", f"How many requests to send (1–{max_count})"),
            layout=W.Layout(width="260px"))
        self.submit_button = W.Button(description="Submit", button_style="primary",
                                      disabled=True, tooltip="Send the request(s) (Ctrl+Enter in the prompt)")
        self.submit_button.on_click(lambda _b: self.submit())
        self.count_input.observe(lambda _change: self._show_price(), names="value")
        self.estimate = W.HTML("", layout=W.Layout(margin="0 0 0 8px"))
        self.estimate.add_class("fal-form-estimate")
        self.blockers = W.HTML("", layout=W.Layout(margin="0 0 0 8px"))
        self.blockers.add_class("fal-form-blockers")
        self.status = W.HTML("")
        self.status.add_class("fal-form-status")
        self.widget = W.VBox([
            W.HBox([self.picker, self.title]), self.main, self.more,
            W.HBox([self.count_input, self.submit_button, self.estimate, self.blockers]), self.status,
        ], layout=W.Layout(width="100%"))
        self.widget.add_class("fal-form")
        self.refresh_models()
        if model is None and self._known:
            model = DEFAULT_MODEL if DEFAULT_MODEL in self._known else next(iter(self._known))
        if model is not None:
            self.model = model

    # -- the model --------------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Re-read the catalogue the picker searches."""
        try:
            specs = self._models()
        except Exception as exc:  # an injected lister (fal's platform API) may fail; keep what we had
            log.warning("listing models for the form failed: %s", exc)
            return
        self._known = {s.id: s for s in specs}
        self.picker.options = tuple(self._known)

    @property
    def model(self) -> str | None:
        return self.spec.id if self.spec is not None else None

    @model.setter
    def model(self, model: str) -> None:
        self._build(self._spec(model))

    def _spec(self, model: str) -> ModelSpec:
        """Listed, bundled or registered without I/O; otherwise ``spec`` (which may fetch: called directly
        only for a programmatic choice, the picker looks up on a worker thread)."""
        return self._known.get(model) or _known_spec(model) or self._spec_for(model)

    def _picked(self, change: Any) -> None:
        """A model chosen in the picker: known ones at once; an unknown id's schema is fetched on a worker
        thread (it may take seconds), and the form is rebuilt on the kernel's loop when it arrives."""
        if self._building:
            return
        text = str(change["new"]).strip()
        if not text or text == self.model:
            return
        spec = self._known.get(text) or _known_spec(text)  # no I/O on the kernel thread
        if spec is not None:
            self._build(spec)
            return
        self._say(f"looking up {text}…")
        self.lookup = _pool().submit(self._spec_for, text)
        self.lookup.add_done_callback(lambda done: self._hop(self._looked_up, text, done))

    def _looked_up(self, text: str, done: concurrent.futures.Future) -> None:
        if str(self.picker.value).strip() != text:
            return  # the user has picked something else meanwhile
        try:
            spec = done.result()
        except FalError as exc:  # unknown, offline: say so and keep the current form
            self._say(str(exc), error=True)
            return
        except Exception as exc:  # an injected lookup may fail any way; the form stays usable
            log.warning("looking up %s failed", text, exc_info=True)
            self._say(f"could not look up {text}: {exc}", error=True)
            return
        self._build(spec)

    def _hop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the kernel's loop (where widget changes belong); without a loop, right here."""
        if self._loop is None:
            fn(*args)
            return
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is watching any more
            pass

    def _build(self, spec: ModelSpec) -> None:
        """Controls for the required fields, the prompt and the file fields; the optional rest stays folded
        (no widgets) until "More options" opens or a value is put there. Untouched optional fields are never
        sent (fal's defaults apply), so a field that does not exist yet changes nothing about the request,
        and the panel opens with a third of the widgets."""
        self._building = True
        try:
            old = list(self._fields.values())
            self.spec, self._extra, self._attempted = spec, {}, False
            main = [name for name in spec.properties if self._is_main(spec, name)]
            self._fields = {name: self._make(spec, name) for name in main}
            self._folded = [name for name in spec.properties if name not in self._fields]
            self.main.children = [f.widget for f in self._fields.values()]
            self.more_box.children = []
            self.more.layout.display = "block" if self._folded else "none"
            self.more.selected_index = None
            prompt = self._fields.get("prompt")
            if prompt is not None and hasattr(prompt, "area"):
                prompt.area.on_submit(self.submit)
            self.picker.value = spec.id
            self.title.value = (f"<b>{esc(spec.title)}</b> <span style='opacity:.7'>{esc(spec.category)}</span>")
            self._say("")
        finally:
            self._building = False
        for f in old:
            close_tree(f.widget)
        if self._price is price_label:
            prefetch_price(spec.id)
        self._changed()

    def _make(self, spec: ModelSpec, name: str) -> Field:
        field = make_field(name, spec.properties[name], required=name in spec.required, media=self._media_of(spec))
        field.watch(self._changed)
        return field

    def _unfold(self) -> bool:
        """Build the folded optional fields (showing their defaults) and put them under "More options"."""
        if not self._folded or self.spec is None:
            return False
        names, self._folded = self._folded, []
        built = {name: self._make(self.spec, name) for name in names}
        self._fields.update(built)
        self._fields = {name: self._fields[name] for name in self.spec.properties if name in self._fields}
        self.more_box.children = [f.widget for f in built.values()]
        return True

    def _opened(self, change: Any) -> None:
        if change["new"] is not None and self._unfold():
            self._changed()  # the new fields show their problems (after a refused Submit)

    @property
    def fields(self) -> dict[str, Field]:
        """Every field of the model, by name. Reading this builds the folded ones (as opening "More options"
        does); the form itself only looks at the fields built so far."""
        self._unfold()
        return self._fields

    @staticmethod
    def _media_of(spec: ModelSpec) -> Callable[[str], Any]:
        return lambda path: spec.media_fields.get(path)

    @staticmethod
    def _is_main(spec: ModelSpec, name: str) -> bool:
        return name in spec.required or name == "prompt" or any(_top(path) == name for path in spec.media_fields)

    # -- values and problems ----------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """The arguments to send: what the user set, plus required fields (JSON-ready)."""
        out = dict(self._extra)
        for name, f in self._fields.items():
            value = f.get()
            if value is not UNSET and (f.required or f.touched):
                out[name] = value
        return out

    @property
    def count(self) -> int:
        return int(self.count_input.value)

    @count.setter
    def count(self, value: int) -> None:
        self.count_input.value = max(self.count_input.min, min(self.count_input.max, int(value)))

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)

    def _check(self) -> list[Problem]:
        if self.spec is None:
            return [Problem("model", "no model chosen", "pick one in the model box")]
        found = [Problem(name, text) for name, f in self._fields.items()
                 for text in getattr(f, "own_problems", lambda: [])()]
        try:
            validate(self.spec, self.values(), local_files=True, probe_videos=False)
        except ValidationError as exc:
            found += list(exc.problems)
        except FalError as exc:
            found.append(Problem("(input)", str(exc)))
        return found

    def _changed(self) -> None:
        """Re-check after any edit. A field shows its problems once it was edited (or a Submit was refused);
        the line next to Submit always names what is left, so a disabled Submit is never a mystery."""
        if self._building:
            return
        self._problems = self._check()
        by_field: dict[str, list[str]] = {}
        for p in self._problems:
            top = _top(p.field)
            text = str(p) if p.field != top else (f"{p.message} (allowed: {p.allowed})" if p.allowed else p.message)
            by_field.setdefault(top if top in self._fields else "", []).append(text)
        for name, f in self._fields.items():
            f.show_problems(by_field.get(name, []) if f.touched or self._attempted else [])
        self.submit_button.disabled = bool(self._problems)
        self._show_price()
        names = list(dict.fromkeys(_top(p.field) for p in self._problems if _top(p.field) in self._fields))
        general = by_field.get("", [])
        text = "; ".join(general + ([f"to fix first: {', '.join(names)}"] if names else []))
        self.blockers.value = f"<span style='color:#b3261e'>{esc(text)}</span>" if text else ""

    # -- actions ------------------------------------------------------------------------------------------
    def submit(self) -> Any:
        """What **Submit** does: hand ``(model, values, count)`` to ``on_submit`` when nothing is wrong."""
        self._changed()
        if self._problems or self.spec is None:
            self._attempted = True
            self._changed()
            self._say(f"{len(self._problems)} problem(s) to fix before submitting", error=True)
            return None
        handler = self.on_submit or submit_jobs
        try:
            result = handler(self.spec.id, self.values(), self.count)
        except FalError as exc:
            self._say(str(exc), error=True)
            return None
        self._say(f"submitted {self.count} request(s) to {self.spec.id}")
        return result

    def load(self, model: str, arguments: Mapping[str, Any]) -> None:
        """**Reuse settings**: show ``model`` with ``arguments`` filled in (others back to their defaults).

        The same model keeps its controls (focus, open sections and the browser's elements stay), another
        model gets new ones."""
        spec = self._spec(model)
        if spec.id != self.model:
            self._build(spec)
        if any(name in self._folded for name in arguments):
            self._unfold()
        self._building = True
        try:
            if spec.id == self.model:
                for f in self._fields.values():
                    f.reset()
                self._extra, self._attempted = {}, False
            for name, value in arguments.items():
                if name in self._fields:
                    self._fields[name].set(value)
                else:
                    self._extra[name] = value
        finally:
            self._building = False
        if any(name not in self.main_fields() for name in arguments if name in self._fields):
            self.more.selected_index = 0
        self._changed()

    def main_fields(self) -> list[str]:
        return [name for name, f in self._fields.items() if f.widget in self.main.children]

    def put_media(self, url: str, kind: str) -> str | None:
        """**Use as input**: put ``url`` into the current model's field for ``kind`` ("image"/"video") and
        return the field's name; None when no field takes it (the panel may offer an edit model then)."""
        for name, f in sorted(self._media_fields(kind), key=lambda nf: (not nf[1].required, nf[1].get() is not UNSET)):
            if isinstance(f, ArrayField):
                if f.put_media(url):
                    return name
            else:
                f.set(url)
                return name
        return None

    def _media_fields(self, kind: str) -> list[tuple[str, Field]]:
        out = []
        for name, f in self._fields.items():
            if isinstance(f, MediaInput) and f.kind == kind:
                out.append((name, f))
            elif isinstance(f, ArrayField) and f.kind == kind:
                out.append((name, f))
        return out

    def _show_price(self) -> None:
        """The estimate next to **Submit** (``est. $0.30``) while the input is sendable. Beside the button, not
        on it: the button's name stays "Submit" for keyboard and screen-reader users."""
        text = ""
        if self.spec is not None and not self._problems:
            text = self._price(self.spec, self.values(), self.count)
        self.set_estimate(text)

    def set_estimate(self, text: str) -> None:
        """Show a price estimate next to **Submit** (plain text; escaped)."""
        self.estimate.value = f"<span style='opacity:.8'>{esc(text)}</span>" if text else ""

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "#b3261e" if error else "inherit"
        self.status.value = f"<span style='color:{color}'>{esc(text)}</span>" if text else ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
