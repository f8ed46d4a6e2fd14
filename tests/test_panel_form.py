"""The panel's form, driven through its widgets' values (no browser): kinds, ranges, defaults, tooltips, inline
problems, Submit, Reuse settings, Use as input, and a submit through the runtime against the emulator."""

from __future__ import annotations

import datetime as dt

import ipywidgets as W
import pytest

from fal_notebook import jobs
from fal_notebook.emulator.server import EmulatorServer
from fal_notebook.media import make_test_image
from fal_notebook.notebook.panel.field_groups import ArrayField, UnionField
from fal_notebook.notebook.panel.field_media import MediaInput
from fal_notebook.notebook.panel.fields import BoolField, EnumField, NumberField
from fal_notebook.notebook.panel.form import SchemaForm
from fal_notebook.notebook.panel.form_prompt import PromptArea, PromptField

NBP, NBP_EDIT, FLUX = "fal-ai/nano-banana-pro", "fal-ai/nano-banana-pro/edit", "fal-ai/flux/dev"
KLING_I2V = "fal-ai/kling-video/v2.1/standard/image-to-video"
KLING_EDIT = "fal-ai/kling-video/o3/pro/video-to-video/edit"
IMG = "https://example.com/cat.png"
VID = "https://example.com/clip.mp4"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, int]] = []

    def __call__(self, model: str, values: dict, count: int) -> str:
        self.calls.append((model, values, count))
        return "queued"


def form_for(model: str) -> tuple[SchemaForm, Recorder]:
    recorder = Recorder()
    return SchemaForm(model, on_submit=recorder), recorder


def control(form: SchemaForm, name: str) -> W.Widget:
    """The ipywidget a user edits for a scalar field."""
    field = form.fields[name]
    for attr in ("_pick", "_box", "_num", "_text"):
        if hasattr(field, attr):
            return getattr(field, attr)
    raise AssertionError(f"no scalar control for {name}")


# -- what the form shows ---------------------------------------------------------------------------------
def test_nano_banana_pro_widgets_ranges_defaults_and_tooltips() -> None:
    form, _ = form_for("nano-banana-pro")
    assert form.model == NBP
    assert isinstance(form.fields["prompt"], PromptField)
    assert isinstance(form.fields["prompt"].area, PromptArea)
    num = control(form, "num_images")
    assert isinstance(num, W.IntSlider) and (num.min, num.max, num.step, num.value) == (1, 4, 1, 1)
    ratio = control(form, "aspect_ratio")
    assert isinstance(ratio, W.Dropdown) and ratio.value == "1:1" and "21:9" in [v for _l, v in ratio.options]
    assert isinstance(control(form, "sync_mode"), W.Checkbox) and control(form, "sync_mode").value is False
    assert control(form, "aspect_ratio").tooltip == "The aspect ratio of the generated image."
    # ipywidgets 8 shows a labelled control's tooltip on its label: the label's text carries the title
    assert 'title="The aspect ratio of the generated image."' in control(form, "aspect_ratio").description
    assert control(form, "sync_mode").description == ""  # a checkbox's description would replace its title
    assert form.fields["prompt"].area.hint == "The text prompt to generate an image from."
    assert isinstance(form.fields["seed"], NumberField) and control(form, "seed").value == ""
    # required and prompt up front; the rest folded under "More options"
    assert form.main_fields() == ["prompt"]
    assert form.more.titles == ("More options",) and form.fields["seed"].widget in form.more_box.children
    assert form.values() == {}  # nothing set: fal's defaults apply


def test_flux_dev_float_slider_union_and_int_stays_int() -> None:
    form, _ = form_for(FLUX)
    guidance = control(form, "guidance_scale")
    assert isinstance(guidance, W.FloatSlider) and (guidance.min, guidance.max, guidance.value) == (1, 20, 3.5)
    steps = control(form, "num_inference_steps")
    assert isinstance(steps, W.IntSlider) and (steps.min, steps.max, steps.value) == (1, 50, 28)
    size = form.fields["image_size"]
    assert isinstance(size, UnionField) and size._pick.value == "landscape_4_3"
    form.fields["prompt"].area.value = "a lighthouse"
    steps.value = 40
    size._pick.value = UnionField.CUSTOM
    size._custom.fields["width"]._num.value = 1024
    values = form.values()
    assert values["num_inference_steps"] == 40 and type(values["num_inference_steps"]) is int
    assert values["image_size"] == {"width": 1024, "height": 512}
    assert form.problems == [] and not form.submit_button.disabled


