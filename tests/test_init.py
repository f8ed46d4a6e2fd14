"""The package face: an explicit ``__all__`` that matches what is exported, and a cheap import."""

from __future__ import annotations

import subprocess
import sys

import fal_notebook


def test_exported_members():
    """Like httpx's test_exported_members: every public name is in __all__ and resolves."""
    members = {name for name in dir(fal_notebook) if not name.startswith("_")}
    assert set(fal_notebook.__all__) - {"__version__"} == set(fal_notebook._EXPORTS)
    assert members >= set(fal_notebook.__all__) - {"__version__"}
    for name in fal_notebook.__all__:
        assert getattr(fal_notebook, name) is not None, name


def test_jobs_is_both_the_module_and_the_listing_function():
    from fal_notebook import jobs

    assert fal_notebook.jobs is jobs and callable(jobs) and jobs.submit is fal_notebook.submit


def test_import_is_cheap():
    code = ("import sys, fal_notebook; heavy = ['httpx', 'PIL', 'IPython', 'ipywidgets', 'starlette', "
            "'sqlite3', 'jsonschema', 'fal_notebook.jobs']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError):
        fal_notebook.no_such_thing  # noqa: B018
