"""Gold cross-validation: synthetic examples measured against human-written gold ones.

What is compared, overall and per category (the record's recorded ``category``/``task_type``,
else the category :func:`hubtools.checks.categories.classify` gives its instruction):

* **ratio**: synthetic records per gold record;
* **judge**: every reply of both sets is scored by the same judge (the offline heuristic by
  default, a model with an :class:`~hubtools.judge.LLMJudge`); ``score_win_rate`` is the chance
  that a synthetic reply outscores a gold reply of the same category (ties count half);
* **shared prompts** (a synthetic prompt equal to a gold one, or TF-IDF cosine >=
  ``match_threshold``): the pairwise ``win_rate`` of synthetic over gold, judged in both orders,
  and the similarity of the two replies (token F1 and ROUGE-L, through ``evaluate`` with the
  metric modules shipped in ``hubtools/judge/metrics``, so nothing is downloaded);
* **groundedness** (records that keep their ``source_text``): the share of the reply's content
  words found in the source passage or the prompt.

Each synthetic record that is hallucination-prone gets flags, in the form the review queue
reads (:func:`hubtools.review.build_queue`, ``{name: detail}``): ``numbers``, ``dates`` and
``citations`` its prompt, source and gold reply do not hold; ``low_groundedness``;
``gold_disagreement`` (a shared prompt with a dissimilar reply); ``hallucination`` (it answers a
question its source cannot answer). Every one of these names is hallucination-prone for the
queue (+3). A category where many records are flagged, or whose groundedness is low, is
hallucination-prone as a whole; its other records get ``risky_category`` (+1), so reviewers
see evidence first, then the rest of a weak category.

Example:
    >>> result = cross_validate(synthetic, gold)  # doctest: +SKIP
    >>> queue = build_queue(synthetic, flags=result.review_flags())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from datasets import Dataset

from ..errors import HubtoolsError
from ..io import atomic_write, output_set, write_jsonl
from ..load import load
from ..records import EXTRA, INDEX, Kind, load_extra
from ..shapes import last_user_text, reply_of
from .._bundled import bundled
from ..text import groundedness, normalise
from .claims import claims
from .heuristic import HeuristicJudge
from .length import length_controlled_win_rate
from .results import JudgeItem, PairItem

__all__ = ["CATEGORY_SOURCES", "HALLUCINATION_FLAGS", "METRICS_DIR", "CrossValResult", "cross_validate",
           "crossval_files", "read_flags"]

logger = logging.getLogger(__name__)

#: The ``evaluate`` metric modules shipped with hubtools (they load offline from this folder).
METRICS_DIR = bundled("judge", "metrics")
#: Record flags crossval writes that the review queue treats as hallucination-prone.
HALLUCINATION_FLAGS = ("numbers", "dates", "citations", "low_groundedness", "gold_disagreement", "hallucination")
#: Where a record's category comes from: its provenance (else classified), or always classified.
CATEGORY_SOURCES = ("provenance", "classify")


#: TF-IDF terms of a normalised prompt: words of 2+ characters (sklearn's default) and every
#: Chinese/Japanese character, which :func:`hubtools.text.words` makes a word of its own
_TFIDF_TOKEN = r"(?u)\b\w\w+\b|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"


# ---- reading records ------------------------------------------------------------------------


@dataclass
class _Record:
    index: int
    prompt: str
    question: str
    reply: str
    extra: dict[str, Any]
    category: str = ""


def _records(dataset: Dataset, kind: Kind, name: str) -> tuple[list[_Record], int]:
    """The records with a reply, and how many had none."""
    if kind not in (Kind.SFT, Kind.PREFERENCE):
        raise HubtoolsError(f"{name}: {kind.value} data cannot be cross-validated",
                            hint="give SFT records (prompt + reply) or preference pairs (the chosen reply is used)")
    out, no_reply = [], 0
    for record in dataset:
        turns, reply = reply_of(record, kind)
        if reply is None or not (reply["content"] or "").strip():
            no_reply += 1
            continue
        prompt = "\n".join(m["content"] or "" for m in turns if m["role"] in ("system", "user"))
        out.append(_Record(record[INDEX], prompt, last_user_text(turns), reply["content"],
                           load_extra(record.get(EXTRA))))
    return out, no_reply


def _categorise(records: list[_Record], source: str) -> None:
    from ..checks.categories import classify

    todo = [r for r in records if source == "classify" or not (r.extra.get("category") or r.extra.get("task_type"))]
    for record, name in zip(todo, classify([r.extra.get("instruction") or r.question for r in todo])):
        record.category = name
    for record in records:
        record.category = record.category or str(record.extra.get("category") or record.extra.get("task_type"))


def _match(synthetic: list[_Record], gold: list[_Record], threshold: float) -> dict[int, tuple[int, float]]:
    """For synthetic positions with a shared gold prompt: ``{position: (gold position, similarity)}``."""
    exact: dict[str, int] = {}
    for j, g in enumerate(gold):
        exact.setdefault(normalise(g.prompt), j)
    matches = {i: (exact[normalise(s.prompt)], 1.0) for i, s in enumerate(synthetic) if normalise(s.prompt) in exact}
    rest = [i for i in range(len(synthetic)) if i not in matches]
    if not rest or threshold > 1:
        return matches
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        vectorizer = TfidfVectorizer(token_pattern=_TFIDF_TOKEN).fit([normalise(g.prompt) for g in gold] + [normalise(synthetic[i].prompt) for i in rest])
    except ValueError:  # no word of two or more characters in any prompt: nothing to compare
        return matches
    gold_matrix = vectorizer.transform([normalise(g.prompt) for g in gold]).T.tocsc()
    for start in range(0, len(rest), 512):
        block = rest[start:start + 512]
        sims = (vectorizer.transform([normalise(synthetic[i].prompt) for i in block]) @ gold_matrix).toarray()
        for row, i in enumerate(block):
            j = int(sims[row].argmax())
            if sims[row, j] >= threshold:
                matches[i] = (j, round(float(sims[row, j]), 4))
    return matches


def _similarity(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    """Per-pair token F1 and ROUGE-L from the shipped ``evaluate`` metric modules."""
    if not predictions:
        return {"token_f1": [], "rouge_l": []}
    import evaluate

    out = {}
    for name in ("token_f1", "rouge_l"):
        metric = evaluate.load(str(METRICS_DIR / name))
        out[name] = [round(float(v), 4) for v in
                     metric.compute(predictions=predictions, references=references)["per_example"]]
    return out


def _superiority(a: list[float], b: list[float]) -> float | None:
    """P(an item of ``a`` beats one of ``b``), ties half (the Mann-Whitney U over ``len(a) * len(b)``)."""
    if not a or not b:
        return None
    ordered = np.sort(np.asarray(b, dtype=float))
    values = np.asarray(a, dtype=float)
    below = np.searchsorted(ordered, values, side="left")
    equal = np.searchsorted(ordered, values, side="right") - below
    return round(float((below + 0.5 * equal).sum() / (len(a) * len(b))), 4)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), 4) if kept else None


# ---- the result ---------------------------------------------------------------------------


@dataclass
class CrossValResult:
    """The comparison, overall and per category, and the flags of synthetic records by source index.

    ``to_dict()`` is ``summary.json``; :meth:`review_flags` is the ``flags=`` argument of
    :func:`hubtools.review.build_queue` for the synthetic dataset.
    """

    synthetic_records: int
    gold_records: int
    overall: dict[str, Any]
    per_category: dict[str, dict[str, Any]]
    hallucination_prone_categories: dict[str, list[str]]
    #: synthetic source index -> {flag name: detail}
    flags: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories: dict[int, str] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Synthetic records per gold record."""
        return self.overall["ratio"]

    def review_flags(self) -> dict[int, list[str]]:
        """``{source index: flag names}`` for ``build_queue(synthetic, flags=...)``."""
        return {index: list(flags) for index, flags in self.flags.items()}

    def flag_rows(self) -> list[dict[str, Any]]:
        """One row per flagged synthetic record (``flags.jsonl``): index, category, flags with details."""
        return [{"index": i, "category": self.categories.get(i), "flags": self.flags[i]} for i in sorted(self.flags)]

    def to_dict(self) -> dict[str, Any]:
        counts = Counter(name for flags in self.flags.values() for name in flags)
        return {
            "synthetic_records": self.synthetic_records, "gold_records": self.gold_records,
            "synthetic_to_human_ratio": self.ratio, "judge": self.judge, "overall": self.overall,
            "per_category": self.per_category,
            "hallucination_prone_categories": self.hallucination_prone_categories,
            "flagged_records": len(self.flags),
            "hallucination_prone_records": sum(any(n in HALLUCINATION_FLAGS for n in f) for f in self.flags.values()),
            "flags": dict(counts.most_common()), "skipped": self.skipped, "settings": self.settings,
            "runs": self.runs, "files": self.files,
        }


