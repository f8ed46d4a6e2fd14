"""Memory and throughput of a large upload: ``fal_notebook.client.upload`` vs ``fal_client.upload_file``.

    .venv/bin/python bench/upload_memory.py [--sizes 120,60]

The parent starts an in-process emulator and writes a file of random bytes per size; every measurement runs
in a fresh child process (this script with ``--child``) so neither the emulator's allocations nor the other
client's leftovers are counted. Each child imports its client and builds it first, then uploads once:

- a ``trace`` child reports the peak of ``tracemalloc`` (every Python allocation, all threads) during upload;
- a ``time`` child runs without tracemalloc (it slows allocation-heavy code) and reports wall time, MiB/s and
  peak RSS growth (``ru_maxrss`` after minus RSS before the upload); the table shows the median of
  ``--repeat`` of them, the two clients alternating.

Above 100 MiB both clients go multipart with 10 MiB parts: fal_client reads each part into memory, up to 10 at
once in threads; ours streams each part from disk in 1 MiB chunks, 4 parts at once. At or below 100 MiB
fal_client reads the whole file into one ``bytes``; ours streams it. The parent checks each uploaded file by
downloading it back and comparing its length and SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emulator, fal_client_for, header, ratio, settings_for, table  # noqa: E402

MIB = 1024 * 1024
CLIENTS = ("fal_client", "fal_notebook")


# -- child: one upload, one measurement ----------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _uploader(which: str, url: str, home: Path):
    """A ready-to-call ``upload(path) -> url`` for one client, built (and imported) before measuring."""
    if which == "fal_client":
        client = fal_client_for(url)
        return client.upload_file
    from fal_notebook.client import QueueClient, upload

    client = QueueClient(settings_for(url, home))
    return lambda path: upload(client, path)


def child(which: str, mode: str, url: str, path: Path) -> dict:
    import tracemalloc

    with tempfile.TemporaryDirectory(prefix="fal-bench-") as tmp:
        upload = _uploader(which, url, Path(tmp))
        rss_before = _rss_bytes()
        if mode == "trace":
            tracemalloc.start()
        start = time.perf_counter()
        access_url = upload(path)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if mode == "trace" else None
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {"url": access_url, "seconds": seconds, "traced_peak": peak, "rss_growth": rss_peak - rss_before}


# -- parent --------------------------------------------------------------------------------------------------
def make_file(folder: Path, size_mib: int) -> tuple[Path, str]:
    """A file of ``size_mib`` MiB of random bytes, written 1 MiB at a time; returns it and its SHA-256."""
    path, digest = folder / f"upload-{size_mib}mib.bin", hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def run_child(which: str, mode: str, url: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--child", which, "--mode", mode, "--url", url, "--file", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{which} {mode} child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_upload(url: str, size: int, sha256: str) -> None:
    import httpx

    digest, length = hashlib.sha256(), 0
    with httpx.stream("GET", url, timeout=60) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(MIB):
            digest.update(chunk)
            length += len(chunk)
    if (length, digest.hexdigest()) != (size, sha256):
        raise RuntimeError(f"{url} came back as {length} bytes with another checksum")


def measure(url: str, path: Path, sha256: str, repeat: int) -> dict[str, dict]:
    """Per client: the median of ``repeat`` timed children (clients alternate), and one traced child."""
    timed: dict[str, list[dict]] = {which: [] for which in CLIENTS}
    for _ in range(repeat):
        for which in CLIENTS:
            timed[which].append(run_child(which, "time", url, path))
    results = {}
    for which in CLIENTS:
        traced = run_child(which, "trace", url, path)
        for answer in (*timed[which], traced):
            check_upload(answer["url"], path.stat().st_size, sha256)
        results[which] = {"seconds": statistics.median(a["seconds"] for a in timed[which]),
                          "rss_growth": statistics.median(a["rss_growth"] for a in timed[which]),
                          "traced_peak": traced["traced_peak"]}
    return results


def report(size_mib: int, results: dict[str, dict]) -> None:
    rows = []
    for which in CLIENTS:
        r = results[which]
        rows.append([which, f"{r['traced_peak'] / MIB:.1f}", f"{r['rss_growth'] / MIB:.1f}",
                     f"{r['seconds']:.2f}", f"{size_mib / r['seconds']:.0f}"])
    base, ours = results["fal_client"], results["fal_notebook"]
    rows.append(["ratio fal_client / fal_notebook", ratio(base["traced_peak"], ours["traced_peak"]),
                 ratio(base["rss_growth"], ours["rss_growth"]), ratio(base["seconds"], ours["seconds"]), ""])
    path_kind = "multipart" if size_mib > 100 else "single request"
    print(f"{size_mib} MiB file ({path_kind})")
    print(table(["client", "traced peak MiB", "RSS growth MiB", "seconds", "MiB/s"], rows))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="120,60", help="file sizes in MiB, comma-separated (default 120,60)")
    parser.add_argument("--repeat", type=int, default=3, help="timed uploads per client and size (median)")
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("time", "trace"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.mode, args.url, args.file)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(header("upload_memory: one upload per child process, ratios fal_client / fal_notebook "
                 "(>1x: fal_notebook uses less / is faster)"))
    print(f"seconds and RSS growth: median of {args.repeat} uploads; traced peak: one upload under tracemalloc\n")
    with emulator("fast") as server, tempfile.TemporaryDirectory(prefix="fal-bench-") as tmp:
        for size_mib in sizes:
            path, sha256 = make_file(Path(tmp), size_mib)
            report(size_mib, measure(server.url, path, sha256, args.repeat))
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
