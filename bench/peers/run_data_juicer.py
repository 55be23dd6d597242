"""data-juicer's side of ``bench/bench_peers.py``: runs in data-juicer's own virtualenv, never in
the project's.

    python run_data_juicer.py {dedup,gopher,scan} --input DIR --work DIR --workers N

``--input`` is the folder of JSONL shards the bench writes (``{"id": <row>, "text": ...}``); the
records are loaded with ``datasets`` as data-juicer's own loader does, and each op is run with
``op.run(dataset)`` (what data-juicer's ``DefaultExecutor`` calls per op) with ``num_proc`` set to
``--workers`` (``auto_op_parallelism`` off, so the count is the one asked for). A record an op
drops is flagged by that op. Prints one JSON line: the version, the seconds of the run (imports
excluded), the ids removed (per op group), the peak memory of the process and its workers.

* ``dedup``: ``document_deduplicator`` (md5 of the lower-cased text without non-characters),
  then ``document_minhash_deduplicator`` at Jaccard 0.8 over 3-word shingles of the lower-cased
  text with punctuation removed (``ignore_pattern``), as hubtools and the ground truth compare;
  256 permutations and bands/rows from data-juicer's own optimiser (its defaults).
* ``gopher``: the repetition ops data-juicer has. It has no line or paragraph rules and no
  top-n-gram rule; its ``word_repetition_filter`` figure is the share of word n-gram occurrences
  that belong to a repeated n-gram (occurrences, not characters): set at Gopher's thresholds for
  the duplicated 5-gram (0.15) and 10-gram (0.10) rules; ``character_repetition_filter`` with
  rep_len 10 and max 0.5 (hubtools' ``char_rep`` is this figure).
* ``scan``: the nearest recipe to a default ``hubtools check`` among the ops that run offline:
  ``clean_email_mapper`` and ``clean_ip_mapper`` (PII), the two dedup ops, the three repetition
  ops, ``special_characters_filter`` and ``text_length_filter`` (defaults). Its language, stop
  word, flagged word and perplexity ops download models or word lists at run time, which this
  offline machine cannot.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from importlib.metadata import version

from measure import Sampler  # the same measures as hubtools' side


def _load(source: str):
    from datasets import load_dataset

    from data_juicer.core.data import NestedDataset

    files = sorted(glob.glob(os.path.join(source, "*.jsonl")))
    return NestedDataset(load_dataset("json", data_files=files, split="train"))


def _dedup_ops(workers: int) -> list:
    from data_juicer.ops.deduplicator import DocumentDeduplicator, DocumentMinhashDeduplicator

    common = {"num_proc": workers, "auto_op_parallelism": False}
    return [DocumentDeduplicator(lowercase=True, ignore_non_character=True, **common),
            DocumentMinhashDeduplicator(tokenization="space", window_size=3, lowercase=True,
                                        ignore_pattern=r"\p{P}", jaccard_threshold=0.8, **common)]


def _repetition_ops(workers: int) -> list:
    from data_juicer.ops.filter import CharacterRepetitionFilter, WordRepetitionFilter

    common = {"num_proc": workers, "auto_op_parallelism": False}
    return [WordRepetitionFilter(rep_len=5, max_ratio=0.15, **common),
            WordRepetitionFilter(rep_len=10, max_ratio=0.10, **common),
            CharacterRepetitionFilter(rep_len=10, max_ratio=0.5, **common)]


def _scan_ops(workers: int) -> list:
    from data_juicer.ops.filter import SpecialCharactersFilter, TextLengthFilter
    from data_juicer.ops.mapper import CleanEmailMapper, CleanIpMapper

    common = {"num_proc": workers, "auto_op_parallelism": False}
    return [CleanEmailMapper(**common), CleanIpMapper(**common), *_dedup_ops(workers), *_repetition_ops(workers),
            SpecialCharactersFilter(**common), TextLengthFilter(**common)]


def _run_ops(dataset, ops: list) -> tuple[object, list[int]]:
    removed: list[int] = []
    for op in ops:
        before = set(dataset["id"])
        dataset = op.run(dataset)
        removed += sorted(before - set(dataset["id"]))
    return dataset, removed


def _run(task: str, source: str, workers: int) -> dict:
    t = time.perf_counter()
    dataset = _load(source)
    ops = {"dedup": _dedup_ops, "gopher": _repetition_ops, "scan": _scan_ops}[task](workers)
    _, removed = _run_ops(dataset, ops)
    out = {"seconds": time.perf_counter() - t}
    key = {"dedup": "removed", "gopher": "repetition", "scan": "flagged"}[task]
    out[key] = sorted(removed)
    if task == "gopher":
        out["ops"] = ("`word_repetition_filter` (5-gram 0.15, 10-gram 0.10) + `character_repetition_filter` "
                      "(10 chars, 0.5)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("dedup", "gopher", "scan"))
    parser.add_argument("--input", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # data-juicer's caches (datasets' Arrow files) go to the bench's scratch folder, not ~/.cache
    os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(args.work, "hf-datasets"))
    os.environ.setdefault("DATA_JUICER_CACHE_HOME", os.path.join(args.work, "dj-cache"))
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    # imported before the clocks start, as hubtools' side imports hubtools before its own
    import datasets  # noqa: F401
    import data_juicer.ops  # noqa: F401
    with Sampler() as tree:
        out = _run(args.task, args.input, args.workers)
    out["peak_mb"] = tree.peak_mb
    out["cpu_seconds"] = tree.cpu_seconds
    out["version"] = version("py-data-juicer")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
