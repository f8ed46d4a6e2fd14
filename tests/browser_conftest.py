"""Fixtures for the presentation tests: a bare IPython shell, recorded display messages, JupyterLab + chromium.

Imported by name from the test modules that need them (``from browser_conftest import ...``); tests/conftest.py
belongs to the emulator fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

CHROME_BIN = shutil.which("chromium") or "/usr/bin/chromium"
VENV_PYTHON = Path(sys.executable)


@pytest.fixture
def ip():
    """A fresh ``InteractiveShell`` singleton (no history database), torn down after the test."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    InteractiveShell.clear_instance()
    cfg = Config()
    cfg.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=cfg)
    try:
        yield shell
    finally:
        if "fal_notebook" in shell.extension_manager.loaded:
            shell.extension_manager.unload_extension("fal_notebook")
        InteractiveShell.clear_instance()


@pytest.fixture
def published(ip):
    """Every display message the shell publishes: dicts with ``data``, ``transient``, ``update``."""
    from IPython.core.displaypub import CapturingDisplayPublisher

    saved, ip.display_pub = ip.display_pub, CapturingDisplayPublisher()
    try:
        yield ip.display_pub.outputs
    finally:
        ip.display_pub = saved


@pytest.fixture
def shell(ip, published, fal_env, tmp_path, monkeypatch, capsys):
    """The bare shell with ``%load_ext fal_notebook`` done, in a temp folder, against the emulator; no budget
    set, no cards left over from another test, and the default job manager closed afterwards."""
    from fal_notebook import jobs
    from fal_notebook.notebook import live

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAL_NOTEBOOK_MAX_COST", raising=False)
    ip.extension_manager.load_extension("fal_notebook")
    capsys.readouterr()
    live._CARDS.clear()
    yield ip
    live._CARDS.clear()
    jobs.reset_for_tests()  # stop following: the next test has another store


def run_cell(shell, source: str):
    """Run a cell as a user would and raise whatever it raised (before or during execution)."""
    result = shell.run_cell(source, store_history=True)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result


def html_of(outputs: list[dict]) -> str:
    return "\n".join(o["data"].get("text/html", "") for o in outputs)


# --- real browser (jupyter-notes §7) ------------------------------------------------------------------------


def chromium_or_skip() -> str:
    """The chromium binary; a clear failure when browsers are required (run.py test), else a skip."""
    if Path(CHROME_BIN).exists():
        return CHROME_BIN
    message = f"Debian's chromium is not installed ({CHROME_BIN} missing): apt-get install chromium"
    if os.environ.get("FAL_NOTEBOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (FAL_NOTEBOOK_REQUIRE_BROWSER=1)")
    pytest.skip(message)


def wait_until_listening(proc: subprocess.Popen, runtime_dir: Path, limit: float = 120) -> int:
    """The port the server chose (``port=0``: no port picked here that another process could take first), read
    from the ``jpserver-<pid>.json`` it writes as it starts; fails at once if the server exits."""
    info_file = runtime_dir / f"jpserver-{proc.pid}.json"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode} before it listened")
        try:
            return int(json.loads(info_file.read_text())["port"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)  # polling a server that is starting: there is no event to wait on
    raise TimeoutError(f"JupyterLab wrote no {info_file.name} within {limit} s")


def wait_until_up(url: str, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.2)  # polling a server that is starting: there is no event to wait on
    raise TimeoutError(url)


def start_jupyterlab(nb_dir: Path, home: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, dict]:
    """A throw-away JupyterLab on 127.0.0.1 serving ``nb_dir``; its kernels run this venv's python."""
    cfg = home / "settings" / "@jupyterlab" / "apputils-extension"
    cfg.mkdir(parents=True)
    (cfg / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    token = secrets.token_hex(16)
    env = {**os.environ, **extra_env, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "IPYTHONDIR": str(home / "ipython"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "PATH": f"{VENV_PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [str(VENV_PYTHON), "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb_dir}",
            "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--KernelSpecManager.ensure_native_kernel=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    log = open(home / "lab.log", "w")  # noqa: SIM115 - closed by stop_jupyterlab's caller via the process
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port = wait_until_listening(proc, home / "runtime")  # the file may precede the socket: then ask it
        wait_until_up(f"http://127.0.0.1:{port}/api/status?token={token}")
    except (RuntimeError, TimeoutError):
        stop_process_group(proc)
        raise
    info = {"base": f"http://127.0.0.1:{port}", "token": token, "dir": nb_dir, "log": home / "lab.log"}
    return proc, info


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM the server's own process group (it was started in a new session), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def write_notebook(path: Path, cells: Sequence[str]) -> None:
    """A notebook of these code cells with the python3 kernelspec."""
    import nbformat

    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata=kernel),
                   path)


def emulator_env(server: Any) -> dict[str, str]:
    """What a JupyterLab's kernels need to reach ``server`` (outputs next to the notebook)."""
    return {"FAL_NOTEBOOK_ENDPOINT": server.url, "FAL_KEY": "test-id:test-secret",
            "FAL_NOTEBOOK_OUTPUTS": "fal_outputs"}


@contextlib.contextmanager
def lab_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nb_dir: Path, env: dict[str, str] | None = None,
             viewport: tuple[int, int] = (1200, 1000)) -> Iterator[tuple[Any, dict]]:
    """A throw-away JupyterLab on ``nb_dir`` and one page of Debian's headless chromium: ``(page, lab)``.

    Everything a user would have under ~ (lab's npm probe, chromium's crash files, the job store) lives under
    ``tmp_path``; chromium and the server's process group are stopped on the way out."""
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    for name, sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        monkeypatch.setenv(name, str(tmp_path / "user-home" / sub))
    env = {"FAL_NOTEBOOK_HOME": str(tmp_path / "home"), "JUPYTER_DATA_DIR": str(tmp_path / "lab" / "data"),
           **(env or {})}
    proc, lab = start_jupyterlab(nb_dir, tmp_path / "lab", env)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            try:
                yield browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}), lab
            finally:
                browser.close()
    finally:
        stop_process_group(proc)
