"""Prices, budgets, spend and history through the Job API, against the emulator's platform routes: the
estimate is the served unit price × the quantity the input asks for, a job over budget sends nothing, spend
adds up the jobs' costs, and past requests made elsewhere come into the store."""

from __future__ import annotations

import pytest

from fal_notebook import jobs as J
from fal_notebook.errors import CostLimitError
from fal_notebook.runtime import JobManager
from fal_notebook.store import JobState, JobStore

IMAGE, VIDEO = "fal-ai/nano-banana-pro", "fal-ai/kling-video/v2.1/standard/image-to-video"


@pytest.fixture
def mgr(fal_env, monkeypatch, tmp_path):
    monkeypatch.setenv("FAL_PENDING_FILE", str(tmp_path / "no-legacy.json"))
    monkeypatch.delenv("FAL_NOTEBOOK_MAX_COST", raising=False)
    manager = JobManager(fal_env, store=JobStore(fal_env.store_path), legacy_file=False)
    J.set_manager(manager)
    yield manager
    J.set_manager(None)
    manager.store.close()


def _served(emu_http, endpoint_id: str) -> dict:
    body = emu_http.get("/v1/models/pricing", params={"endpoint_id": endpoint_id}).json()
    return body["prices"][0]


def _queue_posts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "POST" and not r.path.startswith("/v1/")]


def test_estimate_is_the_served_price_times_the_quantity(mgr, emu_http):
    image, video = _served(emu_http, IMAGE), _served(emu_http, VIDEO)
    two = J.estimate(IMAGE, {"prompt": "a fox", "num_images": 2})
    assert two == {"model": IMAGE, "unit_price": image["unit_price"], "unit": image["unit"], "quantity": 2.0,
                   "total": pytest.approx(image["unit_price"] * 2), "currency": image["currency"]}
    five = J.estimate("kling-i2v", prompt="waves", image_url="https://example.com/a.png", duration="5")
    assert (five["model"], five["unit"], five["quantity"]) == (VIDEO, video["unit"], 5.0)
    assert five["total"] == pytest.approx(video["unit_price"] * 5)
    default = J.estimate(VIDEO, {"prompt": "waves"})  # the model's default duration ("5")
    assert default["quantity"] == 5.0


def test_job_estimate_and_cost_after(mgr, emu_http):
    job = J.submit(IMAGE, prompt="a fox", num_images=2)
    assert job.estimate == J.estimate(IMAGE, {"prompt": "a fox", "num_images": 2})
    assert mgr.store.get(job.id).estimate == job.estimate
    job.wait(timeout=30)
    assert job.state is JobState.COMPLETED and job.cost == pytest.approx(job.estimate["total"])


def test_over_budget_sends_nothing_unless_confirmed(mgr, emulator, monkeypatch):
    monkeypatch.setenv("FAL_NOTEBOOK_MAX_COST", "0.2")
    emulator.clear_requests()
    with pytest.raises(CostLimitError) as refused:
        J.submit(IMAGE, prompt="a fox", num_images=2)
    assert "0.3" in str(refused.value) and "max_cost=0.2" in str(refused.value)
    assert refused.value.estimate["total"] == pytest.approx(0.3)
    with pytest.raises(CostLimitError):
        J.submit_many(IMAGE, [{"prompt": "a fox"}] * 2)  # 2 × 0.15 > 0.2: the group as one decision
    assert _queue_posts(emulator) == [] and mgr.store.list() == []
    job = J.submit(IMAGE, prompt="a fox", num_images=2, confirm=True)
    assert job.wait(timeout=30).state is JobState.COMPLETED and len(_queue_posts(emulator)) == 1
    assert J.submit(IMAGE, prompt="one is fine").estimate["total"] == pytest.approx(0.15)


def test_an_unreachable_pricing_api_never_blocks_a_submit(mgr, emulator, monkeypatch, caplog):
    emulator.configure(platform_status=503)
    monkeypatch.setenv("FAL_NOTEBOOK_MAX_COST", "0.01")
    job = J.submit(IMAGE, prompt="a fox")
    assert job.estimate is None and job.wait(timeout=30).state is JobState.COMPLETED
    assert "could not be checked" in caplog.text
    pricing_calls = [r for r in emulator.requests if r.path == "/v1/models/pricing"]
    J.submit(IMAGE, prompt="again").wait(timeout=30)
    assert len([r for r in emulator.requests if r.path == "/v1/models/pricing"]) == len(pricing_calls)


