"""nbclient runs notebooks/panel.ipynb (text-to-image → edit → Kling video edit, driven through the panel) in a
real kernel against the emulator: every cell runs, each step feeds the next, and the panel shown last keeps a
static snapshot with the three results."""

from __future__ import annotations

import shutil

import nbformat
from test_notebook import ROOT, execute, find, kernel_env

from fal_notebook.emulator import EmulatorServer

PANEL_NB = ROOT / "notebooks" / "panel.ipynb"


def test_panel_notebook_is_saved_without_outputs():
    nb = nbformat.read(PANEL_NB, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_panel_notebook_chains_three_models_headless(tmp_path):
    copy = tmp_path / "panel.ipynb"
    shutil.copy(PANEL_NB, copy)
    with EmulatorServer(scenario="fast") as server:
        nb = execute(copy, kernel_env(server, tmp_path), timeout=180)
        sent = [(job.endpoint if hasattr(job, "endpoint") else None, job.arguments) for job in server.jobs.values()]
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    (fox, edit, video) = [arguments for _, arguments in sent]
    assert isinstance(fox.pop("seed"), int)  # the client picks a seed for a model that takes one (job.seed)
    assert fox == {"prompt": "a red fox in fresh snow, golden hour", "aspect_ratio": "16:9"}
    assert edit["prompt"] == "the same fox as a watercolour painting" and len(edit["image_urls"]) == 1
    assert edit["image_urls"][0].startswith(server.url)
    assert video["image_urls"][0].startswith(server.url) and video["image_urls"] != edit["image_urls"]
    assert video["video_url"].startswith(server.url)  # the local clip was uploaded first
    offer = "".join(o.get("data", {}).get("text/plain", "") for o in find(nb, "panel.use_as_input(fox)").outputs)
    assert "takes no image" in offer and "nano-banana-pro/edit" in offer
    differs = "".join(o["data"]["text/plain"] for o in find(nb, "panel.compare(fox)").outputs)
    assert "'model'" in differs and "'prompt'" in differs
    last = nb.cells[-1].outputs
    (shown,) = [o for o in last if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    snapshot = shown["data"]["text/html"]
    assert snapshot.count('<img src="data:image/jpeg;base64,') == 3 and "COMPLETED" in snapshot
    # what GitHub and nbviewer build on: nbconvert's HTML shows the snapshot where the live widget was
    from nbconvert import HTMLExporter

    nb.metadata.pop("widgets", None)  # as JupyterLab saves by default: no widget state, only the outputs
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count("fal-panel-snapshot") == 2  # the panel at the top and the one shown again at the end
