"""Wire formats: the registry, detection, and per-record conversion to and from canonical.

Adding a format is one class in a module here and one line in :data:`FORMATS`. The order of
:data:`FORMATS` is the order detection tries them in: the most specific first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorCode, UnknownFormatError
from ..records import EXTRA, Kind, dump_extra, load_extra
from .base import Format, fail
from .chat import Capybara, Conversation, OpenAIChat, ShareGPT
from .evaluation import FastChatAnswers, JudgePrompts, MTBenchQuestions
from .instruction import (
    Alpaca,
    AlpacaEvalOutputs,
    Dolly,
    InputOutput,
    ProblemSolution,
    PromptCompletion,
    PromptResponse,
    QueryResponse,
    QuestionAnswer,
    SelfInstruct,
)
from .preference import (
    HHRLHF,
    SHP,
    AlpacaEvalPairwise,
    FlatDPO,
    ShareGPTPreference,
    TRLPreference,
)
from .text import Text
from .unpaired import KTO, TRLUnpaired

__all__ = [
    "FORMATS",
    "Detection",
    "Format",
    "detect",
    "from_canonical",
    "get_format",
    "sniff",
    "to_canonical",
]

FORMATS: dict[str, Format] = {f.name: f for f in (
    AlpacaEvalPairwise(),
    ShareGPTPreference(),
    HHRLHF(),
    SHP(),
    TRLPreference(),
    FlatDPO(),
    KTO(),
    TRLUnpaired(),
    PromptCompletion(),
    OpenAIChat(),
    Capybara(),
    Conversation(),
    ShareGPT(),
    FastChatAnswers(),
    MTBenchQuestions(),
    JudgePrompts(),
    SelfInstruct(),
    AlpacaEvalOutputs(),
    Alpaca(),
    Dolly(),
    QuestionAnswer(),
    PromptResponse(),
    QueryResponse(),
    ProblemSolution(),
    InputOutput(),
    Text(),
)}


def get_format(name: str) -> Format:
    """Return the format called ``name``.

    Raises:
        UnknownFormatError: no such format; the message lists the known ones.
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}",
                                 hint=f"use one of {', '.join(FORMATS)}") from None


def sniff(record: Any) -> str | None:
    """Name of the first format whose required keys the record has, or None."""
    if not isinstance(record, dict):
        return None
    for fmt in FORMATS.values():
        if fmt.matches(record):
            return fmt.name
    return None


def _looks_like(record: dict) -> str | None:
    for fmt in FORMATS.values():
        if fmt.looks_like(record):
            return fmt.name
    return None


@dataclass(frozen=True)
class Detection:
    """Which format a set of records is in, and how sure hubtools is."""

    format: str
    kind: Kind
    confidence: float
    sampled: int
    counts: dict[str, int] = field(default_factory=dict)
    forced: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind.value, "confidence": round(self.confidence, 4),
                "sampled": self.sampled, "counts": self.counts, "forced": self.forced}


def detect(records: Iterable[Any], *, forced: str | None = None) -> Detection:
    """Detect the format of ``records`` (a sample): the format most records match wins.

    Raises:
        UnknownFormatError: no record matches any known format.
    """
    counts: Counter[str] = Counter()
    sampled = 0
    for record in records:
        sampled += 1
        name = sniff(record) or (_looks_like(record) if isinstance(record, dict) else None)
        counts[name or "unknown"] += 1
    if forced is not None:
        fmt = get_format(forced)
        return Detection(fmt.name, fmt.kind, counts.get(fmt.name, 0) / sampled if sampled else 0.0,
                         sampled, dict(counts), forced=True)
    known = Counter({k: v for k, v in counts.items() if k != "unknown"})
    if not known:
        raise UnknownFormatError(
            "no record matches a known format",
            hint=f"records need the fields of one of {', '.join(FORMATS)}; "
                 "see `hubtools formats`, or pass --format")
    name, n = known.most_common(1)[0]
    return Detection(name, FORMATS[name].kind, n / sampled, sampled, dict(counts))


def to_canonical(fmt: Format, record: Any, index: int) -> dict[str, Any]:
    """Convert one wire record to a canonical one (with index and extras).

    Raises:
        ConversionError: the record is not an object, is in another format, or is malformed.
    """
    if not isinstance(record, dict):
        raise fail(ErrorCode.NOT_AN_OBJECT, f"the record is {type(record).__name__}, not a JSON object",
                   "write one object per record")
    if not fmt.matches(record):
        other = sniff(record)
        if other is None and fmt.looks_like(record):
            missing = sorted(fmt.required - record.keys())
            if missing:
                raise fail(ErrorCode.MISSING_FIELD, f"{fmt.name} record without {', '.join(map(repr, missing))}",
                           f"give every record {', '.join(sorted(fmt.required))}")
        looks = other or _looks_like(record)
        if looks:
            raise fail(ErrorCode.FORMAT_MISMATCH,
                       f"the record looks like {looks}, the file is {fmt.name}",
                       f"move it to a {looks} file, or convert it to {fmt.name}")
        keys = ", ".join(sorted(record)) or "none"
        raise fail(ErrorCode.FORMAT_MISMATCH, f"unrecognised record (keys: {keys}); the file is {fmt.name}",
                   f"give it the fields of {fmt.name}: {', '.join(sorted(fmt.required))}")
    canonical = fmt.to_canonical(record)
    extra = {k: v for k, v in record.items() if k not in fmt.owned}
    extra.update(canonical.pop("_extra", {}))
    canonical["hubtools_index"] = index
    canonical[EXTRA] = dump_extra(extra)
    return canonical


def from_canonical(fmt: Format, record: dict[str, Any]) -> dict[str, Any]:
    """Convert one canonical record to ``fmt``'s wire shape, extras restored.

    Raises:
        ConversionError: the format cannot hold this record (CANNOT_CONVERT).
    """
    extra = load_extra(record.get(EXTRA))
    wire = fmt.from_canonical(record, extra)
    for key, value in extra.items():
        wire.setdefault(key, value)
    return wire
