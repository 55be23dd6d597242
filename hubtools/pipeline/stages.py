"""What each build step does: a thin call into the library stage, and its accounting row.

Each function takes the build, the previous step's :class:`~hubtools.pipeline.runner.Output` and
the step's folder, and returns the next Output. Library stages get and return ``Dataset`` objects;
the folder holds checkpoints (generation resumes from them) and what the step writes for people.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..errors import HubtoolsError
from ..io import atomic_write, write_jsonl
from ..records import INDEX, Kind
from .accounting import StageRow

__all__ = ["Waiting", "reuse", "run", "save"]

logger = logging.getLogger(__name__)

_DATA = "data.parquet"


class Waiting(HubtoolsError):
    """The build stops here until people act (the review gate)."""


def _names(value: Any) -> list[str] | None:
    if value is None or value == "default":
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _usage(summary: Any) -> tuple[int, float | None]:
    """Tokens and cost found anywhere in a library summary (runner stats are nested)."""
    tokens, cost, seen = 0, None, False
    stack = [summary]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            usage = item.get("usage")
            if isinstance(usage, dict) and "total_tokens" in usage:
                tokens += int(usage.get("total_tokens") or 0)
                if item.get("cost_usd") is not None:
                    cost, seen = (cost or 0.0) + float(item["cost_usd"]), True
            stack.extend(v for k, v in item.items() if k != "usage")
        elif isinstance(item, list):
            stack.extend(item)
    return tokens, (round(cost, 6) if seen else None)


def _backend(build, settings: dict[str, Any], model: str | None = None):
    from ..generate import make_backend

    if build.access.backend is not None:  # the caller's credentials and endpoint rule (the app's)
        return build.access.backend(settings, model or settings.get("model"))
    key_env = settings.get("api_key_env")
    api_key = os.environ.get(key_env) if key_env else None
    return make_backend(model or settings.get("model"), endpoint=settings.get("endpoint"), api_key=api_key)


def _output(dataset: Dataset, kind: Kind, stage: str, unit_in: str, records_in: int, dropped: dict[str, int],
            unit_out: str, summary: dict[str, Any], **extra: Any) -> Any:
    from .runner import Output

    tokens, cost = _usage(summary)
    dropped = {k: int(v) for k, v in dropped.items() if v}
    row = StageRow(stage, unit_in, records_in, records_in - sum(dropped.values()), unit_out, len(dataset),
                   dropped, tokens=tokens, cost_usd=cost, notes=extra.pop("notes", ""))
    return Output(dataset, Kind(kind), row, summary, **extra)


# --------------------------------------------------------------------------- sources


def _ingest(build, upstream, folder: Path):
    from ..generate.ingest import ingest

    settings = build.recipe.stages.get("instructions", {})
    size = int(settings.get("chunk_size", 1500))
    chunks = ingest(build.recipe.sources["documents"], size=size, overlap=max(size // 10, 0))
    dataset = chunks.dataset
    limit = settings.get("max_chunks")
    beyond = max(len(dataset) - int(limit), 0) if limit else 0
    if beyond:
        dataset = dataset.select(range(int(limit)))
    summary = chunks.summary
    skipped = Counter(s.get("reason", "unreadable") for s in summary.get("skipped", []))
    # documents in, chunks out; a document past max_chunks is still read (its chunks are cut)
    out = _output(dataset, Kind.TEXT, "ingest", "documents", summary["documents"] + len(summary["skipped"]),
                  dict(skipped), "chunks", summary, notes=f"{beyond} chunks past max_chunks left out" if beyond else "")
    return out


def _load(build, source: str, folder: Path):
    from ..load import load

    location = build.recipe.sources[source]
    if source == "hub" and build.access.hub_token is not None:
        from ..io import Source

        # only ever the Hub (never a local folder named like the id), as the caller says, not the environment
        location = Source(location.removeprefix("hf://datasets/"), "hub", token=build.access.hub_token)
    loaded = load(location, progress=build.progress).ensure_usable()
    quarantine = [row.to_dict() for row in loaded.quarantine]
    return _output(loaded.dataset, loaded.kind, f"load ({source})", "records", loaded.total, loaded.by_code,
                   "records", loaded.summary(), quarantine=quarantine)


# --------------------------------------------------------------------------- generation


def _instructions(build, upstream, folder: Path):
    from ..generate.instructions import generate_instructions

    s = build.recipe.stages["instructions"]
    backend = _backend(build, s) if s.get("model") else None
    result = generate_instructions(upstream.dataset, per_chunk=int(s.get("per_chunk", 3)),
                                   task_mix=s.get("task_mix"), complexity_mix=s.get("complexity_mix"),
                                   negative_ratio=float(s.get("negative_ratio", 0.1)), seed=int(s.get("seed", 0)),
                                   backend=backend, out_dir=folder, resume=True, progress=build.progress)
    summary = result.summary
    # every chunk is read; what did not become a prompt is counted on the output side
    notes = (f"{summary['planned']} planned, {summary['near_duplicates_removed']} near duplicates removed, "
             f"{summary['not_written']} not written")
    return _output(result.dataset, Kind.SFT, "instructions", "chunks", len(upstream.dataset), {}, "prompts",
                   summary, notes=notes)


def _responses(build, upstream, folder: Path):
    from ..generate.responses import generate_responses, prompt_messages

    s = build.recipe.stages["responses"]
    models = s.get("models") or [s.get("model")]
    backends = [_backend(build, s, m) for m in models]
    n = int(s.get("n", 2))
    runner = {k: s[k] for k in ("concurrency",) if k in s}
    from ..generate.responses import Sampling

    sampling = Sampling(**{k: s[k] for k in ("temperature", "max_tokens") if k in s})
    try:
        result = generate_responses(upstream.dataset, backends, kind=upstream.kind, n=n, sampling=sampling,
                                    out_dir=folder, resume=True, progress=build.progress, **runner)
    finally:
        for backend in backends:
            backend.close()
    summary = result.summary
    failed_per_prompt = Counter(f["prompt_index"] for f in result.failures)
    all_failed = sum(1 for k in failed_per_prompt.values() if k >= n * len(backends))
    no_turn = sum(1 for r in upstream.dataset if prompt_messages(r, upstream.kind) is None)
    if not len(result.dataset):
        reasons = Counter(f["reason"].split(":")[0] for f in result.failures)
        raise HubtoolsError(f"no candidate response from {', '.join(map(str, models))}: "
                            + (", ".join(f"{r} {k}" for r, k in reasons.most_common(3)) or "no prompt with a user turn"),
                            hint="check the endpoint with `hubtools endpoint check`; run build again to retry")
    write_jsonl(folder / "failures.jsonl", result.failures)
    notes = f"{summary['failed']} of {summary['expected']} requests failed" if summary["failed"] else ""
    return _output(result.dataset, Kind.SFT, "responses", "prompts", len(upstream.dataset),
                   {"no_user_turn": no_turn, "every_request_failed": all_failed}, "candidates", summary, notes=notes)


def _judge(build, upstream, folder: Path):
    from ..judge.dataset import judge_dataset
    from ..judge.llm import make_judge

    s = build.recipe.stages["judge"]
    backend = _backend(build, s) if s.get("endpoint") else None
    judge = make_judge(backend, out_dir=folder, resume=True, progress=build.progress)
    result = judge_dataset(upstream.dataset, judge, pairwise=bool(s.get("pairwise", False)))
    summary = result.summary
    unscored = summary["records"] - summary["scored"]
    # unscored replies stay in the data (rank leaves them out and counts them)
    return _output(result.dataset, Kind.SFT, "judge", "candidates", len(upstream.dataset), {}, "candidates",
                   summary, notes=f"{unscored} not scored" if unscored else f"judge: {summary['judge'].get('judge')}")


def _rank(build, upstream, folder: Path):
    from ..judge.rank import rank
    from ..records import EXTRA, load_extra

    s = build.recipe.stages["rank"]
    result = rank(upstream.dataset, strategy=s.get("strategy", "best_vs_worst"),
                  min_margin=float(s.get("min_margin", 1.0)), threshold=float(s.get("threshold", 7.0)))
    summary = result.summary
    if not len(result.dataset):
        raise HubtoolsError(f"no pair from {summary['candidates']} candidates of {summary['prompts']} prompts: "
                            f"{summary['ties_dropped']} ties, {summary['below_margin_dropped']} below the margin "
                            f"{summary['min_margin']:g}, {summary['single_candidate']} prompts with one candidate, "
                            f"{summary['unscored']} unscored",
                            hint="lower stages.rank.min_margin, or ask for more candidates (stages.responses.n)")
    # the candidates that went into a pair: (prompt, model, candidate) of each side
    used = set()
    for extra in map(load_extra, result.dataset[EXTRA]):
        for side in ("chosen", "rejected"):
            used.add((extra.get("prompt_id"), extra.get(f"{side}_model"), extra.get(f"{side}_candidate")))
    kept = min(len(used), len(upstream.dataset))
    notes = (f"{summary['prompts']} prompts: {summary['prompts_with_pairs']} paired, {summary['single_candidate']} "
             f"with one candidate; {summary['ties_dropped']} ties, {summary['below_margin_dropped']} below the margin")
    dropped = {"not_in_a_pair": len(upstream.dataset) - kept}
    return _output(result.dataset, Kind.PREFERENCE, "rank", "candidates", len(upstream.dataset), dropped,
                   "pairs", summary, notes=notes)


def _review(build, upstream, folder: Path):
    from .. import config
    from ..review import AnnotationStore, apply_reviews, build_queue

    s = build.recipe.stages["review"]
    store = AnnotationStore(Path(build.access.review_store or s.get("store")
                                 or Path(config.APP_DIR) / "reviews.sqlite"))
    queue = build_queue(upstream.dataset, kind=upstream.kind)
    store.register(queue)
    ids = {item.item_id for item in queue}
    reviewed = {a.item_id for a in store.all_annotations() if a.item_id in ids}
    reviewed |= {a.item_id for a in store.adjudications() if a.item_id in ids}
    if not reviewed:
        pairs = folder.parent / "rank" / _DATA
        raise Waiting(f"{len(ids)} pairs are queued for review in {store.path}. Review them with "
                      f"`HUBTOOLS_APP_DIR={store.path.parent} hubtools app --review {pairs}` (it opens on their "
                      "queue), then run `hubtools build` again to apply the decisions and go on.")
    result = apply_reviews(upstream.dataset, store, kind=upstream.kind,
                           keep_unreviewed=bool(s.get("keep_unreviewed", True)))
    by_reason = Counter(e["reason"] for e in result.excluded)
    return _output(result.dataset, upstream.kind, "review", "pairs", len(upstream.dataset), dict(by_reason), "pairs",
                   result.summary(), quarantine=list(result.excluded),
                   notes=f"{len(reviewed)} of {len(ids)} reviewed")


# --------------------------------------------------------------------------- checks and publishing


def _check_options(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from ..checks.options import check_options

    return check_options(lang=s.get("lang"), categories=s.get("categories"), eval_sets=s.get("eval_sets"))


def _engine(s: dict[str, Any]) -> Any:
    """The engine a check or filter stage asks for (``engine: ray``, ``ray_address:``, ...)."""
    from ..checks.engines import get_engine

    return get_engine(s.get("engine"), address=s.get("ray_address"), workers=s.get("ray_workers"),
                      memory=s.get("ray_memory"), worker_memory=s.get("ray_worker_memory"))


def _check(build, upstream, folder: Path):
    from ..checks import resolve_checks, run_checks
    from ..publish.report import write_report

    s = build.recipe.stages["check"]
    names = resolve_checks(_names(s.get("checks")))
    if s.get("eval_sets") and "contamination" not in names:
        names = resolve_checks([*names, "contamination"])
    quality = run_checks(upstream.dataset, checks=names, options=_check_options(s),
                         num_proc=int(s.get("num_proc", 1)), progress=build.progress, engine=_engine(s))
    quality.dataset.update({"source": f"build {build.recipe.name}", "total": len(upstream.dataset),
                            "valid": len(upstream.dataset), "quarantined": 0})
    write_report(quality, folder / "quality")
    flagged = {name: r.count for name, r in quality.results.items() if r.applicable and r.count}
    notes = "flagged: " + (", ".join(f"{k} {v}" for k, v in flagged.items()) or "none") + " (nothing removed)"
    return _output(upstream.dataset, upstream.kind, "check", "records", len(upstream.dataset), {}, "records",
                   {"checks": names, "flagged": flagged}, quality=quality, notes=notes)


def _filter(build, upstream, folder: Path):
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..checks import default_checks, resolve_checks, run_checks
    from ..checks.filter import removal_reasons

    s = build.recipe.stages["filter"]
    drop = [n for n in resolve_checks(_names(s.get("drop")) or []) if n != "schema"]
    min_quality = s.get("min_quality")
    quality = build.quality
    needed = set(drop) | (set(default_checks()) if min_quality is not None else set())
    if quality is None or not needed <= set(quality.results):
        quality = run_checks(upstream.dataset, checks=resolve_checks(sorted(needed)) or ["schema"],
                             options=_check_options(build.recipe.stages.get("check", {})), progress=build.progress,
                             engine=_engine(s))
    reasons = removal_reasons(quality, drop, min_quality=min_quality)
    table = upstream.dataset.data.table
    keep = pc.invert(pc.is_in(table.column(INDEX), value_set=pa.array(sorted(reasons), pa.int64())))
    kept = upstream.dataset.select([i for i, k in enumerate(keep.to_pylist()) if k])
    # each removed record counted once, under the first reason in check order
    order = [*drop, "quality_score"]
    first = Counter(next(r for r in order if r in why) for why in reasons.values())
    removed = [{"index": i, "reasons": list(why), "details": why} for i, why in sorted(reasons.items())]
    return _output(kept, upstream.kind, "filter", "records", len(upstream.dataset), dict(first), "records",
                   {"drop": drop, "min_quality": min_quality, "removed": len(reasons)}, quarantine=removed)


def _as_loaded(output, name: str):
    """A :class:`~hubtools.load.LoadResult` over a build's in-memory dataset (for cards and push)."""
    from ..formats import Detection
    from ..io import Source
    from ..load import LoadResult
    from ..publish.context import default_format

    fmt = default_format(output.kind)
    return LoadResult(output.dataset, [], Detection(fmt, output.kind, 1.0, len(output.dataset), forced=True),
                      Source(name, "parquet"))


