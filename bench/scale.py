"""Scale: fal_notebook's runtime vs ``fal_client``'s async client, side by side against one emulator.

    .venv/bin/python bench/scale.py            # ~3-4 min on 2 cores
    .venv/bin/python bench/scale.py --jobs 4 --seconds 0.5 --short 8 --resume 4   # the smoke test's size

The emulator runs in this process; every client runs in a child process of its own, so its CPU time and peak
RSS are its own (``getrusage`` in the child). Request counts and latencies come from the emulator's record:
"completion → result" is the time between the moment a job completed on the server and the server seeing its
result GET, so no clock is shared between processes. Three workloads:

1. **concurrent** — N jobs (default 200) that each run S seconds (default 10) on the server, submitted at once.
   Baseline: ``asyncio.gather`` of ``fal_client.AsyncClient.subscribe`` (both modes, ``with_logs`` off and on;
   the better wall time is kept). Ours: ``JobManager.submit`` ×N, then wait (it also downloads each image).
2. **throughput** — M short jobs (default 1,000, 0.05 s queued + 0.15 s running): wall time, jobs/s, CPU per
   job, and "all submitted": from the first submit POST to the last one in the emulator's record (for
   fal_notebook also measured in the child: first ``submit()`` call → the last request id in hand).
3. **resume** — M jobs submitted and left unfinished by one process, then resumed by a new one once the
   server finishes them (fal_client has no resume): time until every job had its first status, lag from the
   server's last completion to the last result, CPU.
4. **kernel** — a real IPython kernel (``jupyter_client``) runs ``%load_ext fal_notebook`` then
   ``g = %fal fal-ai/fast-sdxl a dot --n K --yes`` (K jobs of S seconds, as in 1): the submit cell's time
   (execute_request → execute_reply), a trivial cell (``1+1``) run back to back while the jobs are in flight
   (p50/p99; the same kernel with no jobs is the baseline: fal_client has no notebook equivalent), the kernel's
   peak RSS (``VmHWM``) and CPU, and the iopub traffic the group makes until every job has ended (raw bytes
   of the ZeroMQ frames and message count; the trivial cells' own replies are left out).

Ratios are baseline / ours (> 1x: fal_notebook does better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KEY, count_kinds, emulator, header, kind_of, percentile, ratio, table  # noqa: E402

MODEL = "fal-ai/fast-sdxl"  # served by the emulator with a tiny image size: media is not what is measured
SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}
QUEUE_KINDS = ("submit", "status", "stream", "result")
# the fast scenario's own timing: knobs set by an earlier section (10 s jobs) would otherwise stay in force
SHORT_JOBS = {"scenario": "fast", "queue_seconds": None, "run_seconds": None, "log_lines": 0}


# -- children: one client each, measuring itself ---------------------------------------------------------------
def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def child_fal_client(url: str, jobs: int, with_logs: bool) -> dict[str, Any]:
    import fal_client
    import fal_client.client as fal_module

    fal_module.QUEUE_URL_FORMAT = fal_module.RUN_URL_FORMAT = url + "/"
    fal_module.REST_URL = fal_module.CDN_URL = url

    async def main() -> list:
        client = fal_client.AsyncClient(key=KEY)
        return await asyncio.gather(*(client.subscribe(MODEL, SMALL, with_logs=with_logs) for _ in range(jobs)))

    start, before = time.perf_counter(), _usage()
    results = asyncio.run(main())
    after = _usage()
    assert all(r["images"] for r in results)
    return {"wall": time.perf_counter() - start, "cpu": after["cpu"] - before["cpu"], "rss_mb": after["rss_mb"]}


def _manager(url: str, home: Path, **options: Any) -> Any:
    from fal_notebook.config import load_settings
    from fal_notebook.runtime import JobManager
    from fal_notebook.store import JobStore

    env = {"FAL_NOTEBOOK_ENDPOINT": url, "FAL_KEY": KEY, "FAL_NOTEBOOK_HOME": str(home / "home"),
           "FAL_NOTEBOOK_OUTPUTS": str(home / "outputs")}
    settings = load_settings(env)
    return JobManager(settings, store=JobStore(settings.store_path), origin="bench", legacy_file=False, **options)


def _thread_cpu(name: str) -> float:
    """CPU seconds of this process's thread called ``name`` so far (Linux ``/proc``; 0 when not found)."""
    import threading

    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                return 0.0
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def child_notebook(url: str, jobs: int, home: str, mode: str) -> dict[str, Any]:
    from fal_notebook.runtime import as_completed

    start, before = time.perf_counter(), _usage()
    if mode == "leave":  # submit, wait until fal accepted every job, then stop following (leases released)
        manager = _manager(url, Path(home), auto_resume=False).start()
        submitted = [manager.submit(MODEL, SMALL, validate=False) for _ in range(jobs)]
        while any(job.request_id is None for job in submitted):
            time.sleep(0.05)
        manager.close()
        return {"wall": time.perf_counter() - start}
    began = time.time()
    if mode == "resume":
        manager = _manager(url, Path(home), auto_resume=False).start()
        began = time.time()
        submitted = manager.resume()
    else:
        manager = _manager(url, Path(home), auto_resume=False).start()
        began = time.time()
        submitted = [manager.submit(MODEL, SMALL, validate=False) for _ in range(jobs)]
    done = list(as_completed(submitted, timeout=600))
    wall = time.perf_counter() - start
    runtime_cpu = _thread_cpu("fal-notebook-loop")  # the runtime's own thread (the "runtime CPU")
    manager.close()
    after = _usage()
    assert len(done) == len(submitted) and all(job.state.value == "COMPLETED" for job in done), "jobs failed"
    in_hand = max((job.submitted_at.timestamp() for job in done if job.submitted_at), default=began) - began
    return {"wall": wall, "cpu": after["cpu"] - before["cpu"], "rss_mb": after["rss_mb"], "jobs": len(done),
            "began": began, "all_submitted": in_hand, "runtime_cpu": runtime_cpu}


