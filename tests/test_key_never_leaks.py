"""The key never reaches an error's text: not from a header httpx refuses to send, not from an answer that
echoes it (as text or inside a structured 422 detail), and a key that cannot be sent is refused up front."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fal_notebook.cli import app as cli
from fal_notebook.client import AsyncQueueClient
from fal_notebook.client.http import translate_errors
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.errors import ConfigError, RequestError, TransportError

SECRET = "s3cret-that-must-never-show"
KEY = f"abcd1234:{SECRET}"


def _client(key: str, url: str, transport: httpx.AsyncBaseTransport | None = None) -> AsyncQueueClient:
    settings = Settings(key=ApiKey(key), endpoints=Endpoints(queue=url, rest=url, cdn=url, openapi=url))
    return AsyncQueueClient(settings, transport=transport)


@pytest.mark.parametrize("key", ["abcd1234:s3cret\nthat-must-never-show", f"abcd1234:{SECRET}é",
                                 "abcd1234:s3cret that-must-never-show"])
def test_a_key_that_cannot_go_in_a_header_is_refused_before_sending(emulator, key):
    assert not ApiKey(key).well_formed

    async def submit() -> None:
        async with _client(key, emulator.url) as fal:
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})

    emulator.clear_requests()
    with pytest.raises(ConfigError) as caught:
        asyncio.run(submit())
    assert "abcd…" in str(caught.value)
    assert "that-must-never-show" not in str(caught.value) and "s3cret" not in str(caught.value)
    assert emulator.requests == []


def test_httpx_errors_quoting_the_header_are_redacted():
    with pytest.raises(TransportError) as caught, translate_errors("submit", secret=KEY):
        raise httpx.LocalProtocolError(f"Illegal header value b'Key {KEY}'")
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_an_answer_echoing_the_key_is_redacted_in_message_and_detail():
    def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["authorization"]
        return httpx.Response(422, json={"detail": [{"loc": ["body", "prompt"], "msg": f"bad: {header}"},
                                                    {"loc": ["body"], "msg": f"secret was {SECRET}"}]})

    async def submit() -> None:
        async with _client(KEY, "https://queue.fal.run", httpx.MockTransport(echo)) as fal:
            await fal.submit("fal-ai/flux/dev", {"prompt": "x"})

    with pytest.raises(RequestError) as caught:
        asyncio.run(submit())
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.detail)
    assert caught.value.detail[0]["loc"] == ["body", "prompt"]


def test_check_key_says_a_malformed_key_cannot_be_sent(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FAL_KEY", "abcd1234:s3cret that-must-never-show")
    monkeypatch.setenv("FAL_NOTEBOOK_HOME", str(tmp_path))
    assert cli.main(["check-key"]) == 1
    out, err = capsys.readouterr()
    assert '"well_formed": false' in out and "cannot be sent" in err
    assert "s3cret" not in out + err
