"""Benchmark the full default quality scan (``hubtools check``) on Alpaca-shaped records.

Run from the project root with the project's virtualenv::

    python bench/bench_checks.py                      # 1,000,000 records, 2 processes
    python bench/bench_checks.py --rows 100000        # smaller
    python bench/bench_checks.py --naive-rows 5000    # size of the naive per-record sample

Contenders, each in a fresh subprocess (wall time around the call, peak RSS of the process;
for hubtools also the peak of the summed PSS of the process and its workers and their CPU
seconds, sampled every 0.2 s by ``bench/peers/measure.py``, the sampler ``bench_peers.py``
uses, and the CPU seconds of each check, workers included):

* ``pyarrow``: ``pyarrow.json.read_json`` of the file: the raw-parse floor;
* ``hubtools``: ``run_checks(path, num_proc=N)`` + ``write_report``: the whole default scan
  (read, validate, every default check, report and plots);
* ``naive``: the same libraries called the naive way, one record at a time (orjson per line,
  xxhash per record, datasketch MinHash + MinHashLSH per record, langdetect per text,
  profanity-check per text, the PII patterns with ``regex.finditer`` per text, the refusal
  patterns per text) on the first ``--naive-rows`` records; its time is extrapolated to the
  full size linearly (the naive LSH only gets slower with size, so this flatters it).

The input is synthetic but realistic: sentences from LLaMA-Factory's ``alpaca_en_demo.json``
with about a third of the words swapped for other corpus words, so records are distinct;
2% exact duplicates (case/space changed), 2% near duplicates (a few words changed), 0.5%
records with an e-mail address, 0.5% refusals, 0.3% in French. Cached in ``bench/data/``.

Prints a markdown table (also written to ``bench/results/checks-<N>.md``). Targets on this
2-core machine: scan under 10 minutes and 4 GB peak for 1M records; at least 3x the naive way
(issue 16's goal: 1M records under 60 s, peak under 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
CORPUS_FILE = Path(__file__).resolve().parents[2] / "shared/corpus/llama_factory/alpaca_en_demo.json"
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"

FRENCH = [
    "Pouvez-vous m'expliquer comment fonctionne la photosynthèse dans les plantes vertes ?",
    "Écrivez un court poème sur la mer et le vent qui souffle sur la côte bretonne.",
    "Quels sont les avantages et les inconvénients du travail à distance pour une entreprise ?",
]
REFUSAL = "I'm sorry, but as an AI language model I cannot help with that request."


def _mutate(words: list[str], vocab: list[str], rng: random.Random, share: float) -> list[str]:
    return [rng.choice(vocab) if rng.random() < share else w for w in words]


def build_input(rows: int, directory: Path = DATA_DIR) -> Path:
    """Return the cached benchmark JSONL of ``rows`` records (in ``directory``), generating it if needed."""
    import orjson

    path = Path(directory) / f"checks-{rows}.jsonl"
    if path.exists():
        return path
    seeds = json.loads(CORPUS_FILE.read_text(encoding="utf-8"))
    vocab = sorted({w for s in seeds for w in (s["instruction"] + " " + s["output"]).split() if w.isalpha()})
    rng = random.Random(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    previous: list[dict] = []
    with tmp.open("wb") as fh:
        for i in range(rows):
            roll = rng.random()
            if previous and roll < 0.02:
                base = rng.choice(previous)
                record = {"instruction": "  " + base["instruction"].upper(), "input": base["input"],
                          "output": base["output"] + " "}
            elif previous and roll < 0.04:
                base = rng.choice(previous)
                out = base["output"].split()
                record = {"instruction": base["instruction"], "input": base["input"],
                          "output": " ".join(_mutate(out, vocab, rng, 0.03))}
            else:
                seed = seeds[rng.randrange(len(seeds))]
                instruction = " ".join(_mutate(seed["instruction"].split(), vocab, rng, 0.35))
                output = " ".join(_mutate(seed["output"].split(), vocab, rng, 0.35))
                if roll > 0.995:
                    output += f" Contact me at user{i}@example.org for details."
                elif roll > 0.99:
                    output = REFUSAL
                elif roll > 0.987:
                    instruction, output = rng.choice(FRENCH), rng.choice(FRENCH)
                record = {"instruction": instruction, "input": seed["input"], "output": output}
                if len(previous) < 5000:
                    previous.append(record)
                elif rng.random() < 0.01:
                    previous[rng.randrange(5000)] = record
            fh.write(orjson.dumps(record) + b"\n")
    tmp.replace(path)
    return path


# ---- child side ---------------------------------------------------------------------------


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


class _TreeSampler:
    """Peak of the summed RSS of this process and its worker processes, sampled every 0.2 s.

    ``RUSAGE_CHILDREN``'s max RSS is no use for spawned workers: it counts the parent's pages
    at the moment of the fork, before the exec, so it reports the parent's size again.
    """

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                return next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            return 0

    @staticmethod
    def _cmdline(pid: int) -> bytes:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return fh.read()
        except OSError:
            return b""

    def _tree(self) -> list[int]:
        if str(BENCH_DIR / "peers") not in sys.path:  # bench_ray uses this sampler too
            sys.path.insert(0, str(BENCH_DIR / "peers"))
        from measure import tree

        # a child caught between its (v)fork and its exec still shows its parent's pages as
        # its own RSS (a spawned worker then counted the whole parent again): skip it
        return tree(os.getpid(), keep=lambda parent, kid: self._cmdline(kid) != self._cmdline(parent))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mb = max(self.peak_mb, sum(self._rss_kb(p) for p in self._tree()) / 1024)

    def __enter__(self) -> _TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _tree_cpu() -> float:
    """CPU seconds (user + system) so far of this process and its live descendants (workers)."""
    from measure import _TICK, ticks, tree

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime + sum((ticks(pid) or (0, 0))[1] for pid in tree(os.getpid())[1:]) / _TICK


def _count_check_cpu() -> dict[str, float]:
    """Per check, the CPU seconds of this process and its workers while the check ran (filled as
    ``run_checks`` goes; the workers live through the whole scan, so none escapes the count)."""
    from hubtools.checks import runner

    spent: dict[str, float] = {}
    run_one = runner._run_one

    def timed(name, *args, **kwargs):
        start = _tree_cpu()
        try:
            return run_one(name, *args, **kwargs)
        finally:
            spent[name] = _tree_cpu() - start

    runner._run_one = timed
    return spent


def child(contender: str, path: str, num_proc: int, naive_rows: int) -> dict:
    if contender == "pyarrow":
        import pyarrow.json as pj

        t = time.perf_counter()
        table = pj.read_json(path)
        seconds, rows = time.perf_counter() - t, table.num_rows
    elif contender == "hubtools":
        import tempfile

        from hubtools.checks import run_checks
        from hubtools.publish.report import write_report

        sys.path.insert(0, str(BENCH_DIR / "peers"))
        from measure import Sampler

        cpu = _count_check_cpu()
        t = time.perf_counter()
        with Sampler() as tree:
            quality = run_checks(path, num_proc=num_proc)
            write_report(quality, tempfile.mkdtemp())
        seconds, rows = time.perf_counter() - t, quality.dataset["total"]
        return {"contender": contender, "seconds": seconds, "rows": rows,
                "peak_rss_mb": _rss_mb(resource.RUSAGE_SELF),
                "tree_peak_pss_mb": tree.peak_mb, "cpu_seconds": round(tree.cpu_seconds, 1),
                "checks": {k: round(v, 2) for k, v in quality.timings.items()},
                "checks_cpu": {k: round(v, 2) for k, v in cpu.items()},
                "flagged": {k: r.count for k, r in quality.results.items()}}
    else:
        seconds, rows, parts = naive(path, naive_rows)
        return {"contender": contender, "seconds": seconds, "rows": rows, "parts": parts,
                "peak_rss_mb": _rss_mb(resource.RUSAGE_SELF)}
    return {"contender": contender, "seconds": seconds, "rows": rows, "peak_rss_mb": _rss_mb(resource.RUSAGE_SELF)}


def naive(path: str, limit: int) -> tuple[float, int, dict]:
    """The same libraries, one record at a time."""
    import langdetect
    import orjson
    import regex
    import xxhash
    from datasketch import MinHash, MinHashLSH
    from profanity_check import predict_prob

    from hubtools.checks import pii, refusals

    langdetect.DetectorFactory.seed = 0
    patterns = [regex.compile(p) for p in getattr(pii, "NAIVE_PATTERNS", [r"[\w.+-]+@[\w-]+\.[\w.]+",
                                                                         r"\+?\d[\d ()-]{7,}\d"])]
    refusal = regex.compile(getattr(refusals, "NAIVE_PATTERN", r"(?i)as an ai language model|i'm sorry, but"))
    parts = dict.fromkeys(("parse", "exact", "minhash", "language", "toxicity", "pii", "refusals"), 0.0)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    seen = set()
    rows = 0
    with open(path, "rb") as fh:
        for line in fh:
            if rows >= limit:
                break
            t = time.perf_counter()
            rec = orjson.loads(line)
            prompt = rec["instruction"] + ("\n" + rec["input"] if rec["input"] else "")
            reply = rec["output"]
            t1 = time.perf_counter()
            parts["parse"] += t1 - t
            key = xxhash.xxh3_64_hexdigest(" ".join((prompt + " " + reply).lower().split()).encode())
            seen.add(key)
            t2 = time.perf_counter()
            parts["exact"] += t2 - t1
            words = (prompt + " " + reply).lower().split()
            m = MinHash(num_perm=128)
            for j in range(max(1, len(words) - 4)):
                m.update(" ".join(words[j:j + 5]).encode())
            lsh.query(m)
            lsh.insert(str(rows), m)
            t3 = time.perf_counter()
            parts["minhash"] += t3 - t2
            for text in (prompt, reply):
                try:
                    langdetect.detect(text)
                except langdetect.LangDetectException:
                    pass
            t4 = time.perf_counter()
            parts["language"] += t4 - t3
            predict_prob([reply])
            t5 = time.perf_counter()
            parts["toxicity"] += t5 - t4
            for text in (prompt, reply):
                for p in patterns:
                    list(p.finditer(text))
            t6 = time.perf_counter()
            parts["pii"] += t6 - t5
            refusal.search(reply)
            parts["refusals"] += time.perf_counter() - t6
            rows += 1
    return sum(parts.values()), rows, {k: round(v, 2) for k, v in parts.items()}


# ---- parent side --------------------------------------------------------------------------


def run_child(contender: str, path: Path, num_proc: int, naive_rows: int) -> dict:
    cmd = [sys.executable, __file__, "--child", contender, "--path", str(path),
           "--num-proc", str(num_proc), "--naive-rows", str(naive_rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    if out.returncode != 0:
        return {"contender": contender, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    parser.add_argument("--child")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path, args.num_proc, args.naive_rows)))
        return
    path = build_input(args.rows)
    print(f"input: {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size / 1e6:.0f} MB), "
          f"{os.cpu_count()} cores, num_proc={args.num_proc}", flush=True)
    results = {c: run_child(c, path, args.num_proc, args.naive_rows) for c in ("pyarrow", "hubtools", "naive")}
    hub, naive_r, pa_r = results["hubtools"], results["naive"], results["pyarrow"]
    if "error" in hub or "error" in naive_r:
        print(json.dumps(results, indent=2))
        return
    naive_full = naive_r["seconds"] / naive_r["rows"] * hub["rows"]
    lines = [
        f"Full default scan, {hub['rows']:,} Alpaca-shaped records ({path.stat().st_size / 1e6:.0f} MB JSONL), "
        f"{os.cpu_count()} cores, num_proc={args.num_proc}",
        "",
        "| contender | seconds | records/s | peak RSS (MB) |",
        "| --- | ---: | ---: | ---: |",
        f"| pyarrow.json.read_json (parse only) | {pa_r['seconds']:.1f} | {pa_r['rows'] / pa_r['seconds']:,.0f} "
        f"| {pa_r['peak_rss_mb']:,.0f} |",
        f"| hubtools check (every default check + report) | {hub['seconds']:.1f} | "
        f"{hub['rows'] / hub['seconds']:,.0f} | {hub['peak_rss_mb']:,.0f} (PSS with workers "
        f"{hub['tree_peak_pss_mb']:,.0f}) |",
        f"| naive, one record at a time ({naive_r['rows']:,} measured, extrapolated) | {naive_full:.1f} | "
        f"{naive_r['rows'] / naive_r['seconds']:,.0f} | {naive_r['peak_rss_mb']:,.0f} |",
        "",
        f"hubtools vs naive: {naive_full / hub['seconds']:.1f}x faster (target >= 3x); "
        f"scan {'under' if hub['seconds'] < 600 else 'OVER'} 10 min; "
        f"peak {'under' if max(hub['peak_rss_mb'], hub['tree_peak_pss_mb']) < 4096 else 'OVER'} 4 GB "
        "(main process, and main + workers sampled together).",
        "",
        f"CPU seconds, main + workers: {hub['cpu_seconds']}",
        "",
        "Per check (s): " + ", ".join(f"{k} {v}" for k, v in hub["checks"].items()),
        "",
        "Per check (CPU s, workers included): " + ", ".join(f"{k} {v}" for k, v in hub["checks_cpu"].items()),
        "",
        "Naive per part (s, on the sample): " + ", ".join(f"{k} {v}" for k, v in naive_r["parts"].items()),
        "",
        "Flagged: " + ", ".join(f"{k} {v:,}" for k, v in hub["flagged"].items()),
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"checks-{hub['rows']}.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