def _card_settings(build, **extra: Any):
    from ..publish.context import CardSettings

    s = build.recipe.stages.get("card", {})
    language = _names(s.get("language"))
    provenance = {"pipeline": {"recipe": build.recipe.text, "accounting": build.table(), "name": build.recipe.name},
                  "notes": s.get("description")}
    return CardSettings(license=s.get("license"), pretty_name=s.get("pretty_name"),
                        language=tuple(language) if language else None, tags=tuple(s.get("tags") or ()),
                        provenance=provenance, **extra)


def _card(build, upstream, folder: Path):
    from ..publish.card import write_cards

    loaded = _as_loaded(upstream, f"build {build.recipe.name}")
    result = write_cards(loaded, folder / "card", quality=build.quality, settings=_card_settings(build))
    return _output(upstream.dataset, upstream.kind, "card", "records", len(upstream.dataset), {}, "records",
                   {"files": {k: str(v) for k, v in result.files.items()}}, notes=f"card in {folder / 'card'}")


def _push(build, upstream, folder: Path):
    from ..publish.hub import push

    s = build.recipe.stages["push"]
    loaded = _as_loaded(upstream, f"build {build.recipe.name}")
    settings = _card_settings(build, repo_id=s["repo"], split=s.get("split", "train"))
    result = push(loaded, s["repo"], split=s.get("split", "train"), private=bool(s.get("private", False)),
                  create_pr=bool(s.get("create_pr", False)), quality=build.quality, settings=settings,
                  progress=build.progress, token=build.access.push_token)
    summary = result.to_dict() if hasattr(result, "to_dict") else {"url": getattr(result, "url", None)}
    summary["url"] = getattr(result, "url", None) or summary.get("url")
    return _output(upstream.dataset, upstream.kind, "push", "records", len(upstream.dataset), {}, "records",
                   summary, notes=f"published: {summary['url']}")


