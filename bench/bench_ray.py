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

Near-duplicate mode, for a large run on one machine under a memory bound::

    python bench/bench_ray.py --rows 10000000 --checks near_duplicates --memory 4GB --contenders ray-2

reads short generated text records (``near-<N>.jsonl``: about 20 words each, 4% one-word edits
of an earlier record, 2% case/space copies, so ten million rows are about 1.7 GB), runs only
that check, bounds each Ray's object store at ``--memory`` (spilling to disk beyond it) and
reports the driver's peak RSS apart from the rest of the process tree (Ray's workers,
raylet and GCS): the dataset-wide steps run on the workers, so the driver should stay small.
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
#: Words of the near-duplicate mode's records (short, so ten million rows stay small on disk).
SHORT_WORDS = 20


class _Sampler(_TreeSampler):
    """The tree's peak RSS, and this process's own (the driver's) peak beside it: its RSS, and
    its anonymous memory (``RssAnon``: what it holds itself, without the pages of files it maps
    and of the object store's shared memory, which the kernel can drop or Ray can spill); and the
    largest anonymous memory of any other process (a worker's own heap: a worker's RSS counts
    every object store page it has mapped, up to the whole store)."""

    driver_mb = 0.0
    driver_anon_mb = 0.0
    worker_anon_mb = 0.0  # the largest anonymous memory of any other process of the tree

    @staticmethod
    def _anon_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                return next((int(line.split()[1]) for line in fh if line.startswith("RssAnon:")), 0)
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            tree = self._tree()
            sizes = [self._rss_kb(p) for p in tree]
            self.driver_mb = max(self.driver_mb, sizes[0] / 1024)
            self.driver_anon_mb = max(self.driver_anon_mb, self._anon_kb(tree[0]) / 1024)
            self.worker_anon_mb = max([self.worker_anon_mb, *(self._anon_kb(p) / 1024 for p in tree[1:])])
            self.peak_mb = max(self.peak_mb, sum(sizes) / 1024)


def build_short_input(rows: int, directory: Path = BENCH_DIR / "data") -> Path:
    """Cached ``near-<rows>.jsonl``: text records of :data:`SHORT_WORDS` words from a 50,000-word
    vocabulary, 4% of them one word changed from an earlier record, 2% an earlier one in capitals
    with extra spaces; written in chunks with numpy (ten million rows in a few minutes)."""
    import numpy as np

    path = Path(directory) / f"near-{rows}.jsonl"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{k:x}" for k in range(50_000)])
    tmp = path.with_suffix(".tmp")
    chunk = 200_000
    with tmp.open("w", encoding="utf-8") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            words = rng.integers(0, len(vocab), size=(n, SHORT_WORDS))
            roll = rng.random(n)
            base = rng.integers(0, np.maximum(np.arange(n), 1))  # an earlier row of the chunk
            near = (roll < 0.04) & (np.arange(n) > 0)
            words[near] = words[base[near]]
            words[near, rng.integers(0, SHORT_WORDS, size=int(near.sum()))] = rng.integers(0, len(vocab), int(near.sum()))
            copy = (roll >= 0.04) & (roll < 0.06) & (np.arange(n) > 0)
            words[copy] = words[base[copy]]
            lines = [" ".join(row) for row in vocab[words].tolist()]
            for i in np.flatnonzero(copy).tolist():
                lines[i] = "  " + lines[i].upper()
            fh.write("".join('{"text":"' + line + '"}\n' for line in lines))
    tmp.replace(path)
    return path


