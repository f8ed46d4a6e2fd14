"""nbclient runs notebooks/quickstart.ipynb in a real kernel against the emulator; the saved outputs must hold
light thumbnails of the right shape in the cells that asked for them."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from fal_notebook.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
THUMB_RE = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')
MAX_BYTES_PER_IMAGE = 80_000


def kernel_env(server: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_TOOLS_MD")}
    env.update(FAL_NOTEBOOK_ENDPOINT=server.url, FAL_KEY="test-id:test-secret",
               FAL_NOTEBOOK_HOME=str(tmp_path / "home"), FAL_NOTEBOOK_OUTPUTS=str(tmp_path / "fal_outputs"),
               JPY_SESSION_NAME=str(tmp_path / "quickstart.ipynb"))
    return env


def execute(path: Path, env: dict[str, str], timeout: int = 120):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    nbformat.write(nb, path)
    return nb


def cell_html(cell) -> list[str]:
    return [o["data"]["text/html"] for o in cell.get("outputs", []) if "text/html" in o.get("data", {})]


def thumbs(htmls: list[str]) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(base64.b64decode(b64))).size for h in htmls for b64 in THUMB_RE.findall(h)]


def ratio(size: tuple[int, int]) -> float:
    return size[0] / size[1]


def find(nb, text: str):
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


@pytest.fixture
def executed_quickstart(tmp_path):
    copy = tmp_path / "quickstart.ipynb"
    shutil.copy(QUICKSTART, copy)
    with EmulatorServer(scenario="fast") as server:
        nb = execute(copy, kernel_env(server, tmp_path))
    return nb, copy


def test_quickstart_is_saved_without_outputs():
    import nbformat

    nb = nbformat.read(QUICKSTART, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert "%load_ext fal_notebook" in nb.cells[1].source


def test_quickstart_runs_headless_and_keeps_light_thumbnails_in_the_right_cells(executed_quickstart):
    nb, path = executed_quickstart
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"
              or (o["output_type"] == "stream" and o["name"] == "stderr" and "Error" in o["text"])]
    assert errors == []
    loaded = "".join(o.get("text", "") for o in find(nb, "%load_ext").outputs)
    assert "emulator at http://127.0.0.1:" in loaded and "test-secret" not in loaded

    fox_cell = find(nb, "fox = %fal")
    (fox,) = thumbs(cell_html(fox_cell))
    assert abs(ratio(fox) - 16 / 9) < 0.02 and max(fox) <= 384
    assert "<code>aspect_ratio=16:9</code>" in cell_html(fox_cell)[0]  # the option the user chose
    plain = [o["data"]["text/plain"] for o in fox_cell.outputs if "text/plain" in o.get("data", {})]
    assert len(plain) == 1 and plain[0].startswith("fal job ") and "COMPLETED" in plain[0]
    assert "base64" not in plain[0] and "fal_outputs/" in plain[0]
    sweep_html = cell_html(find(nb, "--sweep aspect_ratio=1:1,16:9,9:16"))
    assert len(sweep_html) == 1  # one output for the group, updated in place
    assert re.findall(r'<div style="[^"]*">(aspect_ratio=[^<]*)<', sweep_html[0]) == [
        "aspect_ratio=1:1", "aspect_ratio=16:9", "aspect_ratio=9:16"]
    sweep = thumbs(sweep_html)
    assert [round(ratio(s), 2) for s in sweep] == [1.0, round(16 / 9, 2), round(9 / 16, 2)]
    assert len(thumbs(cell_html(find(nb, "%%fal nano-banana-pro/edit")))) == 1
    video = "".join(cell_html(find(nb, "kling-o3-edit")))
    assert "<video controls" in video and 'poster="data:image/jpeg;base64,' in video
    assert "COMPLETED" in video and "fal_outputs/" in video
    assert re.search(r'<a href="fal_outputs/[^"]+\.mp4"[^>]*><img class="fal-poster" src="data:image/jpeg;base64,',
                     video)  # the still a saved notebook shows once fal's URL is gone, linked to the local file
    history = "".join(cell_html(find(nb, "%fal history fox")))
    assert history.count("red fox in fresh snow") >= 1 and "lighthouse" not in history
    estimate = "".join(o["data"]["text/plain"] for o in find(nb, "%fal estimate").outputs if "data" in o)
    assert "'quantity': 3.0" in estimate and "'total': 0.45" in estimate  # 3 images × the emulator's $0.15
    spend = "".join(cell_html(find(nb, "%fal spend")))
    assert "spend of this notebook&#x27;s jobs" in spend and "fal-ai/nano-banana-pro" in spend
    assert "cost $0.15" in "".join(cell_html(fox_cell))  # the fox's card: the cost once done

    text = path.read_text()
    shown = len(re.findall(r"<img |poster=", text))
    assert shown >= 7
    assert path.stat().st_size <= MAX_BYTES_PER_IMAGE * shown
    assert all(len(b64) <= MAX_BYTES_PER_IMAGE for b64 in re.findall(r"base64,([A-Za-z0-9+/=]+)", text))


ITERATION = ROOT / "notebooks" / "prompt-iteration.ipynb"


def test_prompt_iteration_notebook_runs_top_to_bottom_and_keeps_the_grid(tmp_path):
    import nbformat

    assert all(not c.get("outputs") for c in nbformat.read(ITERATION, as_version=4).cells if c.cell_type == "code")
    copy = tmp_path / "prompt-iteration.ipynb"
    shutil.copy(ITERATION, copy)
    with EmulatorServer(scenario="fast") as server:
        execute(copy, kernel_env(server, tmp_path), timeout=180)
    saved = nbformat.read(copy, as_version=4)  # what the saved file holds, read back from disk
    errors = [o for c in saved.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
    grid = [h for h in cell_html(find(saved, "--sweep num_inference_steps=12,28")) if "fal-grid" in h]
    assert len(grid) == 1  # one output for the whole group
    assert grid[0].count('class="fal-tile"') == 4 and grid[0].count("data:image/jpeg;base64,") == 4
    assert re.findall(r'class="fal-row"[^>]*>([^<]*)<', grid[0]) == ["num_inference_steps=12",
                                                                    "num_inference_steps=28"]
    assert re.findall(r'class="fal-col"[^>]*>([^<]*)<', grid[0]) == ["guidance_scale=2.0", "guidance_scale=5.0"]
    lineage = "".join(cell_html(find(saved, "%fal lineage")))
    assert lineage.count('class="fal-lineage-node"') == 3
    assert (tmp_path / "exported" / "contact-sheet.png").exists()


def test_a_group_cell_run_again_reattaches_despite_its_picked_seeds(tmp_path):
    """The client picks a fresh first seed per group, but the cell's key is its own request: running the cell
    again shows the earlier group instead of paying for a second one."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    path = tmp_path / "group.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("%load_ext fal_notebook"),
                                       new_code_cell("g = %fal flux-dev a fox --n 2 --wait")]), path)
    with EmulatorServer(scenario="fast") as server:
        env = {**kernel_env(server, tmp_path), "FAL_NOTEBOOK_REATTACH": "finished"}
        execute(path, env)
        first = {job.arguments["seed"] for job in server.jobs.values()}
        again = execute(path, env)
        assert len(server.jobs) == 2 and len(first) == 2
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in again.cells[1].outputs)
    assert "instead of submitting again" in text
