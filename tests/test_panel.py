"""The panel driven through its model against the emulator: the form's values, Submit, the live job list, the
gallery, and the board's buttons (sent as the custom messages the view sends)."""

# ruff: noqa: F811 - the shell fixture is imported from browser_conftest and requested by name

from __future__ import annotations

import json
import re

import pytest
from browser_conftest import ip  # noqa: F401 - fixture used by name

from fal_notebook import jobs
from fal_notebook.errors import UsageError
from fal_notebook.notebook.panel.board import Board
from fal_notebook.notebook.panel.panel import panel as make_panel
from fal_notebook.notebook.panel.records import model_for_media, progress_of

XSS = "<script>alert(1)</script>"


@pytest.fixture
def panel(fal_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = []

    def make(model: str | None = "nano-banana-pro"):
        made.append(make_panel(model))
        return made[-1]

    yield make
    for p in made:
        p.close()
    jobs.reset_for_tests()


def click(p, kind: str, **content):
    """What the view sends when a button is clicked."""
    p.board._handle_custom_msg({"type": kind, **content}, [])


def submit(p, wait_for, model: str, arguments: dict, count: int = 1) -> list:
    """Fill the form like a user (model and values), press Submit, wait for the jobs to show in the list."""
    before = {r["id"] for r in p.board.jobs}
    p.form.load(model, arguments)
    p.form.count = count
    p.form.submit()
    return wait_for(lambda: [j for j in p.jobs if j.id not in before] if len(p.board.jobs) >= len(before) + count
                    else None)


def finished(p, wait_for, job) -> dict:
    job.wait(timeout=30)
    return wait_for(lambda: next((r for r in p.board.items if r["id"] == job.id), None))


def posts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "POST" and "/storage/" not in r.path]


def test_submit_runs_the_job_its_record_goes_live_then_into_the_gallery(panel, emulator, wait_for):
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": "a red fox", "aspect_ratio": "16:9"})
    record = finished(p, wait_for, job)
    (sent,) = [dict(j.arguments) for j in emulator.jobs.values()]
    assert sent.pop("seed") == job.seed  # the client picks a seed for a model that takes one (job.seed)
    assert sent == {"prompt": "a red fox", "aspect_ratio": "16:9"}
    assert record["state"] == "COMPLETED" and record["done"] and record["thumb"] == "image" and record["files"] == 1
    assert record["model"] == "nano-banana-pro" and record["prompt"] == "a red fox" and record["mine"]
    row = wait_for(lambda: next(r for r in p.board.jobs if r["id"] == job.id and r["state"] == "COMPLETED"))
    assert row["queue"] is None and row["progress"] is None
    assert p.jobs == [job] and "submitted 1 job(s)" in p.board.notice


def test_count_submits_that_many_jobs(panel, emulator, wait_for):
    p = panel()
    made = submit(p, wait_for, "nano-banana-pro", {"prompt": "three foxes"}, count=3)
    assert len(made) == 3
    for job in made:
        finished(p, wait_for, job)
    assert len(p.board.items) == 3 and len(posts(emulator)) == 3


def test_an_invalid_form_sends_nothing(panel, emulator, wait_for):
    p = panel()
    p.form.load("nano-banana-pro", {"prompt": ""})
    p.form.submit()
    assert p.form.problems
    with pytest.raises(UsageError, match="nothing was sent: .*prompt"):
        p.submit()
    # the panel's own path refuses too, and says why next to the form
    assert p._on_submit("nano-banana-pro", {"prompt": "x", "num_images": 99}, 1).result(timeout=30) == []
    assert "num_images" in p.board.notice
    assert posts(emulator) == [] and emulator.jobs == {} and p.board.jobs == []


def test_the_job_list_follows_the_queue_and_cancel_ends_the_job(panel, emulator, wait_for):
    emulator.hold()
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": "held fox"})
    queued = wait_for(lambda: next((r for r in p.board.jobs if r["id"] == job.id and r["state"] == "IN_QUEUE"
                                    and r["queue"] is not None), None))
    assert queued["queue"] >= 0 and queued["done"] is False
    click(p, "cancel", id=job.id)
    job.wait(timeout=30)
    assert job.state.value == "CANCELLED"
    wait_for(lambda: any(r["id"] == job.id and r["state"] == "CANCELLED" for r in p.board.jobs))
    assert any(r.method == "PUT" and r.path.endswith("/cancel") for r in emulator.requests)
    wait_for(lambda: f"cancel of job {job.id}" in p.board.notice)
    assert p.board.items == []


