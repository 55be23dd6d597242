"""The race: hubtools against datatrove and data-juicer on the same file, each in its own process.

Run from the project root with the project's virtualenv::

    python bench/bench_peers.py                  # 100,000 records, every line, both peers
    python bench/bench_peers.py --rows 50000     # smaller
    python bench/bench_peers.py --lines dedup,gopher --peers datatrove
    python bench/bench_peers.py --rows 20000 --lines gopher --peers none   # hubtools alone, seconds
    python bench/bench_peers.py --install-only   # make the peers' virtualenvs, run nothing

The peers never enter the project's environment. Each has its own virtualenv, made by this
script from its section of ``bench/peers/requirements.txt`` (every version pinned, including
what the peers pull in at run time without declaring it: spaCy, orjson and xxhash < 4 for
datatrove's MinHash; aiohttp, scipy, ray and the CPU torch already on this machine's disk for
data-juicer, which otherwise installs ray and a CUDA torch by itself on first use). The
virtualenvs live outside the repository, in ``~/.cache/hubtools-bench/peers/<name>``
(``HUBTOOLS_BENCH_CACHE`` moves them), and are reused while their section of the requirements
is unchanged, so a run after the first needs no network. Each peer runs from its runner script
(``bench/peers/run_<peer>.py``) with its virtualenv's Python.

Data: ``bench_checks.build_input`` (Alpaca-shaped records, 2% exact and 2% near copies) and the
exact all-pairs ground truth of ``bench_near_duplicates`` (Jaccard >= 0.8 over 3-word shingles
of the text hubtools' check compares: the fields joined by newlines). The peers read that same
text, written once as JSONL shards (one per worker: datatrove runs a task per file).

Lines of the table:

1. ``dedup``: exact + near-duplicate removal. hubtools ``exact_duplicates`` + ``near_duplicates``;
   datatrove's four-stage MinHash; data-juicer's ``document_deduplicator`` +
   ``document_minhash_deduplicator``. All at Jaccard 0.8 over 3-word shingles of lower-cased
   text without punctuation. Recall and precision against the exact truth, the first member of
   each cluster kept (``bench_near_duplicates.score``).
2. ``gopher``: the Gopher repetition rules (and quality rules) on the replies of the same records,
   with 3% of them made to loop (a sentence repeated, repeated lines, a runaway ending, a repeated
   paragraph; seeded, ``repetition-<N>.jsonl``). hubtools ``repetition`` (defaults: Gopher's
   thresholds, and under 50 words an n-gram must occur 3 times; also with ``min_words=0,
   min_repeats=2``, every rule on every text as datatrove applies them; hubtools reads the reply
   column alone, as the peers do, with its workers starting while it reads);
   datatrove ``GopherRepetitionFilter`` + ``GopherQualityFilter`` (defaults: Gopher's thresholds);
   data-juicer's repetition ops with the same thresholds (see ``run_data_juicer.py``). Agreement:
   Jaccard of the flagged index sets against hubtools', counts, and the share of the planted
   loops each one flags.
3. ``scan``: the whole default ``hubtools check`` (every default check and the report) against
   each peer's nearest pipeline (see the runners' docstrings: the peers' language and toxicity
   steps need models downloaded at run time, which this offline machine cannot, so they do less).

Time: the seconds the contender's own work took in its process (imports and interpreter start
excluded; the peers' runners time their pipeline the same way) and, in brackets, the wall time of
the whole process; CPU seconds of the process and all its workers over that work. Peak memory:
the summed PSS of the process and all its workers, sampled every 0.2 s (``peers/measure.py``,
the same code on every side). One run each: on a shared machine allow +-20% on CPU time, more on
wall time when other jobs load the cores. The table goes to ``bench/results/peers-<N>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import bench_checks  # noqa: E402  (the data generator, the process-tree memory sampler)
import bench_near_duplicates as bench_nd  # noqa: E402  (the exact ground truth and its scoring)
from peers.measure import Sampler  # noqa: E402  (the peers' runners measure themselves the same way)

PEERS_DIR = BENCH_DIR / "peers"
REQUIREMENTS = PEERS_DIR / "requirements.txt"
CACHE = Path(os.environ.get("HUBTOOLS_BENCH_CACHE", Path.home() / ".cache" / "hubtools-bench")) / "peers"
DATA_DIR = bench_checks.DATA_DIR
RESULTS_DIR = bench_checks.RESULTS_DIR
PEERS = ("datatrove", "data-juicer")
LINES = ("dedup", "gopher", "scan")
#: share of records whose reply the Gopher line makes loop
LOOP_SHARE = 0.03
NEAR_DUP_SPEEDUP_GOAL = 5.0
GOPHER_SPEEDUP_GOAL = 3.0


# ---- the peers' virtualenvs -----------------------------------------------------------------


def peer_requirements(text: str) -> dict[str, list[str]]:
    """Sections of the requirements file: ``# peer: NAME`` opens one; other comments and blank
    lines are skipped.

    >>> peer_requirements("# peer: a\\nx==1  # why\\n\\n# peer: b\\ny==2\\n")
    {'a': ['x==1'], 'b': ['y==2']}
    """
    out: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("# peer:"):
            current = out.setdefault(line.split(":", 1)[1].strip(), [])
        elif line and not line.startswith("#"):
            if current is None:
                raise ValueError(f"{REQUIREMENTS.name}: {line!r} comes before any '# peer: NAME' line")
            current.append(line.split("#", 1)[0].strip())
    return out


def ensure_peer(name: str, requirements: list[str]) -> Path:
    """The Python of ``name``'s virtualenv, made (once) from its pinned requirements."""
    env = CACHE / name
    python = env / "bin" / "python"
    stamp = env / "hubtools-bench-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    unpinned = [r for r in requirements if "==" not in r]
    if unpinned:
        sys.exit(f"{REQUIREMENTS}: every version must be pinned with ==; not: {', '.join(unpinned)}")
    print(f"installing {name} into {env} (once; reused while its requirements do not change) ...", flush=True)
    if env.exists():
        shutil.rmtree(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write(wanted)
    try:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", fh.name], check=True)
    finally:
        os.unlink(fh.name)
    stamp.write_text(wanted)
    return python


# ---- inputs ---------------------------------------------------------------------------------


def _write_shards(folder: Path, texts: list[str], shards: int) -> Path:
    """``{"id": position, "text": ...}`` JSONL, in ``shards`` contiguous files and one whole file."""
    import orjson

    if (folder / "done").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "shards").mkdir(parents=True)
    bounds = np.linspace(0, len(texts), shards + 1).astype(int)
    with (folder / "all.jsonl").open("wb") as whole:
        for k in range(shards):
            with (folder / "shards" / f"{k:05d}.jsonl").open("wb") as fh:
                for i in range(bounds[k], bounds[k + 1]):
                    line = orjson.dumps({"id": i, "text": texts[i]}) + b"\n"
                    fh.write(line)
                    whole.write(line)
    (folder / "done").write_text("")
    return folder