def test_browser_echoes_do_not_count_as_edits() -> None:
    form, _ = form_for(FLUX)
    guidance = control(form, "guidance_scale")
    guidance.value = 3.4999999999999996  # what the browser's slider sends back for 1 + 25 × 0.1
    assert not form.fields["guidance_scale"].touched and form.values() == {}
    guidance.value = 1 + 37 * 0.1
    assert form.values() == {"guidance_scale": 4.7}
    form.load(FLUX, {"prompt": "x", "num_images": 1})  # a default, given explicitly, is kept
    assert form.values() == {"prompt": "x", "num_images": 1}


def test_kling_i2v_media_field_and_enum_of_strings() -> None:
    form, _ = form_for("kling-i2v")
    assert isinstance(form.fields["image_url"], MediaInput) and form.fields["image_url"].kind == "image"
    assert isinstance(form.fields["duration"], EnumField) and control(form, "duration").value == "5"
    cfg = control(form, "cfg_scale")
    assert isinstance(cfg, W.FloatSlider) and (cfg.min, cfg.max, cfg.step) == (0, 1, 0.01)
    assert form.main_fields() == ["prompt", "image_url"]
    assert isinstance(form.fields["image_url"]._file, W.FileUpload) and form.fields["image_url"]._file.accept == "image/*"


def test_kling_o3_edit_elements_rows_with_their_own_fields() -> None:
    form, _ = form_for("kling-o3-pro-edit")
    refs, elements = form.fields["image_urls"], form.fields["elements"]
    assert isinstance(refs, ArrayField) and refs.kind == "image" and refs.max_items == 4
    assert isinstance(elements, ArrayField) and elements.kind is None
    assert isinstance(form.fields["video_url"], MediaInput) and form.fields["video_url"].kind == "video"
    assert isinstance(form.fields["keep_audio"], BoolField) and control(form, "keep_audio").value is True
    form.fields["prompt"].area.value = "make @Element1 wave in @Video1"
    form.fields["video_url"]._text.value = VID
    elements._add.click()
    row = elements.rows[0]
    assert set(row.fields) == {"frontal_image_url", "reference_image_urls"}
    assert isinstance(row.fields["frontal_image_url"], MediaInput)
    assert isinstance(row.fields["reference_image_urls"], ArrayField) and row.fields["reference_image_urls"].max_items == 3
    row.fields["frontal_image_url"]._text.value = IMG
    row.fields["reference_image_urls"]._add.click()
    row.fields["reference_image_urls"].rows[0]._text.value = "https://example.com/side.png"
    assert form.values() == {
        "prompt": "make @Element1 wave in @Video1", "video_url": VID,
        "elements": [{"frontal_image_url": IMG, "reference_image_urls": ["https://example.com/side.png"]}],
    }
    assert form.problems == []
    # add/remove rows; Add turns off at maxItems
    for _ in range(4):
        refs._add.click()
    assert len(refs.rows) == 4 and refs._add.disabled
    refs.remove_row(refs.rows[0])
    assert len(refs.rows) == 3 and not refs._add.disabled


# -- problems and Submit ------------------------------------------------------------------------------------
def test_inline_problems_keep_submit_disabled_and_nothing_is_handed_on() -> None:
    form, recorder = form_for("nano-banana-pro")
    assert form.submit_button.disabled
    # an untouched field is not red yet, but the line next to Submit says what is missing
    assert form.fields["prompt"].problem.value == "" and "prompt" in form.blockers.value
    area = form.fields["prompt"].area
    area.value = "a fox"
    assert not form.submit_button.disabled and form.blockers.value == ""
    area.value = ""  # typed, then cleared: now the field says it
    assert "required" in form.fields["prompt"].problem.value and form.submit_button.disabled
    area.value = "a fox"
    control(form, "seed").value = "12x"
    assert form.submit_button.disabled
    assert [p.field for p in form.problems] == ["seed"]
    assert "whole number" in form.fields["seed"].problem.value and form.fields["seed"].problem.layout.display == "block"
    assert "seed" in form.blockers.value
    assert form.submit() is None and recorder.calls == []
    form.submit_button.click()
    assert recorder.calls == []
    control(form, "seed").value = "42"
    assert form.values() == {"prompt": "a fox", "seed": 42} and not form.submit_button.disabled
    assert form.fields["seed"].problem.value == ""
    form.count = 3
    form.submit_button.click()
    assert recorder.calls == [(NBP, {"prompt": "a fox", "seed": 42}, 3)]


