"""Fuzz the readers: byte-level mutations of corpus files in every container never crash, hang
or lose a record.

Each case runs ``validate_to_dir`` (read, detect, convert, validate, write) on one mutated file.
A case may end in a quarantine or in a clear refusal (a HubtoolsError); anything else is a bug.
The whole batch runs in a child process, so a segfault shows as a failure naming the case, and
a hang as a timeout naming it; each case also reports its own time.

Run by hand for more cases: ``python -m tests.test_fuzz_readers OUT_DIR --cases 2000 --seed 7``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .conftest import CORPUS

SEED = 20261203
CASES = 320
#: the longest one case may take (seconds); a hang shows as a case over it or as the batch timing out
CASE_SECONDS = 10.0
BATCH_SECONDS = 150

#: what a mutation may insert: hostile input the readers must turn into a quarantine row or a refusal
SNIPPETS = [
    b"[" * 20_000, b'{"a":' * 3_000, b"1" * 5_000, b"-1e-400", b"1e400", b"NaN", b"-Infinity",
    b"123456789012345678901234567890", b'"\\ud800"', b"\xff\xfe", b"\xe9", b"\x00", b'"', b",", b"}", b"]",
    b"{", b"[", b"\n", b"\r\n", b'"instruction": 1, "instruction": 2, ', b"\\", b"\t", b'""', b"null",
]


def _seeds(work: Path) -> dict[str, bytes]:
    """Seed files by the name they are written under: corpus files, and the same records as CSV,
    Parquet and gzip (the corpus has none of those but one large .jsonl.gz)."""
    from hubtools import load
    from hubtools.convert import write

    seeds = {
        "identity.json": (CORPUS / "llama_factory/identity.json").read_bytes(),
        "audio.json": (CORPUS / "real_world/llamafactory_mllm_audio_demo.json").read_bytes(),
        "dpo_v1.json": (CORPUS / "real_world/llamafactory_v1_docs_dpo_example.json").read_bytes(),
        "firefly.jsonl": (CORPUS / "real_world/elianfactory_firefly_sample.jsonl").read_bytes(),
        "openpipe.jsonl": (CORPUS / "real_world/openpipe_legacy_function_call_messages.jsonl").read_bytes(),
        "mt_bench.jsonl": (CORPUS / "fastchat/mt_bench_question.jsonl").read_bytes()[:16_000],
        "wiki.txt": (CORPUS / "llama_factory/wiki_demo.txt").read_bytes()[:16_000],
        "hh_rlhf.jsonl.gz": (CORPUS / "hh_rlhf/harmless_base_test.jsonl.gz").read_bytes()[:60_000],
    }
    seeds["firefly.jsonl.gz"] = gzip.compress(seeds["firefly.jsonl"], mtime=0)
    seeds["identity.json.gz"] = gzip.compress(seeds["identity.json"], mtime=0)
    made = work / "made"
    made.mkdir(parents=True, exist_ok=True)
    identity = load(CORPUS / "llama_factory/identity.json")
    pairs = load(CORPUS / "llama_factory/dpo_en_demo.json")
    for name, loaded, fmt in [("identity.csv", identity, "alpaca"), ("identity.parquet", identity, "alpaca"),
                              ("pairs.parquet", pairs, "sharegpt_preference")]:
        write(loaded.dataset.select(range(40)), made / name, format=fmt, kind=loaded.kind)
        seeds[name] = (made / name).read_bytes()
    seeds["identity.csv.gz"] = gzip.compress(seeds["identity.csv"], mtime=0)
    return seeds


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three byte-level edits: flips, overwrites, hostile inserts, deletes, copies, a cut."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not data:
            data += rng.choice(SNIPPETS)
            continue
        at = rng.randrange(len(data))
        kind = rng.random()
        if kind < 0.25:
            data[at] ^= 1 << rng.randrange(8)
        elif kind < 0.4:
            data[at] = rng.choice(b'\x00\xff"\\{}[],:\n0e-')
        elif kind < 0.65:
            data[at:at] = rng.choice(SNIPPETS)
        elif kind < 0.78:
            del data[at:at + rng.randint(1, 200)]
        elif kind < 0.9:
            end = min(len(data), at + rng.randint(1, 400))
            data[at:at] = data[at:end]
        else:
            del data[at:]
    return bytes(data)


def _cases(seeds: dict[str, bytes], count: int, seed: int):
    rng = random.Random(seed)
    names = sorted(seeds)
    for number in range(count):
        name = names[number % len(names)]
        data = seeds[name]
        if name.endswith(".gz") and rng.random() < 0.5:
            # the content mutated, then compressed again: the reader sees whole gzip, bad records
            data = gzip.compress(_mutate(_gunzip_prefix(data), rng), mtime=0)
        else:
            data = _mutate(data, rng)
        yield f"{number:04d}-{name}", data


def _gunzip_prefix(data: bytes) -> bytes:
    """What a (possibly cut) gzip file decompresses to, as far as it goes."""
    import zlib

    inflate = zlib.decompressobj(wbits=31)
    try:
        return inflate.decompress(data)
    except zlib.error:
        return b""


def run_batch(work: Path, count: int, seed: int) -> None:
    """Run every case; print one JSON line a case (and 'start NAME' to stderr before it)."""
    from hubtools.convert import validate_to_dir
    from hubtools.errors import HubtoolsError

    seeds = _seeds(work)
    for name, data in _cases(seeds, count, seed):
        path = work / "in" / name.split("-", 1)[0] / name.split("-", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"start {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        row = {"case": name}
        try:
            summary = validate_to_dir(path, work / "out" / name)
        except HubtoolsError as exc:
            row.update(outcome="refused", why=str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - what the test is looking for
            row.update(outcome="error", why=f"{type(exc).__name__}: {exc}"[:300],
                       where=traceback.format_exc()[-1500:])
        else:
            lines = Path(summary["files"]["quarantine"]).read_bytes().splitlines()
            row.update(outcome="read", total=summary["total"], valid=summary["valid"],
                       quarantined=summary["quarantined"], quarantine_lines=len(lines))
        row["seconds"] = round(time.perf_counter() - started, 3)
        print(json.dumps(row), flush=True)


def test_mutated_corpus_files_never_crash_hang_or_lose_records(tmp_path):
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.test_fuzz_readers", str(tmp_path), "--cases", str(CASES),
                               "--seed", str(SEED)], capture_output=True, text=True, timeout=BATCH_SECONDS,
                              cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired as exc:
        last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        raise AssertionError(f"the batch hung: no end after {BATCH_SECONDS} s, in {last}") from None
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = [line for line in proc.stderr.splitlines() if line.startswith("start ")][-1:]
    assert proc.returncode == 0, f"the batch died (exit {proc.returncode}) in {last}:\n{proc.stderr[-3000:]}"
    assert len(rows) == CASES
    errors = [r for r in rows if r["outcome"] == "error"]
    assert not errors, f"{len(errors)} unexpected exceptions, the first:\n{json.dumps(errors[0], indent=1)}"
    slow = [r for r in rows if r["seconds"] > CASE_SECONDS]
    assert not slow, f"cases over {CASE_SECONDS} s: {slow}"
    for row in rows:
        if row["outcome"] == "read":
            assert row["total"] == row["valid"] + row["quarantined"] == row["valid"] + row["quarantine_lines"], row
    outcomes = {o: sum(r["outcome"] == o for r in rows) for o in ("read", "refused")}
    # the mutations are not all fatal: most files still read, with the damage quarantined
    assert outcomes["read"] > CASES // 2 and sum(r["quarantined"] > 0 for r in rows if r["outcome"] == "read") > 30
    containers = {r["case"].split("-", 1)[1].split(".", 1)[1] for r in rows if r["outcome"] == "read"}
    assert {"json", "jsonl", "txt", "csv", "parquet", "jsonl.gz", "json.gz", "csv.gz"} <= containers
    print(f"{CASES} cases in {time.monotonic() - started:.1f} s: {outcomes}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("work", type=Path)
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--seed", type=int, default=SEED)
    options = parser.parse_args()
    run_batch(options.work, options.cases, options.seed)
