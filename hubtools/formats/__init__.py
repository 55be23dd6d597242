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
from ..io import RawItem
from ..io._json_array import read_nan_members
from ..records import EXTRA, INDEX, REPLY_KINDS, Kind, dump_extra, load_extra
from ..validate import ValidationConfig, check_record
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
    QuestionResponse,
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
from .prompts import AlpacaPrompt, OpenAIPrompt, PromptOnly, PromptText, QuestionOnly, ShareGPTPrompt
from .instruction_response import AlpacaResponse
from .llamafactory_v1 import LlamaFactoryV1, LlamaFactoryV1Preference
from .oasst import OASST, OASSTMessages, conversations
from .pairwise import AutoJPairwise, ChatbotArena, PandaLM, PKUSafeRLHF, StackExchangePaired, WebGPTComparisons
from .rated import Nectar, SummarizeFromFeedback, UltraFeedback
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
    "nan_as_missing",
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
    UltraFeedback(),
    PKUSafeRLHF(),
    Nectar(),
    WebGPTComparisons(),
    SummarizeFromFeedback(),
    TRLPreference(),
    FlatDPO(),
    KTO(),
    TRLUnpaired(),
    OASST(),
    PromptCompletion(),
    OpenAIPrompt(),
    LlamaFactoryV1(),
    OpenAIChat(),
    Capybara(),
    Firefly(),
    Conversation(),
    ShareGPTPrompt(),
    ShareGPT(),
    FastChatAnswers(),
    MTBenchQuestions(),
    JudgePrompts(),
    SelfInstruct(),
    AlpacaEvalOutputs(),
    AlpacaPrompt(),
    Alpaca(),
    AlpacaResponse(),
    Dolly(),
    QuestionAnswer(),
    QuestionResponse(),
    PromptResponse(),
    QueryResponse(),
    ProblemSolution(),
    InputOutput(),
    OASSTMessages(),
    PromptOnly(),
    QuestionOnly(),
    Text(),
    PromptText(),
)}

#: reply format -> its prompt-only twin (``alpaca`` -> ``alpaca_prompt``, ...)
_PROMPT_TWINS: dict[str, Format] = {f.reply_format: f for f in FORMATS.values() if getattr(f, "reply_format", None)}


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
    if isinstance(record, str):
        return next((fmt.name for fmt in FORMATS.values() if fmt.scalar), None)
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
    """Which format a set of records is in, and how sure hubtools is.

    ``confidence`` is the share of the sampled records that convert and validate in
    ``format``; ``counts`` says which format each sampled record's keys match. When no sampled
    record fits, ``problem`` is the commonest reason and ``closest`` the formats more of them fit.
    """

    format: str
    kind: Kind
    confidence: float
    sampled: int
    counts: dict[str, int] = field(default_factory=dict)
    forced: bool = False
    problem: str | None = None
    closest: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """Whether any sampled record fits the format (or nothing was sampled)."""
        return self.confidence > 0 or self.sampled == 0

    def explain(self) -> str | None:
        """One line saying that no sampled record fits, why, and what to try; None when some fit."""
        if self.fits:
            return None
        how = "was read as" if self.forced else "looks like"
        line = f"{how} {self.format}, but no record fits: {self.problem or 'every record was quarantined'}"
        if self.closest:
            return f"{line}; try --format {' or --format '.join(self.closest)}"
        return f"{line}; see `hubtools formats` for the shapes hubtools reads"

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind.value, "confidence": round(self.confidence, 4),
                "sampled": self.sampled, "counts": self.counts, "forced": self.forced,
                "problem": self.problem, "closest": self.closest}


def _fit(fmt: Format, records: list[Any]) -> tuple[int, Counter[str]]:
    """How many of ``records`` convert and validate as ``fmt``, and why the others do not."""
    if fmt.expands:  # message trees are read whole: a record fits when expand does not refuse it
        refused = {i: exc.message for i, exc in expand(fmt, list(enumerate(records)))
                   if isinstance(exc, ConversionError)}
        return len(records) - len(refused), Counter(refused.values())
    config = ValidationConfig(prompt_only=fmt.prompt_only, answers_only=fmt.answers_only)
    ok = 0
    why: Counter[str] = Counter()
    for i, record in enumerate(records):
        try:
            issues = check_record(to_canonical(fmt, record, i), fmt.kind, config)
        except ConversionError as exc:
            why[exc.message] += 1
            continue
        if issues:
            why[issues[0].message] += 1
        else:
            ok += 1
    return ok, why


def _closest(records: list[Any], skip: str) -> list[str]:
    """Up to three other formats that the most records fit (else whose keys the most records have)."""
    fits: Counter[str] = Counter()
    for fmt in FORMATS.values():
        if fmt.name == skip:
            continue
        mine = [r for r in records if (isinstance(r, dict) and fmt.matches(r)) or (fmt.scalar and isinstance(r, str))]
        if mine:
            fits[fmt.name] = _fit(fmt, mine)[0]
    best = [name for name, n in fits.most_common(3) if n]
    if best:
        return best
    looks = Counter(fmt.name for r in records if isinstance(r, dict) for fmt in FORMATS.values()
                    if fmt.name != skip and fmt.looks_like(r))
    return [name for name, _ in looks.most_common(3)]