def test_a_refused_submit_shows_every_problem() -> None:
    form, recorder = form_for("kling-i2v")
    assert form.fields["image_url"].problem.value == ""
    assert form.submit() is None and recorder.calls == []
    assert "required" in form.fields["prompt"].problem.value
    assert "required" in form.fields["image_url"].problem.value
    assert "2 problem(s)" in form.status.value


def test_problem_text_is_escaped() -> None:
    form, _ = form_for("nano-banana-pro")
    control(form, "seed").value = "<b>1</b>"
    assert "<b>" not in form.fields["seed"].problem.value and "&lt;b&gt;" in form.fields["seed"].problem.value


def test_media_problem_shows_on_the_media_field() -> None:
    form, recorder = form_for("kling-i2v")
    form.fields["prompt"].area.value = "the cat jumps"
    form.fields["image_url"]._text.value = "ftp://example.com/cat.png"
    assert [p.field for p in form.problems] == ["image_url"]
    assert "ftp" in form.fields["image_url"].problem.value and form.submit_button.disabled
    form.fields["image_url"]._text.value = IMG
    assert form.problems == [] and form.submit() == "queued"
    assert recorder.calls == [(KLING_I2V, {"prompt": "the cat jumps", "image_url": IMG}, 1)]


def test_ctrl_enter_in_the_prompt_submits() -> None:
    form, recorder = form_for("flux-dev")
    area = form.fields["prompt"].area
    area.value = "a red fox"
    area._message(area, {"event": "submit"}, [])  # what the browser sends on Ctrl/Cmd+Enter
    assert recorder.calls == [(FLUX, {"prompt": "a red fox"}, 1)]
    area._message(area, {"event": "other"}, [])
    assert len(recorder.calls) == 1


def test_upload_becomes_a_data_uri_with_a_thumbnail() -> None:
    form, _ = form_for("nano-banana-pro-edit")
    form.fields["prompt"].area.value = "add a hat"
    refs = form.fields["image_urls"]
    refs._add.click()
    row = refs.rows[0]
    png = make_test_image(64, 48, "png")
    row._file.value = ({"name": "cat.png", "type": "image/png", "size": len(png), "content": memoryview(png),
                        "last_modified": dt.datetime.now(dt.UTC)},)
    value = form.values()["image_urls"][0]
    assert value.startswith("data:image/png;base64,")
    assert "<img" in row._preview.value and "cat.png" in row._text.value
    assert form.problems == []
    row._text.value = IMG  # typing replaces the upload
    assert form.values()["image_urls"] == [IMG]


def test_a_loaded_data_uri_is_held_like_an_upload() -> None:
    import base64

    form, _ = form_for(NBP_EDIT)
    uri = "data:image/png;base64," + base64.b64encode(make_test_image(80, 60, "png")).decode()
    form.load(NBP_EDIT, {"prompt": "add a hat", "image_urls": [uri]})
    row = form.fields["image_urls"].rows[0]
    assert form.values() == {"prompt": "add a hat", "image_urls": [uri]}
    assert row._text.value.startswith("data URI: image/png (") and len(row._text.value) < 60
    assert "<img" in row._preview.value and form.problems == []


# -- Reuse settings and Use as input ----------------------------------------------------------------------
@pytest.mark.parametrize("model, arguments", [
    (NBP, {"prompt": "a fox", "num_images": 2, "aspect_ratio": "16:9", "seed": 7, "sync_mode": True}),
    (NBP_EDIT, {"prompt": "add a hat", "image_urls": [IMG, "https://example.com/b.png"], "num_images": 1}),
    (FLUX, {"prompt": "a lighthouse", "image_size": {"width": 640, "height": 480}, "guidance_scale": 5.5}),
    (FLUX, {"prompt": "a lighthouse", "image_size": "square_hd", "num_inference_steps": 12}),
    (KLING_I2V, {"prompt": "the cat jumps", "image_url": IMG, "duration": "10", "cfg_scale": 0.25}),
    (KLING_EDIT, {"prompt": "@Element1 in @Video1", "video_url": VID, "keep_audio": False,
                  "elements": [{"frontal_image_url": IMG, "reference_image_urls": [IMG]}]}),
])
def test_load_round_trips_values(model: str, arguments: dict) -> None:
    form, recorder = form_for("nano-banana-pro")
    form.load(model, arguments)
    assert form.model == model
    assert form.values() == arguments
    assert form.problems == []
    form.submit()
    assert recorder.calls == [(model, arguments, 1)]


