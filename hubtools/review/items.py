"""The review queue: canonical records as review items with stable ids, in priority order.

An item id is ``"<source index>-<content hash>"``. The hash covers what a reviewer judges (the
prompt and the responses, in their chosen/rejected order), not scores or extra fields, so an
annotation never silently reattaches to a record whose text changed: the changed record gets a
new id and the old annotation shows up as *stale* when reviews are applied.

Preference pairs are shown blind: which response is shown as **A** is decided by the content
hash, not by the judge, so reviewers cannot learn that A is always the judge's pick. Decisions
``'a'``/``'b'`` refer to the sides as shown; :attr:`ReviewItem.a_side` maps them back.

Priority (higher is reviewed first; ties by source index):

* ``priority={index: value}`` given by the caller replaces the computed value for that index;
* otherwise the sum of: ``+3`` when a flag is hallucination-prone (a word of its name starts with
  one of :data:`HALLUCINATION_MARKERS`, e.g. ``numbers``, ``low_groundedness``), ``+1`` when it has any other flag, and for pairs whose margin
  is below ``low_margin`` (default 2.0 on the judge's 1-10 scale): ``+1 + (1 - margin / low_margin)``
  (so a margin of 0 gives +2).

``order="quality"`` reviews the lowest quality score first instead (the 0-1 score ``hubtools check``
writes to ``quality.json``, :mod:`hubtools.checks.score`; pass ``quality={index: score}`` or
:func:`quality_from_file`), ties by priority, then source index; a record with no score below 1.0
scores 1.0. Each item keeps its score (``ReviewItem.quality``, shown by :meth:`ReviewItem.view`).

Flags come from ``flags={index: ["name", ...]}`` or ``hubtools_extra["flags"]`` (a list of
names, a ``{name: detail}`` object or one name); ``margin`` from ``margins={index: value}``,
``hubtools_extra["margin"]`` or ``|score_chosen - score_rejected|``; the category from
``categories={index: name}``, ``hubtools_extra["category"]`` or ``hubtools_extra["task_type"]``.
:func:`flags_from_checks` turns check results into the ``flags`` argument.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset

from ..errors import ReviewError
from ..records import EXTRA, INDEX, Kind, load_extra
from ..shapes import SHAPES

__all__ = [
    "HALLUCINATION_MARKERS",
    "PAIR_DECISIONS",
    "SFT_DECISIONS",
    "ReviewItem",
    "ReviewQueue",
    "build_queue",
    "decisions_for",
    "flags_from_checks",
    "item_identity",
    "quality_from_file",
]

#: Decisions on a preference pair: A preferred, B preferred, equally good, no opinion, bad item.
PAIR_DECISIONS = ("a", "b", "tie", "skip", "flag")
#: Decisions on an SFT record (an edit is ``accept`` with edited text).
SFT_DECISIONS = ("accept", "reject", "skip", "flag")
#: A flag with a word of its name starting with one of these marks the item hallucination-prone.
HALLUCINATION_MARKERS = ("halluc", "ground", "gold", "number", "date", "citation", "fact")
_REVIEWABLE = (Kind.PREFERENCE, Kind.SFT)
#: the orders a queue can take: the computed priority, or the lowest quality score first
ORDERS = ("priority", "quality")


def decisions_for(kind: Kind | str) -> tuple[str, ...]:
    """The decisions a reviewer can give an item of ``kind``.

    >>> decisions_for("sft")
    ('accept', 'reject', 'skip', 'flag')
    """
    return PAIR_DECISIONS if Kind(kind) is Kind.PREFERENCE else SFT_DECISIONS


def _content(record: dict[str, Any], kind: Kind) -> Any:
    shape = SHAPES[kind]
    columns = tuple(dict.fromkeys(c for c in (shape.prompt, *shape.replies) if c))  # sft: messages once
    return [[[m.get("role"), m.get("content"), m.get("tool_calls")] for m in record.get(c) or ()]
            for c in columns]


def item_identity(record: dict[str, Any], kind: Kind | str) -> tuple[str, str]:
    """Return ``(item_id, content_hash)`` of a canonical record.

    >>> from hubtools.records import message
    >>> item_identity({"hubtools_index": 4, "messages": [message("user", "hi")]}, "sft")[0][:2]
    '4-'
    """
    kind = Kind(kind)
    digest = hashlib.sha256(orjson.dumps([kind.value, _content(record, kind)])).hexdigest()
    return f"{record[INDEX]}-{digest[:16]}", digest


def _a_side(content_hash: str) -> str:
    return "chosen" if int(content_hash[-1], 16) % 2 == 0 else "rejected"


@dataclass(frozen=True)
class ReviewItem:
    """One record to review: its id, why it is where it is in the queue, and what to show.

    ``record`` is the canonical record (None for items read back from a store).
    """

    item_id: str
    index: int
    kind: str
    content_hash: str
    priority: float = 0.0
    reasons: tuple[str, ...] = ()
    category: str | None = None
    #: preference pairs: the canonical side ("chosen" or "rejected") shown as response A
    a_side: str | None = None
    record: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    #: the record's 0-1 quality score when the queue was built with one (None: not given)
    quality: float | None = None

    @property
    def decisions(self) -> tuple[str, ...]:
        return decisions_for(self.kind)

    def side(self, decision: str) -> str | None:
        """The canonical side a pair decision prefers: ``'a'`` -> ``a_side``; None for tie/skip/flag."""
        if self.kind != Kind.PREFERENCE.value or decision not in ("a", "b"):
            return None
        other = "rejected" if self.a_side == "chosen" else "chosen"
        return self.a_side if decision == "a" else other

    def view(self) -> dict[str, Any]:
        """What a review screen shows: prompt, responses (A/B for pairs), scores, reasons, category.

        Raises:
            ReviewError: the item was read from a store and has no record to show.
        """
        if self.record is None:
            raise ReviewError(f"item {self.item_id} has no record attached",
                              hint="build the queue from the dataset with build_queue()")
        extra = load_extra(self.record.get(EXTRA))
        judge = extra.get("judge")  # a judged reply's scores (a dict), or a ranked pair's judge name (a str)
        rationale = extra.get("rationale") or (judge.get("rationales") if isinstance(judge, dict) else None)
        out: dict[str, Any] = {"item_id": self.item_id, "index": self.index, "kind": self.kind,
                               "category": self.category, "priority": self.priority,
                               "reasons": list(self.reasons), "quality": self.quality, "rationale": rationale,
                               "decisions": list(self.decisions)}
        if self.kind == Kind.SFT.value:
            messages = self.record["messages"]
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
            out["prompt"] = _plain(messages[:last])
            out["response"] = _plain(messages[last:])
            return out
        b_side = "rejected" if self.a_side == "chosen" else "chosen"
        out["prompt"] = _plain(self.record["prompt"])
        for label, side in (("a", self.a_side), ("b", b_side)):
            out[label] = _plain(self.record[side])
            out[f"score_{label}"] = self.record.get(f"score_{side}")
        return out

    def to_row(self) -> dict[str, Any]:
        """The item as stored and synced (without the record)."""
        return {"item_id": self.item_id, "index": self.index, "kind": self.kind,
                "content_hash": self.content_hash, "priority": self.priority,
                "reasons": list(self.reasons), "category": self.category, "a_side": self.a_side}


def _plain(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


@dataclass
class ReviewQueue:
    """Review items in review order (highest priority first), looked up by id or source index."""

    kind: Kind
    items: list[ReviewItem]

    def __post_init__(self) -> None:
        self._by_id = {item.item_id: item for item in self.items}
        self._by_index = {item.index: item for item in self.items}

    def __iter__(self) -> Iterator[ReviewItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def get(self, item_id: str) -> ReviewItem:
        """The item with this id.

        Raises:
            ReviewError: no item has this id (the dataset changed, or the id is mistyped).
        """
        try:
            return self._by_id[item_id]
        except KeyError:
            raise ReviewError(f"no review item {item_id!r} in this queue",
                              hint="item ids change when a record's text changes; rebuild the queue") from None

    def at_index(self, index: int) -> ReviewItem | None:
        """The item of the record at source ``index``, if it is in the queue."""
        return self._by_index.get(index)


def _flag_names(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [str(k) for k, v in value.items() if v not in (None, False)]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return ["flagged"]


def _hallucination_prone(flag: str) -> bool:
    """True when a word of the flag's name starts with a marker ("numbers", "gold_disagreement")."""
    return any(word.startswith(HALLUCINATION_MARKERS) for word in re.split(r"[^a-z0-9]+", flag.lower()))


