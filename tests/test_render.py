"""Job cards against a small stand-in job: escaping, thumbnails, in-place updates from another thread."""

# ruff: noqa: F811 - the shell fixtures are imported from browser_conftest and requested by name

from __future__ import annotations

import asyncio
import base64
import io
import re
import threading
import time
from pathlib import Path

import pytest
from browser_conftest import html_of, ip, published  # noqa: F401 - fixtures used by name
from PIL import Image

from fal_notebook.errors import JobFailedError
from fal_notebook.notebook import live as render

XSS = "<script>alert(1)</script>"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"}


class FakeJob:
    """The Job attributes a card reads, plus ``set`` to move it from any thread."""

    def __init__(self, **fields):
        self.id = "abc123"
        self.request_id = None
        self.model = "fal-ai/nano-banana-pro"
        self.arguments = {"prompt": "a red fox"}
        self.state = "IN_QUEUE"
        self.queue_position = 2
        self.logs: list[str] = []
        self.error = None
        self.files: list[Path] = []
        self.elapsed = 1.5
        self.inference_time = None
        self._result: dict = {}
        self._callbacks: list = []
        self.__dict__.update(fields)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def result(self, timeout=None):
        return self._result

    def snapshot(self):
        return self

    def on_change(self, callback):
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def set(self, **fields):
        self.__dict__.update(fields)
        for callback in list(self._callbacks):
            callback()


def make_png(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (200, 80, 40)).save(path)
    return path


def thumbnails(html: str) -> list[Image.Image]:
    found = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(b64))) for b64 in found]


def test_user_text_is_escaped_everywhere(tmp_path):
    error = JobFailedError(f"failed {XSS}", detail=[{"loc": ["body", "prompt"], "msg": XSS}], error_type="x<y>")
    job = FakeJob(arguments={"prompt": XSS}, logs=[XSS, "<b>bold</b>"], state="FAILED", error=error,
                  files=[tmp_path / "<img src=x onerror=alert(1)>.png"])
    html = render.JobCard(job)._repr_mimebundle_()["text/html"]
    assert "<script" not in html and "<b>bold" not in html and "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # prompt, log line, error detail
    assert "prompt: &lt;script&gt;" in html and "x&lt;y&gt;" in html


