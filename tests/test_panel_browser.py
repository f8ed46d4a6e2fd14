"""The panel in real JupyterLab and Debian's headless chromium: type a prompt, pick an enum value, click **Submit**,
see the picture arrive in the gallery, select it, press **Reuse settings** (by keyboard) and see the form filled.

Then the notebook is saved from the browser: the panel's output keeps the static snapshot next to the widget
view, with the result's thumbnail. Needs ``/usr/bin/chromium`` (skipped without it unless
``FAL_NOTEBOOK_REQUIRE_BROWSER=1``). The screenshot goes to docs/panel.png when
``FAL_NOTEBOOK_UPDATE_SCREENSHOT=1`` or when it is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from browser_conftest import emulator_env, lab_page, write_notebook
from test_browser import KERNEL_READY_JS, save_screenshot

from fal_notebook.emulator import EmulatorServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "panel.png"
NOTEBOOK = "panel.ipynb"
PROMPT = "a red fox in the snow, watercolour"
EARLIER = (("a lighthouse on a cliff at dusk", "1:1"), ("a city street at night, rain", "9:16"),
           ("a snowy forest at dawn", "4:3"))
CELLS = ["import fal_notebook\n%load_ext fal_notebook\n"  # three earlier results of this notebook
         f"earlier = [fal_notebook.submit('nano-banana-pro', prompt=p, aspect_ratio=r) for p, r in {EARLIER!r}]\n"
         "fal_notebook.wait(earlier);",
         "panel = fal_notebook.panel('nano-banana-pro')\npanel"]
NEW_RESULT_JS = """(area) => { const tiles = area.querySelectorAll('.fal-tile'), img = tiles.length > 3 &&
  tiles[0].querySelector('img'); return !!img && img.complete && img.naturalWidth > 0 && img.src.startsWith('data:image/jpeg'); }"""
VALUE_JS = """([el, value]) => el.value === value"""
TEXT_JS = """([area, text]) => area.innerText.includes(text)"""


def test_panel_submit_gallery_select_and_reuse_in_jupyterlab(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    write_notebook(nb_dir / NOTEBOOK, CELLS)
    with EmulatorServer(scenario="fast") as server:
        with lab_page(tmp_path, monkeypatch, nb_dir, emulator_env(server), (1280, 1300)) as (page, lab):
            try:
                shot = drive(page, lab)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))  # what the browser showed
                print("failure screenshot:", tmp_path / "failure.png")
                raise
        sent = [job.arguments for job in server.jobs.values()]
    (mine,) = sent[3:]  # after the three earlier jobs: the form's values, and the seed the client picked
    assert {k: v for k, v in mine.items() if k != "seed"} == {"prompt": PROMPT, "aspect_ratio": "16:9"}
    assert isinstance(mine["seed"], int)
    check_saved(nb_dir / NOTEBOOK)
    save_screenshot(shot, tmp_path / "panel.png")
    if os.environ.get("FAL_NOTEBOOK_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        shutil.copy(tmp_path / "panel.png", SCREENSHOT)


def drive(page, lab: dict) -> bytes:
    sent: list[str] = []  # what the page sends the kernel (the view's requests for thumbnails among them)
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(
        payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))))
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?reset&token={lab['token']}")
    page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "return window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    out = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
    prompt = out.locator("textarea.fal-prompt")
    prompt.wait_for(timeout=60_000)
    aspect = out.get_by_label("aspect_ratio", exact=True)  # an optional field: under "More options"
    submit = out.get_by_role("button", name="Submit", exact=True)

    prompt.click()
    prompt.press_sequentially(PROMPT)
    out.get_by_text("More options").click()
    aspect.select_option("16:9")
    page.wait_for_function("(b) => !b.disabled", arg=submit.element_handle(), timeout=30_000, polling=100)
    submit.click()
    area = out.element_handle()
    page.wait_for_function(NEW_RESULT_JS, arg=area, timeout=60_000, polling=200)
    job_row = out.locator(".fal-job").first
    assert "COMPLETED" in job_row.inner_text() and "nano-banana-pro" in job_row.inner_text()
    # the earlier results' thumbnails came with the panel, before its view existed: the view never asked
    earlier = [out.locator(".fal-tile").nth(i).get_attribute("data-id") for i in (1, 2, 3)]
    assert all(out.locator(".fal-tile").nth(i).locator("img[src^='data:image/jpeg']").count() == 1 for i in (1, 2, 3))
    assert [f for f in sent if '"thumbs"' in f and any(i in f for i in earlier)] == []
    assert any('"thumbs"' in f for f in sent)  # (the new result's was asked for: the frames are seen)

    # change the form, then bring the result's settings back by keyboard alone
    prompt.fill("something else")
    aspect.select_option("1:1")
    assert out.locator(".fal-tile").count() == 4  # the earlier jobs, then this one first
    tile = out.locator(".fal-tile").first
    tile.focus()
    page.keyboard.press("Enter")  # a tile is a button: Enter selects it
    reuse = out.get_by_role("button", name="Reuse settings", exact=True)
    reuse.wait_for(timeout=30_000)
    assert tile.get_attribute("aria-pressed") == "true"
    for label in ("Use as input", "Compare"):
        assert out.get_by_role("button", name=label, exact=True).count() == 1
    reuse.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(VALUE_JS, arg=[prompt.element_handle(), PROMPT], timeout=30_000, polling=100)
    page.wait_for_function(VALUE_JS, arg=[aspect.element_handle(), "16:9"], timeout=30_000, polling=100)
    page.wait_for_function(TEXT_JS, arg=[area, "are in the form"], timeout=30_000, polling=100)
    out.locator(".fal-detail img.fal-preview").wait_for(timeout=30_000)
    page.mouse.move(0, 0)
    shot = out.screenshot(type="png")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    return shot


def check_saved(path: Path) -> None:
    """Opened without a kernel, the panel's output shows the snapshot (escaped, with the thumbnail)."""
    nb = nbformat.read(path, as_version=4)
    (output,) = [o for o in nb.cells[1].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    html = output["data"]["text/html"]
    assert "fal-panel-snapshot" in html