def child(contender: str, path: str, checks: str | None = None, memory: str | None = None) -> dict:
    from hubtools.checks import run_checks
    from hubtools.checks.engines import parse_memory

    engine_name, workers = contender.split("-")
    workers = int(workers)
    with _Sampler() as tree:
        startup = 0.0
        if engine_name == "ray":
            import ray

            from hubtools.checks.engines import get_engine

            t = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     object_store_memory=parse_memory(memory))
            startup = time.perf_counter() - t
            engine = get_engine("ray", workers=workers)
            t = time.perf_counter()
            quality = run_checks(path, checks=checks, engine=engine)
            seconds = time.perf_counter() - t
            ray.shutdown()
        else:
            t = time.perf_counter()
            quality = run_checks(path, checks=checks, num_proc=workers)
            seconds = time.perf_counter() - t
    digests = {name: hashlib.sha1(json.dumps(r.flagged).encode()).hexdigest()[:12]
               for name, r in quality.results.items()}
    return {"contender": contender, "seconds": seconds, "startup": startup, "rows": quality.dataset["total"],
            "tree_peak_rss_mb": tree.peak_mb, "driver_peak_rss_mb": tree.driver_mb,
            "driver_peak_anon_mb": tree.driver_anon_mb, "worker_peak_anon_mb": tree.worker_anon_mb,
            "checks": {k: round(v, 2) for k, v in quality.timings.items()},
            "flagged": {k: r.count for k, r in quality.results.items()}, "digests": digests,
            "steps": [f"{s['step']} ({s['where']}) {s['seconds']:.1f}"
                      for figures in quality.dataset.get("engine", {}).get("checks", {}).values()
                      for s in figures.get("steps", [])]}


def run_child(contender: str, path: Path, checks: str | None = None, memory: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", contender, "--path", str(path)]
    cmd += ["--checks", checks] if checks else []
    cmd += ["--memory", memory] if memory else []
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    if out.returncode != 0:
        return {"contender": contender, "error": out.stderr.strip().splitlines()[-3:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--checks", help="checks to run (default: the default scan); near_duplicates alone "
                                             "reads short generated text records")
    parser.add_argument("--memory", help="object store memory of each Ray (e.g. 4GB); spills beyond it")
    parser.add_argument("--child")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.checks, args.memory)))
        return
    near_only = args.checks == "near_duplicates"
    path = build_short_input(args.rows) if near_only else build_input(args.rows)
    print(f"input: {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size / 1e6:.0f} MB), "
          f"{os.cpu_count()} cores", flush=True)
    results = []
    for contender in args.contenders.split(","):
        results.append(run_child(contender, path, args.checks, args.memory))
        print(json.dumps(results[-1]), flush=True)
    ok = [r for r in results if "error" not in r]
    base = ok[0] if ok else {}
    what = (f"near_duplicates only, {base.get('rows', 0):,} short text records" if near_only
            else f"{args.checks or 'Default scan'}, {base.get('rows', 0):,} Alpaca-shaped records")
    lines = [f"{what} ({path.stat().st_size / 1e6:.0f} MB JSONL), {os.cpu_count()} cores (shared), one run each"
             + (f", Ray object store {args.memory}" if args.memory else ""), "",
             ("| engine | scan s | records/s | Ray start s | peak RSS, all processes (MB) | driver peak RSS (MB) "
              "| driver peak anonymous (MB) | largest worker anonymous (MB) | same flags as first |"),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['contender']} | failed: {r['error']} | | | | | | | |")
            continue
        lines.append(f"| {r['contender']} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
                     f"{r['startup']:.1f} | {r['tree_peak_rss_mb']:,.0f} | {r['driver_peak_rss_mb']:,.0f} | "
                     f"{r['driver_peak_anon_mb']:,.0f} | {r['worker_peak_anon_mb']:,.0f} | "
                     f"{'yes' if r['digests'] == base['digests'] else 'NO'} |")
    lines += [""] + [f"{r['contender']} per check (s): " + ", ".join(f"{k} {v}" for k, v in r["checks"].items())
                     for r in ok]
    lines += [f"{r['contender']} steps (s): " + "; ".join(r["steps"]) for r in ok if r.get("steps")]
    text = "\n".join(lines)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"ray-{'near-' if near_only else ''}{base.get('rows', args.rows)}.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
