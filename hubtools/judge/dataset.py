"""Judging a dataset: every reply scored (and, with ``pairwise``, compared with the other candidates of its prompt).

Beside each raw score a length-controlled one removes the part explained by response length
(see :func:`hubtools.judge.length.length_controlled`).

Example:
    >>> judge = HeuristicJudge()  # doctest: +SKIP
    >>> judged = judge_dataset(responses, judge)  # doctest: +SKIP
    >>> pairs = rank(judged.dataset, strategy="best_vs_worst", min_margin=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from ..convert import write_stage
from ..errors import HubtoolsError
from ..generate.responses import check_writable
from ..generate.store import run_lock
from ..load import canonical_dataset, load
from ..records import EXTRA, Kind, dump_extra, load_extra
from ..shapes import last_user_text, reply_of
from .heuristic import HeuristicJudge
from .length import length_controlled
from .llm import LLMJudge
from .prompts import CRITERIA
from .rank import prompt_key, refuse_prompt_list
from .results import JudgeItem, PairItem

__all__ = ["JudgeResult", "item_from_record", "judge_dataset", "judge_file"]


def item_from_record(record: dict[str, Any], key: str) -> JudgeItem | None:
    """The judge's view of an SFT record ending in a reply; ``None`` when it has no reply."""
    turns, reply = reply_of(record, Kind.SFT)
    if reply is None:
        return None
    extra = load_extra(record.get(EXTRA))
    return JudgeItem(key, last_user_text(turns), reply["content"] or "", extra.get("source_text"),
                     extra.get("reference"), bool(extra.get("negative")))


@dataclass
class JudgeResult:
    """A judged dataset (scores in ``hubtools_extra["judge"]``) and its summary."""

    dataset: Dataset
    summary: dict[str, Any] = field(default_factory=dict)


def judge_dataset(dataset: Dataset, judge: HeuristicJudge | LLMJudge, *, pairwise: bool = False) -> JudgeResult:
    """Score every reply of an SFT dataset; with ``pairwise``, also compare candidates of one prompt.

    Each record gets ``hubtools_extra["judge"]``: ``scores``, ``rationales``, ``overall``,
    ``overall_lc`` (length-controlled), ``judge``, and with ``pairwise`` its ``win_rate`` against
    the other candidates of the same prompt (both orders). Records the judge could not score
    are kept, with ``judge: null``, and counted.
    """
    records = list(dataset)
    items = [item_from_record(r, str(i)) for i, r in enumerate(records)]
    scorable = [it for it in items if it is not None]
    scored = {r.key: r for r in judge.score(scorable) if r is not None}
    keys = [k for k in (it.key for it in scorable) if k in scored]
    lc, beta = length_controlled([scored[k].overall for k in keys], [len(items[int(k)].response) for k in keys])
    lc_by_key = dict(zip(keys, lc))
    summary: dict[str, Any] = {"judge": judge.describe(), "records": len(records), "scored": len(scored),
                               "no_reply": len(items) - len(scorable), "unscored": len(scorable) - len(scored),
                               "length_coef_per_log_char": beta,
                               "mean_overall": round(float(np.mean([scored[k].overall for k in keys])), 3) if keys else None,
                               "mean_overall_lc": round(float(np.mean(lc)), 3) if keys else None,
                               "mean_by_criterion": {c: round(float(np.mean([scored[k].scores[c] for k in keys])), 3)
                                                     for c in CRITERIA} if keys else {}}
    win_rates: dict[str, float] = {}
    if pairwise:
        win_rates, summary["pairwise"] = _pairwise_win_rates(records, items, judge)
    out = []
    for i, record in enumerate(records):
        extra = load_extra(record.get(EXTRA))
        result = scored.get(str(i))
        extra["judge"] = None if result is None else {
            "judge": result.judge, "overall": result.overall, "overall_lc": lc_by_key[str(i)],
            "scores": result.scores, "rationales": result.rationales,
            **({"win_rate": win_rates[str(i)]} if str(i) in win_rates else {})}
        out.append({**record, EXTRA: dump_extra(extra)})
    if isinstance(judge, LLMJudge):
        summary["runs"] = [s.to_dict() for s in judge.stats]
    return JudgeResult(canonical_dataset(out, Kind.SFT), summary)


def _pairwise_win_rates(records, items, judge) -> tuple[dict[str, float], dict[str, Any]]:
    groups: dict[str, list[int]] = {}
    for i, (record, item) in enumerate(zip(records, items)):
        if item is not None:
            groups.setdefault(prompt_key(record), []).append(i)
    pairs = [PairItem(f"{a}-{b}", items[a].question, items[a].response, items[b].response, items[a].source)
             for members in groups.values() for k, a in enumerate(members) for b in members[k + 1:]]
    results = judge.compare(pairs)
    points: dict[str, list[float]] = {}
    consistent = decided = 0
    for pair, result in zip(pairs, results):
        if result is None:
            continue
        decided += 1
        consistent += result.consistent
        a, b = pair.key.split("-")
        value = {"a": 1.0, "b": 0.0, "tie": 0.5}[result.winner]
        points.setdefault(a, []).append(value)
        points.setdefault(b, []).append(1 - value)
    rates = {k: round(sum(v) / len(v), 4) for k, v in points.items()}
    return rates, {"pairs": len(pairs), "judged": decided, "position_consistent": consistent,
                   "position_consistency_rate": round(consistent / decided, 4) if decided else None}


def judge_file(path: str | os.PathLike, out_dir: str | os.PathLike, judge: HeuristicJudge | LLMJudge, *,
               pairwise: bool = False, format: str = "openai", container: str = "jsonl",
               input_format: str | None = None, progress: bool = False) -> JudgeResult:
    """Score the replies in ``path`` (e.g. from ``hubtools generate responses``) into ``out_dir``.

    Writes ``judged.<container>`` (the records as ``format``, each with its ``judge`` scores and
    provenance kept) and ``summary.json`` (the judge, what it scored, means by criterion, runs).

    Raises:
        HubtoolsError: the data is not SFT replies.
        UnknownFormatError: ``format`` cannot hold SFT records (checked before judging).
        InputUnusableError: ``path`` holds no usable record (the reasons, with counts).

    Example:
        >>> judge_file("responses/responses.jsonl", "judged/", HeuristicJudge()).summary["scored"]  # doctest: +SKIP
    """
    loaded = load(path, format=input_format, progress=progress).ensure_usable()  # no record: say why
    refuse_prompt_list(loaded, "judge", then="`hubtools judge responses/responses.jsonl --out judged/`")
    if loaded.kind is not Kind.SFT:
        raise HubtoolsError(f"{loaded.source.name}: {loaded.kind.value} data has no replies to judge",
                            hint="judge SFT records that end with a reply, e.g. from `hubtools generate responses`")
    out = Path(out_dir)
    target = out / f"judged.{container}"
    check_writable(format, target)  # before a model judges, not after
    # a model judge checkpoints in out_dir: one live run there, from the first request to the last file
    with run_lock(out) if getattr(judge, "out_dir", None) is not None else contextlib.nullcontext():
        result = judge_dataset(loaded.dataset, judge, pairwise=pairwise)
        write_stage(result.dataset, target, name="judged", format=format, kind=Kind.SFT,
                    summary=result.summary, loaded=loaded)
    return result