def test_load_on_the_same_model_keeps_the_controls_and_resets_the_rest() -> None:
    form, _ = form_for(FLUX)
    area, size = form.fields["prompt"].area, form.fields["image_size"]
    area.value = "first"
    control(form, "seed").value = "5"
    size._pick.value = UnionField.CUSTOM
    size._custom.fields["width"]._num.value = 1000
    control(form, "acceleration").value = "high"
    form.load(FLUX, {"prompt": "again", "output_format": "png"})
    assert form.fields["prompt"].area is area and area.comm is not None  # the same elements in the browser
    assert form.values() == {"prompt": "again", "output_format": "png"}
    assert control(form, "seed").value == "" and size._pick.value == "landscape_4_3"
    assert size._custom.fields["width"]._num.value == 512 and control(form, "acceleration").value == "none"
    assert not form.fields["seed"].touched


def test_more_options_are_built_when_opened_and_the_request_is_the_same() -> None:
    """The folded optional fields have no widgets until "More options" opens: untouched, they are not sent
    anyway (fal's defaults apply), so the request does not change; opened, they show the schema's defaults."""
    form, recorder = form_for("nano-banana-pro")
    assert form.more_box.children == () and form.main_fields() == ["prompt"]
    assert form.more.layout.display == "block"  # the section is there to open
    form.load(NBP, {"prompt": "a fox"})  # a main field only: nothing unfolds
    assert form.more_box.children == () and form.more.selected_index is None
    form.submit()
    assert recorder.calls == [(NBP, {"prompt": "a fox"}, 1)]
    form.more.selected_index = 0  # what a click on "More options" in the browser does
    shown = [child.children[0] for child in form.more_box.children]
    assert len(form.more_box.children) == 9 and len(form.main.children) == 1
    ratio = control(form, "aspect_ratio")
    assert ratio.value == "1:1" and any(ratio is w or ratio in getattr(w, "children", ()) for w in shown)
    assert form.values() == {"prompt": "a fox"}  # shown, still untouched: still not sent
    ratio.value = "16:9"
    control(form, "seed").value = "12x"
    assert "whole number" in form.fields["seed"].problem.value and form.submit() is None
    control(form, "seed").value = "7"
    form.submit()
    assert recorder.calls[-1] == (NBP, {"prompt": "a fox", "aspect_ratio": "16:9", "seed": 7}, 1)


def test_loading_a_folded_field_builds_it_without_opening_first() -> None:
    form, recorder = form_for("nano-banana-pro")
    form.load(NBP, {"prompt": "again", "aspect_ratio": "9:16", "not_in_schema": 1})
    assert form.more.selected_index == 0 and len(form.more_box.children) == 9
    assert form.values() == {"prompt": "again", "aspect_ratio": "9:16", "not_in_schema": 1}
    form.picker.value = "flux-dev"  # another model: its optional fields start folded again
    assert form.model == FLUX and form.more_box.children == () and form.more.selected_index is None


def test_load_opens_more_options_when_an_optional_field_is_set() -> None:
    form, _ = form_for(FLUX)
    assert form.more.selected_index is None
    form.load(FLUX, {"prompt": "x", "seed": 3})
    assert form.more.selected_index == 0 and control(form, "seed").value == "3"


@pytest.mark.parametrize("model, kind, expected", [
    (NBP_EDIT, "image", "image_urls"),
    (KLING_I2V, "image", "image_url"),
    (KLING_EDIT, "video", "video_url"),
    (KLING_EDIT, "image", "image_urls"),
    (NBP, "image", None),
    (KLING_I2V, "video", None),
])
def test_put_media_picks_the_matching_field(model: str, kind: str, expected: str | None) -> None:
    form, _ = form_for(model)
    url = IMG if kind == "image" else VID
    assert form.put_media(url, kind) == expected
    if expected is not None:
        value = form.values()[expected]
        assert value == url or value == [url]


def test_put_media_fills_an_empty_row_then_appends() -> None:
    form, _ = form_for(NBP_EDIT)
    form.fields["image_urls"]._add.click()
    assert form.put_media(IMG, "image") == "image_urls"
    assert form.put_media("https://example.com/2.png", "image") == "image_urls"
    assert form.values()["image_urls"] == [IMG, "https://example.com/2.png"]
    assert len(form.fields["image_urls"].rows) == 2


