"""Real JupyterLab in Debian's headless chromium runs ``notebooks/quickstart.ipynb``: each job's pictures load in
its own cell while a later cell is still running, and the saved notebook keeps them in those cells.

One cell is inserted right after the sweep (the last job cell): it prints which jobs are still running as it
starts, then blocks the kernel until the test releases it. The emulator holds every job IN_QUEUE (the fox is let
go first: the next cell waits for it) until that cell runs, so the edit's, the video's and the sweep's pictures can
only arrive while it shows ``[*]``. Needs ``/usr/bin/chromium``; skipped without it unless
``FAL_NOTEBOOK_REQUIRE_BROWSER=1`` (``run.py test``), which turns the skip into a failure. The screenshot of the
top of the quickstart goes to docs/screenshot.png when ``FAL_NOTEBOOK_UPDATE_SCREENSHOT=1`` or when it is missing.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from browser_conftest import emulator_env, lab_page
from test_notebook import MAX_BYTES_PER_IMAGE, QUICKSTART, cell_html, ratio, thumbs

from fal_notebook.emulator import EmulatorServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
MAX_SCREENSHOT_BYTES = 400_000
NOTEBOOK = "quickstart.ipynb"
STARTED = "still running as this cell starts:"
FINISHED = "later cell finished"
# the quickstart's job cells, found by their source; the blocking cell goes right after the sweep
MARKS = {"fox": "fox = %fal", "edit": "%%fal nano-banana-pro/edit", "video": "%fal kling-o3-edit",
         "sweep": "--sweep aspect_ratio=1:1,16:9,9:16"}

KERNEL_READY_JS = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const sess = nb && nb.sessionContext && nb.sessionContext.session;
  return !!(sess && sess.kernel) && sess.kernel.status === 'idle'; }"""
IMAGES_LOADED_JS = """([area, n]) => area.innerText.split('COMPLETED').length - 1 >= n &&
  [...area.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length >= n"""
VIDEO_READY_JS = """(area) => [...area.querySelectorAll('video')].some(v => v.readyState >= 1 && v.videoWidth > 0)"""
CELL_RUNNING_JS = """(prompt) => prompt.innerText.includes('*')"""
CELL_DONE_JS = """(prompt) => /\\[\\d+\\]/.test(prompt.innerText)"""
TEXT_JS = """([area, text]) => area.innerText.includes(text)"""
TO_TOP_JS = """() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 0;
  nb.node.scrollTop = 0; const outer = nb.node.closest('.jp-WindowedPanel-outer') || nb.node;
  outer.scrollTop = 0; }"""
JOB_IDS_JS = """(area) => [...area.querySelectorAll('.fal-card, .fal-tile')].map(c => c.dataset.falJob)"""
TILES_JS = """([area, state, n]) => area.querySelectorAll(`.fal-tile[data-fal-state="${state}"]`).length >= n"""
GROUP_LOADED_JS = """([area, n]) => area.querySelectorAll('.fal-tile[data-fal-state="COMPLETED"]').length >= n &&
  [...area.querySelectorAll('.fal-tile img')].filter(i => i.complete && i.naturalWidth > 0).length >= n"""


def blocking_cell(release: Path) -> str:
    return (f"import os, time, fal_notebook\n"
            f"print({STARTED!r}, *sorted(j.id for j in fal_notebook.jobs() if not j.done))\n"
            f"deadline = time.monotonic() + 180\n"
            f"while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
            f"    time.sleep(0.1)  # a long computation: the cards above keep filling in meanwhile\n"
            f"print({FINISHED!r})")


def prepare_quickstart(dest: Path, release: Path) -> dict[str, int]:
    """Copy the quickstart with the blocking cell after the sweep; the cell index of each job cell and of it."""
    nb = nbformat.read(QUICKSTART, as_version=4)
    sweep = next(i for i, c in enumerate(nb.cells) if MARKS["sweep"] in c.source)
    nb.cells.insert(sweep + 1, nbformat.v4.new_code_cell(blocking_cell(release)))
    marks = {**MARKS, "later": STARTED, "wait": "%fal wait"}
    where = {name: next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and mark in c.source)
             for name, mark in marks.items()}
    where["last"] = len(nb.cells) - 1
    assert where["later"] == sweep + 1 < where["wait"] < where["last"], "wait/history must follow the later cell"
    nbformat.write(nb, dest)
    return where