# ---- cross-validation ---------------------------------------------------------------------


@dataclass
class _Measures:
    """What was measured, by position in the synthetic (``i``) and gold (``j``) record lists."""

    scores_syn: dict[int, float]
    scores_gold: dict[int, float]
    #: synthetic position -> (gold position, prompt similarity), for shared prompts
    pair_of: dict[int, tuple[int, float]]
    #: synthetic position -> "a" (synthetic wins), "b" (gold wins), "tie" or None (not decided)
    winners: dict[int, str | None]
    #: metric name -> {synthetic position: score}, for shared prompts
    sims: dict[str, dict[int, float]]
    grounded: dict[int, float | None] = field(default_factory=dict)
    flags_of: dict[int, dict[str, Any]] = field(default_factory=dict)

    def risky(self, i: int) -> list[str]:
        return [n for n in self.flags_of.get(i, {}) if n in HALLUCINATION_FLAGS]

    def figures(self, syn: list[int], gold: list[int]) -> dict[str, Any]:
        """The figures of the synthetic positions ``syn`` against the gold positions ``gold``."""
        shared = [i for i in syn if i in self.pair_of]
        decided = [self.winners[i] for i in shared if self.winners.get(i) is not None]
        flagged = [i for i in syn if self.risky(i)]
        counts = Counter(n for i in syn for n in self.risky(i))
        return {
            "synthetic": len(syn), "gold": len(gold), "ratio": round(len(syn) / len(gold), 4) if gold else None,
            "synthetic_score": _mean([self.scores_syn.get(i) for i in syn]),
            "gold_score": _mean([self.scores_gold.get(j) for j in gold]),
            "score_win_rate": _superiority([self.scores_syn[i] for i in syn if i in self.scores_syn],
                                           [self.scores_gold[j] for j in gold if j in self.scores_gold]),
            "shared_prompts": len(shared),
            "win_rate": round(sum(_POINTS[w] for w in decided) / len(decided), 4) if decided else None,
            "token_f1": _mean([self.sims["token_f1"].get(i) for i in shared]),
            "rouge_l": _mean([self.sims["rouge_l"].get(i) for i in shared]),
            "groundedness": _mean([self.grounded.get(i) for i in syn]),
            "flagged": len(flagged), "flagged_share": round(len(flagged) / len(syn), 4) if syn else None,
            "flags": dict(counts.most_common()),
        }


