"""Readers of tables: CSV (cells decoded back to JSON values where a column holds them), Parquet
and Hub datasets (Arrow rows as JSON can hold them)."""

from __future__ import annotations

import base64
import codecs
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from .. import _guard
from ..errors import DatasetFileNotFound, ErrorCode, HubNetworkError, InputTooLargeError, InputUnusableError, Issue
from ._issues import has_surrogates, refuse_binary, value_issue
from ._streams import CHUNK, cut_item, open_binary, stream_cut
from .sources import RawItem, Source

#: CSV columns that are always text: never decoded.
_CSV_TEXT_COLUMNS = frozenset({
    "instruction", "input", "output", "text", "system", "output_1", "output_2",
    "system_prompt", "prompt_template", "question", "answer", "response", "query", "problem",
    "solution", "context",
})
#: CSV columns that are text in flat formats and message lists in others.
_CSV_MESSAGE_COLUMNS = frozenset({"prompt", "chosen", "rejected", "completion"})
BATCH = 10_000


def _json_or_none(cell: str) -> tuple[bool, Any]:
    """(True, value) for a cell that reads as JSON exactly (a number it would change, a repeated
    key or deep nesting keep it text), else (False, None)."""
    if _guard.too_deep(cell):
        return False, None
    try:
        value = orjson.loads(cell)
    except ValueError:  # JSONDecodeError, or text with surrogates (a non-UTF-8 file)
        return False, None
    if value_issue(cell, value, 0) is not None:
        return False, None
    return not isinstance(value, str), value


def _decode_csv_column(name: str, cells: list[str]) -> list[Any]:
    """Decode one CSV column: JSON cells back to lists, objects, numbers and booleans.

    CSV has no types, so a column is decoded only when every non-empty cell is JSON that is
    not a string (then empty cells are null). Text columns are never decoded; columns that
    are text or message lists depending on the format decode only cells holding messages.
    """
    if name in _CSV_TEXT_COLUMNS:
        return cells
    if name in _CSV_MESSAGE_COLUMNS:
        out = []
        for cell in cells:
            ok, value = _json_or_none(cell.strip()) if cell.lstrip()[:1] in ("[", "{") else (False, None)
            is_messages = ok and (isinstance(value, dict) or (
                isinstance(value, list) and all(isinstance(m, dict) for m in value)))
            out.append(value if is_messages else cell)
        return out
    decoded = []
    for cell in cells:
        stripped = cell.strip()
        if not stripped:
            decoded.append(None)
            continue
        ok, value = _json_or_none(stripped)
        if not ok:
            return cells
        decoded.append(value)
    return decoded