def _priority(flags: list[str], margin: float | None, low_margin: float) -> tuple[float, tuple[str, ...]]:
    score = 0.0
    reasons = []
    risky = [f for f in flags if _hallucination_prone(f)]
    if risky:
        score += 3.0
        reasons.append("hallucination-prone: " + ", ".join(risky))
    others = [f for f in flags if f not in risky]
    if others:
        score += 1.0
        reasons.append("flagged: " + ", ".join(others))
    if margin is not None and low_margin > 0 and margin < low_margin:
        score += 1.0 + (1.0 - max(margin, 0.0) / low_margin)
        reasons.append(f"low margin: {margin:g}")
    return round(score, 6), tuple(reasons)


def _margin(record: dict[str, Any], extra: dict[str, Any]) -> float | None:
    if isinstance(extra.get("margin"), (int, float)):
        return abs(float(extra["margin"]))
    chosen, rejected = record.get("score_chosen"), record.get("score_rejected")
    if chosen is not None and rejected is not None:
        return abs(chosen - rejected)
    return None


def build_queue(
    dataset: Dataset,
    *,
    kind: Kind | str | None = None,
    priority: Mapping[int, float] | None = None,
    flags: Mapping[int, Sequence[str] | str] | None = None,
    margins: Mapping[int, float] | None = None,
    categories: Mapping[int, str] | None = None,
    low_margin: float = 2.0,
    quality: Mapping[int, float] | None = None,
    order: str = "priority",
) -> ReviewQueue:
    """Return the review queue of a canonical preference or SFT dataset, highest priority first.

    Args:
        kind: the dataset's kind; guessed from its columns when not given.
        priority: ``{source index: value}``; replaces the computed priority of those records.
        flags: ``{source index: flag names}`` added to ``hubtools_extra["flags"]``.
        margins: ``{source index: score margin}``, overriding extra/score-derived margins.
        categories: ``{source index: category}`` for per-category agreement.
        low_margin: pairs whose margin (in the judge's units: 1-10 scores) is below this are
            queued early; ``rank()`` keeps pairs at least 1.0 apart by default, so the default
            2.0 puts the closest of them first.
        quality: ``{source index: 0-1 quality score}`` (:func:`quality_from_file` reads
            ``quality.json``); a record not in it scores 1.0.
        order: ``"priority"`` (default) or ``"quality"``: the lowest quality score first.

    Raises:
        ReviewError: the dataset is not preference or SFT data, or ``order`` is unknown.

    Example:
        >>> queue = build_queue(dataset, flags={3: ["hallucination"]})  # doctest: +SKIP
        >>> queue.items[0].index  # doctest: +SKIP
        3
    """
    if order not in ORDERS:
        raise ReviewError(f"unknown queue order {order!r}", hint=f"choose from: {', '.join(ORDERS)}")
    if order == "quality" and quality is None:
        raise ReviewError("ordering by quality needs the quality scores",
                          hint="run `hubtools check DATA --out DIR` and pass DIR/quality.json")
    kind = Kind(kind) if kind is not None else _guess_kind(dataset)
    if kind not in _REVIEWABLE:
        raise ReviewError(f"{kind.value} records cannot be reviewed",
                          hint="review preference pairs or SFT records")
    items = []
    for record in dataset:
        index = record[INDEX]
        extra = load_extra(record.get(EXTRA))
        names = _flag_names(extra.get("flags")) + _flag_names((flags or {}).get(index))
        margin = (margins or {}).get(index)
        if margin is None and kind is Kind.PREFERENCE:
            margin = _margin(record, extra)
        score, reasons = _priority(list(dict.fromkeys(names)), margin, low_margin)
        if priority and index in priority:
            score, reasons = float(priority[index]), (*reasons, "priority set by caller")
        item_id, digest = item_identity(record, kind)
        category = (categories or {}).get(index) or extra.get("category") or extra.get("task_type")
        value = None if quality is None else float(quality.get(index, 1.0))
        if value is not None and value < 1.0:
            reasons = (*reasons, f"quality score {value:g}")
        items.append(ReviewItem(item_id, index, kind.value, digest, score, reasons,
                                str(category) if category is not None else None,
                                _a_side(digest) if kind is Kind.PREFERENCE else None, record, value))
    if order == "quality":
        items.sort(key=lambda item: (item.quality, -item.priority, item.index))
    else:
        items.sort(key=lambda item: (-item.priority, item.index))
    return ReviewQueue(kind, items)


