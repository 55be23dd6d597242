"""LLM-as-judge: rubric scores, pairwise verdicts in both orders, length control, ranking into pairs.

Two judges share one interface (``score(items)``, ``compare(pairs)``, ``describe()``):

* :class:`LLMJudge` asks a model through any backend, via the resumable runner. Rubric
  answers are JSON; pairwise answers end with ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie), the
  FastChat convention. An answer that cannot be parsed is asked again with the reason.
* :class:`HeuristicJudge` scores offline from text features (see
  :mod:`hubtools.generate.heuristic`); it says so in every result.

Pairwise comparison asks both orders (A/B, then B/A): a winner counts only when both orders
agree, otherwise it is a tie and counts as position-inconsistent. Beside each raw score a
length-controlled one removes the part explained by response length (see
:func:`length_controlled`).

Example:
    >>> judge = HeuristicJudge()
    >>> judged = judge_dataset(responses, judge)  # doctest: +SKIP
    >>> pairs = rank(judged.dataset, strategy="best_vs_worst", min_margin=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from .convert import write_stage
from .errors import HubtoolsError, UnparseableOutputError
from .generate.heuristic import HEURISTIC_NAME, JudgeItem, heuristic_scores
from .generate.rank import RankResult, prompt_key, rank
from .generate.responses import check_writable
from .generate.runner import Runner, RunStats, Task
from .generate.store import run_lock
from .load import canonical_dataset, load
from .records import EXTRA, Kind, dump_extra, load_extra

__all__ = [
    "CRITERIA",
    "HeuristicJudge",
    "JudgeItem",
    "JudgeResult",
    "LLMJudge",
    "PairItem",
    "PairResult",
    "RankResult",
    "RubricResult",
    "judge_dataset",
    "judge_file",
    "length_controlled",
    "length_controlled_win_rate",
    "make_judge",
    "pairwise_messages",
    "parse_rubric",
    "parse_verdict",
    "rank",
    "rubric_messages",
]

logger = logging.getLogger(__name__)

CRITERIA = ("helpfulness", "correctness", "safety", "instruction_following")
_ALIASES = {"groundedness": "correctness", "accuracy": "correctness", "harmlessness": "safety",
            "instructions": "instruction_following", "instruction": "instruction_following",
            "following": "instruction_following", "helpful": "helpfulness"}

RUBRIC_SYSTEM = """You are an impartial judge of answers written by an AI assistant. Score the response \
with this rubric, each criterion from 1 (worst) to 10 (best):
- helpfulness: does it address the question fully and usefully, at a sensible length?
- correctness: is it factually right? When a <source> is given, every claim must be grounded in \
it (claims the source does not support are errors); when the source cannot answer the question, \
the correct response says so.
- safety: is it free of harmful, offensive or dangerous content?
- instruction_following: does it do exactly what was asked (format, length, constraints)?
A <reference> answer, when given, shows what a good response contains.
Reply with one JSON object and nothing else:
{"helpfulness": {"score": <1-10>, "rationale": "<one sentence>"}, "correctness": {...}, \
"safety": {...}, "instruction_following": {...}}"""

PAIRWISE_SYSTEM = """You are an impartial judge. Compare two responses to the user's question and \
decide which one is better: more helpful, correct, grounded in the <source> when one is given, \
safe, and following the instructions. Do not let the order of the responses, their length or \
the assistants' names influence you. Explain briefly, then give your verdict strictly in this \
format: "[[A]]" if response A is better, "[[B]]" if response B is better, "[[C]]" for a tie."""


def _block(name: str, text: str | None) -> str:
    return f"<{name}>\n{text}\n</{name}>\n" if text else ""


def rubric_messages(item: JudgeItem) -> list[dict[str, str]]:
    """The judge conversation for rubric-scoring ``item``."""
    user = (_block("question", item.question) + _block("source", item.source)
            + _block("reference", item.reference) + _block("response", item.response or "(empty)"))
    return [{"role": "system", "content": RUBRIC_SYSTEM}, {"role": "user", "content": user.rstrip()}]


@dataclass
class PairItem:
    """Two responses to one question, to compare."""

    key: str
    question: str
    a: str
    b: str
    source: str | None = None


def pairwise_messages(question: str, first: str, second: str, source: str | None = None) -> list[dict[str, str]]:
    """The judge conversation comparing ``first`` (shown as A) with ``second`` (shown as B)."""
    user = (_block("question", question) + _block("source", source)
            + _block("response_a", first or "(empty)") + _block("response_b", second or "(empty)"))
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user.rstrip()}]


# ---- parsing ------------------------------------------------------------------------------


def _criterion(name: str) -> str | None:
    key = re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
    if key in CRITERIA:
        return key
    for part in key.split("_"):
        if part in _ALIASES:
            return _ALIASES[part]
    return None


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and (m := re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\s*$", value)):
        return float(m.group(1))
    return None


def _json_objects(text: str):
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def parse_rubric(text: str) -> dict[str, dict[str, Any]]:
    """Read a rubric verdict: ``{criterion: {"score": 1-10, "rationale": str}}`` for all four criteria.

    Accepts the JSON asked for (also in a code fence, with text around it, nested under
    ``"scores"``, or with bare numbers) and, failing that, lines like ``Helpfulness: 7/10 - ...``.

    Raises:
        UnparseableOutputError: a criterion is missing or a score is not a number from 1 to 10.

    >>> parse_rubric('{"helpfulness": 8, "correctness": 7, "safety": 10, "instruction_following": "9/10"}')["helpfulness"]
    {'score': 8.0, 'rationale': ''}
    """
    found: dict[str, dict[str, Any]] = {}
    for obj in _json_objects(text):
        obj = obj.get("scores", obj) if isinstance(obj.get("scores"), dict) else obj
        for name, value in obj.items():
            key = _criterion(str(name))
            if key is None or key in found:
                continue
            if isinstance(value, dict):
                score = _score(value.get("score", value.get("rating")))
                rationale = str(value.get("rationale") or value.get("reason") or value.get("explanation") or "")
            else:
                score, rationale = _score(value), ""
            if score is not None:
                found[key] = {"score": score, "rationale": rationale}
        if len(found) == len(CRITERIA):
            break
    if len(found) < len(CRITERIA):
        for line in text.splitlines():
            m = re.match(r"\W*([A-Za-z _]+?)\W*[:=-]\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?\W*(.*)$", line)
            if m and (key := _criterion(m.group(1))) and key not in found:
                found[key] = {"score": float(m.group(2)), "rationale": m.group(3).strip()}
    missing = [c for c in CRITERIA if c not in found]
    if missing:
        raise UnparseableOutputError(f"no score for {', '.join(missing)}")
    bad = [c for c in CRITERIA if not 1 <= found[c]["score"] <= 10]
    if bad:
        raise UnparseableOutputError(f"scores must be from 1 to 10 ({', '.join(bad)})")
    return {c: found[c] for c in CRITERIA}


def parse_verdict(text: str) -> str:
    """Read a pairwise verdict: ``"A"``, ``"B"`` or ``"C"`` (tie); the last ``[[X]]`` wins.

    Raises:
        UnparseableOutputError: no verdict in the answer.

    >>> parse_verdict("B is more complete. [[B]]")
    'B'
    """
    marks = re.findall(r"\[\[\s*([ABC])\s*\]\]", text, re.I)
    if marks:
        return marks[-1].upper()
    m = re.search(r"\b(?:verdict|winner|better)\s*(?:is|:)?\s*(?:response|assistant)?\s*\(?([AB])\)?\b", text, re.I)
    if m:
        return m.group(1).upper()
    if re.search(r"\b(tie|equally good|both are equal)\b", text, re.I):
        return "C"
    raise UnparseableOutputError('no verdict; end with "[[A]]", "[[B]]" or "[[C]]"')


# ---- results ------------------------------------------------------------------------------


@dataclass
class RubricResult:
    """One response's rubric scores; ``overall`` is their mean."""

    key: str
    scores: dict[str, float]
    rationales: dict[str, str]
    judge: str

    @property
    def overall(self) -> float:
        return round(sum(self.scores.values()) / len(self.scores), 3)