# -- the kernel workload: a client driving a real kernel, in a child of its own ---------------------------------
KERNEL_TARGETS = {"submit": 0.5, "p99": 0.050, "rss": 150}
PAUSE = 0.02  # between trivial cells while the jobs run: sampled all along, without saturating the kernel
_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "EXPIRED", "NOT_RECEIVED")


class KernelDriver:
    """Runs cells in a kernel and reads both channels itself, so every iopub frame is counted as it arrives
    (jupyter_client's own ``get_iopub_msg`` hides the raw size)."""

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", startup_timeout=120, env=env, cwd=cwd)
        self.counting: set[str] = set()  # parent msg ids whose every iopub message counts
        self.bytes = self.messages = 0
        self.group_text = ""
        self.streamed: list[str] = []  # stdout text of the cells (the probe's answer)
        self.idle: set[str] = set()  # cells whose every output has arrived (iopub's "idle" for them)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def _read_iopub(self) -> None:
        channel = self.kc.iopub_channel
        frames = channel.socket.recv_multipart(copy=True)
        _ids, raw = channel.session.feed_identities(frames)
        msg = channel.session.deserialize(raw)
        kind, parent = msg["header"]["msg_type"], msg["parent_header"].get("msg_id")
        if parent in self.counting or kind in ("display_data", "update_display_data", "stream", "error"):
            self.bytes += sum(len(f) for f in frames)
            self.messages += 1
        if kind == "status" and msg["content"].get("execution_state") == "idle":
            self.idle.add(parent)
        if kind == "stream":
            self.streamed.append(msg["content"].get("text", ""))
        if kind in ("display_data", "update_display_data", "execute_result"):
            text = msg["content"].get("data", {}).get("text/plain", "")
            if text.startswith("fal group"):
                self.group_text = text.splitlines()[0]
        if kind == "error":
            raise SystemExit(f"kernel error: {msg['content'].get('ename')}: {msg['content'].get('evalue')}")

    def run(self, code: str, *, count: bool = False, timeout: float = 300) -> tuple[float, dict]:
        """Execute ``code``; seconds from the request to its reply, and the reply's content. Returns once the
        cell's outputs have arrived too (they come on iopub, which may lag the reply)."""
        import zmq

        shell, iopub = self.kc.shell_channel.socket, self.kc.iopub_channel.socket
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(iopub, zmq.POLLIN)
        start = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=False)
        if count:
            self.counting.add(msg_id)
        deadline = start + timeout
        took, content = None, {}
        while took is None or msg_id not in self.idle:
            ready = dict(poller.poll(max(1, int((deadline - time.perf_counter()) * 1000))))
            if iopub in ready:
                self._read_iopub()
            if shell in ready:
                reply = self.kc.shell_channel.get_msg(timeout=0)
                if reply["parent_header"].get("msg_id") == msg_id:
                    took, content = time.perf_counter() - start, reply["content"]
                    if content["status"] != "ok":
                        raise SystemExit(f"cell failed: {code[:80]!r}: {content.get('evalue')}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"cell timed out: {code[:80]!r}")
        self.idle.discard(msg_id)
        return took, content

    def drain(self, seconds: float) -> None:
        """Read iopub for ``seconds`` (late updates of a finished group)."""
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            if self.kc.iopub_channel.socket.poll(int(left * 1000)):
                self._read_iopub()


def _group_ended(text: str, jobs: int) -> bool:
    """True when the group's summary line counts ``jobs`` jobs, every one in a final state."""
    import re

    counts = {state: int(n) for n, state in re.findall(r"(\d+) ([A-Z_]+)", text.partition(":")[2])}
    return sum(counts.values()) == jobs and all(state in _ENDED for state in counts)


KERNEL_PROBE = """
import json as _json, os as _os, resource as _resource, threading as _threading
def _fal_probe():
    status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
    usage = _resource.getrusage(_resource.RUSAGE_SELF)
    tick = _os.sysconf('SC_CLK_TCK')
    names = {t.native_id: t.name for t in _threading.enumerate()}
    threads = {}
    for tid in _os.listdir('/proc/self/task'):
        try:
            fields = open(f'/proc/self/task/{tid}/stat').read().rpartition(')')[2].split()
        except OSError:
            continue
        name = names.get(int(tid), 'other')
        name = name if name in ('MainThread', 'fal-notebook-loop') else 'other'
        threads[name] = threads.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return {'hwm_mb': int(status['VmHWM'].split()[0]) / 1024, 'rss_mb': int(status['VmRSS'].split()[0]) / 1024,
            'cpu': usage.ru_utime + usage.ru_stime, 'threads': threads}
print('PROBE' + _json.dumps(_fal_probe()))
"""


def _probe(driver: KernelDriver) -> dict[str, float]:
    """The kernel's own peak RSS (``VmHWM``), RSS and CPU seconds, printed by a cell."""
    driver.streamed.clear()
    driver.run(KERNEL_PROBE)
    found = [json.loads(line[5:]) for line in "".join(driver.streamed).splitlines() if line.startswith("PROBE")]
    if not found:
        raise SystemExit("the kernel probe printed nothing")
    return found[-1]


def child_kernel(url: str, jobs: int, seconds: float, home: str, trivial: int, pixels: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "JPY_"))}
    env.update(FAL_NOTEBOOK_ENDPOINT=url, FAL_KEY=KEY, FAL_NOTEBOOK_HOME=str(Path(home) / "home"),
               FAL_NOTEBOOK_OUTPUTS=str(Path(home) / "outputs"), JPY_SESSION_NAME=str(Path(home) / "scale.ipynb"))
    size = json.dumps({"width": pixels, "height": pixels})
    start = time.perf_counter()
    driver = KernelDriver(env, home)
    try:
        load, _ = driver.run("%load_ext fal_notebook")
        first, _ = driver.run(f"%fal estimate {MODEL} a dot --image-size '{size}'")  # the first %fal's imports
        idle = [driver.run("1+1")[0] for _ in range(trivial)]
        before = _probe(driver)
        submit, _ = driver.run(f"g = %fal {MODEL} a dot --image-size '{size}' --format png --n {jobs} --yes",
                               count=True)
        busy: list[float] = []
        deadline = time.perf_counter() + seconds + 300
        while not _group_ended(driver.group_text, jobs) or len(busy) < trivial:
            busy.append(driver.run("1+1")[0])
            driver.drain(PAUSE)
            if time.perf_counter() > deadline:
                raise SystemExit(f"the group did not end: {driver.group_text!r}")
        ended_bytes, ended_messages = driver.bytes, driver.messages
        driver.run("assert all(j.state.value == 'COMPLETED' for j in g), "
                                  "[j.state.value for j in g if j.state.value != 'COMPLETED']")
        after = _probe(driver)
    finally:
        driver.close()
    return {"load": load, "first": first, "submit": submit, "idle": idle, "busy": busy,
            "rss_idle": before["hwm_mb"], "rss_peak": after["hwm_mb"], "cpu": after["cpu"] - before["cpu"],
            "threads": {k: v - before["threads"].get(k, 0.0) for k, v in after["threads"].items()},
            "iopub_bytes": ended_bytes, "iopub_messages": ended_messages, "wall": time.perf_counter() - start}


