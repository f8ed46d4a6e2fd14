"""Real JupyterLab, kernel restart: what happens to a job's card, and "Restart & Run All" paying nothing twice.

Finding (JupyterLab 4, checked here): an ``update_display_data`` from the new kernel does **not** reach an output
shown by the old kernel, even with the same display id. JupyterLab routes an update through the future of the
execute request that made it (its parent header), and a restart disposes of those futures, so the old card keeps
its last picture. The live card is the one the new kernel shows: in the ``%load_ext`` cell for jobs it resumes, and
in the job's own cell when that cell runs again and reattaches instead of submitting again. Needs chromium; skipped
without it unless ``FAL_NOTEBOOK_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import pytest
from browser_conftest import emulator_env, lab_page, write_notebook

from fal_notebook.emulator import EmulatorServer

pytestmark = pytest.mark.browser

NOTEBOOK = "restart.ipynb"
CELLS = ["%load_ext fal_notebook", "a = %fal nbp a first held lighthouse", "b = %fal nbp a second held lighthouse"]
KERNEL_IDLE_JS = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
  return !!k && k.status === 'idle'; }"""
RESTART_JS = """async () => { const nb = window.jupyterapp.shell.currentWidget;
  await nb.sessionContext.session.kernel.restart(); }"""
RUN_CELL_JS = """async (index) => { const nb = window.jupyterapp.shell.currentWidget; nb.content.activeCellIndex = index;
  await window.jupyterapp.commands.execute('notebook:run-cell'); }"""
TEXT_JS = """([area, text]) => area.innerText.includes(text)"""


def text_of(cells, index: int) -> str:
    return cells.nth(index).locator(".jp-OutputArea").inner_text()


def area(cells, index: int):
    return cells.nth(index).locator(".jp-OutputArea").element_handle()


def by_prompt(server: EmulatorServer, words: str) -> list[str]:
    return [rid for rid, job in server.jobs.items() if job.arguments.get("prompt") == words]


def test_after_a_kernel_restart_the_resumed_and_rerun_cells_show_live_cards_and_nothing_is_paid_twice(
        tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    write_notebook(nb_dir / NOTEBOOK, CELLS)
    with (EmulatorServer(scenario="fast") as server,
          lab_page(tmp_path, monkeypatch, nb_dir, emulator_env(server)) as (page, lab)):
        try:
            drive(page, server, lab)
        finally:
            server.release()


def drive(page, server: EmulatorServer, lab: dict) -> None:
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?reset&token={lab['token']}")
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000, polling=250)
    server.hold()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    cells = page.locator(".jp-Notebook .jp-Cell")
    for index in (1, 2):
        page.wait_for_function(TEXT_JS, arg=[area(cells, index), "IN_QUEUE"], timeout=90_000, polling=100)
    (first,), (second,) = by_prompt(server, "a first held lighthouse"), by_prompt(server, "a second held lighthouse")
    page.wait_for_function(KERNEL_IDLE_JS, timeout=30_000, polling=100)

    page.evaluate(RESTART_JS)  # the kernel restarts; both jobs are still queued on fal
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000, polling=250)
    page.evaluate(RUN_CELL_JS, 0)  # %load_ext: resumes both, and shows their live cards in its own cell
    page.wait_for_function(TEXT_JS, arg=[area(cells, 0), "following 2 unfinished jobs"], timeout=60_000, polling=100)
    assert cells.nth(0).locator(".fal-card").count() == 2
    server.release(first)
    page.wait_for_function(TEXT_JS, arg=[area(cells, 0), "COMPLETED"], timeout=60_000, polling=100)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=30_000, polling=100)
    # the finding: the old kernel's card of the same job (same display id) is not updated across the restart
    assert "IN_QUEUE" in text_of(cells, 1) and "COMPLETED" not in text_of(cells, 1)

    page.evaluate(RUN_CELL_JS, 2)  # running the second job's cell again: reattach, not a second request
    page.wait_for_function(TEXT_JS, arg=[area(cells, 2), "instead of submitting again"], timeout=60_000,
                           polling=100)
    assert by_prompt(server, "a second held lighthouse") == [second]
    server.release(second)
    page.wait_for_function(TEXT_JS, arg=[area(cells, 2), "COMPLETED"], timeout=60_000, polling=100)
    assert cells.nth(2).locator(".fal-card").count() == 1
    assert len(server.jobs) == 2  # two requests in all, across the restart
