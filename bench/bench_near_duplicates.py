"""Benchmark the near-duplicate stage (``near_duplicates`` check) against the naive datasketch loop.

Run from the project root with the project's virtualenv::

    python bench/bench_near_duplicates.py                 # 100,000 records
    python bench/bench_near_duplicates.py --rows 20000    # smaller, quicker
    python bench/bench_near_duplicates.py --baseline-rows 25000   # naive loop on a prefix, time scaled
    python bench/bench_near_duplicates.py --repeats 3 --baseline-repeats 3   # best of 3 for both

Duration at 100k: about 4.5 minutes of CPU, of which the naive loop alone is about 4 (245 s CPU
measured), plus 1.5 minutes once for the ground truth (cached); expect 8-10 minutes of wall time
when other jobs share the 2 cores.

Data: ``build_input`` of ``bench/bench_checks.py`` (Alpaca-shaped records, cached in
``bench/data/``). It plants 2% exact copies (case/space changed: Jaccard 1) and 2% near copies
(3% of the reply's words swapped) of earlier records. Both contenders compare the same text per
record: prompt and reply joined with a newline, as the check does.

Contenders, each run in a fresh subprocess; only the stage is timed (not imports, not loading):

* ``hubtools``: ``REGISTRY["near_duplicates"].run(dataset)`` on the dataset ``hubtools.load``
  returned (default options: Jaccard 0.8, 128 permutations, 3-word shingles; one process unless
  ``--num-proc``). Flags every member after the first of a cluster.
* ``datasketch``: the naive way, one record at a time in Python: the same shingles
  (``near_duplicates.word_shingles``), ``MinHash(num_perm=128)`` updated shingle by shingle,
  ``MinHashLSH(threshold=0.8, num_perm=128)`` queried then inserted per record; a record is
  flagged when its query finds an earlier record.

Ground truth is exact, not sampled: every pair of records whose 3-shingle sets have Jaccard
>= 0.8, found with an exact prefix-filtering similarity join and verified with Python sets
(computed once in its own subprocess, cached in ``bench/data/``). The generator's own record of
what it planted (replayed from its seed and checked byte for byte against the file) is reported
next to it, and every planted copy with true Jaccard >= 0.8 must be in the truth.

* recall = flagged records that have an earlier record at Jaccard >= 0.8 / all such records;
* precision = flagged records that truly belong to a near-duplicate cluster and are not its
  first member / flagged records (the check's own rule; the naive rule's true hits all pass it).

Prints a markdown table (contender, seconds, records/s, recall, precision, peak RSS during the
stage) and the speedup, and writes it to ``bench/results/near_duplicates-<N>.md``. Seconds are the
best of ``--repeats`` runs for hubtools (default 3) and of ``--baseline-repeats`` for datasketch
(default 1: one naive run over 100k records takes minutes). Exits with status 1 unless hubtools
is at least 3x faster than the naive loop at the same recall (hubtools recall >= the naive
recall - 0.02).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import bench_checks  # noqa: E402  (the data generator)

DATA_DIR = bench_checks.DATA_DIR
RESULTS_DIR = bench_checks.RESULTS_DIR
THRESHOLD = 0.8
NUM_PERM = 128
SHINGLE_SIZE = 3
SPEEDUP_TARGET = 3.0
RECALL_SLACK = 0.02


# ---- shared helpers -----------------------------------------------------------------------


def load_texts(path: str, texts: bool = True):
    """(dataset, source indices, one text per record or None) the way the check sees them."""
    from hubtools.checks import CheckData
    from hubtools.load import load

    dataset = load(path).dataset
    data = CheckData.from_dataset(dataset)
    if not texts:
        return dataset, data.index, None
    columns = [data.texts(name) for name in data.fields]  # the check's default: every field
    return dataset, data.index, ["\n".join(parts) for parts in zip(*columns)]


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux clear_refs), if allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb(reset_ok: bool) -> float:
    hwm = _status_mb("VmHWM") if reset_ok else None
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- ground truth ---------------------------------------------------------------------------


def exact_similar_pairs(sets: list[set[str]], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a < b) of ``sets`` with Jaccard >= ``threshold``, and its exact Jaccard.

    Prefix filtering (Bayardo et al., "All-pairs"): with tokens ordered rarest first, two sets
    with Jaccard >= t share a token among the first ``|x| - ceil(t |x|) + 1`` tokens of each,
    so the pairs sharing a prefix token contain every answer; each is then checked exactly.
    """
    ids: dict[str, int] = {}
    encoded = [np.fromiter((ids.setdefault(s, len(ids)) for s in st), dtype=np.int64, count=len(st))
               for st in sets]
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    flat = np.concatenate(encoded) if encoded else np.zeros(0, np.int64)
    row = np.repeat(np.arange(len(sets), dtype=np.int64), sizes)
    freq = np.bincount(flat, minlength=len(ids))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.lexsort((np.arange(len(ids)), freq))] = np.arange(len(ids))
    order = np.lexsort((rank[flat], row))  # each row's tokens, rarest first
    flat, row = flat[order], row[order]
    start = np.cumsum(sizes) - sizes
    position = np.arange(len(flat)) - start[row]
    prefix = sizes - np.ceil(threshold * sizes - 1e-9).astype(np.int64) + 1
    keep = position < prefix[row]
    tok, who = flat[keep], row[keep]
    by_token = np.lexsort((who, tok))
    tok, who = tok[by_token], who[by_token]
    bounds = np.flatnonzero(np.r_[True, tok[1:] != tok[:-1], True])
    cand_a, cand_b = [], []
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if e - s < 2:
            continue
        members = who[s:e]
        ia, ib = np.triu_indices(e - s, 1)
        cand_a.append(members[ia])
        cand_b.append(members[ib])
    if not cand_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    codes = np.unique(np.concatenate(cand_a) * (1 << 32) + np.concatenate(cand_b))
    a, b = codes >> 32, codes & ((1 << 32) - 1)
    lo, hi = np.minimum(sizes[a], sizes[b]), np.maximum(sizes[a], sizes[b])
    fits = lo >= threshold * hi - 1e-9  # size filter: J <= |small| / |large|
    a, b = a[fits], b[fits]
    jac = np.array([len(sets[x] & sets[y]) / len(sets[x] | sets[y]) for x, y in zip(a.tolist(), b.tolist())])
    ok = jac >= threshold - 1e-12
    return a[ok], b[ok], jac[ok]


