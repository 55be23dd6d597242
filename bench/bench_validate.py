"""Benchmark ``hubtools.load`` against a raw ``pyarrow.json.read_json`` parse.

Run from the project root with the project's virtualenv::

    python bench/bench_validate.py                    # 1,000,000 rows
    python bench/bench_validate.py --rows 100000      # smaller input
    python bench/bench_validate.py --rows 200000 --profile   # cProfile hubtools.load
    python bench/bench_validate.py --repeat 5         # best of 5 runs per contender
    python bench/bench_validate.py --out /tmp/results # write the JSON somewhere else
    python bench/bench_validate.py --format openai --rows 300000 --exact   # chats, and the exact path

What it does:

1. Builds a JSONL file of ``--rows`` records in ``--format`` (``alpaca``: instruction/input/
   output; ``openai``: system + user + assistant messages; ``sharegpt``: the same as
   system/human/gpt conversations; ``dpo``: prompt/chosen/rejected) by cycling through the 999
   records of LLaMA-Factory's ``alpaca_en_demo.json`` (read from ``../shared/corpus`` beside
   the project, never copied into it). Each copy gets its row number appended to the
   instruction, so no two lines are byte-identical. The file is cached as
   ``bench/data/<format>-<N>.jsonl`` (gitignored): reruns with the same N reuse it.
2. Reads the file once to warm the page cache, then runs each contender ``--repeat`` times
   (default 3, interleaved), every run in a fresh subprocess so peak memory is measured
   independently:

   * ``pyarrow``: ``pyarrow.json.read_json(path)``, the raw-parse baseline (multi-threaded);
   * ``hubtools``: ``hubtools.load(path)``: read, detect, convert to canonical, validate,
     build the ``datasets.Dataset`` (the columnar fast path, for these clean files);
   * with ``--exact``, ``hubtools_exact``: ``hubtools.load(path, fast=False)``, record by
     record, as files with a bad record are read (same result; the ratio target is for
     ``hubtools``).

   Inside the child, wall time is measured around the call only (imports excluded) and peak
   memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the call (whole-process peak,
   imports included; the RSS after imports is reported too, as ``baseline_rss_mb``). A
   contender's figure is its fastest run and its highest peak RSS; every run is in the JSON.
   Timings on a shared machine are noisy (pyarrow especially): prefer ``--repeat`` >= 3.
3. Prints seconds, records/s, the throughput ratio hubtools / pyarrow (target >= 0.30) and the
   hubtools peak RSS (target < 2 GB = 2e9 bytes), with "TARGET MET"/"TARGET MISSED" for each,
   and writes everything to ``<out>/validate-<format>-<N>.json`` (default ``bench/results/``, gitignored).

``--profile`` skips the timing runs and instead runs ``hubtools.load`` under cProfile in this
process, printing the top 25 functions by cumulative and by total (own) time.

The exit code is always 0: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal, TypedDict

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
CORPUS_FILE = Path(__file__).resolve().parents[2] / "shared/corpus/llama_factory/alpaca_en_demo.json"
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"

DEFAULT_ROWS = 1_000_000
DEFAULT_REPEAT = 3
RATIO_TARGET = 0.30
MEMORY_TARGET_BYTES = 2_000_000_000
PROFILE_TOP = 25

Contender = Literal["pyarrow", "hubtools", "hubtools_exact"]
CONTENDERS: tuple[Contender, ...] = ("pyarrow", "hubtools", "hubtools_exact")
FORMATS = ("alpaca", "openai", "sharegpt", "dpo")
SYSTEM = "You are a helpful assistant."


class ChildResult(TypedDict, total=False):
    """What one timing subprocess reports (one JSON line on stdout)."""

    contender: str
    rows: int
    seconds: float
    records_per_s: float
    peak_rss_mb: float
    baseline_rss_mb: float
    process_seconds: float
    runs_seconds: list[float]
    valid: int
    quarantined: int
    format: str
    error: str


# ---- input --------------------------------------------------------------------------------


def make_record(seed: dict[str, Any], i: int, fmt: str) -> dict[str, Any]:
    """Record ``i`` of the input, from a corpus seed, in format ``fmt``."""
    instruction = f"{seed['instruction']} [{i}]"
    if fmt == "alpaca":
        return {"instruction": instruction, "input": seed["input"], "output": seed["output"]}
    user = f"{instruction}\n{seed['input']}" if seed["input"] else instruction
    if fmt == "openai":
        return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                             {"role": "assistant", "content": seed["output"]}]}
    if fmt == "sharegpt":
        return {"conversations": [{"from": "system", "value": SYSTEM}, {"from": "human", "value": user},
                                  {"from": "gpt", "value": seed["output"]}]}
    return {"prompt": user, "chosen": seed["output"], "rejected": f"I am not sure. {seed['output'][:60]}"}


def build_input(rows: int, data_dir: Path = DATA_DIR, fmt: str = "alpaca") -> Path:
    """Return the cached JSONL file of ``rows`` records in ``fmt``, generating it if needed."""
    import orjson

    path = data_dir / f"{fmt}-{rows}.jsonl"
    if path.exists():
        print(f"input: {path.relative_to(PROJECT_ROOT)} (cached, {_mb(path.stat().st_size):.1f} MB)")
        return path
    seeds: list[dict[str, Any]] = json.loads(CORPUS_FILE.read_text(encoding="utf-8"))
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    started = time.perf_counter()
    with tmp.open("wb") as fh:
        for i in range(rows):
            fh.write(orjson.dumps(make_record(seeds[i % len(seeds)], i, fmt)) + b"\n")
    tmp.replace(path)  # only a complete file is ever cached
    print(f"input: {path.relative_to(PROJECT_ROOT)} (generated {rows:,} rows in "
          f"{time.perf_counter() - started:.1f}s, {_mb(path.stat().st_size):.1f} MB)")
    return path


# ---- child side ---------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run_child(contender: Contender, path: Path) -> ChildResult:
    """Time one contender on ``path`` in this (fresh) process."""
    if contender == "pyarrow":
        import pyarrow.json as paj

        baseline = _peak_rss_bytes()
        started = time.perf_counter()
        table = paj.read_json(path)
        seconds = time.perf_counter() - started
        result: ChildResult = {"rows": table.num_rows}
    else:
        import hubtools

        baseline = _peak_rss_bytes()
        started = time.perf_counter()
        loaded = hubtools.load(path, fast=contender == "hubtools")
        seconds = time.perf_counter() - started
        result = {"rows": loaded.total, "valid": loaded.valid, "quarantined": loaded.quarantined,
                  "format": loaded.format}
    result.update(contender=contender, seconds=seconds, records_per_s=result["rows"] / seconds,
                  peak_rss_mb=_mb(_peak_rss_bytes()), baseline_rss_mb=_mb(baseline))
    return result


# ---- parent side --------------------------------------------------------------------------


def spawn(contender: Contender, path: Path) -> ChildResult:
    """Run :func:`run_child` in a fresh interpreter and return what it reported."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", contender, str(path)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT)
    elapsed = time.perf_counter() - started
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"contender": contender, "error": f"exit code {proc.returncode}\n{tail}"}
    result: ChildResult = json.loads(lines[-1])
    result["process_seconds"] = elapsed
    return result


