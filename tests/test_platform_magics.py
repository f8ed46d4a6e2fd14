"""``%fal models / estimate / spend / config max_cost=`` and ``--yes`` in a bare InteractiveShell."""

# ruff: noqa: F811 - the shell fixtures are imported from browser_conftest and requested by name

from __future__ import annotations

import pytest
from browser_conftest import ip, published, run_cell, shell  # noqa: F401 - fixtures used by name
from IPython.core.error import UsageError

from fal_notebook import jobs
from fal_notebook.emulator.platform_routes import PRICES

IMAGE = "fal-ai/nano-banana-pro"


def value(shell, source: str):
    return run_cell(shell, source).result


def _queue_posts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "POST" and not r.path.startswith("/v1/")]


def test_estimate_magic_prints_the_price_before_paying(shell, emulator):
    emulator.clear_requests()
    estimate = value(shell, "%fal estimate nano-banana-pro a red fox --num-images 2")
    assert estimate == {"model": IMAGE, "unit_price": PRICES[IMAGE][0], "unit": "image", "quantity": 2.0,
                        "total": pytest.approx(0.3), "currency": "USD"}
    assert _queue_posts(emulator) == []


def test_max_cost_refuses_a_job_and_a_group_until_yes(shell, emulator, monkeypatch):
    monkeypatch.setenv("FAL_NOTEBOOK_MAX_COST", "")  # restored after the test; the magic sets it
    assert "max_cost: 0.2" in repr(value(shell, "%fal config max_cost=0.2"))
    emulator.clear_requests()
    with pytest.raises(UsageError, match=r"estimated 0\.3 USD .* max_cost=0\.2"):
        value(shell, "%fal nano-banana-pro a red fox --num-images 2")
    with pytest.raises(UsageError, match="2 requests"):
        value(shell, "%fal nano-banana-pro a red fox --n 2")
    assert _queue_posts(emulator) == []
    group = value(shell, "%fal nano-banana-pro a red fox --n 2 --yes --wait")
    assert len(group) == 2 and group.cost == pytest.approx(0.3) and len(_queue_posts(emulator)) == 2
    with pytest.raises(UsageError, match="not an amount"):
        value(shell, "%fal config max_cost=lots")
    assert "max_cost: none" in repr(value(shell, "%fal config max_cost=none"))


def test_spend_magic_sums_the_jobs(shell):
    value(shell, "%fal nano-banana-pro a red fox --num-images 2 --wait")
    table = value(shell, "%fal spend")
    assert "$0.30 for 1 job" in table.title and IMAGE in repr(table)


def test_models_magic_searches_fal(shell):
    table = value(shell, "%fal models sdxl")
    assert [row[0].text for row in table.rows] == ["fal-ai/fast-sdxl"]


def test_the_form_shows_the_estimate_next_to_its_submit_button(fal_env, emulator, monkeypatch):
    from fal_notebook.notebook.panel.form import SchemaForm

    monkeypatch.delenv("FAL_NOTEBOOK_MAX_COST", raising=False)
    jobs.estimate(IMAGE, {"prompt": "x"})  # the price is fetched once and cached
    form = SchemaForm(IMAGE)
    form.fields["prompt"].set("a red fox")
    assert "est. $0.15" in form.estimate.value and form.submit_button.description == "Submit"
    form.count = 2
    assert "est. $0.30" in form.estimate.value
    form.fields["prompt"].set("")
    assert form.estimate.value == ""  # nothing to price while the input is not sendable


def test_any_fal_model_takes_its_own_options_and_has_info(shell, emulator, monkeypatch):
    from fal_notebook import catalog

    monkeypatch.setattr(catalog, "_registered", {})  # as in a fresh kernel; what it registers goes with it
    info = value(shell, "%fal info fal-ai/fast-sdxl")
    assert "--negative-prompt" in repr(info) and "--num-inference-steps" in repr(info)
    job = value(shell, "%fal fal-ai/fast-sdxl a cat --negative-prompt blurry --num-inference-steps 10 --wait")
    assert job.state.value == "COMPLETED"
    (sent,) = [dict(j.arguments) for j in emulator.jobs.values()]
    assert sent.pop("seed") == job.seed  # the client picks a seed for a model that takes one
    assert sent == {"prompt": "a cat", "negative_prompt": "blurry", "num_inference_steps": 10}
    assert job.estimate["unit"] == "image" and job.cost == pytest.approx(PRICES["fal-ai/fast-sdxl"][0])
