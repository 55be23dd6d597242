"""datatrove's side of ``bench/bench_peers.py``: runs in datatrove's own virtualenv, never in the project's.

    python run_datatrove.py {dedup,gopher,scan} --input DIR --work DIR --workers N

``--input`` is a folder of JSONL shards (``{"id": <row>, "text": ...}``); one task per shard.
Prints one JSON line: the version, the seconds of the pipeline (imports excluded) and the ids
datatrove removed (per filter for ``gopher``).

* ``dedup``: the four-stage MinHash of datatrove's examples (``MinhashDedupSignature`` ->
  ``MinhashDedupBuckets`` -> ``MinhashDedupCluster`` -> ``MinhashDedupFilter``), 3-word shingles as
  hubtools and the ground truth use, the default 14 buckets x 8 hashes; the removed documents are
  written by the filter's exclusion writer and read back.
* ``gopher``: ``GopherRepetitionFilter`` then ``GopherQualityFilter``, the paper's thresholds
  (datatrove's defaults), each with an exclusion writer.
* ``scan``: ``PIIFormatter`` + both Gopher filters, then the MinHash dedup of ``dedup`` over the
  whole text: datatrove's nearest equivalent of a default ``hubtools check`` (its language filter
  needs a fastText model downloaded at run time, which this offline machine cannot).
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


def _ids(folder: str) -> list[int]:
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.jsonl"), recursive=True)):
        with open(path, encoding="utf-8") as fh:
            out.extend(int(json.loads(line)["id"]) for line in fh if line.strip())
    return sorted(out)


def _shards(folder: str) -> int:
    return len(glob.glob(os.path.join(folder, "*.jsonl")))


def dedup(source: str, work: str, workers: int) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig(n_grams=3)
    tasks = _shards(source)
    t = time.perf_counter()
    s1 = LocalPipelineExecutor([JsonlReader(source), MinhashDedupSignature(f"{work}/sigs", config=config)],
                               tasks=tasks, workers=workers, logging_dir=f"{work}/logs/1")
    s2 = LocalPipelineExecutor([MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)],
                               tasks=config.num_buckets, workers=workers, logging_dir=f"{work}/logs/2", depends=s1)
    s3 = LocalPipelineExecutor([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove", config=config)],
                               tasks=1, logging_dir=f"{work}/logs/3", depends=s2)
    s4 = LocalPipelineExecutor([JsonlReader(source),
                                MinhashDedupFilter(f"{work}/remove",
                                                   exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
                                JsonlWriter(f"{work}/kept", compression=None)],
                               tasks=tasks, workers=workers, logging_dir=f"{work}/logs/4", depends=s3)
    s4.run()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "removed": _ids(f"{work}/removed"),
            "config": f"{config.n_grams}-word shingles, {config.num_buckets} buckets x {config.hashes_per_bucket} hashes"}


def _filters(work: str, pii: bool) -> list:
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.writers import JsonlWriter

    steps = []
    if pii:
        from datatrove.pipeline.formatters import PIIFormatter

        steps.append(PIIFormatter())
    steps += [GopherRepetitionFilter(exclusion_writer=JsonlWriter(f"{work}/repetition", compression=None)),
              GopherQualityFilter(exclusion_writer=JsonlWriter(f"{work}/quality", compression=None))]
    return steps


def gopher(source: str, work: str, workers: int, pii: bool = False) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    t = time.perf_counter()
    LocalPipelineExecutor([JsonlReader(source), *_filters(work, pii), JsonlWriter(f"{work}/kept", compression=None)],
                          tasks=_shards(source), workers=workers, logging_dir=f"{work}/logs/gopher").run()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "repetition": _ids(f"{work}/repetition"), "quality": _ids(f"{work}/quality")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("dedup", "gopher", "scan"))
    parser.add_argument("--input", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # imported before the clocks start, as hubtools' side imports hubtools before its own
    import datatrove.executor  # noqa: F401
    import datatrove.pipeline.dedup  # noqa: F401
    import datatrove.pipeline.filters  # noqa: F401
    import datatrove.pipeline.readers  # noqa: F401
    with Sampler() as tree:
        out = _run(args)
    out["peak_mb"] = tree.peak_mb
    out["cpu_seconds"] = tree.cpu_seconds
    out["version"] = version("datatrove")
    print(json.dumps(out))


def _run(args: argparse.Namespace) -> dict:
    if args.task == "dedup":
        out = dedup(args.input, args.work, args.workers)
    elif args.task == "gopher":
        out = gopher(args.input, args.work, args.workers)
    else:
        t = time.perf_counter()
        filtered = gopher(args.input, f"{args.work}/filters", args.workers, pii=True)
        near = dedup(args.input, f"{args.work}/dedup", args.workers)
        out = {"seconds": time.perf_counter() - t, "flagged": sorted(set(filtered["repetition"])
                                                                      | set(filtered["quality"]) | set(near["removed"]))}
    return out


if __name__ == "__main__":
    main()
