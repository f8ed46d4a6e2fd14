"""The schema form in real JupyterLab and Debian's headless chromium: Ctrl+Enter in the prompt submits the form
(and does not re-run the cell, JupyterLab's own binding for those keys), fields carry their descriptions as
tooltips, a problem appears next to its field as the user types, and **Submit** works from the keyboard.

Needs ``/usr/bin/chromium`` (skipped without it unless ``FAL_NOTEBOOK_REQUIRE_BROWSER=1``).
"""

from __future__ import annotations

import pytest
from browser_conftest import lab_page, write_notebook
from test_browser import KERNEL_READY_JS

pytestmark = pytest.mark.browser

NOTEBOOK = "form.ipynb"
CELLS = [
    "RUNS = globals().get('RUNS', 0) + 1\n"
    "import ipywidgets as W\n"
    "from fal_notebook.notebook.panel.form import SchemaForm\n"
    "sent = W.Label('nothing sent')\n"
    "def record(model, values, count):\n"
    "    sent.value = f'sent {model} {sorted(values.items())} x{count} after {RUNS} run(s)'\n"
    "form = SchemaForm('flux-dev', on_submit=record)\n"
    "W.VBox([form.widget, sent])",
]
TEXT_JS = """([area, text]) => area.innerText.includes(text)"""


def test_form_keys_tooltips_and_inline_problems_in_jupyterlab(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    write_notebook(nb_dir / NOTEBOOK, CELLS)
    with lab_page(tmp_path, monkeypatch, nb_dir, viewport=(1280, 1100)) as (page, lab):
        drive(page, lab)


def drive(page, lab: dict) -> None:
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?reset&token={lab['token']}")
    page.wait_for_function(KERNEL_READY_JS, timeout=90_000, polling=250)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    out = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".jp-OutputArea")
    area = out.element_handle()
    prompt = out.locator("textarea.fal-prompt")
    prompt.wait_for(timeout=60_000)
    submit = out.get_by_role("button", name="Submit", exact=True)
    assert prompt.get_attribute("title") == "The text prompt to generate an image from."
    assert submit.is_disabled()

    # a problem shows next to its field as the user types, and Submit stays off
    out.get_by_text("More options").click()
    seed_field = out.locator(".fal-form-field", has=page.locator("label", has_text="seed"))
    seed = seed_field.locator("input")
    tip = "The same seed and prompt give the same image every time."
    assert seed_field.locator("label span").get_attribute("title") == tip
    checker = out.locator(".fal-form-field", has=page.locator("span", has_text="enable_safety_checker"))
    assert checker.locator("input[type=checkbox]").get_attribute("title") == "Run the safety checker on the output."
    prompt.click()
    prompt.press_sequentially("a lighthouse at dusk")
    seed.fill("12x")
    page.wait_for_function(TEXT_JS, arg=[area, "must be a whole number"], timeout=30_000, polling=100)
    assert submit.is_disabled()
    seed.fill("7")
    page.wait_for_function("(b) => !b.disabled", arg=submit.element_handle(), timeout=30_000, polling=100)

    # Ctrl+Enter in the prompt submits the form, and JupyterLab does not re-run the cell
    prompt.click()
    page.keyboard.press("Control+Enter")
    expected = "sent fal-ai/flux/dev [('prompt', 'a lighthouse at dusk'), ('seed', 7)] x1 after 1 run(s)"
    page.wait_for_function(TEXT_JS, arg=[area, expected], timeout=30_000, polling=100)
    assert out.locator("textarea.fal-prompt").count() == 1

    # Submit from the keyboard
    prompt.fill("a harbour")
    page.wait_for_function("(b) => !b.disabled", arg=submit.element_handle(), timeout=30_000, polling=100)
    submit.focus()
    page.keyboard.press("Enter")
    expected = "sent fal-ai/flux/dev [('prompt', 'a harbour'), ('seed', 7)] x1 after 1 run(s)"
    page.wait_for_function(TEXT_JS, arg=[area, expected], timeout=30_000, polling=100)