@dataclass
class PairResult:
    """A comparison in both orders: ``winner`` is ``"a"``, ``"b"`` or ``"tie"``."""

    key: str
    winner: str
    #: verdicts as given: first with a shown as A, then with b shown as A
    verdicts: tuple[str, str]
    consistent: bool
    judge: str


def _combine(key: str, ab: str, ba: str, judge: str) -> PairResult:
    first = {"A": "a", "B": "b", "C": "tie"}[ab]
    second = {"A": "b", "B": "a", "C": "tie"}[ba]
    winner = first if first == second else "tie"
    return PairResult(key, winner, (ab, ba), first == second, judge)


class HeuristicJudge:
    """The offline judge (no model): see :mod:`hubtools.generate.heuristic` for what it measures."""

    name = HEURISTIC_NAME

    def __init__(self, tie_margin: float = 0.05):
        self.tie_margin = tie_margin
        self.stats: RunStats | None = None

    def describe(self) -> dict[str, Any]:
        return {"judge": self.name, "offline": True,
                "note": "text-feature heuristic (length, structure, overlap with the source, numbers, "
                        "offensive-language model, detectable constraints); it does not read for meaning"}

    def score(self, items: Sequence[JudgeItem]) -> list[RubricResult]:
        results = []
        for item, scored in zip(items, heuristic_scores(items)):
            results.append(RubricResult(item.key, {c: s for c, (s, _) in scored.items()},
                                        {c: r for c, (_, r) in scored.items()}, self.name))
        return results

    def compare(self, pairs: Sequence[PairItem]) -> list[PairResult]:
        items = []
        for p in pairs:
            items += [JudgeItem(p.key + ":a", p.question, p.a, p.source), JudgeItem(p.key + ":b", p.question, p.b, p.source)]
        scores = self.score(items)
        out = []
        for i, p in enumerate(pairs):
            a, b = scores[2 * i].overall, scores[2 * i + 1].overall
            ab = "A" if a - b > self.tie_margin else "B" if b - a > self.tie_margin else "C"
            ba = {"A": "B", "B": "A", "C": "C"}[ab]  # the same features in either order
            out.append(_combine(p.key, ab, ba, self.name))
        return out


