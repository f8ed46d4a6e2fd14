"""Latency of submit and of "images on disk": fal_client 1.0.3 ``subscribe()`` vs fal_notebook's ``submit()``.

    .venv/bin/python bench/submit_latency.py [--jobs 20]

One job at a time against an in-process emulator in the ``fast`` scenario (0.05 s queued + 0.15 s running),
alternating between the two clients so background noise hits both alike; one warm-up job each is not counted.

- baseline: ``subscribe(with_logs=True, on_enqueue=..., on_queue_update=...)``; "submit returns" is when
  ``on_enqueue`` fires (right after fal_client's blocking POST), "on disk" is after the result is in hand and
  every image has been streamed to a file with a pooled ``httpx.Client``.
- ours: ``JobManager.submit()`` (validates, stores the row, hands the POST to the runtime thread, returns), then
  ``job.wait()``, which returns once the result is fetched and every image is saved.

Loopback has no round trip, so a second run (``--added-latency-ms``) makes the emulator wait before handling
every request, a stand-in for the network between a notebook and fal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - the bench folder is put on the path first
    MODEL,
    Summary,
    emulator,
    fal_client_for,
    header,
    job_manager,
    ratio,
    table,
)


def fal_client_job(client, downloader, folder: Path, n: int) -> tuple[float, float]:
    """(seconds until submit returned, seconds until the images were on disk) for one subscribe call."""
    enqueued: list[float] = []
    start = time.perf_counter()
    result = client.subscribe(MODEL, {"prompt": f"latency fox {n}"}, with_logs=True,
                              on_enqueue=lambda request_id: enqueued.append(time.perf_counter()),
                              on_queue_update=lambda update: None)
    for index, image in enumerate(result["images"]):
        with downloader.stream("GET", image["url"]) as response, (folder / f"{n}-{index}.png").open("wb") as out:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
    return enqueued[0] - start, time.perf_counter() - start


def fal_notebook_job(manager, n: int) -> tuple[float, float]:
    """(seconds until ``submit`` returned, seconds until the job completed with its files on disk)."""
    start = time.perf_counter()
    job = manager.submit(MODEL, {"prompt": f"latency fox {n}"})
    returned = time.perf_counter() - start
    job.wait(timeout=60)
    done = time.perf_counter() - start
    if job.state.value != "COMPLETED" or not all(path.is_file() for path in job.files) or not job.files:
        raise RuntimeError(f"fal_notebook job {job.id} ended {job.state.value} with files {job.files}")
    return returned, done


def run_pair(jobs: int, added_latency: float) -> tuple[list, list]:
    """``jobs`` measured jobs per client, alternating, on a fresh emulator; returns (fal_client, ours)."""
    import httpx

    theirs: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    with emulator("fast", added_latency=added_latency) as server, job_manager(server.url) as manager, \
            tempfile.TemporaryDirectory(prefix="fal-bench-") as tmp, httpx.Client(timeout=30) as downloader:
        client = fal_client_for(server.url)
        try:
            fal_client_job(client, downloader, Path(tmp), -1)  # warm-up: connections, imports
            fal_notebook_job(manager, -1)
            for n in range(jobs):
                theirs.append(fal_client_job(client, downloader, Path(tmp), n))
                ours.append(fal_notebook_job(manager, n))
        finally:
            client._client.close()
    return theirs, ours


def report(theirs: list, ours: list) -> tuple[list, list]:
    """Table rows (milliseconds) and ratio rows for one run."""
    rows, ratios = [], []
    for column, title in ((0, "submit() returns"), (1, "images on disk")):
        base = Summary.of([t[column] * 1000 for t in theirs])
        mine = Summary.of([t[column] * 1000 for t in ours])
        rows.append([f"{title}: fal_client", f"{base.median:.1f}", f"{base.p95:.1f}"])
        rows.append([f"{title}: fal_notebook", f"{mine.median:.1f}", f"{mine.p95:.1f}"])
        ratios.append([title, ratio(base.median, mine.median), ratio(base.p95, mine.p95)])
    return rows, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="measured jobs per client (default 20)")
    parser.add_argument("--added-latency-ms", default="0,50",
                        help="runs with this much delay before every request, comma-separated (default 0,50)")
    args = parser.parse_args(argv)
    print(header(f"submit_latency: {args.jobs} sequential jobs per client, {MODEL}, emulator scenario 'fast'"))
    for delay_ms in (float(v) for v in args.added_latency_ms.split(",") if v.strip()):
        rows, ratios = report(*run_pair(args.jobs, delay_ms / 1000))
        print(f"added latency per request: {delay_ms:g} ms")
        print(table(["milliseconds", "median", "p95"], rows))
        print()
        print(table(["ratio fal_client / fal_notebook", "median", "p95"], ratios))
        print()
    print("(>1x: fal_notebook is faster. Each job spends 200 ms on the server.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
