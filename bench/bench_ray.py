"""Benchmark the default quality scan on the local engine against the Ray engine.

Run from the project root with the project's virtualenv (Ray from ``pip install -e '.[ray]'``)::

    python bench/bench_ray.py                 # 1,000,000 records
    python bench/bench_ray.py --rows 100000   # smaller

Contenders, each in a fresh subprocess, on the same input (``bench_checks.build_input``: Alpaca
records with planted exact and near duplicates, e-mails, refusals and French records):

* ``local-1``, ``local-2``: ``run_checks(path, num_proc=N)``;
* ``ray-1``, ``ray-2``: ``run_checks(path, engine=RayEngine(workers=N))`` on a local Ray of N
  CPUs that the run starts (its start-up is timed apart: on a cluster it is paid once).

Per contender: the wall time of the scan, the Ray start-up, and the peak of the RSS summed over
the process and all its descendants (Ray's GCS, raylet and workers included), sampled every
0.2 s. Every contender's flagged indices are compared with ``local-1``'s (a digest per check):
a benchmark of different answers would be no benchmark.

Prints a markdown table (also written to ``bench/results/ray-<N>.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from bench_checks import PROJECT_ROOT, RESULTS_DIR, _TreeSampler, build_input  # noqa: E402

CONTENDERS = ("local-1", "local-2", "ray-1", "ray-2")


def child(contender: str, path: str) -> dict:
    from hubtools.checks import run_checks

    engine_name, workers = contender.split("-")
    workers = int(workers)
    with _TreeSampler() as tree:
        startup = 0.0
        if engine_name == "ray":
            import ray

            from hubtools.checks.engines import get_engine

            t = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            startup = time.perf_counter() - t
            engine = get_engine("ray", workers=workers)
            t = time.perf_counter()
            quality = run_checks(path, engine=engine)
            seconds = time.perf_counter() - t
            ray.shutdown()
        else:
            t = time.perf_counter()
            quality = run_checks(path, num_proc=workers)
            seconds = time.perf_counter() - t
    digests = {name: hashlib.sha1(json.dumps(r.flagged).encode()).hexdigest()[:12]
               for name, r in quality.results.items()}
    return {"contender": contender, "seconds": seconds, "startup": startup, "rows": quality.dataset["total"],
            "tree_peak_rss_mb": tree.peak_mb, "checks": {k: round(v, 2) for k, v in quality.timings.items()},
            "flagged": {k: r.count for k, r in quality.results.items()}, "digests": digests}


def run_child(contender: str, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", contender, "--path", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    if out.returncode != 0:
        return {"contender": contender, "error": out.stderr.strip().splitlines()[-3:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--child")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path)))
        return
    path = build_input(args.rows)
    print(f"input: {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size / 1e6:.0f} MB), "
          f"{os.cpu_count()} cores", flush=True)
    results = []
    for contender in args.contenders.split(","):
        results.append(run_child(contender, path))
        print(json.dumps(results[-1]), flush=True)
    ok = [r for r in results if "error" not in r]
    base = ok[0] if ok else {}
    lines = [f"Default scan, {base.get('rows', 0):,} Alpaca-shaped records ({path.stat().st_size / 1e6:.0f} MB "
             f"JSONL), {os.cpu_count()} cores (shared), one run each", "",
             "| engine | scan s | records/s | Ray start s | peak RSS, all processes (MB) | same flags as first |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['contender']} | failed: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['contender']} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
                     f"{r['startup']:.1f} | {r['tree_peak_rss_mb']:,.0f} | "
                     f"{'yes' if r['digests'] == base['digests'] else 'NO'} |")
    lines += [""] + [f"{r['contender']} per check (s): " + ", ".join(f"{k} {v}" for k, v in r["checks"].items())
                     for r in ok]
    text = "\n".join(lines)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"ray-{base.get('rows', args.rows)}.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
