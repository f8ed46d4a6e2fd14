"""The README's install section, run as written in a fresh virtualenv outside the repository.

It downloads the dependencies from the package index, so it runs only when asked:
``FAL_NOTEBOOK_TEST_INSTALL=1 python -m pytest tests/test_install.py``. The commands come from the README itself
(the ``pip install "/path/to/fal_notebook…"`` lines, with the path replaced by this checkout), so the README and
this check cannot drift apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("FAL_NOTEBOOK_TEST_INSTALL") != "1",
                       reason="downloads packages: set FAL_NOTEBOOK_TEST_INSTALL=1 to run"),
]


def readme_installs() -> list[str]:
    """The install section's ``pip install "/path/to/fal_notebook[…]"`` targets, extras included."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Install into your own environment", 1)[1].split("\n## ", 1)[0]
    return re.findall(r'^pip install "/path/to/fal_notebook(\[[\w,]+\])?"', section, re.MULTILINE)


def test_the_readme_install_section_works_in_a_fresh_virtualenv(tmp_path, emulator):
    extras = readme_installs()
    assert extras and "" in extras and "[lab]" in extras and "[video]" in extras
    env_dir = tmp_path / "fal-env"  # outside the repository, like a user's own environment
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    bin_dir = env_dir / "bin"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    warnings = []
    for extra in extras:
        # -v shows the build backend's own output, where setuptools prints its deprecation warnings
        done = subprocess.run([str(bin_dir / "pip"), "install", "-v", "--disable-pip-version-check", f"{ROOT}{extra}"],
                              capture_output=True, text=True, env=clean, cwd=tmp_path, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        warnings += [line for line in (done.stdout + done.stderr).splitlines()
                     if re.search(r"warning", line, re.IGNORECASE) and "file:///" not in line]
    assert warnings == []  # no build or packaging warnings on install

    user = {**clean, "FAL_KEY": "test-id:test-secret", "FAL_NOTEBOOK_ENDPOINT": emulator.url,
            "FAL_NOTEBOOK_HOME": str(tmp_path / "home"), "FAL_NOTEBOOK_OUTPUTS": str(tmp_path / "out"),
            "IPYTHONDIR": str(tmp_path / "ipython")}
    where = subprocess.run([str(bin_dir / "python"), "-c", "import fal_notebook; print(fal_notebook.__file__)"],
                           capture_output=True, text=True, env=user, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(env_dir)) and not where.startswith(str(ROOT))  # the installed copy, not the repo
    check = subprocess.run([str(bin_dir / "fal-notebook"), "check-key"], capture_output=True, text=True,
                           env=user, cwd=tmp_path)
    assert check.returncode == 0 and '"well_formed": true' in check.stdout
    script = ("%load_ext fal_notebook\n"
              "job = %fal nano-banana-pro a red fox --wait\n"
              "print('STATE', job.state.value, len(job.files))\n")
    (tmp_path / "first.ipy").write_text(script, encoding="utf-8")
    run = subprocess.run([str(bin_dir / "ipython"), "--no-banner", str(tmp_path / "first.ipy")],
                         capture_output=True, text=True, env=user, cwd=tmp_path, timeout=300)
    assert "STATE COMPLETED 1" in run.stdout, run.stdout + run.stderr
    lab = subprocess.run([str(bin_dir / "jupyter"), "lab", "--version"], capture_output=True, text=True, env=user)
    assert lab.returncode == 0  # the [lab] extra brought JupyterLab
    av = subprocess.run([str(bin_dir / "python"), "-c", "import av"], env=user)
    assert av.returncode == 0  # the [video] extra brought PyAV