class LLMJudge:
    """A model as judge, through the resumable runner.

    Args:
        backend: any backend (an endpoint, HF Inference Providers, a local model).
        out_dir: where the judge's checkpoints go (``checkpoint.rubric.jsonl``,
            ``checkpoint.pairwise.jsonl``); ``None`` keeps nothing on disk.
        runner_options: passed to :class:`~hubtools.generate.runner.Runner` (``resume``,
            ``cache``, ``concurrency``, ``pricing``, ``progress``...).
    """

    def __init__(self, backend, *, out_dir: str | Path | None = None, temperature: float = 0.0,
                 max_tokens: int = 768, **runner_options: Any):
        self.backend = backend
        self.name = f"llm:{backend.model}"
        self.out_dir = Path(out_dir) if out_dir else None
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.runner_options = runner_options
        self.stats: list[RunStats] = []

    def describe(self) -> dict[str, Any]:
        return {"judge": self.name, "offline": False, **self.backend.describe(), "sampling": self.params}

    def _run(self, stage: str, tasks: list[Task]):
        checkpoint = self.out_dir / f"checkpoint.{stage}.jsonl" if self.out_dir else None
        runner = Runner(self.backend, checkpoint=checkpoint, header={"stage": f"judge-{stage}", **self.params},
                        desc=f"judging ({stage})", **self.runner_options)
        outcome = runner.run(tasks)
        self.stats.append(outcome.stats)
        return outcome

    def score(self, items: Sequence[JudgeItem]) -> list[RubricResult | None]:
        """Rubric results in item order; ``None`` for an item the judge never answered usably."""
        tasks = [Task(f"rubric:{it.key}", rubric_messages(it), self.params, parse=parse_rubric,
                      repair='Reply with only the JSON object: {"helpfulness": {"score": <1-10>, "rationale": '
                             '"..."}, "correctness": {...}, "safety": {...}, "instruction_following": {...}}')
                 for it in items]
        outcome = self._run("rubric", tasks)
        out: list[RubricResult | None] = []
        for it in items:
            result = outcome.results.get(f"rubric:{it.key}")
            if result is None:
                out.append(None)
                continue
            out.append(RubricResult(it.key, {c: v["score"] for c, v in result.value.items()},
                                    {c: v["rationale"] for c, v in result.value.items()}, self.name))
        return out

    def compare(self, pairs: Sequence[PairItem]) -> list[PairResult | None]:
        """Both-order verdicts in pair order; ``None`` where either order had no usable answer."""
        tasks = []
        for p in pairs:
            tasks.append(Task(f"pair:{p.key}:ab", pairwise_messages(p.question, p.a, p.b, p.source), self.params,
                              parse=parse_verdict, repair='End with "[[A]]", "[[B]]" or "[[C]]".'))
            tasks.append(Task(f"pair:{p.key}:ba", pairwise_messages(p.question, p.b, p.a, p.source), self.params,
                              parse=parse_verdict, repair='End with "[[A]]", "[[B]]" or "[[C]]".'))
        outcome = self._run("pairwise", tasks)
        out: list[PairResult | None] = []
        for p in pairs:
            ab, ba = outcome.results.get(f"pair:{p.key}:ab"), outcome.results.get(f"pair:{p.key}:ba")
            out.append(_combine(p.key, ab.value, ba.value, self.name) if ab and ba else None)
        return out


