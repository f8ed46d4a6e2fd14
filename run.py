#!/usr/bin/env python3
"""The project's two entry points, usable on a fresh machine with nothing but Python >= 3.11.

    python3 run.py lab     JupyterLab on notebooks/quickstart.ipynb (with no fal key: the local emulator)
    python3 run.py test    the whole test suite (installs Debian's chromium for the browser tests)

Each creates `.venv/` beside this file and installs the package into it, once per change of pyproject.toml.
Extra arguments go to JupyterLab or pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
EXIT_NO_TESTS = 5  # pytest's code for "collected nothing": never a success here


def say(message: str) -> None:
    print(f"[run.py] {message}", flush=True)


def ensure_venv(extras: str) -> None:
    """Create the virtualenv and install the package with `extras`, skipping the install when nothing changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py is run by whatever python3 the machine has
        sys.exit(f"fal_notebook needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras.replace(',', '-')}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"installing fal-notebook[{extras}] into {VENV} (first run only)")
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    quiet([*pip, "--upgrade", "pip"])
    quiet([*pip, "-e", f"{ROOT}[{extras}]"])
    stamp.write_text(digest)


def quiet(argv: list[str]) -> None:
    """Run an install step; its output (setuptools' notes on editable installs, the index's notices) is shown
    only when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"[run.py] {' '.join(argv[2:4])} failed (exit {done.returncode}); its output is above")


def ensure_chromium() -> bool:
    """Debian's chromium for the browser tests (never a browser download). True when it is there."""
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        return True
    apt = shutil.which("apt-get")
    if apt is None:
        say("no apt-get here: install Chromium by hand to run the browser tests")
        return False
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo") or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            say("installing chromium needs root: run `sudo apt-get install chromium` to enable browser tests")
            return False
        prefix = ["sudo", "-n"]
    say("installing Debian's chromium for the browser tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, apt, "update", "-qq"], check=True, env=env)
    subprocess.run([*prefix, apt, "install", "-y", "-qq", "chromium"], check=True, env=env)
    return True


def cmd_test(args: list[str]) -> int:
    ensure_venv("test")
    env = dict(os.environ)
    if ensure_chromium():
        env["FAL_NOTEBOOK_REQUIRE_BROWSER"] = "1"  # installed, so a browser test may not silently skip
    env.setdefault("FAL_NOTEBOOK_TEST_INSTALL", "1")  # the README's install section, in a fresh venv (~2 min)
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET", "FAL_NOTEBOOK_ENDPOINT"):
        env.pop(name, None)  # tests never talk to the real service
    code = subprocess.run([str(PY), "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env).returncode
    if code == EXIT_NO_TESTS:
        say("pytest collected no tests: treating that as a failure")
        return 1
    return code


def start_emulator(env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `fal-notebook emulator` on a free port and wait for the line that names its URL."""
    proc = subprocess.Popen(
        [str(BIN / "fal-notebook"), "emulator", "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if "http://" not in line:
        proc.kill()
        sys.exit(f"the fal emulator did not start: {line!r}")
    env["FAL_NOTEBOOK_ENDPOINT"] = line[line.index("http://"):].split()[0]
    env["FAL_KEY"] = "emulator-key:local-only"  # the emulator wants a well-formed key; it is not a fal key
    return proc


def cmd_lab(args: list[str]) -> int:
    ensure_venv("lab")
    env = dict(os.environ)
    find = "from fal_notebook.config import find_key; print(find_key() is not None)"
    has_key = subprocess.run([str(PY), "-c", find], capture_output=True, text=True, env=env).stdout.strip() == "True"
    emulator = None
    if not has_key and not env.get("FAL_NOTEBOOK_ENDPOINT"):
        emulator = start_emulator(env)
        say(f"no FAL_KEY found: using the local fal emulator at {env['FAL_NOTEBOOK_ENDPOINT']}")
        say("images and videos are made on this machine, not by fal.ai; set FAL_KEY=key_id:key_secret for real ones")
    # SIGTERM (e.g. from a supervisor) must still stop JupyterLab and the emulator: make it unwind like Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    argv = [str(PY), "-m", "jupyterlab", str(ROOT / "notebooks" / "quickstart.ipynb")]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    try:
        return subprocess.run([*argv, *args], cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if emulator is not None:
            os.killpg(emulator.pid, signal.SIGTERM)
            emulator.wait(10)


def main(argv: list[str]) -> int:
    commands = {"lab": cmd_lab, "test": cmd_test}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
