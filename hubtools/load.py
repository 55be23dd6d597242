"""Read any supported input into a canonical dataset, in one streaming pass:
``io.iter_raw`` -> ``formats.detect`` + ``to_canonical`` -> ``validate.check_record``.

Records that cannot be read, are in another format or break a rule go to the quarantine with
a reason; the rest become an Arrow-backed ``datasets.Dataset``. ``total = valid + quarantined``
always holds, and :class:`LoadResult` says so.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ._fastpath import fast_load
from .errors import ConversionError, InputUnusableError
from .formats import (
    Detection,
    Format,
    TreeCount,
    detect,
    expand,
    get_format,
    nan_as_missing,
    to_canonical,
)
from .io import RawItem, Source, iter_raw, open_source, union_keys
from .records import Kind, features_for, schema_for
from .validate import QuarantineRow, ValidationConfig, check_record

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["LoadResult", "canonical_dataset", "check_item", "convert_item", "detect_head", "load",
           "no_usable_record", "validated"]

logger = logging.getLogger(__name__)

#: How many records detection looks at before deciding the format of the whole input.
DETECT_SAMPLE = 1000
_BATCH = 10_000


@dataclass
class LoadResult:
    """A loaded input: the valid canonical records, the quarantined ones, and how it was read."""

    dataset: Dataset
    quarantine: list[QuarantineRow]
    detection: Detection
    source: Source
    config: ValidationConfig = field(default_factory=ValidationConfig)
    #: top-level keys seen in the records detection looked at, in first-seen order
    fields: list[str] = field(default_factory=list)
    #: the first records as read (wire format), for a quick look
    samples: list[Any] = field(default_factory=list)
    #: message trees (OpenAssistant): trees in = trees read + quarantined, and the conversations
    trees: TreeCount | None = None
    #: what a reader kept in another representation (a Parquet binary column as base64 text, ...)
    notes: list[str] = field(default_factory=list)

    @property
    def format(self) -> str:
        return self.detection.format

    @property
    def kind(self) -> Kind:
        return self.detection.kind

    @property
    def valid(self) -> int:
        return len(self.dataset)

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def total(self) -> int:
        return self.valid + self.quarantined

    @property
    def by_code(self) -> dict[str, int]:
        return dict(Counter(row.code for row in self.quarantine).most_common())

    def summary(self) -> dict[str, Any]:
        """The figures ``summary.json`` holds; ``total == valid + quarantined``. When no sampled
        record fits the format, ``problem`` says why and what to try."""
        out = {
            "source": self.source.location,
            "format": self.format,
            "kind": self.kind.value,
            "confidence": round(self.detection.confidence, 4),
            "total": self.total,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "by_code": self.by_code,
        }
        if not self.detection.fits:
            out["problem"] = self.detection.explain()
        if self.trees is not None:
            out["trees"] = self.trees.to_dict()
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def ensure_usable(self) -> LoadResult:
        """Return self when at least one record is valid.

        Raises:
            InputUnusableError: no record is usable; the message names the top reasons with
                counts and what would work.
        """
        error = no_usable_record(self.summary(), name=self.source.name)
        if error is not None:
            raise error
        return self


#: What would work instead, by the commonest quarantine code of an input with no usable record.
_WHAT_WORKS = {
    "no_reply": "these records have no reply: is this a prompt list? use `hubtools generate responses`",
    "format_mismatch": "pass --format with the records' format (see `hubtools formats`)",
    "missing_field": "give every record the fields of its format (see `hubtools formats`), or pass --format",
    "not_an_object": "write one JSON object per record",
    "invalid_json": "fix the JSON (see quarantine.jsonl for each record's position and error)",
    "cannot_convert": "the target format cannot hold these records: choose another --to (see `hubtools formats`)",
}


def no_usable_record(summary: dict[str, Any], *, name: str | None = None) -> InputUnusableError | None:
    """The error for an input of which no record is usable, from its summary; None when some are.

    The message names the top quarantine reasons with their counts, the detection's problem
    when no sampled record fit the format, and what would work.

    >>> no_usable_record({"total": 2, "valid": 0, "by_code": {"no_reply": 2}}).hint.startswith("these records")
    True
    """
    if summary.get("valid", 0) or summary.get("written", 0):
        return None
    total = summary.get("total", 0)
    by_code = summary.get("by_code") or {}
    reasons = ", ".join(f"{code} {n:,}" for code, n in list(by_code.items())[:3])
    what = f"{name or summary.get('source') or 'the input'}: no usable record"
    what += f" ({total:,} read, all quarantined: {reasons})" if total else " (no record was read)"
    if summary.get("problem"):
        what += f"; {summary['problem']}"
    top = next(iter(by_code), None)
    hint = _WHAT_WORKS.get(top, "each record's reason is in the quarantine (`hubtools validate FILE --out DIR` "
                                "writes quarantine.jsonl)")
    return InputUnusableError(what, hint=hint)


def canonical_dataset(records: list[dict[str, Any]] | pa.Table, kind: Kind | str) -> Dataset:
    """Build a canonical ``Dataset`` of ``kind`` from canonical record dicts or an Arrow table."""
    from datasets import Dataset, DatasetInfo  # here, not at import: check workers never need it
    from datasets.table import InMemoryTable

    table = records if isinstance(records, pa.Table) else pa.Table.from_pylist(records, schema=schema_for(kind))
    # a fresh fingerprint: without one, datasets pickles and hashes the whole table
    # (for 1M records that doubled the time and peak memory)
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features_for(kind)),
                   fingerprint=uuid.uuid4().hex)


def _config(fmt, max_chars: int) -> ValidationConfig:
    """The validation settings for data of this format."""
    return ValidationConfig(max_chars=max_chars, prompt_only=fmt.prompt_only,
                            answers_only=fmt.answers_only)


def _progress(items, enabled: bool, name: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=f"reading {name}", unit=" records", unit_scale=True, leave=False)


def detect_head(src: Source, head: list[RawItem], format: str | None) -> tuple[list[Any], Detection]:
    """The parsed records of the first items read and the format they show (``format`` forces it).

    Raises:
        InputUnusableError: no record at all, or none that could be read.
    """
    if not head:
        raise InputUnusableError(f"{src.name}: the input is empty, there are no records",
                                 hint="check that you gave the right file")
    parsed = [item.value for item in head if item.issue is None]
    if not parsed and format is None:
        first = head[0].issue
        raise InputUnusableError(f"{src.name}: no record could be read ({first.message})",
                                 hint="this does not look like a dataset file")
    return parsed, detect(parsed, forced=format)


def convert_item(item: RawItem, fmt: Format) -> dict[str, Any] | ConversionError:
    """The canonical record of an item read without issue, or why it cannot be converted."""
    try:
        return to_canonical(fmt, item.value, item.index)
    except ConversionError as exc:
        return exc


def validated(item: RawItem, record: dict[str, Any] | ConversionError, fmt: Format,
              config: ValidationConfig) -> dict[str, Any] | QuarantineRow:
    """``record`` (converted from ``item``) if it keeps every rule, else its quarantine row."""
    if isinstance(record, ConversionError):
        return QuarantineRow.from_issues([record.to_issue(item.index)], item.raw_for_report(), file=item.file)
    issues = check_record(record, fmt.kind, config)
    if issues:
        return QuarantineRow.from_issues(issues, item.raw_for_report(), file=item.file)
    return record


def check_item(item: RawItem, fmt: Format, config: ValidationConfig,
               notes: list[str] | None = None) -> dict[str, Any] | QuarantineRow:
    """One record as read, of a format whose records stand alone: its canonical record if it
    converts and keeps every rule, else its quarantine row (the Ray engine's read tasks call this
    per record too)."""
    item = nan_as_missing(fmt, item, notes)  # where the format's exports mean NaN as missing
    if item.issue is not None:
        return QuarantineRow.from_issues([item.issue], item.raw_for_report(), file=item.file)
    return validated(item, convert_item(item, fmt), fmt, config)


def load(
    source: str | os.PathLike,
    *,
    format: str | None = None,
    max_chars: int | None = None,
    split: str | None = None,
    progress: bool = False,
    fast: bool = True,
    max_bytes: int | None = None,
    oasst_path: str = "all",
) -> LoadResult:
    """Read, detect, convert and validate ``source``; return valid records and the quarantine.

    Args:
        source: a file (.jsonl, .json, .csv, .parquet, .txt, optionally .gz), a directory of
            them, or a Hub dataset id.
        format: skip detection and read as this format (see ``hubtools formats``).
        max_chars: longest text allowed in one field.
        progress: show a progress bar on stderr.
        fast: allow the columnar fast path for clean Alpaca/text JSON Lines (same result).
        max_bytes: refuse a file over this many bytes once decompressed (the app's upload limit).
        oasst_path: OpenAssistant trees give one conversation per path to a leaf (``"all"``)
            or the best-ranked path only (``"best"``).

    Raises:
        InputUnusableError: the input is missing, empty, binary, or matches no format.
        InputTooLargeError: a file is over ``max_bytes`` (decompressed).

    Example:
        >>> result = load("../shared/corpus/llama_factory/alpaca_en_demo.json")  # doctest: +SKIP
        >>> result.format, result.valid  # doctest: +SKIP
        ('alpaca', 999)
    """
    src = open_source(source, split=split)
    limit = max_chars or ValidationConfig.max_chars
    if max_bytes is not None and src.container not in ("dir", "hub") and os.path.getsize(src.location) > max_bytes:
        fast = False  # the reader refuses it, saying why
    fast = fast_load(src, format=format, max_chars=limit) if fast else None
    if fast is not None:
        table, detection, head = fast
        fmt = get_format(detection.format)
        return LoadResult(canonical_dataset(table, fmt.kind), [], detection, src,
                          _config(fmt, limit), union_keys(head), head[:2])
    notes: list[str] = []
    items = iter_raw(src, max_bytes=max_bytes, notes=notes)
    head = list(itertools.islice(items, DETECT_SAMPLE))
    parsed, detection = detect_head(src, head, format)
    fmt = get_format(detection.format)
    config = _config(fmt, limit)
    logger.info("%s: %s (%s), confidence %.2f", src.name, fmt.name, fmt.kind.value, detection.confidence)

    schema = schema_for(fmt.kind)
    tables: list[pa.Table] = []
    batch: list[dict[str, Any]] = []
    quarantine: list[QuarantineRow] = []

    def keep(record: dict[str, Any] | QuarantineRow) -> None:
        nonlocal batch
        if isinstance(record, QuarantineRow):
            quarantine.append(record)
            return
        batch.append(record)
        if len(batch) >= _BATCH:
            tables.append(pa.Table.from_pylist(batch, schema=schema))
            batch = []

    trees = TreeCount() if fmt.expands else None
    pending: list[RawItem] = []  # message trees are read whole: a tree may span records
    item: RawItem
    for item in _progress(itertools.chain(head, items), progress, src.name):
        if trees is None:
            keep(check_item(item, fmt, config, notes))
            continue
        item = nan_as_missing(fmt, item, notes)  # where the format's exports mean NaN as missing
        if item.issue is not None:
            keep(QuarantineRow.from_issues([item.issue], item.raw_for_report(), file=item.file))
        else:
            pending.append(item)
    if trees is not None:
        by_index = {item.index: item for item in pending}
        for index, record in expand(fmt, [(i.index, i.value) for i in pending], path=oasst_path, count=trees):
            keep(validated(by_index[index], record, fmt, config))
    if batch or not tables:
        tables.append(pa.Table.from_pylist(batch, schema=schema))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return LoadResult(canonical_dataset(table, fmt.kind), quarantine, detection, src, config,
                      union_keys(parsed), parsed[:2], trees, notes)