EMULATOR_CPU = [0.0]  # this process's CPU seconds while children ran: the emulator's share of each section


def run_child(*args: str) -> dict[str, Any]:
    before = time.process_time()
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False,
                         timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{out.stderr[-3000:]}")
    EMULATOR_CPU[0] += time.process_time() - before
    return json.loads(out.stdout.strip().splitlines()[-1])


def emulator_line() -> str:
    """The emulator's CPU over the section just printed (then reset): small next to the clients' own, or the
    section measured the emulator."""
    seconds, EMULATOR_CPU[0] = EMULATOR_CPU[0], 0.0
    return f"emulator CPU (this process, while the clients ran): {seconds:.1f} s"


# -- the parent: one emulator, the record read after each run ------------------------------------------------
def server_view(server: Any, since: float) -> dict[str, Any]:
    """Calls per job by kind, completion → result GET latencies, first-status times, from the record."""
    requests = [r for r in server.requests if r.at >= since]
    jobs = {job.request_id: job for job in server.jobs.values() if job.submitted_wall.timestamp() >= since}
    result_at: dict[str, float] = {}
    first_look: dict[str, float] = {}
    for r in requests:
        parts = [p for p in r.path.split("/") if p]
        if "requests" not in parts:
            continue
        rid = parts[parts.index("requests") + 1]
        tail = parts[parts.index("requests") + 2:]
        if not tail:
            result_at.setdefault(rid, r.at)
        elif tail[0] == "status":
            first_look.setdefault(rid, r.at)
    latencies, ends = [], []
    for rid, job in jobs.items():
        end_mono, _ = job.end()
        end_wall = job.submitted_wall.timestamp() + (end_mono - job.submitted)
        ends.append(end_wall)
        if rid in result_at:
            latencies.append(max(0.0, result_at[rid] - end_wall))
    kinds = count_kinds(requests)
    count = max(1, len(jobs))
    posts = [r.at for r in requests if kind_of(r.method, r.path) == "submit"]
    return {"jobs": len(jobs), "per_job": {k: kinds.get(k, 0) / count for k in QUEUE_KINDS},
            "queue_calls": sum(kinds.get(k, 0) for k in QUEUE_KINDS) / count, "latencies": latencies,
            "last_end": max(ends, default=0.0), "last_result": max(result_at.values(), default=0.0),
            "first_looks": sorted(first_look.values()),
            "submit_span": max(posts) - min(posts) if posts else float("nan")}


def ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    value = statistics.median(values) if q == 0.5 else percentile(values, q)
    return f"{value * 1000:.0f}"


def concurrent(server: Any, jobs: int, seconds: float) -> list[list[str]]:
    server.configure(scenario="normal", queue_seconds=0.0, run_seconds=seconds, log_lines=2)
    rows, runs = [], {}
    for name, args in (("fal_client async (logs off)", ("fal_client", str(jobs), "0")),
                       ("fal_client async (logs on)", ("fal_client", str(jobs), "1")),
                       ("fal_notebook", ("notebook", str(jobs), "", "run"))):
        server.clear_requests()
        since = time.time()
        with tempfile.TemporaryDirectory(prefix="fal-scale-") as home:
            if name == "fal_notebook":
                args = ("notebook", str(jobs), home, "run")
            measured = run_child(*args)
        runs[name] = {**measured, **server_view(server, since)}
    base_name = min((n for n in runs if n.startswith("fal_client")), key=lambda n: runs[n]["wall"])
    base, ours = runs[base_name], runs["fal_notebook"]
    for name, run in runs.items():
        rows.append([name, f"{run['queue_calls']:.2f}", ms(run["latencies"], 0.5), ms(run["latencies"], 0.95),
                     f"{run['cpu']:.1f}", f"{run['rss_mb']:.0f}", f"{run['wall']:.1f}"])
    rows.append([f"ratio {base_name.split('(')[1][:-1]} / ours", ratio(base["queue_calls"], ours["queue_calls"]),
                 ratio(statistics.median(base["latencies"]), statistics.median(ours["latencies"])),
                 ratio(percentile(base["latencies"], 0.95), percentile(ours["latencies"], 0.95)),
                 ratio(base["cpu"], ours["cpu"]), ratio(base["rss_mb"], ours["rss_mb"]),
                 ratio(base["wall"], ours["wall"])])
    return rows


