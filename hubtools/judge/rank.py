"""Rank judged candidates into preference pairs, saying how each pair was made.

Candidates of one prompt (same ``prompt_id``, else the same prompt turns) are paired by
their judge score with one of three strategies:

* ``best_vs_worst``: the highest against the lowest scored candidate, one pair per prompt;
* ``all_pairs``: every two candidates whose scores differ by at least ``min_margin``;
* ``threshold``: every candidate scoring at least ``threshold`` against every one below it
  (and at least ``min_margin`` lower).

Equal scores are ties: dropped and counted, never turned into a pair by chance. Each pair
keeps its ``margin``, both scores and models, and the provenance of the prompt; the summary
records the strategy, its settings and the judge, for the dataset card.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..convert import write_stage
from ..errors import HubtoolsError, InputUnusableError
from ..load import canonical_dataset, load
from ..records import EXTRA, Kind, dump_extra, load_extra

__all__ = ["STRATEGIES", "RankResult", "prompt_key", "rank", "rank_file"]

STRATEGIES = ("best_vs_worst", "all_pairs", "threshold")
SCORE_FIELDS = ("overall", "overall_lc", "win_rate")
#: provenance keys a pair inherits from its prompt (the source passage and reference answer too, so a
#: pair can still be checked for groundedness, e.g. by :mod:`hubtools.judge.crossval`)
_PROVENANCE = ("prompt_id", "category", "task_type", "complexity", "source_doc", "source_chunk", "source_text",
               "reference", "negative", "synthetic")


@dataclass
class RankResult:
    """The preference dataset and the summary of how it was built."""

    dataset: Dataset
    summary: dict[str, Any] = field(default_factory=dict)


def prompt_key(record: dict[str, Any]) -> str:
    """What groups candidates of one prompt: ``prompt_id`` when recorded, else the prompt turns."""
    extra = load_extra(record.get(EXTRA))
    if extra.get("prompt_id") is not None:
        return str(extra["prompt_id"])
    return json.dumps([(m["role"], m["content"]) for m in record["messages"][:-1]], ensure_ascii=False)


def _candidates(dataset: Dataset, score_field: str) -> tuple[dict[str, list[dict[str, Any]]], int]:
    groups: dict[str, list[dict[str, Any]]] = {}
    unscored = 0
    for record in dataset:
        extra = load_extra(record.get(EXTRA))
        judged = extra.get("judge") or {}
        score = judged.get(score_field)
        if score is None or not record["messages"] or record["messages"][-1]["role"] != "assistant":
            unscored += 1
            continue
        groups.setdefault(prompt_key(record), []).append({"record": record, "extra": extra, "score": float(score)})
    return groups, unscored


def _pair(prompt: list[dict], chosen: dict, rejected: dict, strategy: str, judge: str | None) -> dict[str, Any]:
    extra = {k: chosen["extra"][k] for k in _PROVENANCE if k in chosen["extra"]}
    extra.update({
        "margin": round(chosen["score"] - rejected["score"], 4),
        "strategy": strategy,
        "judge": judge,
        "chosen_model": chosen["extra"].get("model"),
        "rejected_model": rejected["extra"].get("model"),
        "chosen_candidate": chosen["extra"].get("candidate"),
        "rejected_candidate": rejected["extra"].get("candidate"),
    })
    return {"prompt": prompt, "chosen": [chosen["record"]["messages"][-1]],
            "rejected": [rejected["record"]["messages"][-1]], "score_chosen": chosen["score"],
            "score_rejected": rejected["score"], "tools": chosen["record"].get("tools"), EXTRA: dump_extra(extra)}


def rank(dataset: Dataset, *, strategy: str = "best_vs_worst", min_margin: float = 1.0,
         threshold: float = 7.0, score: str = "overall") -> RankResult:
    """Build preference pairs from a judged SFT dataset (see the module docstring).

    Args:
        dataset: replies with ``hubtools_extra["judge"]`` (from :func:`hubtools.judge.judge_dataset`).
        strategy: one of ``best_vs_worst``, ``all_pairs``, ``threshold``.
        min_margin: smallest score difference that makes a pair (> 0; equal scores never do).
        threshold: for ``threshold``, the score a chosen reply needs.
        score: which judge score to rank by: ``overall``, ``overall_lc`` or ``win_rate``.

    Raises:
        HubtoolsError: an unknown strategy or score field.

    Example:
        >>> result = rank(judged, strategy="all_pairs", min_margin=2)  # doctest: +SKIP
        >>> result.summary["pairs"], result.summary["ties_dropped"]  # doctest: +SKIP
    """
    if strategy not in STRATEGIES:
        raise HubtoolsError(f"unknown ranking strategy {strategy!r}", hint=f"use one of {', '.join(STRATEGIES)}")
    if score not in SCORE_FIELDS:
        raise HubtoolsError(f"unknown score field {score!r}", hint=f"use one of {', '.join(SCORE_FIELDS)}")
    groups, unscored = _candidates(dataset, score)
    counts: Counter = Counter()
    judges: Counter = Counter()
    rows: list[dict[str, Any]] = []
    for members in groups.values():
        judge = (members[0]["extra"].get("judge") or {}).get("judge")
        judges[judge] += 1
        prompt = members[0]["record"]["messages"][:-1]
        if len(members) < 2:
            counts["single_candidate"] += 1
            continue
        ordered = sorted(members, key=lambda c: -c["score"])  # stable: candidate order breaks ties
        if strategy == "best_vs_worst":
            candidates = [(ordered[0], ordered[-1])]
        elif strategy == "all_pairs":
            candidates = [(a, b) for a, b in itertools.combinations(ordered, 2)]
        else:
            above = [c for c in ordered if c["score"] >= threshold]
            below = [c for c in ordered if c["score"] < threshold]
            if not above or not below:
                counts["no_split_at_threshold"] += 1
                continue
            candidates = [(a, b) for a in above for b in below]
        made = 0
        for chosen, rejected in candidates:
            margin = chosen["score"] - rejected["score"]
            if margin == 0:
                counts["ties_dropped"] += 1
            elif margin < min_margin:
                counts["below_margin_dropped"] += 1
            else:
                rows.append(_pair(prompt, chosen, rejected, strategy, judge))
                made += 1
        counts["prompts_with_pairs"] += bool(made)
    for i, row in enumerate(rows):
        row["hubtools_index"] = i
    margins = [r["score_chosen"] - r["score_rejected"] for r in rows]
    summary = {
        "strategy": strategy, "score": score, "min_margin": min_margin,
        "threshold": threshold if strategy == "threshold" else None,
        "judge": _judge_name(judges), "judges": dict(judges),
        "candidates": sum(len(m) for m in groups.values()), "unscored": unscored,
        "prompts": len(groups), "pairs": len(rows),
        **{k: counts[k] for k in ("prompts_with_pairs", "single_candidate", "ties_dropped",
                                  "below_margin_dropped", "no_split_at_threshold")},
        "margin": {"min": round(min(margins), 4), "mean": round(statistics.fmean(margins), 4),
                   "max": round(max(margins), 4)} if margins else None,
        "chosen_models": dict(Counter(load_extra(r[EXTRA]).get("chosen_model") for r in rows).most_common()),
    }
    return RankResult(canonical_dataset(rows, Kind.PREFERENCE), summary)


def _judge_name(judges: Counter) -> str | list[str] | None:
    """The judge that scored the candidates (several, most frequent first, when they differ)."""
    names = [name for name, _ in judges.most_common() if name is not None]
    return names[0] if len(names) == 1 else names or None


def refuse_prompt_list(loaded: Any, what: str, *, then: str) -> None:
    """A prompt list (prompts without replies) has nothing to judge or rank yet: say so, and what
    to run first (exit 2, as for any input with no usable record).

    Raises:
        InputUnusableError: ``loaded`` holds prompts only.
    """
    if loaded.kind is Kind.PROMPT:
        import shlex

        raise InputUnusableError(
            f"{loaded.source.name} is a prompt list ({loaded.valid:,} prompts, no replies; format {loaded.format}): "
            f"there is nothing to {what} yet",
            hint=f"answer the prompts first with `hubtools generate responses {shlex.quote(loaded.source.location)} "
                 f"--out responses/ --endpoint URL --model NAME`, then {then}")


def rank_file(path: str | os.PathLike, out_dir: str | os.PathLike, *, strategy: str = "best_vs_worst",
              min_margin: float = 1.0, threshold: float = 7.0, score: str = "overall", format: str = "trl",
              container: str = "jsonl", input_format: str | None = None, progress: bool = False) -> RankResult:
    """Rank the judged replies in ``path`` (from ``hubtools judge``) into ``out_dir``.

    Writes ``pairs.<container>`` (preference pairs as ``format``, provenance, ``margin`` and both
    scores kept) and ``summary.json`` (strategy, judge, ties and pairs dropped, margins, files).

    Raises:
        HubtoolsError: an unknown strategy or score field, data that is not SFT replies, or
            replies without judge scores.
        UnknownFormatError: ``format`` cannot hold preference pairs.
        InputUnusableError: ``path`` holds no usable record (the reasons, with counts).

    Example:
        >>> rank_file("judged/judged.jsonl", "pairs/", strategy="all_pairs").summary["pairs"]  # doctest: +SKIP
    """
    loaded = load(path, format=input_format, progress=progress).ensure_usable()  # no record: say why
    refuse_prompt_list(loaded, "rank", then="`hubtools judge responses/responses.jsonl --out judged/` and "
                                            "`hubtools rank judged/judged.jsonl --out pairs/`")
    if loaded.kind is not Kind.SFT:
        raise HubtoolsError(f"{loaded.source.name}: {loaded.kind.value} data cannot be ranked",
                            hint="rank judged replies (SFT records from `hubtools judge`)")
    result = rank(loaded.dataset, strategy=strategy, min_margin=min_margin, threshold=threshold, score=score)
    if not result.summary["candidates"]:
        raise HubtoolsError(f"{loaded.source.name}: no reply has a judge score ({score!r})",
                            hint="score the replies first: `hubtools judge IN --out DIR`")
    write_stage(result.dataset, Path(out_dir) / f"pairs.{container}", name="pairs", format=format,
                kind=Kind.PREFERENCE, summary=result.summary, loaded=loaded)
    return result
