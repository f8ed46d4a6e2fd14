"""Pieces of the runtime that need no server: polling pace, media naming, error round trips, waiting."""

from __future__ import annotations

import concurrent.futures

import pytest

from fal_notebook import errors
from fal_notebook.media import sniff_suffix
from fal_notebook.runtime import default_origin
from fal_notebook.runtime.job import block_until, error_from_dict, error_to_dict
from fal_notebook.runtime.steps import PollPacer, inside, media_items, output_name


def test_pacer_backs_off_while_the_queue_stands_still():
    pacer = PollPacer()
    waits = [pacer.next("IN_QUEUE", 3) for _ in range(12)]
    assert min(waits) >= 0.25 and waits == sorted(waits) and waits[-1] == 5.0
    assert pacer.next("IN_QUEUE", 2) == 5.0  # the position moved: the pace is the phase's, not reset
    assert pacer.next("IN_PROGRESS", None) == 0.5  # a new phase starts at its first interval
    running = [pacer.next("IN_PROGRESS", None) for _ in range(10)]
    assert running[-1] == 2.0 and all(0.5 <= w <= 2.0 for w in running)


def test_pacer_never_polls_a_long_queue_at_the_fastest_rate():
    pacer = PollPacer()
    waits = [pacer.next("IN_QUEUE", position) for position in range(40, 0, -1)]  # moving every reading
    assert waits[0] == 4.0 and min(waits) >= 0.5 and waits == sorted(waits)


def test_media_items_in_display_order():
    result = {
        "video": {"url": "https://cdn/v.mp4", "content_type": "video/mp4"},
        "extra": {"mask": {"url": "https://cdn/m.png", "content_type": "image/png"}, "url": "not media"},
        "images": [{"url": "https://cdn/a.png"}, {"url": "https://cdn/b.png", "content_type": "image/png"}],
        "seed": 4,
    }
    assert [m["url"].rsplit("/", 1)[-1] for m in media_items(result)] == ["a.png", "b.png", "v.mp4", "m.png"]
    assert media_items({"seed": 1, "prompt": "x"}) == []


@pytest.mark.parametrize("item, expected", [
    ({"url": "https://cdn/files/x/output.png"}, "abc-0-output.png"),
    ({"url": "https://cdn/files/x/blob", "content_type": "image/jpeg"}, "abc-0-blob.jpg"),
    ({"url": "https://cdn/a.png", "file_name": "../../etc/passwd"}, "abc-0-passwd"),
    ({"url": "https://cdn/%2e%2e%2f%2e%2e%2fescape.png"}, "abc-0-escape.png"),
    ({"url": "data:image/png;base64,AAAA", "content_type": "image/png"}, "abc-0-output.png"),
])
def test_output_names_cannot_escape(tmp_path, item, expected):
    name = output_name("abc", 0, item)
    assert name == expected
    assert inside(tmp_path, name).parent == tmp_path.resolve()


def test_inside_refuses_escapes(tmp_path):
    with pytest.raises(errors.FalError):
        inside(tmp_path, "../x")
    with pytest.raises(errors.FalError):
        inside(tmp_path, ".")


@pytest.mark.parametrize("error", [
    errors.JobFailedError("boom", status_code=422, detail=[{"loc": ["body"], "msg": "bad"}],
                          error_type="validation", request_id="r1"),
    errors.ResultExpiredError("gone", status_code=404, request_id="r2"),
    errors.JobCancelledError("cancelled", request_id="r3"),
    errors.TransportError("reset"),
    errors.ValidationError("fal-ai/flux/dev", [errors.Problem("prompt", "missing")]),
])
def test_errors_survive_the_store(error):
    back = error_from_dict(error_to_dict(error))
    assert str(back) == str(error)
    assert isinstance(back, errors.FalError)
    if not isinstance(error, errors.ValidationError):
        assert type(back) is type(error)
    for name in ("detail", "error_type", "status_code", "request_id"):
        assert getattr(back, name, None) == getattr(error, name, None)


def test_unknown_error_class_becomes_falerror():
    assert type(error_from_dict({"class": "os", "message": "m"})) is errors.FalError


def test_block_until_times_out_with_a_typed_error():
    pending: concurrent.futures.Future = concurrent.futures.Future()
    with pytest.raises(errors.FalTimeoutError) as info:
        block_until([pending], 0.05, "the thing")
    assert isinstance(info.value, TimeoutError) and "the thing" in str(info.value)
    done: concurrent.futures.Future = concurrent.futures.Future()
    done.set_result(1)
    block_until([done], 0, "done")


def test_suffix_sniffing_and_origin():
    assert sniff_suffix(b"\x89PNG\r\n") == ".png" and sniff_suffix(b"\xff\xd8\xff\xe0") == ".jpg"
    assert sniff_suffix(b"RIFF1234WEBPVP8 ") == ".webp" and sniff_suffix(b"\0\0\0\x18ftypmp42") == ".mp4"
    assert sniff_suffix(b"??") == ""
    assert default_origin({"JPY_SESSION_NAME": "/work/a.ipynb"}) == "/work/a.ipynb"
    assert default_origin({}) == "script"