def test_completed_card_embeds_light_thumbnails_with_the_right_aspect(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fal_outputs"
    out.mkdir()
    files = [make_png(out / "wide.png", (1920, 1080)), make_png(out / "tall.png", (768, 1376))]
    remote = [{"url": "https://cdn.example/wide.png", "width": 1920, "height": 1080},
              {"url": "https://cdn.example/tall.png", "width": 768, "height": 1376}]
    job = FakeJob(state="COMPLETED", files=files, _result={"images": remote}, inference_time=2.25)
    bundle = render.JobCard(job)._repr_mimebundle_()
    html = bundle["text/html"]
    thumbs = thumbnails(html)
    assert [t.size for t in thumbs] == [(384, 216), (214, 384)]
    assert all(len(b) <= render.THUMB_BYTES for b in re.findall(r"base64,([^\"]+)", html))
    assert 'href="fal_outputs/wide.png"' in html  # full size: the file next to the notebook
    assert "inference 2.2 s" in html or "inference 2.3 s" in html
    assert "fal_outputs/tall.png" in bundle["text/plain"] and "COMPLETED" in bundle["text/plain"]


def test_outside_files_link_to_fal_and_video_gets_a_player(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    video = elsewhere / "clip.mp4"
    video.write_bytes(b"\x00")
    job = FakeJob(state="COMPLETED", files=[video], _result={"video": {"url": "https://cdn.example/clip.mp4"}})
    html = render.JobCard(job)._repr_mimebundle_()["text/html"]
    assert '<video controls preload="metadata" src="https://cdn.example/clip.mp4"' in html
    assert str(video) in html


def test_failed_card_is_red_with_fal_detail():
    error = JobFailedError("Unprocessable", detail=[{"loc": ["body", "aspect_ratio"], "msg": "bad ratio"}],
                           error_type="validation_error", status_code=422)
    html = render.JobCard(FakeJob(state="FAILED", error=error))._repr_mimebundle_()["text/html"]
    assert 'class="fal-error" style="color:#b91c1c' in html
    assert "aspect_ratio: bad ratio" in html and "validation_error" in html


async def _until(condition, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_live_card_updates_in_place_from_the_runtime_thread(ip, published, monkeypatch):
    job = FakeJob()
    monkeypatch.setattr(render, "BLOCKED_AFTER", 60)  # only the loop redraws here

    async def scenario():
        card = render.LiveCard(job).show()
        assert card.live and len(published) == 1 and "IN_QUEUE" in published[0]["data"]["text/plain"]
        display_id = published[0]["transient"]["display_id"]
        # 50 changes while the kernel loop is busy: coalesced into one redraw
        burst = threading.Thread(target=lambda: [job.set(queue_position=n) for n in range(50)])
        burst.start()
        burst.join()
        await _until(lambda: len(published) >= 2)
        await asyncio.sleep(0.05)
        assert len(published) == 2
        threading.Thread(target=job.set, kwargs={"state": "CANCELLED"}).start()
        await _until(lambda: "CANCELLED" in published[-1]["data"]["text/plain"])
        return display_id

    display_id = asyncio.run(scenario())
    assert all(o["transient"]["display_id"] == display_id for o in published)
    assert [o["update"] for o in published] == [False, True, True]
    assert job._callbacks == []  # unsubscribed once finished


def test_a_blocked_kernel_loop_still_gets_the_update(ip, published, monkeypatch):
    monkeypatch.setattr(render, "BLOCKED_AFTER", 0.05)
    job = FakeJob()
    pause = threading.Event()

    async def scenario():
        render.LiveCard(job).show()
        threading.Thread(target=job.set, kwargs={"state": "COMPLETED"}).start()
        for _ in range(1000):  # the loop is blocked here, like a later cell running time.sleep
            if len(published) >= 2:
                break
            pause.wait(0.01)
        assert len(published) == 2 and "COMPLETED" in published[1]["data"]["text/plain"]
        await asyncio.sleep(0)  # now the loop runs the queued redraw too: same state, same display id

    asyncio.run(scenario())
    assert {o["transient"]["display_id"] for o in published} == {published[0]["transient"]["display_id"]}
    assert job._callbacks == []


def test_resend_final_publishes_from_the_current_cell_once(ip, published):
    job = FakeJob()

    async def scenario():
        render.LiveCard(job).show()
        job.state = "COMPLETED"
        assert render.resend_final() == 1
        assert render.resend_final() == 0

    asyncio.run(scenario())
    assert published[-1]["update"] and "COMPLETED" in published[-1]["data"]["text/plain"]


def test_without_a_loop_nothing_is_drawn_later_and_finished_jobs_are_announced_once(ip, published):
    job = FakeJob()
    card = render.LiveCard(job).show()
    assert not card.live and job._callbacks == []
    assert render.finished_unannounced() == []
    job.set(state="COMPLETED", files=[Path("fal_outputs/fox.png")])
    assert len(published) == 1
    assert render.finished_unannounced() == [job]
    assert render.finished_unannounced() == []
    assert render.notice(job) == "[fal] job abc123 (fal-ai/nano-banana-pro) COMPLETED: fal_outputs/fox.png"


@pytest.fixture(autouse=True)
def _fresh_registry():
    render._CARDS.clear()
    yield
    render._CARDS.clear()


def test_a_busy_job_is_redrawn_a_few_times_a_second_and_its_end_at_once(ip, published, monkeypatch):
    """A job whose queue position moves on every reading does not cost one redraw per reading."""
    monkeypatch.setattr(render, "BLOCKED_AFTER", 60)  # only the loop redraws here
    job = FakeJob()
    pause = threading.Event()
    took: list[float] = []

    def moving() -> None:
        start = time.monotonic()
        for n in range(60):
            job.set(queue_position=60 - n)
            pause.wait(0.01)
        took.append(time.monotonic() - start)
        job.set(state="COMPLETED")

    async def scenario():
        render.LiveCard(job).show()
        threading.Thread(target=moving).start()
        await _until(lambda: "COMPLETED" in published[-1]["data"]["text/plain"])

    asyncio.run(scenario())
    updates = [o for o in published if o["update"]]
    assert len(updates) <= took[0] / render.MIN_REDRAW + 2, (len(updates), took)
    assert "COMPLETED" in updates[-1]["data"]["text/plain"] and job._callbacks == []


def test_a_saved_video_card_keeps_a_light_poster_frame_and_links_the_local_file(tmp_path, monkeypatch):
    pytest.importorskip("av")
    from fal_notebook.media import make_mp4

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fal_outputs").mkdir()
    clip = tmp_path / "fal_outputs" / "clip.mp4"
    clip.write_bytes(make_mp4(320, 180, 1.0, fps=8))
    job = FakeJob(state="COMPLETED", files=[clip], _result={"video": {"url": "https://cdn.example/clip.mp4"}})
    html = render.JobCard(job)._repr_mimebundle_()["text/html"]
    # the player plays the local copy (fal's URL expires), with the first frame as its poster
    assert '<video controls preload="metadata" src="fal_outputs/clip.mp4" poster="data:image/jpeg;base64,' in html
    assert '<a href="fal_outputs/clip.mp4" target="_blank" rel="noopener">▶ fal_outputs/clip.mp4</a>' in html
    # where <video> is dropped (GitHub, sanitizers) or cannot play, the embedded still remains, linked to the file
    without_player = re.sub(r"</?video[^>]*>", "", html)
    stills = re.findall(r'<a href="fal_outputs/clip.mp4"[^>]*><img class="fal-poster" src="data:image/jpeg;base64,'
                        r'([^"]+)"', without_player)
    assert len(stills) == 1 and len(base64.b64decode(stills[0])) <= render.THUMB_BYTES
    assert Image.open(io.BytesIO(base64.b64decode(stills[0]))).size == (320, 180)  # a real frame, never upscaled
    assert "cdn.example" not in html  # nothing in the saved card depends on fal's expiring URL


def test_a_big_group_is_one_output_with_few_redraws_and_no_image_decoded_on_the_kernel_thread(
        ip, published, monkeypatch, tmp_path):
    """200 jobs × 7 changes each make 3 display messages in all (first draw, one coalesced redraw, the final
    picture); changes a tile does not show (log lines) send nothing; every thumbnail is made on the worker
    thread, never on the kernel's; the final picture holds all 200 within the group's byte budget."""
    import fal_notebook.media as media
    from fal_notebook.views.group import GROUP_BYTES

    monkeypatch.setattr(render, "BLOCKED_AFTER", 60)  # only the loop redraws here
    monkeypatch.chdir(tmp_path)
    count = 200
    jobs = [FakeJob(id=f"job{n:04d}", arguments={"prompt": "a dot", "seed": n}) for n in range(count)]
    files = [make_png(tmp_path / f"out{n}.png", (48 + n % 7, 40)) for n in range(count)]
    decoded_on: list[str] = []
    real_thumbnail = media.thumbnail_jpeg

    def thumbnail(*args, **kwargs):
        decoded_on.append(threading.current_thread().name)
        return real_thumbnail(*args, **kwargs)

    monkeypatch.setattr(media, "thumbnail_jpeg", thumbnail)

    def moves() -> None:  # on "the runtime thread": 5 changes per job while the kernel loop is blocked
        for job in jobs:
            job.set(queue_position=3)
            job.set(queue_position=1)
            job.set(state="IN_PROGRESS", queue_position=None)
            job.set(logs=["step 1"])
            job.set(logs=["step 1", "step 2"])

    async def scenario():
        card = render.LiveGroup(jobs).show()
        assert len(published) == 1 and published[0]["data"]["text/plain"].startswith("fal group")
        burst = threading.Thread(target=moves)
        burst.start()
        burst.join()  # the loop is blocked meanwhile, like a cell still running
        await _until(lambda: len(published) == 2)
        assert "200 IN_PROGRESS" in published[1]["data"]["text/plain"]
        more = threading.Thread(target=lambda: [job.set(logs=["step 1", "step 2", "step 3"]) for job in jobs])
        more.start()
        more.join()
        await _until(lambda: not card._loop_pending)  # the redraw ran and found nothing a tile shows changed
        assert len(published) == 2
        ends = threading.Thread(target=lambda: [job.set(state="COMPLETED", files=[files[n]])
                                                for n, job in enumerate(jobs)])
        ends.start()
        ends.join()
        for _ in range(3000):  # the loop stays blocked while the worker makes every thumbnail
            if card._final():
                break
            threading.Event().wait(0.01)
        await _until(lambda: "200 COMPLETED" in published[-1]["data"]["text/plain"])
        await asyncio.sleep(0.3)  # nothing more comes after the final picture
        return card

    card = asyncio.run(scenario())
    assert [o["update"] for o in published] == [False, True, True]
    html = published[-1]["data"]["text/html"]
    assert html.count("data:image/jpeg;base64,") == count  # every tile has its picture
    assert len(html) <= GROUP_BYTES * 4 / 3 + count * 1_500  # base64 of the budget, plus each tile's markup
    assert len(decoded_on) == count and set(decoded_on) != {"MainThread"}
    assert all(name.startswith("fal-thumbnails") for name in decoded_on), set(decoded_on)
    assert all(job._callbacks == [] for job in jobs) and card._unsubscribe is None


def test_a_finished_group_is_resent_by_a_later_cell_only_once_its_thumbnails_are_made(ip, published, monkeypatch,
                                                                                     tmp_path):
    """The automatic resend after each cell (for nbclient) waits for the worker: it never decodes on the
    kernel's thread, and the group it sends is complete."""
    import fal_notebook.media as media

    monkeypatch.setattr(render, "BLOCKED_AFTER", 60)
    monkeypatch.chdir(tmp_path)
    jobs = [FakeJob(id=f"job{n}", arguments={"prompt": "a dot", "seed": n}) for n in range(5)]
    files = [make_png(tmp_path / f"out{n}.png", (40, 40)) for n in range(5)]
    gate, decoded_on = threading.Event(), []
    real_thumbnail = media.thumbnail_jpeg

    def thumbnail(*args, **kwargs):
        decoded_on.append(threading.current_thread().name)
        gate.wait(30)  # the worker is slow
        return real_thumbnail(*args, **kwargs)

    monkeypatch.setattr(media, "thumbnail_jpeg", thumbnail)

    async def scenario():
        card = render.LiveGroup(jobs).show()
        for n, job in enumerate(jobs):
            job.set(state="COMPLETED", files=[files[n]])
        assert all(job.done for job in jobs) and not card._final()
        assert render.resend_final() == 0  # a cell ended: the group is not sent half-drawn, nothing decoded here
        gate.set()
        await _until(card._final)
        assert render.resend_final() == 1
        assert render.resend_final() == 0
        return card

    card = asyncio.run(scenario())
    assert card._timer is None and card._unsubscribe is None  # finished: no timer left to fire a minute later
    assert published[-1]["data"]["text/html"].count("data:image/jpeg;base64,") == 5
    assert decoded_on and all(name.startswith("fal-thumbnails") for name in decoded_on), decoded_on