def quality_from_file(path: str | os.PathLike) -> dict[int, float]:
    """``{source index: quality score}`` of the records scoring below 1.0 in a ``quality.json``
    written by ``hubtools check --out DIR`` (recomputed from its checks' flags when the file has
    no ``quality_score`` section).

    Raises:
        ReviewError: the file is missing or is not a quality.json.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ReviewError(f"cannot read the quality scores in {path}: {exc}",
                          hint="pass the quality.json that `hubtools check DATA --out DIR` wrote") from None
    if not isinstance(data, dict) or "checks" not in data:
        raise ReviewError(f"{path} is not a quality.json (no 'checks')",
                          hint="pass the quality.json that `hubtools check DATA --out DIR` wrote")
    below = (data.get("quality_score") or {}).get("below_one")
    if isinstance(below, dict):
        return {int(k): float(v) for k, v in below.items()}
    from ..checks import QualityResult

    return dict(QualityResult.from_dict(data).scores().scores)


def _guess_kind(dataset: Dataset) -> Kind:
    columns = set(dataset.column_names)
    if {"chosen", "rejected"} <= columns:
        return Kind.PREFERENCE
    if "messages" in columns:
        return Kind.SFT
    raise ReviewError(f"cannot review a dataset with columns {sorted(columns)}",
                      hint="load it with hubtools.load() first; only preference and SFT data are reviewed")


def flags_from_checks(results: Iterable[Any]) -> dict[int, list[str]]:
    """Turn check results (anything with ``.name`` and ``.flagged``) into ``build_queue(flags=...)``.

    >>> flags_from_checks([])
    {}
    """
    out: dict[int, list[str]] = {}
    for result in results:
        for index in result.flagged:
            out.setdefault(int(index), []).append(result.name)
    return out