def join(first, second):
    """The prompts of two steps as one SFT dataset of user turns (instructions, then a prompt list),
    renumbered so every prompt keeps its own id through responses and ranking."""
    from ..generate.responses import prompt_messages
    from ..load import canonical_dataset
    from ..records import EXTRA, dump_extra, load_extra
    from .runner import Output

    rows = []
    for part, origin in ((first, "instructions"), (second, "prompts")):
        for record in part.dataset:
            extra = {**load_extra(record.get(EXTRA)), "prompt_source": origin}
            extra.pop("prompt_id", None)  # ids restart in each part: a fresh one comes from the new index
            rows.append({INDEX: len(rows), "messages": prompt_messages(record, part.kind) or [],
                         "tools": record.get("tools"), EXTRA: dump_extra(extra)})
    return Output(canonical_dataset(rows, Kind.SFT), Kind.SFT, second.row, {})


_STEPS = {"ingest": _ingest, "instructions": _instructions, "responses": _responses, "judge": _judge,
          "rank": _rank, "review": _review, "check": _check, "filter": _filter, "card": _card, "push": _push}


def run(step: str, build, upstream, folder: Path):
    """Run one step of ``build`` on the previous step's output."""
    if step.startswith("load:"):
        return _load(build, step.split(":", 1)[1], folder)
    return _STEPS[step](build, upstream, folder)


def save(output, folder: Path) -> None:
    """Write a step's data, quarantine and summary into its folder (the data atomically)."""
    import pyarrow.parquet as pq

    with atomic_write(folder / _DATA) as fh:
        pq.write_table(output.dataset.with_format("arrow")[:], fh)
    if output.quarantine:
        write_jsonl(folder / "quarantine.jsonl", output.quarantine)
    with atomic_write(folder / "summary.json") as fh:
        fh.write(json.dumps({"row": output.row.to_dict(), "kind": output.kind.value, "summary": output.summary},
                            indent=2, default=str).encode() + b"\n")


def reuse(step: str, folder: Path):
    """A finished step's output, read back from its folder."""
    from .runner import Output

    saved = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    dataset = Dataset.from_parquet(str(folder / _DATA))
    quality = None
    if step == "check" and (folder / "quality" / "quality.json").is_file():
        from ..checks.runner import QualityResult

        quality = QualityResult.from_dict(json.loads((folder / "quality" / "quality.json").read_text()))
    return Output(dataset, Kind(saved["kind"]), StageRow.from_dict(saved["row"]), saved["summary"], quality=quality)