def throughput(server: Any, jobs: int) -> list[list[str]]:
    server.configure(**SHORT_JOBS)
    runs = {}
    for name in ("fal_client async", "fal_notebook"):
        server.clear_requests()
        since = time.time()
        with tempfile.TemporaryDirectory(prefix="fal-scale-") as home:
            args = ("fal_client", str(jobs), "0") if name != "fal_notebook" else ("notebook", str(jobs), home, "run")
            runs[name] = {**run_child(*args), **server_view(server, since)}
    rows = [[name, f"{run['wall']:.1f}", f"{jobs / run['wall']:.0f}", f"{run['cpu'] / jobs * 1000:.1f}",
             f"{run['queue_calls']:.2f}", f"{run['submit_span']:.1f}"] for name, run in runs.items()]
    base, ours = runs["fal_client async"], runs["fal_notebook"]
    rows[-1][-1] += f" ({ours['all_submitted']:.1f} in the child)"
    rows[-1][3] += f" (runtime thread {ours['runtime_cpu'] / jobs * 1000:.1f})"
    rows.append(["ratio", ratio(base["wall"], ours["wall"]), ratio(jobs / ours["wall"], jobs / base["wall"]),
                 ratio(base["cpu"], ours["cpu"]), ratio(base["queue_calls"], ours["queue_calls"]),
                 ratio(base["submit_span"], ours["submit_span"])])
    return rows


def resume(server: Any, jobs: int) -> list[list[str]]:
    server.configure(**SHORT_JOBS)
    with tempfile.TemporaryDirectory(prefix="fal-scale-") as home:
        server.hold(True)
        run_child("notebook", str(jobs), home, "leave")
        server.release()
        time.sleep(0.5)  # every job completes on the server before the new process starts
        server.clear_requests()
        since = time.time()
        measured = run_child("notebook", str(jobs), home, "resume")
        view = server_view(server, since)
    looks = view["first_looks"]
    first_all = (looks[-1] - measured["began"]) if len(looks) >= jobs else float("nan")
    lag = view["last_result"] - max(view["last_end"], since)
    return [["fal_notebook", str(measured["jobs"]), f"{first_all:.2f}", f"{lag:.2f}", f"{measured['cpu']:.1f}",
             f"{measured['wall']:.1f}"]]