def test_switching_model_rebuilds_fields_and_estimate_slot(fal_env: object) -> None:  # a private store
    form, _ = form_for("nano-banana-pro")
    old = form.fields["prompt"].area
    form.picker.value = "kling-i2v"  # an alias: known at once
    assert form.model == KLING_I2V and "image_url" in form.fields
    assert old.comm is None  # the old form's widgets are closed
    form.set_estimate("≈ $0.15 <b>")
    assert "≈ $0.15 &lt;b&gt;" in form.estimate.value


def test_an_unknown_model_is_looked_up_off_the_kernel_thread(wait_for) -> None:
    import threading

    from fal_notebook import catalog
    from fal_notebook.errors import UnknownModelError

    threads: list[str] = []

    def lookup(model: str):
        threads.append(threading.current_thread().name)
        if model == "someone/flux-copy":
            return catalog.get("flux-dev")
        raise UnknownModelError(f"unknown model {model!r}")

    form = SchemaForm("nano-banana-pro", spec=lookup, on_submit=Recorder())
    form.picker.value = "someone/flux-copy"
    wait_for(lambda: form.model == FLUX)
    assert threads == ["fal-form-lookup_0"]
    form.picker.value = "someone/nothing"
    wait_for(lambda: "unknown model" in form.status.value)
    assert form.model == FLUX  # the form stays as it was


def test_model_list_is_injectable() -> None:
    from fal_notebook import catalog

    form = SchemaForm(models=lambda: [catalog.get("flux-dev"), catalog.get("kling-i2v")])
    assert form.picker.options == (FLUX, KLING_I2V) and form.model == FLUX  # no model given: the first listed
    assert SchemaForm().model == NBP
    empty = SchemaForm(models=list, on_submit=Recorder())
    assert empty.model is None and empty.submit() is None and empty.on_submit.calls == []


# -- against the emulator ------------------------------------------------------------------------------------
def test_unbundled_model_form_from_the_openapi_route(fal_env: object, emulator: EmulatorServer) -> None:
    form = SchemaForm("fal-ai/fast-sdxl", on_submit=Recorder())
    steps = control(form, "num_inference_steps")
    assert isinstance(steps, W.IntSlider) and (steps.min, steps.max, steps.value) == (1, 65, 25)
    assert isinstance(form.fields["image_size"], UnionField) and form.fields["image_size"]._pick.value == "square_hd"
    assert control(form, "format").value == "jpeg" and control(form, "guidance_scale").tooltip == "Guidance scale (CFG)"
    # the schema comes from fal's model list (expand=openapi-3.0), else the per-model OpenAPI route
    assert any(r.path.endswith("openapi.json") or (r.path == "/v1/models" and "expand=openapi-3.0" in r.query)
               for r in emulator.requests)


def test_submit_through_the_runtime_sends_exactly_the_form_values(fal_env: object,
                                                                  emulator: EmulatorServer) -> None:
    form = SchemaForm("nano-banana-pro", on_submit=lambda model, args, n: [jobs.submit(model, args)
                                                                          for _ in range(n)])
    form.fields["prompt"].area.value = "a red fox"
    control(form, "aspect_ratio").value = "16:9"
    control(form, "num_images").value = 2
    form.count = 2
    submitted = form.submit()
    assert len(submitted) == 2
    for job in submitted:
        job.wait(30)
    emulated = list(emulator.jobs.values())
    sent = [dict(j.arguments) for j in emulated]
    assert all(isinstance(s.pop("seed"), int) for s in sent)  # the client picks a seed for a model that takes one (job.seed)
    assert sent == [{"prompt": "a red fox", "aspect_ratio": "16:9", "num_images": 2}] * 2
    assert all(j.endpoint_id == NBP for j in emulated)


def test_invalid_form_sends_nothing(fal_env: object, emulator: EmulatorServer) -> None:
    form = SchemaForm("kling-i2v", on_submit=lambda model, args, n: jobs.submit(model, args))
    form.fields["prompt"].area.value = "the cat jumps"  # image_url still missing
    assert form.submit() is None
    form.submit_button.click()
    assert [r for r in emulator.requests if r.method == "POST"] == []
    assert emulator.jobs == {}


def test_default_on_submit_uses_the_runtime(fal_env: object, emulator: EmulatorServer) -> None:
    form = SchemaForm("flux-dev")
    form.fields["prompt"].area.value = "a lighthouse"
    (job,) = form.submit()
    job.wait(30)
    (sent,) = [dict(j.arguments) for j in emulator.jobs.values()]
    assert sent.pop("seed") == job.seed  # the client picks a seed for a model that takes one (job.seed)
    assert sent == {"prompt": "a lighthouse"}
