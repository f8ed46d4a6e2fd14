"""``bench/scale.py`` runs end to end at a tiny size and prints its four tables with ratios (numbers are the
benchmark's business, not the test's: only that every workload ran and every job completed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "scale.py"


@pytest.mark.timeout(300)
def test_scale_bench_runs_at_a_tiny_size(tmp_path):
    env = {**os.environ, "FAL_NOTEBOOK_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(BENCH), "--jobs", "3", "--seconds", "0.3", "--short", "6",
                          "--resume", "3", "--kernel", "3"], capture_output=True, text=True, timeout=280, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "1. 3 concurrent jobs" in text and "2. throughput: 6 short jobs" in text and "3. 3 unfinished" in text
    assert len(re.findall(r"^ratio.*\d+\.\dx", text, re.M)) == 2, text
    # CPU per job, the runtime thread's share of it, and when every job was submitted
    assert re.search(r"^fal_notebook(\s+\S+){2}\s+\d+\.\d \(runtime thread \d+\.\d\)\s+\S+\s+"
                     r"\d+\.\d \(\d+\.\d in the child\)$", text, re.M), text
    assert re.search(r"^fal_notebook\s+3\s+\d+\.\d\d", text, re.M), text  # all 3 resumed jobs completed
    # the kernel workload: a real kernel ran the %fal group (every job COMPLETED, else the child fails) and a
    # trivial cell while it ran; its table has the submit cell, trivial-cell latency, RSS and iopub traffic
    assert "4. a real kernel: %fal … --n 3" in text, text
    assert re.search(r"^submit cell s\s+-\s+\d+\.\d\d", text, re.M), text
    assert re.search(r"^trivial cell p99 ms\s+\d+\s+\d+", text, re.M), text
    assert re.search(r"^iopub KiB / messages\s+-\s+\d+ / [1-9]", text, re.M), text