def make_judge(backend=None, *, out_dir: str | Path | None = None, **runner_options: Any) -> HeuristicJudge | LLMJudge:
    """The judge for a backend: an :class:`LLMJudge` on it, or the offline :class:`HeuristicJudge` without one.

    ``out_dir`` and ``runner_options`` (``resume``, ``concurrency``, ``progress``...) go to the
    LLM judge's runner; the heuristic needs none.

    >>> make_judge().describe()["offline"]
    True
    """
    if backend is None:
        return HeuristicJudge()
    return LLMJudge(backend, out_dir=out_dir, **runner_options)


# ---- length control -----------------------------------------------------------------------


def length_controlled(scores: Sequence[float], lengths: Sequence[int]) -> tuple[list[float], float]:
    """Scores with the linear effect of log length removed, and that effect (points per unit of log chars).

    Fits ``score = a + b * log(1 + chars)`` by least squares and returns
    ``score - b * (log(1 + chars) - mean log(1 + chars))``: the score each response would get at
    the average length. With fewer than 3 distinct lengths, the scores are returned unchanged.

    >>> length_controlled([2, 4, 6], [10, 100, 1000])  # longer answers scored higher: nearly all length
    ([3.989, 4.023, 3.989], 0.8867)
    """
    x = np.log1p(np.asarray(lengths, dtype=float))
    y = np.asarray(scores, dtype=float)
    if len(set(np.round(x, 6))) < 3:
        return [float(v) for v in y], 0.0
    beta = float(np.polyfit(x, y, 1)[0])
    return [round(float(v), 3) for v in y - beta * (x - x.mean())], round(beta, 4)


def length_controlled_win_rate(winners: Sequence[str], len_a: Sequence[int], len_b: Sequence[int]) -> dict[str, Any]:
    """Win rate of ``a`` raw and at equal length.

    A logistic model ``P(a wins) = sigmoid(w0 + w1 * log(len_a / len_b))`` is fitted (ties count
    half a win); the length-controlled win rate is ``sigmoid(w0)``, the chance that ``a`` wins
    when both responses are equally long (the idea of AlpacaEval's length control, simplified).
    """
    y = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[w] for w in winners])
    if not len(y):
        return {"n": 0, "win_rate": None, "win_rate_lc": None, "length_coef": None}
    x = np.log((np.asarray(len_a, float) + 1) / (np.asarray(len_b, float) + 1))
    design = np.column_stack([np.ones_like(x), x])
    w = np.zeros(2)
    for _ in range(50):  # Newton steps with a small ridge against separation
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (y - p) - 1e-3 * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return {"n": int(len(y)), "win_rate": round(float(y.mean()), 4),
            "win_rate_lc": round(1 / (1 + math.exp(-w[0])), 4), "length_coef": round(float(w[1]), 4)}


# ---- datasets -----------------------------------------------------------------------------


def _last(messages: list[dict[str, Any]], role: str) -> tuple[int, str | None]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == role:
            return i, messages[i]["content"]
    return -1, None


def item_from_record(record: dict[str, Any], key: str) -> JudgeItem | None:
    """The judge's view of an SFT record ending in a reply; ``None`` when it has no reply."""
    messages = record["messages"]
    if not messages or messages[-1]["role"] != "assistant":
        return None
    extra = load_extra(record.get(EXTRA))
    _, question = _last(messages[:-1], "user")
    return JudgeItem(key, question or "", messages[-1]["content"] or "", extra.get("source_text"),
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

    Example:
        >>> judge_file("responses/responses.jsonl", "judged/", HeuristicJudge()).summary["scored"]  # doctest: +SKIP
    """
    loaded = load(path, format=input_format, progress=progress)
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


def to_dict(result: RubricResult | PairResult) -> dict[str, Any]:
    """A result as plain JSON data."""
    return asdict(result)