#: points of the synthetic reply for a pairwise verdict (it is shown as "a")
_POINTS = {"a": 1.0, "tie": 0.5, "b": 0.0}


def _record_flags(i: int, record: _Record, gold: list[_Record], m: _Measures, scored: Any,
                  min_groundedness: float, disagreement_f1: float) -> dict[str, Any]:
    """The hallucination flags of synthetic record ``i``, ``{name: detail}``; sets its groundedness."""
    source = record.extra.get("source_text")
    match = m.pair_of.get(i)
    flags: dict[str, Any] = {k: v for k, v in claims(record.reply, record.prompt, source,
                                                      gold[match[0]].reply if match else None).items() if v}
    if source:
        m.grounded[i] = groundedness(record.reply, source, record.question)
        if m.grounded[i] is not None and m.grounded[i] < min_groundedness:
            flags["low_groundedness"] = {"groundedness": m.grounded[i], "min": min_groundedness}
    if match and m.sims["token_f1"][i] < disagreement_f1:
        flags["gold_disagreement"] = {"gold_index": gold[match[0]].index, "prompt_similarity": match[1],
                                      "token_f1": m.sims["token_f1"][i], "rouge_l": m.sims["rouge_l"][i]}
    if record.extra.get("negative") and scored is not None and scored.scores.get("correctness", 10) < 5:
        flags["hallucination"] = {"reason": "answers a question its source cannot answer",
                                  "correctness": scored.scores["correctness"]}
    return flags


def _prone_reasons(figures: dict[str, Any], *, prone_share: float, min_groundedness: float,
                   min_category_size: int) -> list[str]:
    """Why a category is hallucination-prone (empty when it is not)."""
    if figures["synthetic"] < min_category_size:
        return []
    reasons = []
    if figures["flagged_share"] >= prone_share:
        found = ", ".join(f"{k} {v}" for k, v in figures["flags"].items())
        reasons.append(f"{figures['flagged_share']:.0%} of records flagged ({found})")
    if figures["groundedness"] is not None and figures["groundedness"] < min_groundedness:
        reasons.append(f"mean groundedness {figures['groundedness']:.2f} < {min_groundedness:g}")
    return reasons