def _is_utf8(source: Source, limit: int | None) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open_binary(source, limit) as fh:
        try:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _refuse_repeated_columns(names: list[str], source: Source) -> None:
    """Two columns of one name: a reader would rename one (pandas) or keep the last (Arrow)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputUnusableError(f"{source.name}: two columns are named {name!r}",
                                     hint="rename one of them, so that neither is lost or renamed")
        seen.add(name)


def read_csv(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    import csv

    import pandas as pd

    with open_binary(source, limit) as fh:
        refuse_binary(fh.read(8192), source)
    with open_binary(source, limit) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
        _refuse_repeated_columns(next(csv.reader(text), []), source)
    # pandas' C parser cannot hold bytes that are not UTF-8: such a file takes the Python parser,
    # which keeps them (as surrogates) so that their rows are quarantined, not changed
    utf8 = _is_utf8(source, limit)
    index = 0
    with open_binary(source, limit) as fh:
        try:
            chunks = pd.read_csv(fh, dtype=str if utf8 else object, keep_default_na=False, chunksize=BATCH, compression=None,
                                 encoding="utf-8-sig", engine="c" if utf8 else "python",
                                 encoding_errors="strict" if utf8 else "surrogateescape")
            for chunk in chunks:
                columns = {name: _decode_csv_column(name, chunk[name].tolist()) for name in chunk.columns}
                for row in zip(*columns.values()):
                    # as in Arrow containers, an empty non-text cell means the key was absent
                    value = {k: v for k, v in zip(columns, row) if v is not None}
                    item = RawItem(index, value, None)
                    if has_surrogates(value):
                        item.value, item.raw = None, value
                        item.issue = Issue(ErrorCode.INVALID_UTF8, "the row is not valid UTF-8",
                                           index, "re-encode the file as UTF-8")
                    yield item
                    index += 1
        except pd.errors.EmptyDataError:
            pass
        except (pd.errors.ParserError, csv.Error, UnicodeError) as exc:
            raise InputUnusableError(f"{source.name}: not a readable CSV file ({exc})",
                                     hint="check the quoting, the delimiter and the encoding") from exc
        cut = stream_cut(fh)
    if cut:
        yield cut_item(index, cut)


def _plain_value(value: Any) -> Any:
    """An Arrow value as JSON can hold it: bytes as UTF-8 text or base64, decimals and times as text."""
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):  # datetime, date, time
        return value.isoformat()
    return str(value)  # Decimal (exact), timedelta, ...


def _non_json_types(type_: Any) -> bool:
    import pyarrow as pa

    if isinstance(type_, pa.Schema):
        return any(_non_json_types(f.type) for f in type_)
    if (pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_fixed_size_binary(type_)
            or pa.types.is_decimal(type_) or pa.types.is_temporal(type_)):
        return True
    return any(_non_json_types(type_.field(i).type) for i in range(type_.num_fields))


def _type_notes(schema: Any) -> list[str]:
    """What the columns of types JSON has no place for become, one note a column."""
    notes = []
    for field_ in schema:
        if _non_json_types(field_.type):
            notes.append(f"column {field_.name!r} is {field_.type}: kept as text (binary as UTF-8 text, or "
                         "base64 when it is not UTF-8; decimals exactly; times in ISO 8601)")
    return notes


def _nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonfinite(v) for v in value)
    return False


def _arrow_rows(batch: Any) -> Iterator[dict | None]:
    """The rows of a batch as dicts; None for a row whose text is not UTF-8 (a damaged file)."""
    try:
        yield from batch.to_pylist()
    except UnicodeDecodeError:
        for i in range(batch.num_rows):
            try:
                yield batch.slice(i, 1).to_pylist()[0]
            except UnicodeDecodeError:
                yield None


def _iter_arrow_rows(batches: Iterable[Any], start: int = 0) -> Iterator[RawItem]:
    index = start
    for batch in batches:
        plain = _non_json_types(batch.schema)
        for row in _arrow_rows(batch):
            if row is None:
                yield RawItem(index, None, f"row {index}", Issue(
                    ErrorCode.INVALID_UTF8, "the row's text is not valid UTF-8", index, "restore the file"))
                index += 1
                continue
            # Arrow gives every row every column; a null there means the key was absent
            value = {k: _plain_value(v) if plain else v for k, v in row.items() if v is not None}
            if _nonfinite(value):
                yield RawItem(index, None, value, Issue(
                    ErrorCode.UNSAFE_NUMBER, "a number is NaN or infinite, which JSON cannot hold", index,
                    "replace it with null or a finite number"))
            else:
                yield RawItem(index, value, None)
            index += 1


def read_parquet(source: Source, limit: int | None, notes: list[str] | None) -> Iterator[RawItem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.location)
        size = sum(parquet.metadata.row_group(i).total_byte_size for i in range(parquet.num_row_groups))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise InputUnusableError(f"{source.name}: not a readable Parquet file ({exc})",
                                 hint="check that the file is complete") from exc
    if limit is not None and size > limit:
        raise InputTooLargeError(f"{source.name}: over {limit / 1024 / 1024:,.0f} MB once decompressed",
                                 hint="use the hubtools command line for bigger files")
    _refuse_repeated_columns(schema.names, source)
    if notes is not None:
        notes += _type_notes(schema)
    index = 0
    for group in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(group).num_rows
        done = 0
        try:
            for item in _iter_arrow_rows(parquet.iter_batches(batch_size=BATCH, row_groups=[group]), index):
                done += 1
                yield item
        except (pa.ArrowException, OSError) as exc:
            # a corrupt page: the rows of its row group not read yet are one record
            yield RawItem(index + done, None, f"row group {group}: {rows - done:,} rows", Issue(
                ErrorCode.UNREADABLE, f"{rows - done:,} rows of row group {group} could not be read "
                f"(a corrupt page: {exc})", index + done, "restore the file from its source"))
            done += 1
        index += done


def read_hub(source: Source) -> Iterator[RawItem]:
    import datasets

    from .._hub_read import load_hub_dataset

    repo_id, _, config = source.location.partition(":")
    try:
        loaded = load_hub_dataset(repo_id, config or None, token=source.token)
    except FileNotFoundError as exc:
        raise DatasetFileNotFound(
            f"{repo_id}: no such dataset on the Hub ({exc.__class__.__name__})",
            hint="check the id; a private or gated dataset needs a token with access to it (HF_TOKEN or "
                 "`hf auth login`; in the app, signing in)",
        ) from exc
    except ValueError as exc:
        if "Config name is missing" not in str(exc):
            raise
        configs = datasets.get_dataset_config_names(repo_id, token=source.token)
        raise InputUnusableError(
            f"{repo_id} has several configs ({', '.join(configs)}): say which",
            hint=f"give it as {repo_id}:{configs[0] if configs else 'CONFIG'}") from None
    except ConnectionError:  # datasets' own "Couldn't reach ..." and socket errors alike
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            raise HubNetworkError(f"{repo_id}: not in the local cache, and HF_HUB_OFFLINE=1 keeps the Hub out",
                                  hint="unset HF_HUB_OFFLINE to download it, or load a local file") from None
        raise HubNetworkError(f"{repo_id}: the Hub at {constants.ENDPOINT} could not be reached",
                              hint="check the network (or HF_ENDPOINT); a dataset loaded before is "
                                   "read from the cache with HF_HUB_OFFLINE=1") from None
    split = source.split or ("train" if "train" in loaded else next(iter(loaded)))
    if split not in loaded:
        raise InputUnusableError(f"{repo_id} has no split {split!r}",
                                 hint=f"use one of {', '.join(loaded)}")
    table = loaded[split].data.table
    yield from _iter_arrow_rows(table.to_batches(max_chunksize=BATCH))
