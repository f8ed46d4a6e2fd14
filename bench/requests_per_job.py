"""Wire requests per job and status-call rate: fal_client 1.0.3 ``subscribe()`` vs fal_notebook's runtime.

    .venv/bin/python bench/requests_per_job.py [--jobs 10] [--queue-seconds 1] [--run-seconds 2]

Each side runs N jobs at once against an in-process emulator (``normal`` scenario, every job spends exactly
queue+run seconds on the server, a pure function of the clock), and the emulator's own request record is
counted by kind. The baseline is ``fal_client.SyncClient.subscribe(with_logs=True, on_queue_update=...)`` in N
threads: it polls status every 0.1 s (protocol §4). Ours is ``JobManager.submit`` + ``wait``, which follows
each job on the SSE status stream and also downloads the image to disk (counted as ``media``); a third run
with ``max_streams=0`` shows the adaptive polling fallback.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - the bench folder is put on the path first
    MODEL,
    Stopwatch,
    count_kinds,
    emulator,
    fal_client_for,
    header,
    job_manager,
    ratio,
    table,
)

QUEUE_KINDS = ("submit", "status", "stream", "result")


def run_fal_client(server, jobs: int) -> float:
    """N concurrent ``subscribe`` calls with logs; returns the wall time for all of them."""
    client = fal_client_for(server.url)

    def one(n: int) -> dict:
        return client.subscribe(MODEL, {"prompt": f"bench fox {n}"}, with_logs=True,
                                on_queue_update=lambda update: None)

    try:
        with Stopwatch() as sw, ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, range(jobs)))
    finally:
        client._client.close()
    assert all(r["images"] for r in results), "fal_client returned no images"
    return sw.seconds


def run_fal_notebook(server, jobs: int, **manager_options) -> float:
    """N ``submit`` calls (each returns at once), then wait for all: images are on disk when this returns."""
    with job_manager(server.url, **manager_options) as manager, Stopwatch() as sw:
        submitted = [manager.submit(MODEL, {"prompt": f"bench fox {n}"}) for n in range(jobs)]
        for job in submitted:
            job.wait(timeout=120)
    failed = [job for job in submitted if job.state.value != "COMPLETED" or not job.files]
    assert not failed, f"{len(failed)} fal_notebook job(s) did not complete: {failed[:1]}"
    return sw.seconds


def measure(server, label: str, runner, jobs: int, **options) -> dict:
    server.clear_requests()
    seconds = runner(server, jobs, **options)
    time.sleep(0.2)  # let the last recorded requests (connection close, late stream end) land
    counts = count_kinds(server.requests)
    return {"label": label, "seconds": seconds, "counts": counts}


def row(result: dict, jobs: int, job_life: float) -> list:
    counts = result["counts"]
    queue = sum(counts[k] for k in QUEUE_KINDS)
    total = sum(counts.values())
    return [result["label"], *(f"{counts[k] / jobs:.1f}" for k in QUEUE_KINDS), f"{counts['media'] / jobs:.1f}",
            f"{queue / jobs:.1f}", f"{total / jobs:.1f}", f"{counts['status'] / jobs / job_life:.2f}",
            f"{result['seconds']:.1f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10, help="jobs in flight at once per client (default 10)")
    parser.add_argument("--queue-seconds", type=float, default=1.0)
    parser.add_argument("--run-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    job_life = args.queue_seconds + args.run_seconds
    print(header(f"requests_per_job: {args.jobs} concurrent jobs of {MODEL}, each {args.queue_seconds:g} s "
                 f"queued + {args.run_seconds:g} s running (emulator scenario 'normal')"))
    with emulator("normal", queue_seconds=args.queue_seconds, run_seconds=args.run_seconds) as server:
        base = measure(server, "fal_client subscribe(with_logs)", run_fal_client, args.jobs)
        ours = measure(server, "fal_notebook submit+wait (SSE)", run_fal_notebook, args.jobs)
        polled = measure(server, "fal_notebook, SSE off (polling)", run_fal_notebook, args.jobs, max_streams=0)
    headers = ["per job", *QUEUE_KINDS, "media", "queue API", "all", "status/s", "wall s"]
    print(table(headers, [row(r, args.jobs, job_life) for r in (base, ours, polled)]))
    print(f"\nstatus/s: status GETs per job per second of the job's {job_life:g} s server-side life.")
    print("media: fal_client's subscribe() does not download; fal_notebook saves every image to disk.\n")

    def queue_calls(r: dict) -> int:
        return sum(r["counts"][k] for k in QUEUE_KINDS)

    def all_calls(r: dict) -> int:
        return sum(r["counts"].values())

    print(table(["ratio fal_client / fal_notebook", "queue API requests", "all requests", "status GETs"], [
        ["SSE (default)", ratio(queue_calls(base), queue_calls(ours)), ratio(all_calls(base), all_calls(ours)),
         ratio(base["counts"]["status"], ours["counts"]["status"])],
        ["polling fallback", ratio(queue_calls(base), queue_calls(polled)),
         ratio(all_calls(base), all_calls(polled)), ratio(base["counts"]["status"], polled["counts"]["status"])],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