def replay_planted(path: Path, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """What ``bench_checks.build_input`` planted: (source position or -1, kind 0 fresh / 1 exact
    copy / 2 near copy) per record, by replaying its random stream. None if the replay does not
    reproduce the file byte for byte (the generator changed)."""
    import orjson

    seeds = json.loads(bench_checks.CORPUS_FILE.read_text(encoding="utf-8"))
    vocab = sorted({w for s in seeds for w in (s["instruction"] + " " + s["output"]).split() if w.isalpha()})
    rng = random.Random(0)
    previous: list[dict] = []
    previous_at: list[int] = []
    source = np.full(rows, -1, dtype=np.int64)
    kind = np.zeros(rows, dtype=np.int8)
    mutate = bench_checks._mutate
    with path.open("rb") as fh:
        for i in range(rows):
            roll = rng.random()
            if previous and roll < 0.02:
                j = rng.choice(range(len(previous)))  # consumes the stream as rng.choice(previous)
                base = previous[j]
                record = {"instruction": "  " + base["instruction"].upper(), "input": base["input"],
                          "output": base["output"] + " "}
                source[i], kind[i] = previous_at[j], 1
            elif previous and roll < 0.04:
                j = rng.choice(range(len(previous)))
                base = previous[j]
                out = base["output"].split()
                record = {"instruction": base["instruction"], "input": base["input"],
                          "output": " ".join(mutate(out, vocab, rng, 0.03))}
                source[i], kind[i] = previous_at[j], 2
            else:
                seed = seeds[rng.randrange(len(seeds))]
                instruction = " ".join(mutate(seed["instruction"].split(), vocab, rng, 0.35))
                output = " ".join(mutate(seed["output"].split(), vocab, rng, 0.35))
                if roll > 0.995:
                    output += f" Contact me at user{i}@example.org for details."
                elif roll > 0.99:
                    output = bench_checks.REFUSAL
                elif roll > 0.987:
                    instruction, output = rng.choice(bench_checks.FRENCH), rng.choice(bench_checks.FRENCH)
                record = {"instruction": instruction, "input": seed["input"], "output": output}
                if len(previous) < 5000:
                    previous.append(record)
                    previous_at.append(i)
                elif rng.random() < 0.01:
                    k = rng.randrange(5000)
                    previous[k], previous_at[k] = record, i
            if fh.readline() != orjson.dumps(record) + b"\n":
                return None
    return source, kind


def compute_truth(path: str, out: str) -> None:
    """Exact near-duplicate truth of the file, saved as .npz (runs in its own subprocess)."""
    from hubtools.checks.near_duplicates import components
    from hubtools.text import word_shingles

    t = time.perf_counter()
    _, index, texts = load_texts(path)
    n = len(texts)
    sets = [word_shingles(text, SHINGLE_SIZE) for text in texts]
    a, b, jac = exact_similar_pairs(sets, THRESHOLD)
    label = components(n, a, b) if n else np.zeros(0, np.int64)
    # best Jaccard to an earlier record (0 when none reaches the threshold)
    best_earlier = np.zeros(n)
    np.maximum.at(best_earlier, b, jac)
    planted = replay_planted(Path(path), n) if np.array_equal(index, np.arange(n)) else None
    extra = {}
    if planted is not None:
        source, kind = planted
        copies = np.flatnonzero(source >= 0)
        extra = {"planted_source": source, "planted_kind": kind,
                 "planted_jaccard": np.array([len(sets[i] & sets[source[i]]) / len(sets[i] | sets[source[i]])
                                              if sets[i] | sets[source[i]] else 0.0 for i in copies.tolist()])}
    np.savez(out, a=a, b=b, jaccard=jac, label=label, best_earlier=best_earlier, index=index,
             seconds=time.perf_counter() - t, **extra)


def truth_for(path: Path) -> dict:
    stat = path.stat()
    cache = DATA_DIR / f"near_duplicates-truth-{path.stem}-{stat.st_size}-{stat.st_mtime_ns}.npz"
    if not cache.exists():
        print("computing the exact ground truth (once, cached) ...", flush=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        cmd = [sys.executable, __file__, "--child", "truth", "--path", str(path), "--out", str(tmp)]
        subprocess.run(cmd, cwd=PROJECT_ROOT, check=True)
        tmp.replace(cache)
    with np.load(cache) as z:
        return {k: z[k] for k in z.files}


# ---- contenders (child side) ---------------------------------------------------------------


def run_hubtools(path: str, num_proc: int) -> dict:
    from hubtools.checks import REGISTRY, CheckData
    from hubtools.checks.base import make_pool

    dataset, index, _ = load_texts(path, texts=False)
    target = dataset
    pool = None
    if num_proc > 1:  # a view with a worker pool (started, and warmed up, before the clock)
        pool = make_pool(num_proc)
        list(pool.map(abs, range(num_proc)))
        target = CheckData.from_dataset(dataset, num_proc=num_proc, pool=pool)
    gc.collect()
    before = _status_mb("VmRSS")
    reset_ok = reset_peak()
    t, c = time.perf_counter(), time.process_time()
    result = REGISTRY["near_duplicates"].run(target)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    peak = peak_mb(reset_ok)
    if pool is not None:
        pool.shutdown()
    flagged = np.searchsorted(index, np.asarray(result.flagged, dtype=np.int64))
    stats = {k: result.stats[k] for k in ("candidate_pairs", "exact_pairs", "similar_pairs", "identical_shingles",
                                          "clusters", "bands", "rows_per_band") if k in result.stats}
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": len(index), "measured_rows": len(index),
            "flagged": flagged.tolist(), "peak_rss_mb": peak,
            "loaded_rss_mb": before, "stats": stats}


def run_datasketch(path: str, limit: int | None) -> dict:
    from datasketch import MinHash, MinHashLSH

    from hubtools.text import word_shingles

    dataset, index, texts = load_texts(path)
    rows = len(texts)
    texts = texts[:limit] if limit else texts
    gc.collect()
    before = _status_mb("VmRSS")
    reset_ok = reset_peak()
    t, c = time.perf_counter(), time.process_time()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    flagged = []
    for i, text in enumerate(texts):
        shingles = word_shingles(text, SHINGLE_SIZE)
        if not shingles:  # no word at all: nothing to compare (the check skips these too)
            continue
        m = MinHash(num_perm=NUM_PERM)
        for shingle in shingles:
            m.update(shingle.encode("utf-8"))
        if lsh.query(m):
            flagged.append(i)
        lsh.insert(i, m)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows, "measured_rows": len(texts), "flagged": flagged, "peak_rss_mb": peak_mb(reset_ok),
            "loaded_rss_mb": before, "stats": {"bands": lsh.b, "rows_per_band": lsh.r}}


