"""The emulator's queue API against fal's documented behaviour (fal-queue-protocol.md §1, §9), over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import connect_sse

MODEL = "fal-ai/flux/dev"


def submit(client: httpx.Client, model: str = MODEL, body: dict | None = None, **kwargs) -> dict:
    response = client.post(f"/{model}", json={"prompt": "a red fox"} if body is None else body, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["x-fal-request-id"] == response.json()["request_id"]
    return response.json()


def test_submit_returns_absolute_urls_on_the_reduced_app_path(emulator, emu_http):
    reply = submit(emu_http, "fal-ai/flux/dev/image-to-image",
                   {"prompt": "x", "image_url": "https://example.com/a.png"})
    rid = reply["request_id"]
    assert reply["status"] == "IN_QUEUE" and isinstance(reply["queue_position"], int)
    assert reply["response_url"] == f"{emulator.url}/fal-ai/flux/requests/{rid}"
    assert reply["status_url"] == reply["response_url"] + "/status"
    assert reply["cancel_url"] == reply["response_url"] + "/cancel"


def test_urls_follow_the_host_the_client_used(emulator):
    other = emulator.url.replace("127.0.0.1", "localhost")
    response = httpx.post(f"{other}/{MODEL}", json={"prompt": "x"}, headers={"Authorization": "Key a:b"})
    assert response.json()["status_url"].startswith(other + "/fal-ai/flux/requests/")


def test_status_codes_logs_and_metrics_through_the_lifecycle(emulator, emu_http, wait_for):
    emulator.configure(run_seconds=1.0)
    emulator.hold()
    reply = submit(emu_http)
    queued = emu_http.get(reply["status_url"])
    assert queued.status_code == 202
    assert queued.json()["status"] == "IN_QUEUE" and queued.json()["queue_position"] == 0
    assert queued.headers["x-fal-request-id"] == reply["request_id"]
    emulator.release()
    running = wait_for(lambda: (r := emu_http.get(reply["status_url"], params={"logs": 1})).json()["status"]
                       == "IN_PROGRESS" and r)
    assert running.status_code == 202
    assert running.json()["metrics"] == {} and isinstance(running.json()["logs"], list)
    no_logs = emu_http.get(reply["status_url"], params={"logs": "false"}).json()
    assert no_logs["logs"] is None
    done = wait_for(lambda: (r := emu_http.get(reply["status_url"], params={"logs": "true"})).status_code == 200
                    and r)
    body = done.json()
    assert body["status"] == "COMPLETED"
    assert [e["message"] for e in body["logs"]][:1] == ["Loading model"]
    assert len(body["logs"]) == emulator.knobs.log_lines  # cumulative: every line so far
    assert {"message", "level", "source", "timestamp"} <= set(body["logs"][0])
    assert body["metrics"]["inference_time"] == pytest.approx(1.0, abs=0.05)
    assert "error" not in body


def test_logs_are_cumulative_on_poll(emulator, emu_http, completed):
    emulator.configure(run_seconds=0.5, log_lines=5)
    reply = submit(emu_http)
    seen = []
    final = completed(reply["status_url"], logs=True)
    for _ in range(3):
        seen.append(emu_http.get(reply["status_url"], params={"logs": 1}).json()["logs"])
    assert all(s == final["logs"] for s in seen) and len(final["logs"]) == 5


def test_queue_position_counts_down(emulator, emu_http, wait_for):
    emulator.configure(queue_seconds=2.4, queue_ahead=3)  # the first read must come in its first half
    reply = submit(emu_http)
    positions = []

    def started() -> bool:
        body = emu_http.get(reply["status_url"]).json()
        if body["status"] == "IN_QUEUE":
            positions.append(body["queue_position"])
        return body["status"] != "IN_QUEUE"

    wait_for(started)
    assert positions and positions == sorted(positions, reverse=True)
    assert max(positions) >= 2 and set(positions) <= {0, 1, 2, 3}


def test_held_jobs_report_their_place_in_line(emulator, emu_http):
    emulator.hold()
    first, second = submit(emu_http), submit(emu_http)
    assert emu_http.get(second["status_url"]).json()["queue_position"] == 1
    emulator.release(first["request_id"])
    assert emu_http.get(second["status_url"]).json()["queue_position"] == 0


@pytest.mark.parametrize("suffix", ["", "/", "/response"])
def test_result_variants(emulator, emu_http, completed, suffix):
    reply = submit(emu_http)
    completed(reply["status_url"])
    result = emu_http.get(reply["response_url"] + suffix)
    assert result.status_code == 200 and result.headers["x-fal-request-id"] == reply["request_id"]
    assert result.json()["images"][0]["url"].startswith(emulator.url + "/media/")


def test_status_accepts_trailing_slash_and_every_logs_form(emulator, emu_http, completed):
    reply = submit(emu_http)
    completed(reply["status_url"])
    for value in ("1", "true", "True"):
        assert emu_http.get(reply["status_url"] + "/", params={"logs": value}).json()["logs"]
    for value in ("0", "false"):
        assert emu_http.get(reply["status_url"], params={"logs": value}).json()["logs"] is None


def test_result_before_completion_is_an_error(emulator, emu_http):
    emulator.hold()
    reply = submit(emu_http)
    response = emu_http.get(reply["response_url"])
    assert response.status_code == 400 and "in progress" in response.json()["detail"]


@pytest.mark.parametrize("tail", ["status", "status/stream", "", "cancel"])
def test_sub_path_before_requests_is_405(emulator, emu_http, tail):
    reply = submit(emu_http)
    url = f"/fal-ai/flux/dev/requests/{reply['request_id']}/{tail}".rstrip("/")
    response = emu_http.put(url) if tail == "cancel" else emu_http.get(url)
    assert response.status_code == 405


def test_sub_path_allowed_by_knob(emulator, emu_http):
    emulator.configure(allow_subpath=True)
    reply = submit(emu_http)
    assert emu_http.get(f"/fal-ai/flux/dev/requests/{reply['request_id']}/status").status_code in (200, 202)


def test_unknown_request_id_is_404_not_found(emulator, emu_http):
    for response in (emu_http.get("/fal-ai/flux/requests/bogus/status"), emu_http.put("/fal-ai/flux/requests/bogus/cancel")):
        assert response.status_code == 404 and response.json() == {"status": "NOT_FOUND"}
        assert response.headers["x-fal-request-id"]
    assert emu_http.get("/fal-ai/flux/requests/bogus").status_code == 404


def test_request_id_under_another_app_is_not_found(emulator, emu_http):
    reply = submit(emu_http)
    assert emu_http.get(f"/fal-ai/fast-sdxl/requests/{reply['request_id']}/status").status_code == 404


def test_unknown_model_is_404_application_not_found(emulator, emu_http):
    response = emu_http.post("/fal-ai/veo-3", json={"prompt": "x"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Application 'veo-3' not found"}


def test_cancel_queued_then_completes_with_error(emulator, emu_http, completed):
    emulator.hold()
    reply = submit(emu_http)
    cancel = emu_http.put(reply["cancel_url"])
    assert cancel.status_code == 202 and cancel.json() == {"status": "CANCELLATION_REQUESTED"}
    final = completed(reply["status_url"])
    assert final["error"] and final["error_type"] == "request_cancelled"
    result = emu_http.get(reply["response_url"])
    assert result.status_code == 400 and result.headers["x-fal-error-type"] == "request_cancelled"
    again = emu_http.put(reply["cancel_url"])
    assert again.status_code == 400 and again.json() == {"status": "ALREADY_COMPLETED"}


def test_cancel_completed_is_400_already_completed(emulator, emu_http, completed):
    reply = submit(emu_http)
    completed(reply["status_url"])
    response = emu_http.put(reply["cancel_url"])
    assert response.status_code == 400 and response.json() == {"status": "ALREADY_COMPLETED"}
    assert emu_http.get(reply["response_url"]).status_code == 200


def test_start_timeout_expiring_in_queue_is_a_user_504(emulator, emu_http, completed):
    emulator.hold()
    reply = submit(emu_http, headers={"X-Fal-Request-Timeout": "0.2"})
    final = completed(reply["status_url"])
    assert final["error_type"] == "request_timeout"
    result = emu_http.get(reply["response_url"])
    assert result.status_code == 504
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.json()["error_type"] == "request_timeout"


def test_start_timeout_not_reached_is_harmless(emulator, emu_http, completed):
    reply = submit(emu_http, headers={"X-Fal-Request-Timeout": "30.0"})
    completed(reply["status_url"])
    assert emu_http.get(reply["response_url"]).status_code == 200


def test_priority_hint_and_webhook_are_recorded(emulator, emu_http):
    reply = submit(emu_http, headers={"X-Fal-Queue-Priority": "low", "X-Fal-Runner-Hint": "gpu-7"},
                   params={"fal_webhook": "https://example.com/hook?a=1"})
    job = emulator.jobs[reply["request_id"]]
    assert (job.priority, job.hint, job.webhook) == ("low", "gpu-7", "https://example.com/hook?a=1")
    seen = [r for r in emulator.requests if r.method == "POST" and r.path == f"/{MODEL}"][-1]
    assert seen.headers["x-fal-queue-priority"] == "low" and "fal_webhook=" in seen.query


def read_events(emulator, url: str, on_first=None, **params) -> list[str]:
    """Raw SSE lines (comments included) until the server closes the stream; ``on_first()`` runs once the first
    line arrived."""
    lines = []
    with httpx.stream("GET", url, params=params, headers={"Authorization": "Key a:b"}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            lines.append(line)
            if on_first is not None and len(lines) == 1:
                on_first()
    return lines


def test_stream_sends_log_deltas_and_closes_after_completed(emulator, emu_http):
    emulator.configure(queue_seconds=0.2, run_seconds=0.6, log_lines=4)
    emulator.hold()  # IN_QUEUE until the stream has sent its first event, however long opening it took
    reply = submit(emu_http)
    lines = read_events(emulator, reply["status_url"] + "/stream", on_first=emulator.release, logs=1)  # closed
    events = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    assert [e["status"] for e in events][-1] == "COMPLETED"
    assert {"IN_QUEUE", "IN_PROGRESS"} <= {e["status"] for e in events}
    deltas = [e["logs"] for e in events if e["status"] != "IN_QUEUE"]
    messages = [entry["message"] for delta in deltas for entry in delta]
    assert len(messages) == 4 and len(set(messages)) == 4  # each line exactly once: deltas, not cumulative
    assert all(line.startswith("data: ") for line in lines if line)


def test_stream_pings_when_quiet(emulator, emu_http):
    emulator.configure(ping_interval=0.05, run_seconds=0.5, log_lines=1)
    reply = submit(emu_http)
    lines = read_events(emulator, reply["status_url"] + "/stream")
    assert ": ping" in lines
    last = json.loads([line for line in lines if line.startswith("data: ")][-1][6:])
    assert last["status"] == "COMPLETED" and last["logs"] is None


def test_stream_parses_with_httpx_sse(emulator, emu_http):
    reply = submit(emu_http)
    with httpx.Client(headers={"Authorization": "Key a:b"}) as client:
        with connect_sse(client, "GET", reply["status_url"] + "/stream", params={"logs": "1"}) as source:
            statuses = [json.loads(event.data)["status"] for event in source.iter_sse()]
    assert statuses[-1] == "COMPLETED"


def test_configure_refuses_unknown_names(emulator):
    from fal_notebook.errors import ConfigError

    with pytest.raises(ConfigError):
        emulator.configure(scenario="nope")
    with pytest.raises(ConfigError):
        emulator.configure(not_a_knob=1)


def test_hold_release_and_jobs_over_http(emulator, emu_http, completed):
    control = emulator.url + "/_emulator"
    assert httpx.post(f"{control}/hold", json={"hold": True}).json() == {"hold": True}
    reply = submit(emu_http)
    jobs = {j["request_id"]: j for j in httpx.get(f"{control}/jobs").json()}
    assert jobs[reply["request_id"]]["status"] == "IN_QUEUE"
    assert jobs[reply["request_id"]]["arguments"] == {"prompt": "a red fox"}
    assert httpx.post(f"{control}/release", json={"request_id": reply["request_id"]}).json() == {"released": 1}
    assert completed(reply["status_url"])["status"] == "COMPLETED"
    assert emulator.status_of(reply["request_id"]) == "COMPLETED"