def kernel(server: Any, jobs: int, seconds: float, trivial: int = 50, pixels: int = 16) -> list[list[str]]:
    server.configure(scenario="normal", queue_seconds=0.0, run_seconds=seconds, log_lines=2)
    server.clear_requests()
    with tempfile.TemporaryDirectory(prefix="fal-scale-") as home:
        run = run_child("kernel", str(jobs), str(seconds), home, str(trivial), str(pixels))
    idle, busy = run["idle"], run["busy"]

    def target(value: float, limit: float, unit: str) -> str:
        return f"≤ {limit:g}{unit} ({'met' if value <= limit else 'missed'})"

    p99 = percentile(busy, 0.99) if busy else float("nan")
    return [
        ["submit cell s", "-", f"{run['submit']:.2f}", target(run["submit"], KERNEL_TARGETS["submit"], " s")],
        ["trivial cell p50 ms", ms(idle, 0.5), ms(busy, 0.5), ""],
        ["trivial cell p99 ms", ms(idle, 0.99), ms(busy, 0.99), target(p99 * 1000, KERNEL_TARGETS["p99"] * 1000, " ms")],
        ["kernel peak RSS MiB", f"{run['rss_idle']:.0f}", f"{run['rss_peak']:.0f}",
         target(run["rss_peak"], KERNEL_TARGETS["rss"], " MiB")],
        ["kernel CPU s", "-", f"{run['cpu']:.1f}", "main {MainThread:.1f} / runtime {fal-notebook-loop:.1f} / other "
         "{other:.1f}".format_map({"MainThread": 0.0, "fal-notebook-loop": 0.0, "other": 0.0, **run["threads"]})],
        ["iopub KiB / messages", "-", f"{run['iopub_bytes'] / 1024:.0f} / {run['iopub_messages']}", ""],
        ["trivial cells run", str(len(idle)), str(len(busy)), ""],
        ["wall s", "-", f"{run['wall']:.1f}", f"(load_ext {run['load']:.2f} s, first %fal {run['first']:.2f} s)"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="concurrent jobs (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="server-side run time of each (default 10)")
    parser.add_argument("--short", type=int, default=1000, help="short jobs for throughput (default 1000)")
    parser.add_argument("--resume", type=int, default=1000, help="jobs resumed by a new process (default 1000)")
    parser.add_argument("--kernel", type=int, default=200, help="jobs of the kernel workload (default 200; 0 skips)")
    parser.add_argument("--kernel-image", type=int, default=16, metavar="PIXELS",
                        help="width = height of the kernel workload's images (default 16; 512 or 1024: downloads and thumbnails that cost what real ones do)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "fal_client":
            result = child_fal_client(os.environ["SCALE_URL"], int(rest[0]), rest[1] == "1")
        elif kind == "kernel":
            result = child_kernel(os.environ["SCALE_URL"], int(rest[0]), float(rest[1]), rest[2], int(rest[3]),
                                  int(rest[4]))
        else:
            result = child_notebook(os.environ["SCALE_URL"], int(rest[0]), rest[1], rest[2])
        print(json.dumps(result))
        return 0
    print(header("scale: fal_notebook vs fal_client's async client"))
    began = time.perf_counter()
    import fal_notebook.emulator.state as emulator_state

    emulator_state.MAX_RECORDS = 1_000_000  # fal_client polls 10x a second: keep every request of a run
    with emulator("fast") as server:
        os.environ["SCALE_URL"] = server.url
        if args.jobs:  # 0 skips a workload (each of the four)
            print(f"1. {args.jobs} concurrent jobs, {args.seconds:g} s each on the server")
            print(table(["client", "queue calls/job", "done→result ms p50", "p95", "CPU s", "peak RSS MiB", "wall s"],
                        concurrent(server, args.jobs, args.seconds)))
            print(emulator_line())
        if args.short:
            print(f"\n2. throughput: {args.short} short jobs")
            print(table(["client", "wall s", "jobs/s", "CPU ms/job", "queue calls/job", "all submitted s"],
                        throughput(server, args.short)))
            print(emulator_line())
        if args.resume:
            print(f"\n3. {args.resume} unfinished jobs resumed by a new process (fal_client cannot resume)")
            print(table(["client", "jobs", "first status of all s", "last result lag s", "CPU s", "wall s"],
                        resume(server, args.resume)))
            print(emulator_line())
        if args.kernel:
            print(f"\n4. a real kernel: %fal … --n {args.kernel} ({args.seconds:g} s each, {args.kernel_image}² px "
                  "images); fal_client has no notebook equivalent, so the baseline is the same kernel with no jobs")
            print(table(["kernel", "no jobs", f"{args.kernel} jobs in flight", "target"],
                        kernel(server, args.kernel, args.seconds, pixels=args.kernel_image)))
            print(emulator_line())
    print(f"\nwhole run: {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
