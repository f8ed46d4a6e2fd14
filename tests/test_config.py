"""Key lookup order, TOOLS.md formats, masking, endpoints and folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from fal_notebook.config import ApiKey, Endpoints, find_key, load_settings, origin_of

SECRET = "1a2b3c4d-0000-1111:verysecretvalue0123456789"


def tools(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "TOOLS.md"
    path.write_text(text)
    return {"FAL_TOOLS_MD": str(path)}


def test_fal_key_wins_and_is_stripped(tmp_path):
    env = {"FAL_KEY": f"  '{SECRET}'\n", "FAL_KEY_ID": "x", "FAL_KEY_SECRET": "y", **tools(tmp_path, "FAL_KEY: other:key123")}
    key = find_key(env, cwd=tmp_path)
    assert key is not None and key.reveal() == SECRET and key.source == "FAL_KEY"


def test_id_and_secret_are_joined(tmp_path):
    key = find_key({"FAL_KEY_ID": "abc12345", "FAL_KEY_SECRET": "s3cret"}, cwd=tmp_path)
    assert key is not None and key.reveal() == "abc12345:s3cret"


@pytest.mark.parametrize(
    "text",
    [
        f"### fal.ai\nFAL_KEY: {SECRET}\n",
        f"### fal.ai\n- FAL_KEY: \"{SECRET}\"\n",
        f"FAL_KEY = '{SECRET}'\n",
        f"## Keys\n- **FAL_KEY**: `{SECRET}`\n",
        f"fal.ai API key: {SECRET}\n",
        f"### fal.ai\nFAL_KEY: your-key-here\n\nFAL_KEY: {SECRET}\n",
    ],
)
def test_tools_md_formats(tmp_path, text):
    key = find_key(tools(tmp_path, text), cwd=tmp_path)
    assert key is not None and key.reveal() == SECRET  # ':' kept: key_id:key_secret


def test_tools_md_placeholder_is_no_key(tmp_path):
    assert find_key(tools(tmp_path, "### fal.ai\nFAL_KEY: your-key-here\n"), cwd=tmp_path) is None


def test_tools_md_in_cwd_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "TOOLS.md").write_text(f"FAL_KEY: {SECRET}\n")
    key = find_key({}, cwd=tmp_path)
    assert key is not None and key.source == str(tmp_path / "TOOLS.md")


def test_no_key_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_key({}, cwd=tmp_path) is None


def test_key_never_shows_itself():
    key = ApiKey(SECRET, source="FAL_KEY")
    for text in (repr(key), str(key), f"{key}", key.masked, repr([key]), repr({"k": key})):
        assert "verysecret" not in text and SECRET not in text
    assert key.header_value() == f"Key {SECRET}"
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_endpoints_default_to_fal_and_override_to_one_origin():
    real = Endpoints.from_env({})
    assert (real.queue, real.rest, real.cdn) == ("https://queue.fal.run", "https://rest.fal.ai", "https://v3.fal.media")
    assert real.api_origins == {"https://queue.fal.run", "https://rest.fal.ai", "https://api.fal.ai"}
    assert real.platform_url("models/pricing") == "https://api.fal.ai/v1/models/pricing"
    emu = Endpoints.from_env({"FAL_NOTEBOOK_ENDPOINT": "http://127.0.0.1:8765/"})
    assert {emu.queue, emu.rest, emu.cdn, emu.openapi, emu.platform} == {"http://127.0.0.1:8765"} and emu.emulated
    assert emu.platform_url("/models") == "http://127.0.0.1:8765/v1/models"
    assert emu.api_origins == {"http://127.0.0.1:8765"}
    assert emu.openapi_url("fal-ai/x").endswith("/api/openapi/queue/openapi.json?endpoint_id=fal-ai/x")


def test_origin_of_normalises():
    assert origin_of("HTTPS://Queue.FAL.run:443/a/b?c") == "https://queue.fal.run"
    assert origin_of("http://127.0.0.1:8765/x") == "http://127.0.0.1:8765"


def test_settings_folders_and_describe(tmp_path):
    s = load_settings({"FAL_KEY": SECRET, "FAL_NOTEBOOK_HOME": str(tmp_path), "FAL_NOTEBOOK_OUTPUTS": str(tmp_path / "o")})
    assert s.store_path == tmp_path / "jobs.sqlite3" and s.outputs == tmp_path / "o"
    assert "verysecret" not in s.describe() and "1a2b" in s.describe()
    assert "FAL_KEY=" in load_settings({"FAL_NOTEBOOK_HOME": str(tmp_path), "FAL_TOOLS_MD": "/nonexistent"}).describe()


def test_reattach_setting(tmp_path):
    from fal_notebook.config import load_settings
    from fal_notebook.errors import ConfigError

    assert load_settings({"FAL_NOTEBOOK_HOME": str(tmp_path)}).reattach == "unfinished"
    assert load_settings({"FAL_NOTEBOOK_HOME": str(tmp_path), "FAL_NOTEBOOK_REATTACH": "Finished"}).reattach == "finished"
    with pytest.raises(ConfigError, match="unfinished, finished, off"):
        load_settings({"FAL_NOTEBOOK_HOME": str(tmp_path), "FAL_NOTEBOOK_REATTACH": "always"})
