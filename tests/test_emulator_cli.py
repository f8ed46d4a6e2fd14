"""``python -m fal_notebook.emulator`` prints one line with its URL, serves, and stops on a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest


@pytest.fixture
def emulator_process():
    process = subprocess.Popen(
        [sys.executable, "-m", "fal_notebook.emulator", "--port", "0", "--scenario", "normal"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_prints_its_url_and_serves_until_sigterm(emulator_process):
    line = emulator_process.stdout.readline()  # blocks until the server announced itself
    match = re.fullmatch(r"fal emulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
    assert match, line
    url = match.group(1)
    knobs = httpx.get(f"{url}/_emulator/config", timeout=10).json()
    assert knobs["scenario"] == "normal"
    reply = httpx.post(f"{url}/fal-ai/nano-banana-pro", json={"prompt": "x"},
                       headers={"Authorization": "Key a:b"}, timeout=10)
    assert reply.status_code == 200 and reply.json()["status_url"].startswith(url)
    emulator_process.send_signal(signal.SIGTERM)
    emulator_process.wait(timeout=15)
    assert emulator_process.stdout.read() == ""  # exactly one line


def test_sigint_exits_cleanly(emulator_process):
    assert emulator_process.stdout.readline().startswith("fal emulator listening on ")
    emulator_process.send_signal(signal.SIGINT)
    code = emulator_process.wait(timeout=15)
    assert code == 0, emulator_process.stderr.read()[-4000:]  # what it said, should this ever fail


def test_port_in_use_is_a_clear_error(emulator):
    port = emulator.port
    done = subprocess.run([sys.executable, "-m", "fal_notebook.emulator", "--port", str(port)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot listen" in done.stderr and done.stdout == ""
