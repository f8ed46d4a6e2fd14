"""Terminal IPython in a real pseudo-terminal: ``--wait`` draws one progress line in place, then one card."""

from __future__ import annotations

import os
import re
import sys

import pytest

pexpect = pytest.importorskip("pexpect")

PROMPT = r"In \[\d+\]: "


@pytest.fixture
def ipython(fal_env, tmp_path):
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "40", "PYTHONUNBUFFERED": "1"}
    child = pexpect.spawn(sys.executable, ["-m", "IPython", "--no-banner", "--colors=NoColor", "--simple-prompt",
                                           "--HistoryManager.enabled=False"],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect(PROMPT)
    child.sendline("%load_ext fal_notebook")
    child.expect(PROMPT)
    yield child
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()


def test_wait_shows_one_progress_line_in_place_then_the_final_card_once(ipython, emulator):
    emulator.hold(True)
    ipython.sendline("%fal nbp a lighthouse at dusk --wait")
    # the progress line, drawn after a carriage return + erase-line, while fal holds the job in its queue
    ipython.expect(r"\r\x1b\[2Kfal ([0-9a-f]{6}) · IN_QUEUE · queue position \d+ · [\d.]+ s")
    short = ipython.match.group(1)
    ipython.expect(rf"\r\x1b\[2Kfal {short} · IN_QUEUE")  # redrawn in place (same line), not a new card
    assert "\n" not in ipython.before
    emulator.release()
    ipython.expect(PROMPT)
    transcript = ipython.before
    assert len(re.findall(rf"fal job {short}\w* · fal-ai/nano-banana-pro · COMPLETED", transcript)) == 1
    assert "SUBMITTING" not in transcript and "IN_QUEUE ·" not in transcript.split("\x1b[2K")[-1]
    assert transcript.count("fal job ") == 1  # one card: the final one
    ipython.sendline("x = 1")
    ipython.expect(PROMPT)
    assert "[fal] job" not in ipython.before  # no notice repeating the card at the next prompt