def warm_page_cache(path: Path, chunk: int = 1 << 24) -> None:
    """Read ``path`` once so no contender pays for the first read from disk."""
    with path.open("rb") as fh:
        while fh.read(chunk):
            pass


def best_of(runs: list[ChildResult]) -> ChildResult:
    """The fastest run, with the highest peak RSS of all runs and every run's time."""
    failed = [run for run in runs if "error" in run]
    if failed:
        return failed[0]
    best = min(runs, key=lambda run: run["seconds"]).copy()
    best["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    best["runs_seconds"] = [run["seconds"] for run in runs]
    return best


def _mb(n_bytes: float) -> float:
    return n_bytes / 1e6


def _verdict(met: bool) -> str:
    return "TARGET MET" if met else "TARGET MISSED"


def benchmark(rows: int, out_dir: Path, repeat: int = DEFAULT_REPEAT, fmt: str = "alpaca",
              exact: bool = False) -> dict[str, Any]:
    """Build the input, time the contenders, print and save the comparison."""
    path = build_input(rows, fmt=fmt)
    warm_page_cache(path)
    contenders = CONTENDERS if exact else CONTENDERS[:2]
    runs: dict[str, list[ChildResult]] = {contender: [] for contender in contenders}
    for i in range(repeat):
        for contender in contenders:
            print(f"run {i + 1}/{repeat}: {contender} ...", flush=True)
            runs[contender].append(spawn(contender, path))
    results = {contender: best_of(contender_runs) for contender, contender_runs in runs.items()}

    print(f"\nbest of {repeat} run(s); peak RSS is the highest of them")
    print(f"{'':16}{'seconds':>10}{'records/s':>14}{'peak RSS MB':>14}{'after import':>14}")
    for name, res in results.items():
        if "error" in res:
            print(f"{name:16}FAILED: {res['error']}")
            continue
        print(f"{name:16}{res['seconds']:>10.2f}{res['records_per_s']:>14,.0f}"
              f"{res['peak_rss_mb']:>14,.0f}{res['baseline_rss_mb']:>14,.0f}")

    arrow, hub = results["pyarrow"], results["hubtools"]
    ratio = (hub["records_per_s"] / arrow["records_per_s"]
             if "error" not in arrow and "error" not in hub else None)
    peak_mb = hub.get("peak_rss_mb")
    ratio_met = ratio is not None and ratio >= RATIO_TARGET
    memory_met = peak_mb is not None and peak_mb * 1e6 < MEMORY_TARGET_BYTES
    if "error" not in hub and hub.get("valid") != rows:
        print(f"\nWARNING: hubtools kept {hub.get('valid'):,} of {rows:,} rows "
              f"({hub.get('quarantined'):,} quarantined)")

    print()
    ratio_text = f"{ratio:.3f}" if ratio is not None else "n/a"
    peak_text = f"{peak_mb:,.0f} MB" if peak_mb is not None else "n/a"
    print(f"throughput ratio hubtools/pyarrow: {ratio_text} "
          f"(target >= {RATIO_TARGET:.2f})  {_verdict(ratio_met)}")
    print(f"hubtools peak RSS:                 {peak_text} "
          f"(target < {_mb(MEMORY_TARGET_BYTES):,.0f} MB)  {_verdict(memory_met)}")

    report: dict[str, Any] = {
        "rows": rows,
        "format": fmt,
        "repeat": repeat,
        "input": str(path.relative_to(PROJECT_ROOT)),
        "input_bytes": path.stat().st_size,
        "results": results,
        "ratio": ratio,
        "targets": {
            "ratio": {"target": RATIO_TARGET, "value": ratio, "met": ratio_met},
            "hubtools_peak_rss_mb": {"target": _mb(MEMORY_TARGET_BYTES), "value": peak_mb,
                                     "met": memory_met},
        },
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"validate-{fmt}-{rows}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return report


def profile(rows: int, fmt: str = "alpaca") -> None:
    """Run ``hubtools.load`` under cProfile in this process; print the top functions."""
    import cProfile
    import pstats

    import hubtools

    path = build_input(rows, fmt=fmt)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    result = hubtools.load(path)
    profiler.disable()
    print(f"hubtools.load: {result.total:,} rows in {time.perf_counter() - started:.2f}s "
          "under cProfile (profiling overhead included)")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    for key in ("cumulative", "tottime"):
        print(f"\n==== top {PROFILE_TOP} by {key} ====")
        stats.sort_stats(key).print_stats(PROFILE_TOP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS,
                        help=f"records in the generated input (default {DEFAULT_ROWS:,})")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR,
                        help="directory for validate-<format>-<N>.json (default bench/results)")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"runs per contender, fastest kept (default {DEFAULT_REPEAT})")
    parser.add_argument("--format", choices=FORMATS, default="alpaca",
                        help="the input's format (default alpaca)")
    parser.add_argument("--exact", action="store_true",
                        help="also time hubtools.load(fast=False), the record-by-record path")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile hubtools.load in-process instead of timing both")
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        contender, path = args.child
        if contender not in CONTENDERS:
            parser.error(f"unknown contender {contender!r}")
        print(json.dumps(run_child(contender, Path(path))))
        return 0
    if args.rows <= 0 or args.repeat <= 0:
        parser.error("--rows and --repeat must be positive")
    if args.profile:
        profile(args.rows, args.format)
    else:
        benchmark(args.rows, args.out, args.repeat, fmt=args.format, exact=args.exact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