def loop_reply(reply: str, rng: random.Random) -> tuple[str, str]:
    """``reply`` made to loop, one of four ways (kind, text): the looping generations the
    repetition rules are for, from blatant to borderline.

    >>> kind, text = loop_reply("One. Two three four.", random.Random(3))
    >>> kind in ("sentence", "lines", "tail", "paragraph") and len(text) > len("One. Two three four.")
    True
    """
    sentences = [s.strip() for s in reply.replace("\n", " ").split(". ") if s.strip()] or [reply]
    kind = rng.choice(("sentence", "lines", "tail", "paragraph"))
    if kind == "sentence":  # one sentence over and over
        s = rng.choice(sentences).rstrip(".") + "."
        return kind, " ".join([s] * rng.randint(2, 60))
    if kind == "lines":  # the same lines again and again
        lines = [rng.choice(sentences) for _ in range(rng.randint(1, 3))]
        return kind, "\n".join(lines * rng.randint(2, 12))
    if kind == "tail":  # an honest start, then the last words loop
        words = reply.split()
        tail = " ".join(words[-rng.randint(3, 8):]) if words else reply
        return kind, reply + " " + " ".join([tail] * rng.randint(1, 15))
    return kind, reply + "\n\n" + reply  # the answer given twice


def build_repetition_input(path: Path) -> tuple[Path, np.ndarray]:
    """The records of ``path`` with ``LOOP_SHARE`` of the replies made to loop (cached), and the
    positions of the looped records."""
    import orjson

    out = DATA_DIR / f"repetition-{path.stem.split('-')[-1]}.jsonl"
    planted = out.with_suffix(".planted.npy")
    if out.exists() and planted.exists():
        return out, np.load(planted)
    rng = random.Random(1)
    looped = []
    tmp = out.with_suffix(".tmp")
    with path.open("rb") as src, tmp.open("wb") as dst:
        for i, line in enumerate(src):
            record = orjson.loads(line)
            if rng.random() < LOOP_SHARE:
                _, record["output"] = loop_reply(record["output"], rng)
                looped.append(i)
            dst.write(orjson.dumps(record) + b"\n")
    np.save(planted, np.asarray(looped, dtype=np.int64))
    tmp.replace(out)
    return out, np.asarray(looped, dtype=np.int64)