def cross_validate(synthetic: Dataset, gold: Dataset, *, judge: Any = None, synthetic_kind: Kind | str = Kind.SFT,
                   gold_kind: Kind | str = Kind.SFT, categories: str = "provenance", match_threshold: float = 0.9,
                   min_groundedness: float = 0.5, disagreement_f1: float = 0.2, prone_share: float = 0.3,
                   min_category_size: int = 5) -> CrossValResult:
    """Compare ``synthetic`` with ``gold`` (see the module docstring); flag synthetic records for review.

    Args:
        judge: a :class:`~hubtools.judge.HeuristicJudge` (default) or :class:`~hubtools.judge.LLMJudge`.
        categories: ``"provenance"`` (the recorded category, else classified) or ``"classify"``
            (classify both sets the same way, when their category names differ).
        match_threshold: TF-IDF cosine from which two prompts count as shared (above 1: exact only).
        min_groundedness: below this share of content words in the source, ``low_groundedness``.
        disagreement_f1: on a shared prompt, a token F1 with the gold reply below this is
            ``gold_disagreement``.
        prone_share: a category with at least this share of flagged records (and at least
            ``min_category_size`` records) is hallucination-prone.

    Raises:
        HubtoolsError: a dataset is not SFT or preference data, an option has no allowed value,
            or a set has no record with a reply.

    Example:
        >>> result = cross_validate(load("synthetic.jsonl").dataset, load("gold.json").dataset)  # doctest: +SKIP
        >>> result.ratio, result.hallucination_prone_categories  # doctest: +SKIP
    """
    if categories not in CATEGORY_SOURCES:
        raise HubtoolsError(f"unknown category source {categories!r}", hint=f"use one of {', '.join(CATEGORY_SOURCES)}")
    judge = judge if judge is not None else HeuristicJudge()
    syn, syn_skipped = _records(synthetic, Kind(synthetic_kind), "synthetic")
    ref, gold_skipped = _records(gold, Kind(gold_kind), "gold")
    for name, records in (("synthetic", syn), ("gold", ref)):
        if not records:
            raise HubtoolsError(f"the {name} data has no record with a reply",
                                hint="give SFT records that end with an assistant reply, or preference pairs")
    _categorise(syn + ref, categories)
    pair_of = _match(syn, ref, match_threshold)

    # one rubric run over both sets (one checkpoint for an LLM judge), one pairwise run on shared prompts
    items = [JudgeItem(f"s{i}", r.question, r.reply, r.extra.get("source_text"), r.extra.get("reference"),
                       bool(r.extra.get("negative"))) for i, r in enumerate(syn)]
    items += [JudgeItem(f"g{j}", r.question, r.reply, r.extra.get("source_text")) for j, r in enumerate(ref)]
    scored = {res.key: res for res in judge.score(items) if res is not None}
    shared = sorted(pair_of)
    verdicts = judge.compare([PairItem(str(i), syn[i].question, syn[i].reply, ref[pair_of[i][0]].reply,
                                       syn[i].extra.get("source_text")) for i in shared]) if shared else []
    similarity = _similarity([syn[i].reply for i in shared], [ref[pair_of[i][0]].reply for i in shared])
    m = _Measures(scores_syn={i: scored[f"s{i}"].overall for i in range(len(syn)) if f"s{i}" in scored},
                  scores_gold={j: scored[f"g{j}"].overall for j in range(len(ref)) if f"g{j}" in scored},
                  pair_of=pair_of, winners={i: v.winner if v is not None else None for i, v in zip(shared, verdicts)},
                  sims={name: dict(zip(shared, values)) for name, values in similarity.items()})
    for i, record in enumerate(syn):
        if flags := _record_flags(i, record, ref, m, scored.get(f"s{i}"), min_groundedness, disagreement_f1):
            m.flags_of[i] = flags

    per_category: dict[str, dict[str, Any]] = {}
    prone: dict[str, list[str]] = {}
    for name in sorted({r.category for r in syn} | {r.category for r in ref}):
        figures = m.figures([i for i, r in enumerate(syn) if r.category == name],
                            [j for j, r in enumerate(ref) if r.category == name])
        reasons = _prone_reasons(figures, prone_share=prone_share, min_groundedness=min_groundedness,
                                 min_category_size=min_category_size)
        per_category[name] = {**figures, "hallucination_prone": bool(reasons)}
        if reasons:
            prone[name] = reasons
    for i, record in enumerate(syn):
        if record.category in prone:
            m.flags_of.setdefault(i, {})["risky_category"] = record.category

    overall = m.figures(list(range(len(syn))), list(range(len(ref))))
    decided = [i for i in shared if m.winners.get(i) is not None]
    overall["win_rate_lc"] = length_controlled_win_rate(
        [m.winners[i] for i in decided], [len(syn[i].reply) for i in decided],
        [len(ref[pair_of[i][0]].reply) for i in decided])["win_rate_lc"] if decided else None
    stats = getattr(judge, "stats", None)  # an LLMJudge keeps one RunStats per runner run
    logger.info("crossval: %d synthetic vs %d gold, %d shared prompts, %d flagged", len(syn), len(ref), len(shared),
                len(m.flags_of))
    return CrossValResult(
        synthetic_records=len(syn), gold_records=len(ref), overall=overall, per_category=per_category,
        hallucination_prone_categories=prone, flags={syn[i].index: f for i, f in sorted(m.flags_of.items())},
        categories={r.index: r.category for r in syn}, judge=judge.describe(),
        settings={"categories": categories, "match_threshold": match_threshold, "min_groundedness": min_groundedness,
                  "disagreement_f1": disagreement_f1, "prone_share": prone_share,
                  "min_category_size": min_category_size},
        skipped={"synthetic_without_reply": syn_skipped, "gold_without_reply": gold_skipped,
                 "synthetic_unscored": len(syn) - len(m.scores_syn), "gold_unscored": len(ref) - len(m.scores_gold)},
        runs=[s.to_dict() for s in stats] if isinstance(stats, list) else [])


