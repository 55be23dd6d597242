"""Benchmark generation throughput: hubtools' ``Runner`` against the OpenAI-protocol stand-in.

Run from the project root with the project's virtualenv::

    python bench/bench_generate.py                          # the default settings, ~10 s each
    python bench/bench_generate.py --latency 0.2 --concurrency 8 64   # 0.2 s x C=8 and C=64
    python bench/bench_generate.py --requests 400           # a fixed number of requests each
    python bench/bench_generate.py --repeat 3               # best of 3 runs per setting
    python bench/bench_generate.py --no-checkpoint          # without the fsync-ed checkpoint (diagnosis)
    python bench/bench_generate.py --latency 0.5 --concurrency 64 --profile   # cProfile the client

Target (from the issue): with a server that takes L seconds per completion and a Runner
allowed C requests in flight, at least 90% of the ideal C/L requests per second.

What it does, for every setting (L, C) (default: L=0.2 s with C=4, 16, 32, and L=0.5 s with
C=64; ``--latency``/``--concurrency`` replace them with every combination of the values given):

1. Starts the stand-in server of ``tests/openai_server`` (a ``ThreadingHTTPServer`` speaking
   ``POST /v1/chat/completions``) with ``latency=L`` in its own process, so the client's GIL
   never slows the server down. The server reports, when asked at the end, how many
   completions it answered, the most it had in flight at once, how long it held each request
   and the CPU time it used.
2. Runs the client in a fresh process: ``N`` chat tasks (default ``C * round(10 s / L)``, i.e.
   about 10 s of ideal work; ``--requests`` sets N) with distinct synthetic prompts built
   from a seeded word list, through ``Runner(InferenceClientBackend(endpoint=...),
   concurrency=C, checkpoint=<temp dir>/checkpoint.jsonl)``: the realistic path, every
   finished row ``fsync``-ed to the checkpoint (no completion cache unless ``--cache``).
   Wall time is measured around ``Runner.run`` only (imports done before). In the client
   process only, the backend is wrapped to time each request as the client sees it (from
   the call into ``acomplete`` to its return) and ``Checkpoint._write_batch`` to time each
   group commit (one write + ``fsync`` for the rows finished meanwhile, in a thread while
   the workers go on), so the report can tell a slow server from a starved client. The run
   must finish every task with one request each and leave N rows in the checkpoint.
3. Prints a table: L, C, requests, seconds, req/s, ideal C/L, efficiency %, then per-request
   client latency (median / p99 ms), the server's hold time (median ms), the most requests
   the server saw in flight, the commit time per checkpoint row (ms), client CPU (% of one core
   and ms per request) and server CPU. Efficiency is ``(N / seconds) / (C / L)``; a run of
   N requests cannot beat ``ceil(N / C) * L`` s. Writes everything to ``<out>/generate.json``
   (default ``bench/results/``, gitignored).

Reading it: client latency above the server's hold time is time lost between the two (the
stand-in sends with ``TCP_NODELAY``, as uvicorn, vLLM or TGI do, so Nagle adds nothing). The
first round pays for opening C connections at once. The machine's load average is printed
before and after: other work on the 2 cores shows up as a starved client (latency and
commit time up, server hold time still L).

``--profile`` runs the client of the (first) setting under cProfile and prints the top 30
functions by cumulative and by own time after the table.

Exits 1, naming the settings, if any setting falls under 90% efficiency (or fails); 0 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

MODEL = "bench-model"
DEFAULT_SETTINGS: tuple[tuple[float, int], ...] = ((0.2, 4), (0.2, 16), (0.2, 32), (0.5, 64))
DEFAULT_LATENCY = (0.2,)
DEFAULT_CONCURRENCY = (4, 16, 32)
DEFAULT_DURATION = 10.0
EFFICIENCY_TARGET = 0.90
PROFILE_TOP = 30
SERVER_START_TIMEOUT = 30.0

_WORDS = ("explain", "describe", "summarise", "compare", "list", "the", "history", "of", "a",
          "river", "city", "theorem", "recipe", "language", "protein", "market", "poem", "engine",
          "why", "how", "what", "when", "which", "between", "simple", "detailed", "steps",
          "student", "beginner", "expert", "short", "three", "reasons", "examples", "with")


# ---- input --------------------------------------------------------------------------------


def build_tasks(n: int, seed: int = 0) -> list[Any]:
    """``n`` distinct chat tasks: a system message and a 20-60 word user prompt each."""
    from hubtools.generate.runner import Task

    rng = random.Random(seed)
    system = {"role": "system", "content": "You are a helpful assistant. Answer clearly and concisely."}
    tasks = []
    for i in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 60)))
        prompt = f"Request {i}: {words.capitalize()}?"
        tasks.append(Task(f"row-{i}", [system, {"role": "user", "content": prompt}],
                          {"temperature": 0.7, "max_tokens": 128, "seed": i}))
    return tasks


def default_requests(latency: float, concurrency: int, duration: float = DEFAULT_DURATION) -> int:
    """Requests for about ``duration`` seconds of ideal work: whole rounds of ``concurrency``."""
    return concurrency * max(1, round(duration / latency))


# ---- server side (its own process) --------------------------------------------------------


def serve(latency: float) -> int:
    """Run the stand-in until stdin closes; on a ``stats`` line, print what it saw as JSON."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.openai_server import OpenAIServer

    server = OpenAIServer(models=[MODEL], latency=latency).start()
    cpu0 = time.process_time()
    print(json.dumps({"base_url": server.base_url, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            done = server.completions()
            held = [r.finished - r.started for r in done]
            print(json.dumps({
                "completions": len(done),
                "ok": sum(r.status == 200 for r in done),
                "max_in_flight": server.max_in_flight,
                "hold_median_ms": statistics.median(held) * 1e3 if held else None,
                "cpu_s": time.process_time() - cpu0,
            }), flush=True)
    server.stop()
    return 0


class Server:
    """The stand-in in a subprocess: started on a free port, stopped by closing its stdin."""

    def __init__(self, latency: float):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(latency)]
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        info = self._read_line(SERVER_START_TIMEOUT)
        self.base_url: str = info["base_url"]
        self.pid: int = info["pid"]

    def _read_line(self, timeout: float) -> dict[str, Any]:
        import selectors

        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.stop()
                raise RuntimeError(f"the stand-in server did not answer within {timeout:g} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the stand-in server exited (code {self.proc.poll()})")
        return json.loads(line)

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return self._read_line(10.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---- client side (a fresh process) --------------------------------------------------------


def run_client(base_url: str, latency: float, concurrency: int, requests: int, *, checkpoint: bool = True,
               cache: bool = False, profile: bool = False) -> dict[str, Any]:
    """Time ``Runner.run`` over ``requests`` tasks in this process; return the measurements."""
    import httpx_aiohttp.httpx2  # noqa: F401 - imported up front so the timed run does not pay for it
    import huggingface_hub  # noqa: F401
    import tqdm.auto  # noqa: F401
    from huggingface_hub import AsyncInferenceClient  # noqa: F401

    from hubtools.generate import runner as runner_module
    from hubtools.generate.backends import InferenceClientBackend
    from hubtools.generate.runner import Runner

    latencies: list[float] = []
    checkpoint_s: list[float] = []
    in_flight = [0, 0]  # now, most

    class TimedBackend(InferenceClientBackend):
        async def acomplete(self, messages: list[dict[str, Any]], **params: Any):
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            started = time.perf_counter()
            try:
                return await super().acomplete(messages, **params)
            finally:
                latencies.append(time.perf_counter() - started)
                in_flight[0] -= 1

    class TimedCheckpoint(runner_module.Checkpoint):
        # each group commit (one write + fsync for the rows that finished meanwhile) runs in a
        # thread while the workers go on: time it there, per row committed
        def _write_batch(self, batch: list) -> None:
            started = time.perf_counter()
            try:
                super()._write_batch(batch)
            finally:
                checkpoint_s.extend([(time.perf_counter() - started) / len(batch)] * len(batch))

    runner_module.Checkpoint = TimedCheckpoint  # this process only; the library is unchanged
    tasks = build_tasks(requests)
    backend = TimedBackend(MODEL, endpoint=base_url)
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        path = Path(tmp) / "checkpoint.jsonl"
        runner = Runner(backend, checkpoint=path if checkpoint else None,
                        cache=Path(tmp) / "cache.sqlite" if cache else None,
                        header={"stage": "bench", "latency": latency}, concurrency=concurrency,
                        max_retries=0, seed=0)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0 = time.process_time()
        started = time.perf_counter()
        outcome = runner.run(tasks)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        if profiler is not None:
            profiler.disable()
        rows = sum(1 for _ in path.open("rb")) - 1 if checkpoint else None
    stats = outcome.stats
    lat = sorted(latencies)
    result: dict[str, Any] = {
        "latency": latency, "concurrency": concurrency, "requests": requests, "seconds": seconds,
        "req_per_s": requests / seconds, "ideal_req_per_s": concurrency / latency,
        "efficiency": requests / seconds / (concurrency / latency),
        "floor_seconds": math.ceil(requests / concurrency) * latency,
        "done": len(outcome.results), "failed": len(outcome.failures), "http_requests": stats.requests,
        "checkpoint_rows": rows, "client_cpu_s": cpu,
        "client_latency_ms": {"median": statistics.median(lat) * 1e3, "p99": lat[int(0.99 * (len(lat) - 1))] * 1e3,
                              "max": lat[-1] * 1e3} if lat else None,
        "client_max_in_flight": in_flight[1],
        "checkpoint_ms_per_row": 1e3 * sum(checkpoint_s) / len(checkpoint_s) if checkpoint_s else None,
        "checkpoint_commit_s": sum(checkpoint_s),
        "failures": dict(itertools.islice(outcome.failures.items(), 3)),
    }
    problems = []
    if outcome.failures:
        problems.append(f"{len(outcome.failures)} task(s) failed, e.g. {next(iter(outcome.failures.values()))}")
    if stats.requests != requests:
        problems.append(f"{stats.requests} HTTP requests for {requests} tasks")
    if checkpoint and rows != requests:
        problems.append(f"{rows} checkpoint rows for {requests} tasks")
    if problems:
        result["error"] = "; ".join(problems)
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        ps = pstats.Stats(profiler, stream=out).strip_dirs()
        for key in ("cumulative", "tottime"):
            out.write(f"\n==== client, top {PROFILE_TOP} by {key} (main thread, under cProfile) ====\n")
            ps.sort_stats(key).print_stats(PROFILE_TOP)
        result["profile"] = out.getvalue()
    return result


# ---- parent side --------------------------------------------------------------------------


def spawn_client(base_url: str, latency: float, concurrency: int, requests: int, *, checkpoint: bool,
                 cache: bool, profile: bool) -> dict[str, Any]:
    """Run :func:`run_client` in a fresh interpreter and return what it reported."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", base_url, "--latency", str(latency),
           "--concurrency", str(concurrency), "--requests", str(requests)]
    cmd += ["--no-checkpoint"] if not checkpoint else []
    cmd += ["--cache"] if cache else []
    cmd += ["--profile"] if profile else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"latency": latency, "concurrency": concurrency, "requests": requests,
                "error": f"client exit code {proc.returncode}\n{tail}"}
    return json.loads(lines[-1])


def measure(latency: float, concurrency: int, requests: int, *, checkpoint: bool, cache: bool,
            profile: bool) -> dict[str, Any]:
    """One run of one setting: a fresh server, a fresh client."""
    with Server(latency) as server:
        result = spawn_client(server.base_url, latency, concurrency, requests, checkpoint=checkpoint,
                              cache=cache, profile=profile)
        try:
            result["server"] = server.stats()
        except (RuntimeError, OSError, ValueError) as exc:
            result["server"] = {"error": str(exc)}
    return result


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "-"


def print_table(results: list[dict[str, Any]]) -> None:
    head = (f"{'L s':>5}{'C':>5}{'requests':>10}{'seconds':>9}{'req/s':>9}{'ideal C/L':>11}{'efficiency':>12}"
            f"  | {'lat p50':>8}{'lat p99':>8}{'srv hold':>9}{'srv max':>8}{'ckpt ms':>8}"
            f"{'cli CPU':>8}{'ms/req':>7}{'srv CPU':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        start = f"{r['latency']:>5.2f}{r['concurrency']:>5}{r['requests']:>10,}"
        if "seconds" not in r:
            print(f"{start}  FAILED: {r.get('error', '?')}")
            continue
        srv = r.get("server") or {}
        lat = r.get("client_latency_ms") or {}
        print(f"{start}{r['seconds']:>9.2f}{r['req_per_s']:>9.1f}{r['ideal_req_per_s']:>11.1f}"
              f"{100 * r['efficiency']:>11.1f}%"
              f"  | {_fmt(lat.get('median'), '.0f'):>8}{_fmt(lat.get('p99'), '.0f'):>8}"
              f"{_fmt(srv.get('hold_median_ms'), '.0f'):>9}{_fmt(srv.get('max_in_flight'), 'd'):>8}"
              f"{_fmt(r.get('checkpoint_ms_per_row'), '.2f'):>8}"
              f"{100 * r['client_cpu_s'] / r['seconds']:>7.0f}%{1e3 * r['client_cpu_s'] / r['requests']:>7.2f}"
              f"{_fmt(100 * srv['cpu_s'] / r['seconds'] if 'cpu_s' in srv else None, '.0f'):>7}%")
        if r.get("error"):
            print(f"      ^ INVALID RUN: {r['error']}")
    print("\nlat p50/p99: per-request latency seen by the client (ms); srv hold: median time the server held\n"
          "a request (ms); srv max: most requests in flight at the server; ckpt ms: commit time per checkpoint\n"
          "row (write + fsync, in a thread; no worker waits for it); CPU: % of one core over the\n"
          "timed run, and client CPU ms per request.")


def benchmark(settings: list[tuple[float, int]], requests: int | None, duration: float, repeat: int, *,
              checkpoint: bool, cache: bool, profile: bool, out_dir: Path) -> int:
    print(f"hubtools Runner vs the tests/openai_server stand-in: {len(settings)} setting(s), "
          f"checkpoint {'ON (fsync-ed group commits)' if checkpoint else 'OFF'}, cache {'ON' if cache else 'OFF'}, "
          f"best of {repeat}")
    print(f"{os.cpu_count()} cores, load average {_load()} (1/5/15 min)", flush=True)
    best: list[dict[str, Any]] = []
    every: list[dict[str, Any]] = []
    for i, (latency, concurrency) in enumerate(settings):
        n = requests or default_requests(latency, concurrency, duration)
        runs = []
        for k in range(repeat):
            print(f"L={latency:g}s C={concurrency} N={n}: run {k + 1}/{repeat} ...", flush=True)
            runs.append(measure(latency, concurrency, n, checkpoint=checkpoint, cache=cache,
                                profile=profile and i == 0 and k == 0))
        every.extend(runs)
        ok = [r for r in runs if "seconds" in r and not r.get("error")]
        best.append(max(ok, key=lambda r: r["efficiency"]) if ok else runs[0])
    print(f"\nload average after: {_load()}\n")
    print_table(best)

    for r in best:
        if r.get("profile"):
            print(f"\ncProfile of the client at L={r['latency']:g}s C={r['concurrency']} "
                  "(profiling overhead included, so its timing above is lower):")
            print(r["profile"])

    short = [r for r in best if "seconds" not in r or r.get("error") or r["efficiency"] < EFFICIENCY_TARGET]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "generate.json"
    report = {
        "target_efficiency": EFFICIENCY_TARGET, "checkpoint": checkpoint, "cache": cache,
        "repeat": repeat,
        "results": [{k: v for k, v in r.items() if k != "profile"} for r in best],
        "runs": [{k: v for k, v in r.items() if k != "profile"} for r in every],
        "met": not short,
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "loadavg": _load()},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    if short:
        names = ", ".join(f"L={r['latency']:g}s C={r['concurrency']}"
                          + (f" ({100 * r['efficiency']:.1f}%)" if "efficiency" in r else " (failed)")
                          for r in short)
        print(f"\nTARGET MISSED: under {EFFICIENCY_TARGET:.0%} of C/L requests/s at {names}", file=sys.stderr)
        return 1
    print(f"\nTARGET MET: every setting at >= {EFFICIENCY_TARGET:.0%} of C/L requests/s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, nargs="+", metavar="L",
                        help="server seconds per completion (default: the settings listed below; "
                             f"with --concurrency alone, {DEFAULT_LATENCY[0]:g})")
    parser.add_argument("--concurrency", type=int, nargs="+", metavar="C",
                        help="Runner concurrency (default: the settings listed below; with --latency alone, "
                             f"{' '.join(map(str, DEFAULT_CONCURRENCY))})")
    parser.add_argument("--requests", type=int, metavar="N",
                        help=f"requests per run (default C * round({DEFAULT_DURATION:g} s / L))")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION,
                        help=f"ideal seconds per run when --requests is not given (default {DEFAULT_DURATION:g})")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting, the best kept (default 1)")
    parser.add_argument("--no-checkpoint", dest="checkpoint", action="store_false",
                        help="run without the checkpoint (diagnosis; the target is for checkpoint on)")
    parser.add_argument("--cache", action="store_true", help="also use the SQLite completion cache")
    parser.add_argument("--profile", action="store_true", help="cProfile the client of the first setting")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR,
                        help="directory for generate.json (default bench/results)")
    parser.add_argument("--child", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=float, metavar="L", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve is not None:
        return serve(args.serve)
    if args.child:
        result = run_client(args.child, args.latency[0], args.concurrency[0], args.requests,
                            checkpoint=args.checkpoint, cache=args.cache, profile=args.profile)
        print(json.dumps(result))
        return 0
    if any(x <= 0 for x in args.latency or ()) or any(c <= 0 for c in args.concurrency or ()):
        parser.error("--latency and --concurrency must be positive")
    if (args.requests is not None and args.requests <= 0) or args.repeat <= 0 or args.duration <= 0:
        parser.error("--requests, --repeat and --duration must be positive")
    if args.latency is None and args.concurrency is None:
        settings = list(DEFAULT_SETTINGS)
    else:
        settings = list(itertools.product(args.latency or DEFAULT_LATENCY, args.concurrency or DEFAULT_CONCURRENCY))
    return benchmark(settings, args.requests, args.duration, args.repeat, checkpoint=args.checkpoint,
                     cache=args.cache, profile=args.profile, out_dir=args.out)


if __name__ == "__main__":
    sys.exit(main())