def test_selecting_shows_details_and_reuse_fills_the_form(panel, emulator, wait_for):
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": "a fox", "aspect_ratio": "9:16", "seed": 7})
    finished(p, wait_for, job)
    p.form.load("flux-dev", {"prompt": "something else"})
    p.board.selected = [job.id]
    detail = wait_for(lambda: p.board.detail or None)
    assert detail["id"] == job.id and detail["model"] == "fal-ai/nano-banana-pro" and detail["seed"] == "7"
    assert ["aspect_ratio", "9:16"] in detail["inputs"]
    assert "seed" not in {name for name, _ in detail["inputs"]}  # once, in its own row
    assert {name for name, _ in detail["timings"]} >= {"created", "finished", "elapsed"}
    (file,) = detail["files"]
    assert file["kind"] == "image" and file["url"].startswith(emulator.url) and file["path"].endswith(file["name"])
    assert p.selected == [job]
    click(p, "reuse", id=job.id)
    assert p.form.model == "fal-ai/nano-banana-pro"
    assert {k: v for k, v in p.form.values().items() if k in job.arguments} == job.arguments


def test_use_as_input_fills_the_media_field_or_offers_the_edit_model(panel, emulator, wait_for):
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": "a fox"})
    finished(p, wait_for, job)
    url = job.result()["images"][0]["url"]
    click(p, "use", id=job.id)  # nano-banana-pro takes no image: the edit model is offered
    assert p.board.offer == {"id": job.id, "model": "fal-ai/nano-banana-pro/edit", "kind": "image"}
    assert "takes no image" in p.board.notice
    click(p, "use_in", id=job.id, model=p.board.offer["model"])
    assert p.form.model == "fal-ai/nano-banana-pro/edit" and p.form.values()["image_urls"] == [url]
    assert p.board.offer == {}
    p.form.load("nano-banana-pro/edit", {"prompt": "make it snow", "image_urls": [url]})
    p.form.submit()
    (edit,) = wait_for(lambda: [j for j in p.jobs if j.id != job.id] or None)
    finished(p, wait_for, edit)
    assert [r["id"] for r in p.board.items] == [edit.id, job.id]  # newest first
    request = dict([j.arguments for j in emulator.jobs.values()][-1])
    assert isinstance(request.pop("seed"), int)  # the client picks a seed for a model that takes one (job.seed)
    assert request == {"prompt": "make it snow", "image_urls": [url]}


def test_compare_highlights_the_fields_that_differ(panel, emulator, wait_for):
    p = panel()
    a, = submit(p, wait_for, "nano-banana-pro", {"prompt": "a fox", "aspect_ratio": "1:1"})
    b, = submit(p, wait_for, "nano-banana-pro", {"prompt": "a fox", "aspect_ratio": "16:9"})
    for job in (a, b):
        finished(p, wait_for, job)
    click(p, "compare", id=a.id)
    click(p, "compare", id=b.id)
    click(p, "compare", id=b.id)  # twice is once
    rows = {r["field"]: r for r in p.board.comparison["rows"]}
    assert p.board.comparison["ids"] == [a.id, b.id]
    assert rows["aspect_ratio"] == {"field": "aspect_ratio", "values": ["1:1", "16:9"], "differs": True}
    assert not rows["prompt"]["differs"] and not rows["model"]["differs"]
    click(p, "uncompare", id=a.id)
    assert p.board.comparison["ids"] == [b.id]
    click(p, "clear_compare")
    assert p.board.comparison == {}


def test_thumbnails_are_sent_when_asked_for_and_never_synced(panel, emulator, wait_for, monkeypatch):
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": "a fox"})
    finished(p, wait_for, job)
    sent = []
    monkeypatch.setattr(p.board, "send", lambda content, buffers=None: sent.append(content))
    click(p, "thumbs", ids=[job.id, "not-a-job"])
    (message,) = wait_for(lambda: sent)
    assert list(message["items"]) == [job.id]
    assert message["items"][job.id].startswith("data:image/jpeg;base64,")
    synced = p.board.get_state(["jobs", "items", "detail", "comparison"])
    assert "base64" not in json.dumps(synced)


def test_the_first_thumbnails_are_sent_before_the_view_asks(panel, emulator, wait_for, monkeypatch):
    first = panel()
    (job,) = submit(first, wait_for, "nano-banana-pro", {"prompt": "a fox"})
    finished(first, wait_for, job)
    sent = []
    monkeypatch.setattr(Board, "send", lambda self, content, buffers=None: sent.append(content))
    second = panel()  # a new panel over the same store: its gallery's first tile is made and sent unasked
    (message,) = wait_for(lambda: sent)
    assert message["type"] == "thumbs" and list(message["items"]) == [job.id]
    assert message["items"][job.id].startswith("data:image/jpeg;base64,")
    snapshot = second.snapshot()  # made from that same thumbnail, smaller
    (embedded,) = re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', snapshot)
    assert len(embedded) < len(message["items"][job.id])