def crossval_files(synthetic: str | os.PathLike, gold: str | os.PathLike, out_dir: str | os.PathLike, *,
                   judge: Any = None, synthetic_format: str | None = None, gold_format: str | None = None,
                   progress: bool = False, **options: Any) -> CrossValResult:
    """Load both datasets with :func:`hubtools.load`, cross-validate, write ``summary.json`` and ``flags.jsonl``.

    ``flags.jsonl`` has one line per flagged synthetic record: ``index`` (its source index in
    ``synthetic``), ``category`` and ``flags`` (``{name: detail}``); :func:`read_flags` turns it
    into the ``flags=`` argument of :func:`hubtools.review.build_queue`. ``options`` go to
    :func:`cross_validate`.

    Raises:
        InputUnusableError: ``synthetic`` or ``gold`` holds no usable record (the reasons, with counts).

    Example:
        >>> result = crossval_files("pairs/pairs.jsonl", "gold.json", "crossval/")  # doctest: +SKIP
        >>> build_queue(load("pairs/pairs.jsonl").dataset, flags=read_flags("crossval/flags.jsonl"))  # doctest: +SKIP
    """
    syn = load(synthetic, format=synthetic_format, progress=progress).ensure_usable()  # no record: say why
    ref = load(gold, format=gold_format, progress=progress).ensure_usable()
    result = cross_validate(syn.dataset, ref.dataset, judge=judge, synthetic_kind=syn.kind, gold_kind=ref.kind,
                            **options)
    out = Path(out_dir)
    result.files = {"summary": str(out / "summary.json"), "flags": str(out / "flags.jsonl")}
    summary = {**result.to_dict(), "inputs": {"synthetic": syn.summary(), "gold": ref.summary()}}
    with output_set(out) as stage:  # one set: the flags and the summary that counts them
        write_jsonl(stage / "flags.jsonl", result.flag_rows())
        with atomic_write(stage / "summary.json") as fh:
            fh.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    return result


def read_flags(path: str | os.PathLike) -> dict[int, list[str]]:
    """``{source index: flag names}`` from a ``flags.jsonl``, for ``build_queue(..., flags=...)``.

    Raises:
        HubtoolsError: the file is not a crossval flags file.
    """
    out: dict[int, list[str]] = {}
    for number, line in enumerate(Path(path).read_bytes().splitlines()):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            out[int(row["index"])] = [str(name) for name in row["flags"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise HubtoolsError(f"{path}: line {number + 1} is not a flags row",
                                hint="give the flags.jsonl written by `hubtools crossval`") from None
    return out
