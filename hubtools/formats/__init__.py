"""Wire formats: the registry, detection, and per-record conversion to and from canonical.

Adding a format is one class in a module here and one line in :data:`FORMATS`. The order of
:data:`FORMATS` is the order detection tries them in: the most specific first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConversionError, ErrorCode, UnknownFormatError
from ..records import EXTRA, Kind, dump_extra, load_extra
from .base import MESSAGE_FIELDS, Format, attach_message_fields, data_fields, fail, pop_message_fields
from .chat import Capybara, Conversation, Firefly, OpenAIChat, ShareGPT
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
from .instruction_response import AlpacaResponse
from .llamafactory_v1 import LlamaFactoryV1, LlamaFactoryV1Preference
from .oasst import OASST, OASSTMessages, conversations
from .pairwise import AutoJPairwise, ChatbotArena, PandaLM, StackExchangePaired
from .text import Text
from .unpaired import KTO, TRLUnpaired

__all__ = [
    "FORMATS",
    "Detection",
    "Format",
    "TreeCount",
    "detect",
    "expand",
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
    LlamaFactoryV1Preference(),
    ChatbotArena(),
    PandaLM(),
    AutoJPairwise(),
    StackExchangePaired(),
    TRLPreference(),
    FlatDPO(),
    KTO(),
    TRLUnpaired(),
    OASST(),
    PromptCompletion(),
    LlamaFactoryV1(),
    OpenAIChat(),
    Capybara(),
    Firefly(),
    Conversation(),
    ShareGPT(),
    FastChatAnswers(),
    MTBenchQuestions(),
    JudgePrompts(),
    SelfInstruct(),
    AlpacaEvalOutputs(),
    Alpaca(),
    AlpacaResponse(),
    Dolly(),
    QuestionAnswer(),
    PromptResponse(),
    QueryResponse(),
    ProblemSolution(),
    InputOutput(),
    OASSTMessages(),
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


def as_record(value: Any) -> Any:
    """A bare JSON array of role/content messages (one conversation a line) as ``{"messages": ...}``;
    any other value unchanged."""
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        return {"messages": value}
    return value


def sniff(record: Any) -> str | None:
    """Name of the first format whose required keys the record has, or None."""
    record = as_record(record)
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
        record = as_record(record)
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
    record = as_record(record)
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
    return _finish(canonical, {k: v for k, v in record.items() if k not in fmt.owned}, index)


def _finish(canonical: dict[str, Any], extra: dict[str, Any], index: int) -> dict[str, Any]:
    """Give a converted record its index and extras (the unowned wire fields, the format's own
    ``_extra`` and the messages' wire fields)."""
    extra.update(canonical.pop("_extra", {}))
    fields = pop_message_fields(canonical)
    if fields:
        extra[MESSAGE_FIELDS] = fields
    canonical["hubtools_index"] = index
    canonical[EXTRA] = dump_extra(extra)
    return canonical




def from_canonical(fmt: Format, record: dict[str, Any]) -> dict[str, Any]:
    """Convert one canonical record to ``fmt``'s wire shape, extras restored.

    Raises:
        ConversionError: the format cannot hold this record (CANNOT_CONVERT).
    """
    extra = load_extra(record.get(EXTRA))
    fields = extra.pop(MESSAGE_FIELDS, None)
    if fields:
        record = attach_message_fields(record, fields)
    wire = fmt.from_canonical(record, extra)
    lost = data_fields(fields) if fields and not fmt.message_fields else []
    if lost:
        raise fail(ErrorCode.CANNOT_CONVERT, f"{fmt.name} cannot hold the message fields "
                   f"{', '.join(map(repr, lost))}", "convert to openai or sharegpt instead")
    for key, value in extra.items():
        wire.setdefault(key, value)
    return wire


@dataclass
class TreeCount:
    """How message trees became conversations: ``trees == read + quarantined``."""

    trees: int = 0
    read: int = 0
    quarantined: int = 0
    conversations: int = 0
    #: flat messages that could not be placed in any tree (quarantined one by one)
    unlinked_messages: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"in": self.trees, "read": self.read, "quarantined": self.quarantined,
                "conversations": self.conversations, "unlinked_messages": self.unlinked_messages}


def expand(fmt: Format, items: list[tuple[int, Any]], *, path: str = "all",
           count: TreeCount | None = None) -> Iterator[tuple[int, dict[str, Any] | ConversionError]]:
    """Canonical conversations of a tree format (``fmt.expands``, OpenAssistant), read whole.

    Yields ``(source index, canonical record or the error that quarantines it)``: each tree
    gives one record per conversation, or one error. A conversation's index is its last
    message's where messages are records (flat input), else the tree's record's.
    """
    count = count if count is not None else TreeCount()
    good = []
    for index, value in items:
        record = as_record(value)
        if isinstance(record, dict) and fmt.matches(record):
            good.append((index, record))
            continue
        try:
            to_canonical(fmt, record, index)  # only to say why it is not one of fmt's records
        except ConversionError as exc:
            yield index, exc
    for index, tree_fields, root, node_index in fmt.trees(good):
        if isinstance(root, ConversionError):
            if tree_fields.get("message"):
                count.unlinked_messages += 1
            else:
                count.trees += 1
                count.quarantined += 1
            yield index, root
            continue
        count.trees += 1
        try:
            records = conversations(root, path)
        except ConversionError as exc:
            count.quarantined += 1
            yield index, exc
            continue
        count.read += 1
        count.conversations += len(records)
        for last, record in records:
            # the index of the conversation's last message where messages are records (flat
            # input), so each conversation has its own; else the tree's record
            at = node_index.get(id(last), index)
            yield at, _finish(record, dict(tree_fields), at)
