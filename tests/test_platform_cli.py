"""``fal-notebook`` models / model-info / estimate / spend / import-history / adopt and ``submit --yes``
against the emulator's platform routes."""

from __future__ import annotations

import json

import pytest

from fal_notebook.cli import app as cli
from fal_notebook.emulator.platform_routes import PRICES

IMAGE = "fal-ai/nano-banana-pro"
VIDEO = "fal-ai/kling-video/v2.1/standard/image-to-video"


@pytest.fixture
def env(fal_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAL_NOTEBOOK_MAX_COST", raising=False)
    monkeypatch.setenv("FAL_PENDING_FILE", str(tmp_path / "no-legacy.json"))
    return fal_env


def run(capsys, *argv: str) -> tuple[int, object, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, (json.loads(out) if out.strip() else None), err


def _queue_posts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "POST" and not r.path.startswith("/v1/")]


def test_models_search_finds_unbundled_models_after_the_bundled_ones(env, emulator, capsys):
    code, data, _ = run(capsys, "models", "--search", "sdxl")
    assert code == 0 and [(m["id"], m["source"]) for m in data["models"]] == [("fal-ai/fast-sdxl", "fal")]
    assert data["source"] == "bundled+fal"
    code, data, _ = run(capsys, "models", "flux", "--category", "text-to-image")
    ids = [m["id"] for m in data["models"]]
    assert ids[:2] == ["fal-ai/flux/dev", "fal-ai/flux/schnell"] and data["count"] == len(ids)


def test_models_offline_lists_the_bundled_ones_and_says_so(env, emulator, capsys):
    emulator.configure(platform_status=503)
    code, data, err = run(capsys, "models")
    assert code == 0 and data["source"] == "bundled" and "offline" in data["note"] and "offline" in err
    assert all(m["source"] == "bundled" for m in data["models"]) and len(data["models"]) >= 8


def test_model_info_for_a_model_that_is_not_bundled(env, emulator, capsys, monkeypatch):
    from fal_notebook import catalog

    monkeypatch.setattr(catalog, "_registered", {})  # as in a fresh process; what it registers goes with it
    code, data, _ = run(capsys, "model-info", "fal-ai/fast-sdxl")
    assert code == 0 and data["id"] == "fal-ai/fast-sdxl" and data["source"] == "openapi"
    assert {"prompt", "negative_prompt", "num_images"} <= {f["name"] for f in data["fields"]}
    assert any(r.path == "/v1/models" and "expand=openapi-3.0" in r.query for r in emulator.requests)


def test_estimate_prints_the_documented_keys(env, capsys):
    code, data, _ = run(capsys, "estimate", IMAGE, '{"prompt": "a fox", "num_images": 2}')
    unit_price, unit = PRICES[IMAGE]
    assert code == 0 and data == {"model": IMAGE, "unit_price": unit_price, "unit": unit, "quantity": 2.0,
                                  "total": pytest.approx(unit_price * 2), "currency": "USD"}
    code, data, _ = run(capsys, "estimate", "kling-i2v", "waves", "--image-url", "https://example.com/a.png",
                        "--duration", "5")
    assert code == 0 and (data["model"], data["quantity"]) == (VIDEO, 5.0)
    assert data["total"] == pytest.approx(PRICES[VIDEO][0] * 5)
    code, data, _ = run(capsys, "estimate", IMAGE, "a fox", "--n", "3")
    assert data["quantity"] == 3.0


def test_submit_over_budget_sends_nothing_and_yes_sends_it(env, emulator, capsys, monkeypatch):
    monkeypatch.setenv("FAL_NOTEBOOK_MAX_COST", "0.2")
    emulator.clear_requests()
    code, data, err = run(capsys, "submit", IMAGE, '{"prompt": "a fox", "num_images": 2}')
    assert code == 8 and data is None and "0.3" in err and "max_cost=0.2" in err
    assert _queue_posts(emulator) == []
    code, data, _ = run(capsys, "submit", IMAGE, '{"prompt": "a fox", "num_images": 2}', "--yes", "--wait")
    assert code == 0 and data["state"] == "COMPLETED" and len(_queue_posts(emulator)) == 1


def test_spend_adds_up_the_jobs(env, capsys):
    for count in (1, 2):
        code, _, _ = run(capsys, "submit", IMAGE, json.dumps({"prompt": "x", "num_images": count}), "--wait")
        assert code == 0
    code, data, _ = run(capsys, "spend", "--since", "1h", "--all")
    assert code == 0 and data["jobs"] == 2 and data["total"] == pytest.approx(PRICES[IMAGE][0] * 3)
    assert data["models"][0]["model"] == IMAGE and data["fal_usage"]["available"]
    assert run(capsys, "spend", "--since", "yesterday-ish")[0] == 2


def test_import_history_and_adopt(env, emu_http, completed, capsys):
    made = emu_http.post(f"/{IMAGE}", json={"prompt": "made elsewhere"}).json()
    completed(made["status_url"])
    code, data, _ = run(capsys, "import-history", "--model", "nano-banana-pro", "--since", "1h")
    assert code == 0 and data["imported"] == 1
    code, listed, _ = run(capsys, "jobs", "--all")
    assert [(j["request_id"], j["state"]) for j in listed["jobs"]] == [(made["request_id"], "COMPLETED")]
    other = emu_http.post(f"/{IMAGE}", json={"prompt": "another tool"}).json()
    code, data, _ = run(capsys, "adopt", other["request_id"], "--model", IMAGE)
    assert code == 0 and data["request_id"] == other["request_id"] and "adopted" in data["tags"]
    code, data, _ = run(capsys, "wait", data["id"], "--timeout", "30")
    assert code == 0