def save_screenshot(png: bytes, dest: Path) -> int:
    """Quantise to a 256-colour PNG so the committed screenshot stays small."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out.getvalue())
    return len(out.getvalue())


def test_quickstart_pictures_load_in_their_own_cells_while_a_later_cell_runs(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    release = tmp_path / "release"
    where = prepare_quickstart(nb_dir / NOTEBOOK, release)
    with (EmulatorServer(scenario="normal") as server,
          lab_page(tmp_path, monkeypatch, nb_dir, emulator_env(server), (1200, 1400)) as (page, lab)):
        try:
            shot = drive(page, server, lab, release, where)
        finally:
            release.touch()
            server.release()
    check_saved(nb_dir / NOTEBOOK, where)
    size = save_screenshot(shot, tmp_path / "screenshot.png")
    assert size < MAX_SCREENSHOT_BYTES
    if os.environ.get("FAL_NOTEBOOK_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        shutil.copy(tmp_path / "screenshot.png", SCREENSHOT)


def drive(page, server: EmulatorServer, lab: dict, release: Path, where: dict[str, int]) -> bytes:
    """Run all; while the blocking cell is ``[*]`` every job cell must show its loaded pictures. Then release it,
    let the quickstart finish and save from the browser. Returns the screenshot taken meanwhile."""
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?reset&token={lab['token']}")
    page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
    server.hold()  # every job stays IN_QUEUE until the test lets it run
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    cells = page.locator(".jp-Notebook .jp-Cell")
    running_at_start = hold_until_the_later_cell_runs(page, server, cells, where)
    later_prompt = cells.nth(where["later"]).locator(".jp-InputPrompt").element_handle()
    server.release()  # the remaining jobs start only now, while the later cell blocks the kernel
    wait_for_pictures(page, cells, where)
    assert "*" in later_prompt.inner_text(), "the later cell finished before the pictures arrived"
    later_output = cells.nth(where["later"]).locator(".jp-OutputArea")
    assert FINISHED not in later_output.inner_text()
    asked = [i for name in ("edit", "video", "sweep") for i in page.evaluate(JOB_IDS_JS, area(cells, where[name]))]
    assert len(asked) == 5 and set(asked) <= running_at_start, "those jobs were done before the later cell began"
    page.evaluate(TO_TOP_JS)
    cells.nth(0).scroll_into_view_if_needed()
    shot = page.screenshot(type="png")
    release.touch()
    page.wait_for_function(TEXT_JS, arg=[later_output.element_handle(), FINISHED], timeout=30_000, polling=200)
    last_prompt = cells.nth(where["last"]).locator(".jp-InputPrompt").element_handle()
    page.wait_for_function(CELL_DONE_JS, arg=last_prompt, timeout=60_000, polling=200)
    page.wait_for_function(KERNEL_READY_JS, timeout=30_000, polling=200)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")  # resolves once written
    return shot


def area(cells, index: int):
    return cells.nth(index).locator(".jp-OutputArea").element_handle()


def hold_until_the_later_cell_runs(page, server: EmulatorServer, cells, where: dict[str, int]) -> set[str]:
    """Let only the fox run (the next cell waits for it); the later jobs show their queue position until the
    blocking cell runs. Returns the job ids that cell saw still running as it started."""
    page.wait_for_function(TEXT_JS, arg=[area(cells, where["fox"]), "IN_QUEUE"], timeout=90_000, polling=100)
    (fox_request,) = server.jobs  # the only job submitted so far
    server.release(fox_request)
    later = area(cells, where["later"])
    page.wait_for_function(TEXT_JS, arg=[later, STARTED], timeout=60_000, polling=100)
    assert "*" in cells.nth(where["later"]).locator(".jp-InputPrompt").inner_text()
    cells.nth(where["sweep"]).scroll_into_view_if_needed()
    page.wait_for_function(TILES_JS, arg=[area(cells, where["sweep"]), "IN_QUEUE", 3], timeout=30_000,
                           polling=100)  # the sweep is one group output: three queued tiles
    line = next(x for x in later.inner_text().splitlines() if x.startswith(STARTED))
    return set(line[len(STARTED):].split())


def wait_for_pictures(page, cells, where: dict[str, int]) -> None:
    """Each job cell shows its own loaded pictures, and the sweep's tiles say which value each got."""
    for name, count, check in (("fox", 1, IMAGES_LOADED_JS), ("edit", 1, IMAGES_LOADED_JS),
                               ("sweep", 3, GROUP_LOADED_JS)):
        cells.nth(where[name]).scroll_into_view_if_needed()
        page.wait_for_function(check, arg=[area(cells, where[name]), count], timeout=60_000, polling=200)
    cells.nth(where["video"]).scroll_into_view_if_needed()
    page.wait_for_function(VIDEO_READY_JS, arg=area(cells, where["video"]), timeout=60_000, polling=200)
    fox = cells.nth(where["fox"]).locator(".jp-OutputArea")
    assert fox.locator(".fal-card").count() == 1 and "fox" in fox.inner_text()
    sweep = cells.nth(where["sweep"]).locator(".jp-OutputArea")
    assert sweep.locator(".fal-group").count() == 1 and sweep.locator(".fal-tile").count() == 3
    captions = [text.splitlines()[0] for text in sweep.locator(".fal-tile").all_inner_texts()]
    assert captions == [f"aspect_ratio={r}" for r in ("1:1", "16:9", "9:16")]


def check_saved(path: Path, where: dict[str, int]) -> None:
    """The notebook JupyterLab saved keeps each job's light pictures in the cell that asked for it."""
    nb = nbformat.read(path, as_version=4)
    (fox,) = thumbs(cell_html(nb.cells[where["fox"]]))
    assert abs(ratio(fox) - 16 / 9) < 0.02
    assert len(thumbs(cell_html(nb.cells[where["edit"]]))) == 1
    sweep_html = cell_html(nb.cells[where["sweep"]])
    assert len(sweep_html) == 1  # one output for the group, updated in place
    sweep = thumbs(sweep_html)
    assert [round(ratio(s), 2) for s in sweep] == [1.0, round(16 / 9, 2), round(9 / 16, 2)]
    video = "".join(cell_html(nb.cells[where["video"]]))
    assert "<video controls" in video and 'poster="data:image/jpeg;base64,' in video and "COMPLETED" in video
    later = "".join(o.get("text", "") for o in nb.cells[where["later"]].outputs)
    assert STARTED in later and FINISHED in later
    assert [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"] == []
    text = path.read_text()
    shown = len(re.findall(r"<img |poster=", text))
    assert shown >= 7 and path.stat().st_size <= MAX_BYTES_PER_IMAGE * shown
