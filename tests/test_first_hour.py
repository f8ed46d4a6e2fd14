"""A new user's first hour, in a real kernel (nbclient) against the emulator: mistakes send nothing and say what
to do, a restart loses nothing from view and pays nothing twice, ``{var}`` works in subcommands."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fal_notebook.emulator import EmulatorServer

CELLS = [
    "%load_ext fal_notebook",
    "%%fal nbp\nprompt: a cat\nimage_size: [oops",                        # 1: YAML that does not parse
    "from PIL import Image\nphoto = Image.new('RGB', (8, 8))",
    "%fal nbp a {undefined_thing} at dawn",                              # 3: an unknown name
    "%fal nbp a portrait like {photo}",                                  # 4: an image inside text
    "j = %fal nbp a held lighthouse",                                    # 5: held by the emulator
    "c = %fal nbp a fox to cancel",
    "%fal cancel {c.id}",                                                # 7: {var} in a subcommand
    "%fal nbp an interrupted fox --wait",                                # 8: held; the test interrupts it
    "%fal wait {j.id} --timeout 60",                                     # 9: only in the second run
]
INTERRUPT_AFTER = 10  # seconds cell 8 blocks (its job is held by the emulator) before nbclient interrupts it


def kernel_env(server: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_TOOLS_MD")}
    env.update(FAL_NOTEBOOK_ENDPOINT=server.url, FAL_KEY="test-id:test-secret",
               FAL_NOTEBOOK_HOME=str(tmp_path / "home"), FAL_NOTEBOOK_OUTPUTS=str(tmp_path / "fal_outputs"),
               JPY_SESSION_NAME=str(tmp_path / "first-hour.ipynb"))
    return env


def execute(cells: list[str], env: dict[str, str], path: Path, on_cell_executed=None):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=True, interrupt_on_timeout=True,
                            timeout_func=lambda cell: INTERRUPT_AFTER if "interrupted fox" in cell.source else 120,
                            resources={"metadata": {"path": str(path)}}, on_cell_executed=on_cell_executed)
    client.execute(env=env)
    return nb


def error_text(cell) -> str:
    """What the cell said went wrong: error outputs, and usage errors (IPython writes those to stderr)."""
    return "\n".join(f"{o['ename']}: {o['evalue']}" if o["output_type"] == "error" else o["text"]
                     for o in cell.outputs
                     if o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr"))


def texts(cell) -> list[str]:
    return [o["data"].get("text/plain", "") for o in cell.outputs if "data" in o]


def submits(server: EmulatorServer) -> list[dict]:
    return [job.arguments for job in server.jobs.values()]


@pytest.mark.slow
def test_first_hour_mistakes_send_nothing_and_a_restart_reattaches(emulator, tmp_path):
    env = kernel_env(emulator, tmp_path)
    emulator.hold(True)
    first = execute(CELLS[:9], env, tmp_path)

    assert "does not parse at line 2, column 18" in error_text(first.cells[1])
    assert "{undefined_thing} is not defined" in error_text(first.cells[3])
    assert "photo" in error_text(first.cells[3])  # the variables that do exist are named
    assert "media field" in error_text(first.cells[4]) and "--image-url {photo}" in error_text(first.cells[4])
    prompts = [a.get("prompt") for a in submits(emulator)]
    assert prompts == ["a held lighthouse", "a fox to cancel", "an interrupted fox"]  # the mistakes sent nothing
    cancelled = [r for r in emulator.requests if r.method == "PUT" and r.path.endswith("/cancel")]
    assert len(cancelled) == 2 and "cancel requested for 1 job:" in texts(first.cells[7])[0]
    # the kernel interrupt during --wait: one line, the job cancelled on fal, and its card grey, not red
    (error,) = [o for o in first.cells[8].outputs if o["output_type"] == "error"]
    assert len(error["traceback"]) == 1
    assert re.fullmatch(r"interrupted: job [0-9a-f]{6}… cancelled on fal", error["traceback"][0])
    (card,) = [o["data"]["text/html"] for o in first.cells[8].outputs if "text/html" in o.get("data", {})]
    assert "CANCELLED" in card and "cancelled on fal" in card and "#b91c1c" not in card
    (held_card,) = [t for t in texts(first.cells[5]) if "fal job" in t]
    held_id = held_card.split()[2]

    # "Restart & Run All": a new kernel runs the same cells; the held job is still unfinished on fal
    def release_after_reattach(cell, cell_index, execute_reply):
        if cell_index == 5:
            emulator.release()

    second = execute(CELLS, env, tmp_path, on_cell_executed=release_after_reattach)
    load_out = "".join(o.get("text", "") for o in second.cells[0].outputs if o["output_type"] == "stream")
    assert f"following 1 unfinished job of this notebook again: {held_id}" in load_out
    assert any(f"fal job {held_id}" in t for t in texts(second.cells[0]))  # %load_ext shows it live
    prompts = [a.get("prompt") for a in submits(emulator)]
    assert prompts.count("a held lighthouse") == 1  # reattached, not paid twice
    assert prompts.count("a fox to cancel") == 2  # the cancelled one is a new request, as it should be
    reattached = texts(second.cells[5])
    assert any("still running: showing it instead of submitting again" in t for t in reattached)
    cards = [t for t in reattached if t.startswith("fal job")]
    assert cards and all(t.startswith(f"fal job {held_id}") for t in cards)
    assert "COMPLETED" in cards[-1]  # the live card was updated in place when the job finished
    assert not error_text(second.cells[9]) and "1 job done: 1 COMPLETED" in texts(second.cells[9])[0]
