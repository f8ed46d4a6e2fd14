"""Terminal IPython (a bare shell, no kernel): the display hook's ``Out[n]:`` line is never left empty, and a
card that already shows a job's end is not followed by a notice of it."""

# ruff: noqa: F811 - the shell fixtures are imported from browser_conftest and requested by name

from __future__ import annotations

import re

import pytest
from browser_conftest import ip  # noqa: F401 - fixture used by name

from fal_notebook import jobs, render


@pytest.fixture
def shell(ip, fal_env, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ip.extension_manager.load_extension("fal_notebook")
    capsys.readouterr()
    render._CARDS.clear()
    yield ip
    render._CARDS.clear()
    jobs.reset_for_tests()


def test_a_magic_on_the_last_line_ends_its_out_prompt_with_the_job(shell, capsys):
    job = shell.run_cell("%fal nbp a red fox", store_history=True).result
    out = capsys.readouterr().out
    assert out.count(f"fal job {job.id}") == 1  # the card, once
    assert re.search(rf"^Out\[\d+\]: <Job {job.id[:6]} nano-banana-pro \w+ [\d.]+s>$", out, re.MULTILINE), out
    job.wait(timeout=20)


def test_showing_a_finished_job_again_brings_no_notice(shell, capsys):
    job = shell.run_cell("j = %fal nbp a red fox --wait", store_history=True).result or shell.user_ns["j"]
    assert job.done
    assert capsys.readouterr().out.count(f"[fal] job {job.id}") == 1
    shell.run_cell("j", store_history=True)
    shell.run_cell("x = 1", store_history=True)
    out = capsys.readouterr().out
    assert "COMPLETED" in out and "[fal]" not in out
