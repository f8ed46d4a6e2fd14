"""Retry decisions (table-driven), Retry-After parsing and the backoff curve."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from fal_notebook.client.retry import (
    RetryPolicy,
    is_ingress_error,
    retry_after_seconds,
    should_retry_error,
    should_retry_response,
)

NGINX = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
RID = {"x-fal-request-id": "r-1"}


def _response(status: int, *, headers=None, text=None, json=None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, text=text, json=json)


# (case, response, retried for idempotent calls, retried for submit)
RESPONSES = [
    ("429", _response(429, json={"detail": "slow down"}), True, True),
    ("429 with request id", _response(429, headers=RID, json={"detail": "x"}), True, True),
    ("408", _response(408), True, True),
    ("409", _response(409), True, True),
    ("ingress 502 nginx", _response(502, text=NGINX), True, True),
    ("ingress 503 nginx", _response(503, text=NGINX.replace("502", "503")), True, True),
    ("ingress 504 html", _response(504, text="<html>gateway timeout</html>"), True, True),
    ("app 503 (request id)", _response(503, headers=RID, json={"detail": "runner down"}), False, False),
    ("app 500", _response(500, headers=RID, json={"detail": "boom"}), False, False),
    (
        "fal JSON 503 w/o id",
        _response(503, json={"detail": "x", "error_type": "runner_disconnected"}),
        False,
        False,
    ),
    (
        "user-timeout 504",
        _response(504, headers={"x-fal-request-timeout-type": "user"}, text=NGINX),
        False,
        False,
    ),
    ("400", _response(400, json={"detail": "bad"}), False, False),
    ("401", _response(401, json={"detail": "No user found for Key ID and Secret"}), False, False),
    ("403", _response(403, json={"detail": "User is locked"}), False, False),
    ("404", _response(404, json={"detail": "nope"}), False, False),
    ("405", _response(405), False, False),
    (
        "422",
        _response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}),
        False,
        False,
    ),
]


@pytest.mark.parametrize(
    ("case", "response", "idempotent", "submit"), RESPONSES, ids=[r[0] for r in RESPONSES]
)
def test_response_decisions(case: str, response: httpx.Response, idempotent: bool, submit: bool) -> None:
    assert idempotent is submit  # an answer means no job was made: a submit is retried alike
    assert should_retry_response(response) is idempotent


REQ = httpx.Request("GET", "https://queue.fal.run/x")
REQ_DEADLINE = httpx.Request("POST", "https://queue.fal.run/x", headers={"X-Fal-Request-Timeout": "30.0"})

# (exception, request, retried for idempotent calls, retried for submit)
ERRORS = [
    (httpx.ConnectError("refused"), REQ, True, True),
    (httpx.ConnectTimeout("slow"), REQ, True, True),
    (httpx.PoolTimeout("pool"), REQ, True, True),
    (httpx.ReadTimeout("slow"), REQ, True, False),
    (httpx.WriteTimeout("slow"), REQ, True, False),
    (httpx.ReadError("reset"), REQ, True, False),
    (httpx.WriteError("reset"), REQ, True, False),
    (httpx.RemoteProtocolError("closed"), REQ, True, False),
    (httpx.ReadTimeout("slow"), REQ_DEADLINE, False, False),
    (httpx.ConnectTimeout("slow"), REQ_DEADLINE, True, True),
    (httpx.UnsupportedProtocol("ftp"), REQ, False, False),
    (httpx.DecodingError("gzip"), REQ, False, False),
]


@pytest.mark.parametrize(
    ("exc", "request_", "idempotent", "submit"), ERRORS, ids=[repr(e[0]) for e in ERRORS]
)
def test_error_decisions(exc: Exception, request_: httpx.Request, idempotent: bool, submit: bool) -> None:
    assert should_retry_error(exc, request_, idempotent=True) is idempotent
    assert should_retry_error(exc, request_, idempotent=False) is submit


def test_ingress_needs_a_5xx_without_request_id() -> None:
    assert is_ingress_error(_response(502, text=NGINX))
    assert not is_ingress_error(_response(502, headers=RID, text=NGINX))
    assert not is_ingress_error(_response(500, text=NGINX))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), (" 7 ", 7.0), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(12.0)
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert retry_after_seconds(past, now=now) == 0.0


def test_delay_honours_retry_after_and_caps_it() -> None:
    policy = RetryPolicy(max_retry_after=30.0, rng=lambda: 0.5)
    assert policy.delay(1, _response(429, headers={"Retry-After": "4"})) == 4.0
    assert policy.delay(1, _response(429, headers={"Retry-After": "3600"})) == 30.0
    assert policy.delay(3, _response(429)) == policy.backoff(3)


def test_backoff_is_exponential_jittered_and_capped() -> None:
    low = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=0.5, rng=lambda: 0.0)
    high = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=0.5, rng=lambda: 1.0)
    mid = RetryPolicy(base_delay=0.25, max_delay=10.0, jitter=0.5, rng=lambda: 0.5)
    assert [mid.backoff(n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 2.0]
    assert low.backoff(1) == pytest.approx(0.125) and high.backoff(1) == pytest.approx(0.375)
    assert high.backoff(20) == 10.0 and low.backoff(20) == 5.0


def test_policy_needs_one_attempt() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