def replies(path: Path) -> list[str]:
    """The reply of each record (the field hubtools' ``repetition`` reads in Alpaca data)."""
    import orjson

    with path.open("rb") as fh:
        return [orjson.loads(line)["output"] for line in fh]


# ---- hubtools (child side, project virtualenv) ----------------------------------------------


#: the Gopher line's hubtools runs in one process below this input size: a spawned worker costs
#: about 2-3 CPU seconds to import the stack, more than it saves on ~200k replies or fewer
#: (measured at 100k: 5.1 CPU s in one process, 11.3 with two workers)
GOPHER_WORKERS_FROM_BYTES = 200_000_000


def gopher_child(path: str, num_proc: int, options: dict) -> tuple[set, dict]:
    """hubtools' ``repetition`` check as a curator who wants only it would run it: it reads the
    reply column alone (pyarrow, an explicit one-column schema: the peers too read the replies
    only), in one process up to ``GOPHER_WORKERS_FROM_BYTES`` of input, else with ``num_proc``
    workers started (and importing the check) while the file is read. The check itself, its
    options and batching are the library's."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    from hubtools.checks import REGISTRY, CheckData, repetition
    from hubtools.checks.base import make_pool
    from hubtools.records import Kind

    timings = {}
    t = time.perf_counter()
    pool = make_pool(num_proc if os.path.getsize(path) >= GOPHER_WORKERS_FROM_BYTES else 1)
    # an empty batch: each worker imports the check (about 2 s of CPU) while the file is read
    warm = [pool.submit(repetition._batch, {}, 50, True) for _ in range(num_proc)] if pool else []
    table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=pa.schema([("output", pa.string())]),
                                                             unexpected_field_behavior="ignore"))
    replies = pc.fill_null(table.column("output").combine_chunks(), "")
    del table
    data = CheckData(kind=Kind.SFT, index=np.arange(len(replies), dtype=np.int64), fields={"response": replies},
                     pool=pool, num_proc=num_proc if pool is not None else 1)
    timings["read replies"] = time.perf_counter() - t
    try:
        for future in warm:
            future.result()
        t = time.perf_counter()
        spec = REGISTRY["repetition"]
        result = spec.run(data, spec.make_options(options))
        timings["repetition"] = time.perf_counter() - t
    finally:
        if pool is not None:
            pool.shutdown()
    timings["workers"] = num_proc if pool is not None else 1
    return set(result.flagged), timings


def hubtools_child(task: str, path: str, num_proc: int, options: dict | None) -> dict:
    t0 = time.perf_counter()
    from hubtools.checks import run_checks

    try:
        from hubtools.publish.report import write_report
    except ImportError:  # before the move of report.py into hubtools/publish/
        from hubtools.report import write_report

    imports = time.perf_counter() - t0
    with Sampler() as tree:
        t = time.perf_counter()
        if task == "dedup":
            quality = run_checks(path, checks=["exact_duplicates", "near_duplicates"], num_proc=num_proc,
                                 options={"exact_duplicates": {"flag_same_prompt": False}})
            flagged = set(quality.results["exact_duplicates"].flagged) | set(quality.results["near_duplicates"].flagged)
        elif task == "gopher":
            flagged, timings = gopher_child(path, num_proc, options or {})
        else:
            quality = run_checks(path, num_proc=num_proc)
            with tempfile.TemporaryDirectory() as out:
                write_report(quality, out)
            flagged = set().union(*(r.flagged for r in quality.results.values()))
        seconds = time.perf_counter() - t
    return {"seconds": seconds, "cpu_seconds": tree.cpu_seconds, "imports": imports, "peak_mb": tree.peak_mb,
            "flagged": sorted(flagged),
            "timings": {k: round(v, 2) for k, v in (timings if task == "gopher" else quality.timings).items()}}


# ---- running the contenders ------------------------------------------------------------------


#: seconds a contender may take before it is stopped (``--timeout``; None: no limit)
TIMEOUT: float | None = None


def run(cmd: list[str], what: str) -> dict:
    """Run one contender's process in its own process group; its last stdout line is its JSON
    result. Past ``TIMEOUT`` the whole group is stopped (a forkserver's workers too)."""
    import signal

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate()
        print(f"  {what}: stopped, not finished in {TIMEOUT:.0f} s", flush=True)
        return {"error": f"not finished in {TIMEOUT:.0f} s", "wall": time.perf_counter() - t}
    finally:
        try:  # workers left behind by a contender that ended (or was stopped)
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not stdout.strip():
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        print(f"  {what}: FAILED (exit {proc.returncode})\n{tail}", flush=True)
        errors = [line for line in tail.splitlines() if "Error" in line or "error" in line]
        return {"error": f"exit {proc.returncode}" + (f", {errors[-1].strip()}" if errors else ""), "wall": wall}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall"] = wall
    print(f"  {what}: {result['seconds']:.1f} s (process {wall:.1f} s), {result.get('cpu_seconds', 0):.1f} CPU s, "
          f"peak {result.get('peak_mb', 0):,.0f} MB", flush=True)
    return result


#: the second hubtools row of the Gopher line: every rule on every text, an n-gram seen twice
#: counting at any length (Gopher's own reading, as datatrove applies it)
GOPHER_EVERYWHERE = {"min_words": 0, "min_repeats": 2}


def hubtools(task: str, path: Path, num_proc: int, options: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", task, "--path", str(path), "--num-proc", str(num_proc)]
    if options:
        cmd += ["--options", json.dumps(options)]
    return run(cmd, f"hubtools {task}" + (f" {options}" if options else ""))


def peer(name: str, python: Path, task: str, source: Path, workers: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-{task}-"))
    try:
        runner = PEERS_DIR / f"run_{name.replace('-', '_')}.py"
        return run([str(python), str(runner), task, "--input", str(source), "--work", str(work),
                    "--workers", str(workers)], f"{name} {task}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- scoring ------------------------------------------------------------------------------


def jaccard(a, b) -> float:
    """Jaccard of two index sets (1.0 when both are empty).

    >>> jaccard([1, 2, 3], [2, 3, 4])
    0.5
    >>> jaccard([], [])
    1.0
    """
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def positions(flagged: list[int], index: np.ndarray) -> list[int]:
    """hubtools' flagged record indices -> positions in the loaded texts (the peers' ids)."""
    return np.searchsorted(index, np.asarray(flagged, dtype=np.int64)).tolist()


def _fmt_s(r: dict) -> str:
    return "failed: " + r["error"] if "error" in r else f"{r['seconds']:.1f} ({r['wall']:.0f})"


def _fmt_cpu(r: dict) -> str:
    return "" if "error" in r or r.get("cpu_seconds") is None else f"{r['cpu_seconds']:.1f}"


def _fmt_mb(r: dict) -> str:
    return "" if "error" in r or not r.get("peak_mb") else f"{r['peak_mb']:,.0f}"


def _speedup(hub: dict, others: list[dict], key: str = "seconds") -> tuple[float, str] | None:
    """(the fastest peer's ``key`` / hubtools', that peer) by wall or CPU seconds."""
    ok = [(r[key], r["label"]) for r in others if "error" not in r and r.get(key)]
    if "error" in hub or not ok or not hub.get(key):
        return None
    fastest, label = min(ok)
    return fastest / hub[key], label


# ---- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for every contender (default 2)")
    parser.add_argument("--lines", default=",".join(LINES), help="which lines: dedup,gopher,scan")
    parser.add_argument("--peers", default=",".join(PEERS), help="which peers: datatrove,data-juicer (none: hubtools only)")
    parser.add_argument("--install-only", action="store_true", help="make the peers' virtualenvs and stop")
    parser.add_argument("--note", default="", help="a sentence added under the table (e.g. the machine's load)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop a contender after this many seconds (reported as not finished)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--num-proc", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--options", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(hubtools_child(args.child, args.path, args.num_proc,
                                        json.loads(args.options) if args.options else None)))
        return
    global TIMEOUT
    TIMEOUT = args.timeout
    lines = [x for x in args.lines.split(",") if x]
    names = [x for x in args.peers.split(",") if x and x != "none"]
    unknown = sorted(set(lines) - set(LINES)) + sorted(set(names) - set(PEERS))
    if unknown:
        sys.exit(f"unknown line or peer: {', '.join(unknown)}")
    sections = peer_requirements(REQUIREMENTS.read_text(encoding="utf-8"))
    pythons = {name: ensure_peer(name, sections[name]) for name in names}
    versions = {name: next(r.split("==")[1] for r in sections[name]
                           if r.split("==")[0].split("[")[0].lower() in (name, "py-" + name)) for name in names}
    if args.install_only:
        print("peers ready: " + ", ".join(f"{n} {versions[n]} ({pythons[n]})" for n in names))
        return

    started = time.perf_counter()
    path = bench_checks.build_input(args.rows)
    print(f"input: {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size / 1e6:.0f} MB), {os.cpu_count()} cores, "
          f"{args.workers} workers each", flush=True)
    if "dedup" in lines:
        truth = bench_nd.truth_for(path)  # the exact all-pairs truth: minutes at 100k the first time
        index = truth["index"]
    else:  # every record of the generator's file is valid: positions are the indices
        truth = None
        with path.open("rb") as fh:
            index = np.arange(sum(1 for _ in fh), dtype=np.int64)
    n = len(index)
    peer_dir = DATA_DIR / f"peers-{path.stem}"
    results: dict[str, dict[str, dict]] = {}
    if "dedup" in lines or "scan" in lines:
        _, _, texts = bench_nd.load_texts(str(path))
        _write_shards(peer_dir / "text", texts, args.workers)
        del texts
    if "dedup" in lines:
        print("line 1: exact + near-duplicate removal", flush=True)
        r = results["dedup"] = {"hubtools": hubtools("dedup", path, args.workers)}
        for name in names:
            r[name] = peer(name, pythons[name], "dedup", peer_dir / "text" / "shards", args.workers)
    planted = None
    if "gopher" in lines:
        print("line 2: Gopher repetition (and quality) filters", flush=True)
        rep_path, planted = build_repetition_input(path)
        _write_shards(peer_dir / "replies", replies(rep_path), args.workers)
        r = results["gopher"] = {"hubtools": hubtools("gopher", rep_path, args.workers),
                                 "hubtools everywhere": hubtools("gopher", rep_path, args.workers, GOPHER_EVERYWHERE)}
        for name in names:
            r[name] = peer(name, pythons[name], "gopher", peer_dir / "replies" / "shards", args.workers)
    if "scan" in lines:
        print("line 3: the whole default scan", flush=True)
        r = results["scan"] = {"hubtools": hubtools("scan", path, args.workers)}
        for name in names:
            r[name] = peer(name, pythons[name], "scan", peer_dir / "text" / "shards", args.workers)
    text = table(results, truth, planted, index, n, versions, args, path, time.perf_counter() - started)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"peers-{n}.md"
    out.write_text(text + "\n", encoding="utf-8")
    raw = {line: {k: {f: v for f, v in r.items() if f != "flagged_set"} for k, r in by.items()}
           for line, by in results.items()}
    out.with_suffix(".json").write_text(json.dumps(raw), encoding="utf-8")
    print(f"\nwritten to {out.relative_to(PROJECT_ROOT)}")


def table(results: dict, truth: dict, planted: np.ndarray | None, index: np.ndarray, n: int, versions: dict,
          args: argparse.Namespace, path: Path, elapsed: float) -> str:
    from importlib.metadata import version

    head = (f"{n:,} Alpaca-shaped records ({path.stat().st_size / 1e6:.0f} MB JSONL, `bench_checks.py`'s generator), "
            f"{os.cpu_count()} cores, {args.workers} workers allowed to every contender (hubtools' Gopher run takes "
            f"one process below {GOPHER_WORKERS_FROM_BYTES / 1e6:.0f} MB of input); hubtools "
            f"{version('hubtools')}" + "".join(f", {k} {v}" for k, v in versions.items()) + ".")
    out = [head, ""]
    out += ["| line | contender | seconds (process) | CPU s | peak MB (PSS), all processes | result |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    notes = []
    if "dedup" in results:
        r = results["dedup"]
        labels = {"hubtools": "hubtools `exact_duplicates` + `near_duplicates`",
                  "datatrove": "datatrove MinHash, 4 stages (Signature, Buckets, Cluster, Filter)",
                  "data-juicer": "data-juicer `document_deduplicator` + `document_minhash_deduplicator`"}
        for name, res in r.items():
            res["label"] = name
            score = ""
            if "error" not in res:
                flagged = positions(res["flagged"], index) if name == "hubtools" else res["removed"]
                s = bench_nd.score(flagged, truth, n)
                res["score"] = s
                score = (f"recall {s['recall']:.3f}, precision {s['precision']:.3f} "
                         f"({s['flagged']:,} removed, {s['missed']:,} missed, {s['false']:,} wrong)")
                extra = res.get("config")
                if extra:
                    score += f"; {extra}"
            out.append(f"| 1. exact + near dups (J >= 0.8) | {labels.get(name, name)} | {_fmt_s(res)} "
                       f"| {_fmt_cpu(res)} | {_fmt_mb(res)} | {score} |")
        sp = _speedup(r["hubtools"], [v for k, v in r.items() if k != "hubtools"])
        cp = _speedup(r["hubtools"], [v for k, v in r.items() if k != "hubtools"], "cpu_seconds")
        if sp:
            hub_s = r["hubtools"].get("score", {})
            good = hub_s.get("recall", 0) >= 0.99 and hub_s.get("precision", 0) >= 0.99
            cpu_note = f" ({cp[0]:.1f}x in CPU time, {cp[1]})" if cp else ""
            notes.append(f"Near-duplicates: hubtools is {sp[0]:.1f}x the fastest peer ({sp[1]}){cpu_note} at recall "
                         f"{hub_s.get('recall', 0):.3f} and precision {hub_s.get('precision', 0):.3f}: goal "
                         f">= {NEAR_DUP_SPEEDUP_GOAL:.0f}x at >= 0.99 "
                         f"{'met' if sp[0] >= NEAR_DUP_SPEEDUP_GOAL and good else 'NOT met'}.")
    if "gopher" in results:
        r = results["gopher"]
        hub = set(r["hubtools"].get("flagged", []))  # line positions: hubtools reads every line of the file
        loops = set(planted.tolist()) if planted is not None else set()
        for name, res in r.items():
            res["label"] = name
            if "error" in res:
                out.append(f"| 2. Gopher repetition | {name} | {_fmt_s(res)} | | | |")
                continue
            if name.startswith("hubtools"):
                flagged = set(res["flagged"])
                label = ("hubtools `repetition` (min_words=0, min_repeats=2: every rule on every text)"
                         if name == "hubtools everywhere" else "hubtools `repetition` (defaults)")
                desc = ""
            elif name == "datatrove":
                flagged = set(res["repetition"])
                label = "datatrove `GopherRepetitionFilter`"
                quality = set(res["quality"])
                desc = (f"; then `GopherQualityFilter` removed {len(quality):,} of the rest ({len(quality) / n:.0%} of "
                        "the records; mostly its 50-word floor; hubtools has no such rule)")
            else:
                flagged = set(res["repetition"])
                label = "data-juicer " + res.get("ops", "repetition ops")
                desc = ""
            res["flagged_set"] = flagged
            agree = f"Jaccard with hubtools {jaccard(flagged, hub):.3f}" if not name.startswith("hubtools") else ""
            if name == "hubtools everywhere":
                agree = f"Jaccard with hubtools default {jaccard(flagged, hub):.3f}"
            loop_share = len(flagged & loops) / len(loops) if loops else 0.0
            result = (f"{len(flagged):,} flagged ({len(flagged & loops):,} of the {len(loops):,} planted loops: recall "
                      f"{loop_share:.1%}; {len(flagged - loops):,} others)" + (f"; {agree}" if agree else "") + desc)
            if name == "datatrove":
                label += " + `GopherQualityFilter`, one pipeline"
            out.append(f"| 2. Gopher repetition | {label} | {_fmt_s(res)} | {_fmt_cpu(res)} | {_fmt_mb(res)} "
                       f"| {result} |")
        peers_ = [v for k, v in r.items() if not k.startswith("hubtools")]
        sp = _speedup(r["hubtools"], peers_)
        cp = _speedup(r["hubtools"], peers_, "cpu_seconds")
        if sp:
            cpu_note = f" ({cp[0]:.1f}x in CPU time, {cp[1]})" if cp else ""
            notes.append(f"Gopher filters: hubtools `repetition` is {sp[0]:.1f}x the fastest peer ({sp[1]}){cpu_note}: goal "
                         f">= {GOPHER_SPEEDUP_GOAL:.0f}x {'met' if sp[0] >= GOPHER_SPEEDUP_GOAL else 'NOT met'} on "
                         "time; the flagged sets are compared above (the rules differ in detail, see bench/README.md).")
    if "scan" in results:
        r = results["scan"]
        labels = {"hubtools": "hubtools `check` (every default check + report)",
                  "datatrove": "datatrove: PIIFormatter + Gopher repetition + quality, then the 4-stage MinHash",
                  "data-juicer": "data-juicer: the recipe in `run_data_juicer.py` (dedup, repetition, quality, PII)"}
        for name, res in r.items():
            res["label"] = name
            result = ""
            if "error" not in res:
                result = f"{len(res['flagged']):,} records flagged or removed"
                if name == "hubtools":
                    result += "; per check (s): " + ", ".join(f"{k} {v}" for k, v in res["timings"].items())
            out.append(f"| 3. whole default scan | {labels.get(name, name)} | {_fmt_s(res)} | {_fmt_cpu(res)} "
                       f"| {_fmt_mb(res)} | {result} |")
    out += ["", *notes] + (["", *bench_nd.truth_summary(truth)] if truth is not None else [])
    if args.note:
        out += ["", args.note]
    out += ["", f"Seconds: the contender's own work in its process (imports excluded), then the whole process in "
                f"brackets; CPU s: user + system time of the process and its workers over that work (less "
                f"sensitive to other jobs on the machine than wall time); peak MB: the summed PSS of the process "
                f"and its workers (a page shared by forked workers counted once). One run each. Whole bench: {elapsed:.0f} s."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