def test_what_the_view_sends_is_checked_first(panel, emulator, monkeypatch):
    p = panel()
    sent = []
    monkeypatch.setattr(p.board, "send", lambda content, buffers=None: sent.append(content))
    for content in ("text", None, {"type": "eval", "id": "x"}, {"type": "thumbs", "ids": "abc"}, {"type": "thumbs"}):
        p.board._handle_custom_msg(content, [])
    click(p, "reuse", id="no-such-job")
    assert "no-such-job" in p.board.notice and "not shown in this panel" in p.board.notice
    click(p, "use", id="<img src=x onerror=alert(1)>")
    assert p.form.model == "fal-ai/nano-banana-pro" and sent == [] and posts(emulator) == []


def test_the_gallery_shows_every_stored_job_when_asked(panel, emulator, wait_for):
    manager = jobs.manager()
    other = jobs.JobManager(manager.settings, store=manager.store, origin="other.ipynb", legacy_file=False)
    try:
        theirs = other.submit("nano-banana-pro", {"prompt": "not from here"}).wait(timeout=30)
    finally:
        other.close()
    p = panel()
    assert p.board.items == []
    p.board.show_all = True  # what the view's toggle does
    record = wait_for(lambda: next((r for r in p.board.items if r["id"] == theirs.id), None))
    assert record["mine"] is False
    p.board.selected = [theirs.id]
    assert [j.id for j in p.selected] == [theirs.id]
    p.board.show_all = False
    wait_for(lambda: p.board.items == [])


def test_a_new_panel_finds_this_notebooks_earlier_jobs(panel, emulator, wait_for):
    job = jobs.submit("nano-banana-pro", prompt="before the panel").wait(timeout=30)
    p = panel()
    assert [r["id"] for r in p.board.jobs] == [job.id] and [r["id"] for r in p.board.items] == [job.id]


def test_the_mimebundle_carries_an_escaped_static_snapshot(panel, emulator, wait_for):
    p = panel()
    (job,) = submit(p, wait_for, "nano-banana-pro", {"prompt": XSS})
    finished(p, wait_for, job)
    bundle = p._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == p.widget.model_id
    html = bundle["text/html"]
    assert XSS not in html and "&lt;script&gt;" in html
    assert html.count('<img src="data:image/jpeg;base64,') == 1
    assert re.search(r'href="fal_outputs/|href="http://127\.0\.0\.1', html) or 'href="' in html
    for url in re.findall(r'(?:href|src)="([^"]*)"', html):
        assert url.startswith(("http://", "https://", "data:image/jpeg;base64,")) or ":" not in url.split("/")[0]
    assert "1 job(s)" in bundle["text/plain"]


def test_inside_a_kernel_loop_every_change_lands_on_that_loop(panel, emulator):
    """Job events come from the runtime thread and submits finish on a worker: the board still changes only on
    the loop that made the panel (the kernel's), in the displaying cell's context."""
    import asyncio
    import contextvars
    import threading

    cell = contextvars.ContextVar("cell", default="none")

    async def scenario():
        cell.set("the panel's cell")
        p = panel()
        seen = set()
        done = asyncio.Event()

        def watch(change):
            seen.add((threading.current_thread().name, cell.get()))
            if p.board.items:
                done.set()

        p.board.observe(watch, names=["jobs", "items"])
        p.form.load("nano-banana-pro", {"prompt": "on the loop"})
        p.form.submit()
        await asyncio.wait_for(done.wait(), 30)
        return seen

    seen = asyncio.run(scenario())
    assert seen == {(threading.main_thread().name, "the panel's cell")}


def test_progress_comes_from_the_newest_log_line():
    assert progress_of(["Loading model", "Generating: step 3/4"]) == 0.75
    assert progress_of([" 45%|████▌     | 9/20 [00:03<00:04]"]) == 0.45
    assert progress_of(["Loading model"]) is None
    assert progress_of(["step 9/3"]) is None


def test_an_edit_model_is_found_for_a_picture_and_a_video():
    assert model_for_media("image", "fal-ai/nano-banana-pro") == "fal-ai/nano-banana-pro/edit"
    assert model_for_media("image", "fal-ai/flux/dev") == "fal-ai/flux/dev/image-to-image"
    assert model_for_media("video", "fal-ai/kling-video/o3/standard/video-to-video/edit").startswith(
        "fal-ai/kling-video/o3/")
    assert model_for_media("audio", "fal-ai/flux/dev") is None


def test_the_magic_and_the_package_function_make_a_panel(ip, fal_env, tmp_path, monkeypatch, capsys):
    import fal_notebook
    from fal_notebook.notebook.panel.panel import Panel

    monkeypatch.chdir(tmp_path)
    ip.extension_manager.load_extension("fal_notebook")
    made = ip.run_cell("%fal panel nano-banana-pro/edit").result
    try:
        assert isinstance(made, Panel) and made.form.model == "fal-ai/nano-banana-pro/edit"
        assert fal_notebook.panel is make_panel
    finally:
        made.close()
        jobs.reset_for_tests()