def test_prices_are_cached_on_disk(mgr, emulator, fal_env):
    J.estimate(IMAGE, {"prompt": "x"})
    assert (fal_env.home / "prices.json").is_file()
    emulator.clear_requests()
    other = JobManager(fal_env, store=mgr.store, legacy_file=False)
    try:
        assert other.estimate(IMAGE, [{"prompt": "x"}])["total"] == pytest.approx(0.15)
    finally:
        other.close()
    assert [r for r in emulator.requests if r.path.startswith("/v1/")] == []


def test_spend_is_the_sum_of_the_jobs_costs(mgr, emulator):
    done = [J.submit(IMAGE, prompt="a", num_images=n) for n in (1, 2)]
    done.append(J.submit("flux-schnell", prompt="b", image_size="landscape_16_9"))
    for job in done:
        job.wait(timeout=30)
    report = J.spend(since="1h")
    assert report["jobs"] == 3 and report["currency"] == "USD"
    assert report["total"] == pytest.approx(sum(job.cost for job in done))
    by_model = {m["model"]: m for m in report["models"]}
    assert by_model[IMAGE]["cost"] == pytest.approx(0.45) and by_model[IMAGE]["jobs"] == 2
    assert report["fal_usage"]["available"] and report["fal_usage"]["total"] == pytest.approx(report["total"])
    emulator.configure(usage_access=False)
    assert not J.spend()["fal_usage"]["available"]


def test_import_history_brings_in_requests_made_elsewhere(mgr, emu_http, completed):
    made = [emu_http.post(f"/{IMAGE}", json={"prompt": f"elsewhere {i}", "num_images": 1}).json() for i in range(2)]
    for reply in made:
        completed(reply["status_url"])
    report = J.import_history(IMAGE, since="1h")
    assert report["imported"] == 2 and not report["failed"]
    imported = J.jobs(all=True)
    assert {j.request_id for j in imported} == {r["request_id"] for r in made}
    job = imported[0]
    assert job.state is JobState.COMPLETED and job.arguments["prompt"].startswith("elsewhere")
    assert job.result(timeout=0)["images"] and job.estimate["total"] == pytest.approx(0.15)
    assert J.import_history(IMAGE, since="1h")["imported"] == 0  # known request ids are skipped


def test_adopt_follows_a_request_made_elsewhere(mgr, emu_http):
    reply = emu_http.post(f"/{IMAGE}", json={"prompt": "from another tool"}).json()
    job = J.adopt(reply["request_id"], "nano-banana-pro")
    assert job.model == IMAGE and job.wait(timeout=30).state is JobState.COMPLETED
    assert len(job.files) == 1 and job.files[0].is_file()
    assert J.adopt(reply["request_id"], IMAGE).id == job.id


def test_cards_show_the_estimate_before_and_the_cost_after(mgr, emulator):
    from fal_notebook.views import card_data, card_html, card_text

    emulator.hold(True)
    job = J.submit(IMAGE, prompt="a fox", num_images=2)
    before = card_data(job.snapshot())
    assert before.money == "est. $0.30" and "est. $0.30" in card_html(before) and "est. $0.30" in card_text(before)
    emulator.release()
    job.wait(timeout=60)
    after = card_data(job.snapshot())
    assert after.money == "cost $0.30" and "cost $0.30" in card_html(after)
    failed = J.submit(IMAGE, prompt="fails", num_images=99, validate=False)  # the model refuses it: 422
    failed.wait(timeout=60)
    assert failed.state is JobState.FAILED and card_data(failed.snapshot()).money == "cost $0.00 (not billed)"
    group = J.submit_many(IMAGE, [{"prompt": "a"}, {"prompt": "b"}])
    assert group.estimate["total"] == pytest.approx(0.3) and group.estimate["quantity"] == 2.0