def _detection(fmt: Format, records: list[Any], counts: Counter[str], forced: bool) -> Detection:
    ok, why = _fit(fmt, records)
    sampled = len(records)
    if ok or not sampled:
        return Detection(fmt.name, fmt.kind, ok / sampled if sampled else 0.0, sampled, dict(counts), forced)
    reason, n = why.most_common(1)[0]
    problem = f"{reason} ({n} of {sampled})" if n < sampled else reason
    return Detection(fmt.name, fmt.kind, 0.0, sampled, dict(counts), forced, problem, _closest(records, fmt.name))


def detect(records: Iterable[Any], *, forced: str | None = None) -> Detection:
    """Detect the format of ``records`` (a sample): the format most records match wins.

    Raises:
        UnknownFormatError: no record matches any known format.
    """
    counts: Counter[str] = Counter()
    records = list(records)
    for record in records:
        record = as_record(record)
        name = sniff(record) or (_looks_like(record) if isinstance(record, dict) else None)
        counts[name or "unknown"] += 1
    if forced is not None:
        return _detection(get_format(forced), records, counts, forced=True)
    known = Counter({k: v for k, v in counts.items() if k != "unknown"})
    if not known:
        raise UnknownFormatError(
            "no record matches a known format",
            hint=f"records need the fields of one of {', '.join(FORMATS)}; "
                 "see `hubtools formats`, or pass --format")
    name, _ = known.most_common(1)[0]
    return _detection(FORMATS[name], records, counts, forced=False)


def to_canonical(fmt: Format, record: Any, index: int) -> dict[str, Any]:
    """Convert one wire record to a canonical one (with index and extras).

    Raises:
        ConversionError: the record is not an object, is in another format, or is malformed.
    """
    record = as_record(record)
    if fmt.scalar and isinstance(record, str):
        record = {"text": record}
    if not isinstance(record, dict):
        raise fail(ErrorCode.NOT_AN_OBJECT, f"the record is {type(record).__name__}, not a JSON object",
                   "write one object per record")
    twin = _PROMPT_TWINS.get(fmt.name)
    if twin is not None and twin.matches(record):
        raise _no_reply(fmt, twin.name)
    if not fmt.matches(record):
        other = sniff(record)
        if other is not None and fmt.kind in REPLY_KINDS and FORMATS[other].kind is Kind.PROMPT:
            raise _no_reply(fmt, other)
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


def _no_reply(fmt: Format, prompt_format: str) -> ConversionError:
    return fail(ErrorCode.NO_REPLY, f"the record has no reply (it reads as {prompt_format}, prompt-only); "
                f"the file is {fmt.name} ({fmt.kind.value})",
                "is this a prompt list? answer it with `hubtools generate responses`, or give the record its reply")


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


def nan_as_missing(fmt: Format, item: RawItem, notes: list[str] | None = None) -> RawItem:
    """``item`` read again with ``NaN`` as a missing value where ``fmt`` says its exports mean that
    (``fmt.nan_as_missing``, e.g. PandaLM's ``input``); otherwise ``item`` unchanged.

    Only a record refused for a ``NaN`` that is the whole value of one of those fields is read
    again, and nothing else in it may differ from the strict reading; ``notes`` says how many.
    """
    if (not fmt.nan_as_missing or item.issue is None or item.issue.code is not ErrorCode.INVALID_JSON
            or not isinstance(item.raw, (bytes, str)) or ("NaN" if isinstance(item.raw, str) else b"NaN") not in item.raw):
        return item
    value = read_nan_members(item.raw, fmt.nan_as_missing)
    if value is None:
        return item
    if notes is not None:
        prefix = f"{fmt.name}: NaN read as a missing value ({', '.join(sorted(fmt.nan_as_missing))}) in "
        at = next((i for i, n in enumerate(notes) if n.startswith(prefix)), None)
        count = 1 if at is None else int(notes[at][len(prefix):].split()[0]) + 1
        note = f"{prefix}{count} record{'s' if count > 1 else ''}"
        if at is None:
            notes.append(note)
        else:
            notes[at] = note
    return RawItem(item.index, value, item.raw, None, item.lossy, item.file)


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
    gives one record per conversation, or one error. Each conversation has its own index
    (``hubtools_index``), so checks and ``filter`` treat siblings apart: its last message's where
    messages are records (flat input); in nested input the tree record's for the tree's first
    conversation and, for the others, the next numbers after the last record given (the source
    index yielded stays the tree record's). Records come in the order of their own index, as
    the checks expect of a dataset (a tree's conversations need not be adjacent).
    """
    out = list(_expand(fmt, items, path, count if count is not None else TreeCount()))
    out.sort(key=lambda pair: pair[1][INDEX] if isinstance(pair[1], dict) else pair[0])
    yield from out


def _expand(fmt: Format, items: list[tuple[int, Any]], path: str,
            count: TreeCount) -> Iterator[tuple[int, dict[str, Any] | ConversionError]]:
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
    spare = max((index for index, _ in items), default=-1) + 1  # indices of a nested tree's further conversations
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
        for n, (last, record) in enumerate(records):
            # the index of the conversation's last message where messages are records (flat
            # input); else the tree's record, and a number of its own for each further conversation
            at = node_index.get(id(last))
            if at is not None:
                yield at, _finish(record, dict(tree_fields), at)
                continue
            own = index if n == 0 else spare
            spare += n > 0
            yield index, _finish(record, dict(tree_fields), own)
