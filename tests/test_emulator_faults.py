"""Injected faults look exactly like fal's (and its ingress's) failures, and stop after ``fault_count`` calls."""

from __future__ import annotations

import httpx
import pytest

MODEL = "fal-ai/flux/schnell"


def submit(client: httpx.Client) -> httpx.Response:
    return client.post(f"/{MODEL}", json={"prompt": "x"})


def test_rate_limit_sends_retry_after_then_recovers(emulator, emu_http):
    emulator.configure(scenario="rate_limit", fault_count=2, retry_after=3)
    codes = []
    for _ in range(3):
        response = submit(emu_http)
        codes.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["retry-after"] == "3"
            assert response.json()["detail"]
    assert codes == [429, 429, 200]


def test_ingress_502_is_nginx_html_without_request_id(emulator, emu_http):
    emulator.configure(scenario="ingress_502", fault_count=1)
    response = submit(emu_http)
    assert response.status_code == 502 and "nginx" in response.text
    assert "x-fal-request-id" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert submit(emu_http).status_code == 200


def test_app_503_is_json_with_request_id_and_error_type(emulator, emu_http):
    emulator.configure(scenario="app_503", fault_count=1)
    response = submit(emu_http)
    assert response.status_code == 503 and response.headers["x-fal-request-id"]
    assert response.json()["error_type"] == response.headers["x-fal-error-type"] == "runner_scheduling_failure"


def test_reset_drops_status_connection_mid_body(emulator, emu_http, completed):
    reply = submit(emu_http).json()
    emulator.configure(scenario="reset", fault_count=2)
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            emu_http.get(reply["status_url"])
    assert completed(reply["status_url"])["status"] == "COMPLETED"  # the job itself was not lost


def test_reset_also_hits_the_stream(emulator, emu_http):
    reply = submit(emu_http).json()
    emulator.configure(scenario="reset", fault_count=1)
    with pytest.raises(httpx.TransportError):
        with emu_http.stream("GET", reply["status_url"] + "/stream") as response:
            response.read()


def test_hung_status_outlasts_a_client_timeout_then_answers(emulator, emu_http):
    reply = submit(emu_http).json()
    emulator.configure(scenario="hung_status", fault_count=1, hang_seconds=2.0)
    with pytest.raises(httpx.ReadTimeout):
        emu_http.get(reply["status_url"], timeout=0.3)
    assert emu_http.get(reply["status_url"], timeout=30).status_code in (200, 202)


def test_expired_result_is_404_after_completion(emulator, emu_http, completed):
    emulator.configure(scenario="expired")
    reply = submit(emu_http).json()
    status = completed(reply["status_url"])
    assert "error" not in status
    response = emu_http.get(reply["response_url"])
    assert response.status_code == 404 and "not found" in response.json()["detail"].lower()


def test_error_scenario_completes_with_runner_disconnected(emulator, emu_http, completed):
    emulator.configure(scenario="error")
    reply = submit(emu_http).json()
    status = completed(reply["status_url"])
    assert (status["error"], status["error_type"]) == ("Runner disconnected", "runner_disconnected")
    response = emu_http.get(reply["response_url"])
    assert response.status_code == 503
    assert response.json() == {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    assert response.headers["x-fal-error-type"] == "runner_disconnected"
    assert response.headers["x-fal-request-id"] == reply["request_id"]


def test_locked_account_is_403(emulator, emu_http):
    emulator.configure(scenario="locked")
    response = submit(emu_http)
    assert response.status_code == 403 and response.json()["detail"].startswith("User is locked")


def test_faults_never_touch_media_or_cdn(emulator, emu_http, completed):
    reply = submit(emu_http).json()
    completed(reply["status_url"])
    url = emu_http.get(reply["response_url"]).json()["images"][0]["url"]
    emulator.configure(scenario="ingress_502", fault_count=5)
    assert httpx.get(url).status_code == 200


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authorization header is required"),
        ("Key no-colon", "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."),
        ("Bearer abc:def", "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."),
    ],
)
def test_auth_refusals(emulator, header, detail):
    headers = {"Authorization": header} if header else {}
    for method, path in (("POST", f"/{MODEL}"), ("GET", "/fal-ai/flux/requests/x/status"),
                         ("POST", "/storage/auth/token?storage_type=fal-cdn-v3")):
        response = httpx.request(method, emulator.url + path, headers=headers, json={})
        assert response.status_code == 401 and response.json() == {"detail": detail}


def test_unknown_key_is_no_user_found(emulator):
    emulator.configure(valid_keys=["good-id"])
    bad = httpx.post(f"{emulator.url}/{MODEL}", json={"prompt": "x"}, headers={"Authorization": "Key bad:s"})
    assert bad.status_code == 401 and bad.json() == {"detail": "No user found for Key ID and Secret"}
    good = httpx.post(f"{emulator.url}/{MODEL}", json={"prompt": "x"}, headers={"Authorization": "Key good-id:s"})
    assert good.status_code == 200


def test_key_never_lands_in_the_record(emulator, emu_http):
    submit(emu_http)
    dumped = repr(emulator.requests) + httpx.get(emulator.url + "/_emulator/requests").text
    assert "test-secret" not in dumped and "test-id" not in dumped
    assert emulator.requests[-1].authorized and emulator.requests[-1].auth_scheme == "Key"
