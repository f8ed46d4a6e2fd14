"""Real JupyterLab in Debian's headless chromium: cards fill in their own cells while a later cell still runs.

Needs ``/usr/bin/chromium``; skipped without it unless ``FAL_NOTEBOOK_REQUIRE_BROWSER=1`` (``run.py test``),
which turns the skip into a failure. Set ``FAL_NOTEBOOK_UPDATE_SCREENSHOT=1`` to refresh docs/screenshot.png.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from browser_conftest import chromium_or_skip, start_jupyterlab, stop_process_group

from fal_notebook.emulator import EmulatorServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
MAX_SCREENSHOT_BYTES = 400_000

KERNEL_READY_JS = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const sess = nb && nb.sessionContext && nb.sessionContext.session;
  return !!(sess && sess.kernel) && sess.kernel.status === 'idle'; }"""
IMAGES_LOADED_JS = """([area, n]) => area.innerText.split('COMPLETED').length - 1 >= n &&
  [...area.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length >= n"""
CELL_RUNNING_JS = """(prompt) => prompt.innerText.includes('*')"""
VIDEO_READY_JS = """(area) => [...area.querySelectorAll('video')].some(v => v.readyState >= 1 && v.videoWidth > 0)"""


def make_notebook(path: Path, release: Path) -> None:
    cells = [
        "%load_ext fal_notebook",
        "fox = %fal nano-banana-pro a red fox in fresh snow, golden hour --aspect-ratio 16:9",
        "%fal nano-banana-pro a lighthouse on a cliff at dusk --sweep aspect_ratio=1:1,16:9,9:16",
        "from fal_notebook.media import write_mp4\n"
        f"clip = write_mp4({str(release.parent / 'clip.mp4')!r}, 1280, 720, seconds=3, fps=4)\n"
        "%fal kling-o3-edit turn @Video1 into a snowy night --video-url {clip}",
        "import os, time\n# a long computation: the cards above keep updating meanwhile\n"
        f"for _ in range(1200):\n    if os.path.exists({str(release)!r}):\n        break\n    time.sleep(0.1)\n"
        "print('later cell finished')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)


def save_screenshot(png: bytes, dest: Path) -> int:
    """Quantise to a 256-colour PNG so the committed screenshot stays small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out.getvalue())
    return len(out.getvalue())


def test_cards_fill_in_their_own_cells_while_a_later_cell_runs(tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    release = tmp_path / "release"
    make_notebook(nb_dir / "e2e.ipynb", release)
    with EmulatorServer(scenario="normal") as server:
        env = {"FAL_NOTEBOOK_ENDPOINT": server.url, "FAL_KEY": "test-id:test-secret",
               "FAL_NOTEBOOK_HOME": str(tmp_path / "home"), "FAL_NOTEBOOK_OUTPUTS": str(nb_dir / "fal_outputs"),
               "JUPYTER_DATA_DIR": str(tmp_path / "lab" / "data")}
        proc, lab = start_jupyterlab(nb_dir, tmp_path / "lab", env)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                try:
                    page = browser.new_page(viewport={"width": 1200, "height": 1400})
                    shot = drive(page, lab, release, tmp_path)
                finally:
                    browser.close()
        finally:
            release.touch()
            stop_process_group(proc)
    size = save_screenshot(shot, tmp_path / "screenshot.png")
    assert size < MAX_SCREENSHOT_BYTES
    if os.environ.get("FAL_NOTEBOOK_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        shutil.copy(tmp_path / "screenshot.png", SCREENSHOT)


def drive(page, lab: dict, release: Path, tmp_path: Path) -> bytes:
    """Run all cells; while the last one is still running, the job cells must show loaded images."""
    page.goto(f"{lab['base']}/lab/tree/e2e.ipynb?reset&token={lab['token']}")
    page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    cells = page.locator(".jp-Notebook .jp-Cell")
    later_prompt = cells.nth(4).locator(".jp-InputPrompt").element_handle()
    page.wait_for_function(CELL_RUNNING_JS, arg=later_prompt, timeout=60_000, polling=100)
    for index, count in ((1, 1), (2, 3)):
        area = cells.nth(index).locator(".jp-OutputArea").element_handle()
        page.wait_for_function(IMAGES_LOADED_JS, arg=[area, count], timeout=60_000, polling=200)
    video_area = cells.nth(3).locator(".jp-OutputArea").element_handle()
    page.wait_for_function(VIDEO_READY_JS, arg=video_area, timeout=60_000, polling=200)  # the player loads
    assert "*" in later_prompt.inner_text(), "the later cell finished before the images arrived"
    later_output = cells.nth(4).locator(".jp-OutputArea")
    assert "later cell finished" not in later_output.inner_text()
    fox_area = cells.nth(1).locator(".jp-OutputArea")
    assert fox_area.locator(".fal-card").count() == 1 and "fox" in fox_area.inner_text()
    assert cells.nth(2).locator(".jp-OutputArea .fal-card").count() == 3
    shot = page.screenshot(type="png")
    release.touch()
    page.wait_for_function("(cell) => cell.innerText.includes('later cell finished')",
                           arg=later_output.element_handle(), timeout=30_000, polling=200)
    return shot
