"""fal-notebook rerun / export / code / compare / lineage / rate / label / note against the emulator."""

from __future__ import annotations

import json

from test_cli_jobs import ok, run

from fal_notebook.views.export import read_settings


def sent(emulator) -> list[dict]:
    return [job.arguments for job in emulator.jobs.values()]


def test_rerun_from_the_shell_sends_the_same_input_and_seed(fal_env, emulator, capsys):
    first = ok(capsys, "submit", "flux-dev", '{"prompt": "a fox", "num_inference_steps": 9}', "--wait")
    again = ok(capsys, "rerun", first["id"], "--wait")
    assert again["parent"] == first["id"] and again["state"] == "COMPLETED"
    assert sent(emulator)[1] == sent(emulator)[0] and again["seed"] == first["arguments"]["seed"]
    changed = ok(capsys, "rerun", first["id"], "an owl", "--guidance-scale", "2", "--wait")
    assert sent(emulator)[2] == {**sent(emulator)[0], "prompt": "an owl", "guidance_scale": 2.0}
    assert changed["seed"] == again["seed"]
    code, _, err = run(capsys, "rerun", first["id"], "--n", "2")
    assert code == 2 and "rerun makes one job" in err and len(emulator.jobs) == 3


def test_judge_export_code_compare_and_lineage(fal_env, emulator, capsys, tmp_path):
    a = ok(capsys, "submit", "nbp", '{"prompt": "a fox", "seed": 5}', "--wait")
    b = ok(capsys, "submit", "nbp", '{"prompt": "a fox", "seed": 6}', "--wait")
    assert ok(capsys, "rate", a["id"], "5")["rating"] == 5
    assert ok(capsys, "label", a["id"], "keeper")["label"] == "keeper"
    assert ok(capsys, "note", a["id"], "the", "best", "one")["note"] == "the best one"
    code, _, err = run(capsys, "rate", a["id"], "nine")
    assert code == 2 and "1..5" in err
    listed = ok(capsys, "list", "--all", "--label", "keeper", "--min-rating", "4")
    assert [j["id"] for j in listed["jobs"]] == [a["id"]]
    report = ok(capsys, "export", "--label", "keeper", str(tmp_path / "out"))
    (exported,) = report["files"]
    assert read_settings(exported)["arguments"]["seed"] == 5 and report["contact_sheet"].endswith("contact-sheet.png")
    prompts = [json.loads(line) for line in (tmp_path / "out" / "prompts.jsonl").read_text().splitlines()]
    assert prompts[0]["rating"] == 5 and prompts[0]["label"] == "keeper" and prompts[0]["job_id"] == a["id"]
    code, out, _ = run(capsys, "code", a["id"])
    assert code == 0 and out.startswith("%fal ") and "--seed=5" in out
    compared = ok(capsys, "compare", a["id"], b["id"])
    assert compared["differing"] == ["seed"]
    edit = ok(capsys, "submit", "nbp-edit", json.dumps({"prompt": "snow", "image_urls": a["files"]}), "--wait")
    chain = ok(capsys, "lineage", edit["id"])["nodes"]
    assert [(n["job_id"], n["depth"]) for n in chain] == [(a["id"], -1), (edit["id"], 0)]