def child(args: argparse.Namespace) -> None:
    if args.child == "truth":
        compute_truth(args.path, args.out)
        return
    result = (run_hubtools(args.path, args.num_proc) if args.child == "hubtools"
              else run_datasketch(args.path, args.baseline_rows))
    print(json.dumps(result))


# ---- parent side ---------------------------------------------------------------------------


def run_child(contender: str, path: Path, num_proc: int, baseline_rows: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", contender, "--path", str(path), "--num-proc", str(num_proc)]
    if baseline_rows:
        cmd += ["--baseline-rows", str(baseline_rows)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    if out.returncode != 0:
        sys.exit(f"{contender} run failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of(contender: str, path: Path, num_proc: int, repeats: int, baseline_rows: int | None = None) -> dict:
    runs = []
    for k in range(repeats):
        runs.append(run_child(contender, path, num_proc, baseline_rows))
        r = runs[-1]
        print(f"  {contender} run {k + 1}/{repeats}: {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU) "
              f"on {r['measured_rows']:,} records", flush=True)
    flagged = {tuple(r["flagged"]) for r in runs}
    if len(flagged) != 1:
        print(f"  warning: {contender} flagged different records in different runs", flush=True)
    best = min(runs, key=lambda r: r["seconds"])
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["cpu_seconds"] = min(r["cpu_seconds"] for r in runs)
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    # the naive loop is online (a record's flag depends on earlier records only), so a prefix run
    # flags exactly what the full run flags there; its time is scaled to the full size
    scale = best["rows"] / best["measured_rows"]
    best["full_seconds"], best["full_cpu_seconds"] = best["seconds"] * scale, best["cpu_seconds"] * scale
    return best


def score(flagged: list[int], truth: dict, measured: int) -> dict:
    """Recall and precision over the first ``measured`` records (all of them unless a prefix run)."""
    n = len(truth["label"])
    flags = np.zeros(n, dtype=bool)
    flags[np.asarray(flagged, dtype=np.int64)] = True
    scope = np.arange(n) < measured
    earlier = (truth["best_earlier"] > 0) & scope  # has an earlier record at Jaccard >= threshold
    in_cluster = truth["label"] != np.arange(n)  # in a true cluster and not its first member
    hits = int((flags & earlier).sum())
    correct = int((flags & in_cluster).sum())
    bands = {}
    for name, lo, hi in (("[0.8, 0.9)", THRESHOLD, 0.9), ("[0.9, 1)", 0.9, 1.0 - 1e-12), ("1.0", 1.0 - 1e-12, 2)):
        sel = earlier & (truth["best_earlier"] >= lo) & (truth["best_earlier"] < hi)
        bands[name] = (int((flags & sel).sum()), int(sel.sum()))
    out = {"flagged": int(flags.sum()), "recall": hits / max(1, int(earlier.sum())),
           "precision": correct / int(flags.sum()) if flags.any() else 1.0,
           "missed": int(earlier.sum()) - hits, "false": int(flags.sum()) - correct, "bands": bands}
    if "planted_source" in truth:
        copies = np.flatnonzero(truth["planted_source"] >= 0)
        true_copies = copies[truth["planted_jaccard"] >= THRESHOLD - 1e-12]
        true_copies = true_copies[true_copies < measured]
        out["planted_recall"] = float(flags[true_copies].mean()) if len(true_copies) else 1.0
    return out


def truth_summary(truth: dict) -> list[str]:
    n = len(truth["label"])
    earlier = truth["best_earlier"] > 0
    in_cluster = truth["label"] != np.arange(n)
    lines = [f"Ground truth (exact, every pair): {len(truth['a']):,} pairs at Jaccard >= {THRESHOLD}; "
             f"{int(earlier.sum()):,} records have an earlier record at >= {THRESHOLD} (recall base), "
             f"{int(in_cluster.sum()):,} are a later member of a cluster (precision base); "
             f"computed in {float(truth['seconds']):.0f} s."]
    if "planted_source" in truth:
        kind, jac = truth["planted_kind"], truth["planted_jaccard"]
        copies_kind = kind[truth["planted_source"] >= 0]
        exact, near = copies_kind == 1, copies_kind == 2
        ok = jac >= THRESHOLD - 1e-12
        true_copies = np.flatnonzero(truth["planted_source"] >= 0)[ok]
        missing = int((~earlier[true_copies]).sum())
        lines.append(
            f"Planted by the generator (replayed, byte-identical): {int(exact.sum()):,} exact copies "
            f"({int((exact & ok).sum()):,} at Jaccard >= {THRESHOLD}), {int(near.sum()):,} near copies "
            f"({int((near & ok).sum()):,} at >= {THRESHOLD}, {int((near & ~ok).sum()):,} below: not duplicates); "
            f"{int(earlier.sum()) - len(true_copies):,} unplanted records (chance matches, mostly short seeds) "
            f"also have an earlier record at >= {THRESHOLD}. Planted copies at >= {THRESHOLD} missing from the "
            f"truth: {missing} (must be 0).")
        if missing:
            sys.exit("ground truth is inconsistent with the planted copies: the exact join is broken")
    else:
        lines.append("Planted-copy replay did not reproduce the data file (generator changed): truth is "
                     "the exact join alone.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="records in the data (default 100,000)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process runs of hubtools; best is kept")
    parser.add_argument("--baseline-repeats", type=int, default=1,
                        help="fresh-process runs of the naive datasketch loop (default 1: it takes minutes)")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="run the naive loop on the first N records only (quick look): its flags there are "
                             "those of a full run, recall and precision are scored on them, its time is scaled "
                             "to the full size; default: every record")
    parser.add_argument("--num-proc", type=int, default=1,
                        help="worker processes for hubtools (default 1, like the naive loop)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    import datasketch
    import numba  # noqa: F401

    from importlib.metadata import version

    started = time.perf_counter()
    path = bench_checks.build_input(args.rows)
    print(f"input: {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size / 1e6:.0f} MB), {os.cpu_count()} cores",
          flush=True)
    truth = truth_for(path)
    baseline_rows = args.baseline_rows if args.baseline_rows and args.baseline_rows < args.rows else None
    hub = best_of("hubtools", path, args.num_proc, max(1, args.repeats))
    naive = best_of("datasketch", path, 1, max(1, args.baseline_repeats), baseline_rows)
    rows = hub["rows"]
    hs = score(hub["flagged"], truth, rows)
    ns = score(naive["flagged"], truth, naive["measured_rows"])
    prefix = naive["measured_rows"] < rows
    speedup = naive["full_seconds"] / hub["seconds"]
    cpu_speedup = naive["full_cpu_seconds"] / hub["cpu_seconds"]
    fast_enough = speedup >= SPEEDUP_TARGET
    same_recall = hs["recall"] >= ns["recall"] - RECALL_SLACK

    def row(name: str, r: dict, s: dict) -> str:
        seconds = f"{r['full_seconds']:.2f}" + (f" (scaled from {r['measured_rows']:,} records)" if prefix and r is naive
                                               else f" (best of {len(r['all_seconds'])})")
        return (f"| {name} | {seconds} | {r['full_cpu_seconds']:.2f} | {rows / r['full_seconds']:,.0f} "
                f"| {s['recall']:.4f} | {s['precision']:.4f} "
                f"| {r['peak_rss_mb']:,.0f} (after loading: {r['loaded_rss_mb']:,.0f}) |")

    def bands(s: dict) -> str:
        return ", ".join(f"J {k}: {hit:,}/{tot:,}" for k, (hit, tot) in s["bands"].items())

    scope = f" (first {naive['measured_rows']:,} records)" if prefix else ""

    def runs(r: dict) -> str:
        return ", ".join(f"{x:.2f}" for x in r["all_seconds"])

    lines = [
        f"Near-duplicate stage, {rows:,} Alpaca-shaped records ({path.stat().st_size / 1e6:.0f} MB JSONL), "
        f"{os.cpu_count()} cores; Jaccard >= {THRESHOLD} over {SHINGLE_SIZE}-word shingles, {NUM_PERM} permutations; "
        f"numba {version('numba')}, datasketch {datasketch.__version__}",
        "",
        "| contender | seconds | CPU s | records/s | recall | precision | peak RSS in stage (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        row(f"hubtools `near_duplicates` check ({'1 process' if args.num_proc <= 1 else f'{args.num_proc} processes'}, "
            f"LSH b={hub['stats'].get('bands')} r={hub['stats'].get('rows_per_band')} + exact verification)", hub, hs),
        row(f"naive per-record datasketch MinHash + MinHashLSH (b={naive['stats']['bands']} "
            f"r={naive['stats']['rows_per_band']}, no verification)", naive, ns),
        "",
        f"Speedup: hubtools is {speedup:.1f}x faster than the naive datasketch loop in wall time ({cpu_speedup:.1f}x in "
        f"CPU time; target >= {SPEEDUP_TARGET:.0f}x) at recall {hs['recall']:.4f} vs {ns['recall']:.4f} "
        f"(must be >= naive - {RECALL_SLACK}): {'PASS' if fast_enough and same_recall else 'FAIL'}.",
        "",
        *truth_summary(truth),
        "",
        f"hubtools: flagged {hs['flagged']:,}, missed {hs['missed']:,}, wrong {hs['false']:,}; recall by true Jaccard: "
        f"{bands(hs)}" + (f"; planted-copy recall {hs['planted_recall']:.4f}" if "planted_recall" in hs else "")
        + f"; runs {runs(hub)} s; pairs: "
        + ", ".join(f"{k} {v:,}" for k, v in hub["stats"].items() if k.endswith("pairs")) + ".",
        f"datasketch{scope}: flagged "
        f"{ns['flagged']:,}, missed {ns['missed']:,}, wrong {ns['false']:,}; recall by true Jaccard: {bands(ns)}"
        + (f"; planted-copy recall {ns['planted_recall']:.4f}" if "planted_recall" in ns else "")
        + f"; runs {runs(naive)} s.",
        "",
        "Seconds: wall time of the stage only (data loaded, libraries imported), best of the runs, each run in a "
        "fresh process; CPU s: its process CPU time (less sensitive to other load on the machine). Peak RSS: the "
        "process high-water mark during the stage (reset after loading), which includes the loaded data. "
        f"Whole benchmark: {time.perf_counter() - started:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"near_duplicates-{rows}.md"
    out.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {out.relative_to(PROJECT_ROOT)}")
    if not (fast_enough and same_recall):
        reasons = []
        if not fast_enough:
            reasons.append(f"only {speedup:.2f}x faster than the naive loop (target {SPEEDUP_TARGET:.0f}x)")
        if not same_recall:
            reasons.append(f"recall {hs['recall']:.4f} is below the naive {ns['recall']:.4f} - {RECALL_SLACK}")
        sys.exit("FAIL: hubtools near_duplicates is " + " and ".join(reasons))


if __name__ == "__main__":
    main()
