"""Columnar fast path for clean JSON Lines: Alpaca, text, OpenAI / ShareGPT chats and flat DPO.

pyarrow parses the file in blocks; conversion and validation run as Arrow compute over whole
columns. It is all or nothing: the moment a block fails to parse, has a column of an unexpected
type, or holds one record that breaks a rule, this returns None and :func:`hubtools.load` reads
the file record by record, so quarantine rows keep the original line and exact reasons. The
result is identical to the record-by-record path (tests compare them).
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ._guard import ArrowGuard, float_hazard
from .errors import UnknownFormatError
from .formats import Detection, detect, get_format
from .formats.base import ROLE_ALIASES
from .io import Source
from .records import EXTRA, INDEX, schema_for

__all__ = ["fast_load", "fast_part", "has_columnar_path"]

logger = logging.getLogger(__name__)

_BLOCK = 16 << 20
_STRING_TYPES = (pa.string(), pa.large_string())


def _text_ok(column: pa.ChunkedArray | pa.Array, max_chars: int) -> pa.Array:
    """Mask of values that are non-null, non-blank and not too long."""
    length = pc.utf8_length(column)
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
    return pc.and_kleene(pc.and_kleene(pc.is_valid(column), pc.invert(blank)),
                         pc.less_equal(length, max_chars)).fill_null(False)


#: the roles the fast paths write, by the codes they use for them
_ROLE_NAMES = ("system", "user", "assistant")
SYSTEM, USER, ASSISTANT = range(3)


def _message_lists(offsets: np.ndarray, roles: np.ndarray, content: pa.Array) -> pa.ListArray:
    """list<message> of flat turns cut at ``offsets``: ``roles`` are codes into ``_ROLE_NAMES``,
    ``content`` the texts; name and tool fields are null. Every fast path builds its lists here."""
    message_type = schema_for("sft").field("messages").type.value_type
    nulls = pa.nulls(len(content), pa.string())
    values = pa.StructArray.from_arrays(
        [pc.take(pa.array(_ROLE_NAMES), pa.array(roles)), content.cast(pa.string()), nulls, nulls, nulls],
        fields=list(message_type))
    return pa.ListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int32)), values)


def _messages(users: pa.Array, replies: pa.Array) -> pa.ListArray:
    """list<message> of [user, assistant] per row, without a Python loop."""
    n = len(users)
    order = np.arange(2 * n).reshape(2, n).T.ravel()  # user 0, reply 0, user 1, reply 1, ...
    content = pa.concat_arrays([users.cast(pa.string()), replies.cast(pa.string())]).take(pa.array(order))
    return _message_lists(np.arange(0, 2 * n + 1, 2), np.tile(np.array([USER, ASSISTANT], np.int8), n), content)


def _extras(batch: pa.RecordBatch, names: list[str], also: list[Any] | None = None) -> pa.Array:
    """hubtools_extra per row: the unowned columns (nulls dropped) as JSON, or null."""
    if not names and also is None:
        return pa.nulls(batch.num_rows, pa.string())
    columns = [batch.column(n).to_pylist() for n in names]
    out = []
    for i in range(batch.num_rows):
        extra = {n: col[i] for n, col in zip(names, columns) if col[i] is not None}
        if also is not None and also[i]:
            extra["input"] = also[i]
        out.append(orjson.dumps(extra).decode() if extra else None)
    return pa.array(out, pa.string())


def _alpaca(batch: pa.RecordBatch, max_chars: int) -> pa.Table | None:
    names = batch.schema.names
    if {"system", "history"} & set(names):
        return None
    instruction, output = batch.column("instruction"), batch.column("output")
    if "input" in names:
        input_text = batch.column("input")
        if input_text.type not in _STRING_TYPES and input_text.null_count != len(input_text):
            return None
        input_text = input_text.cast(pa.string()).fill_null("")
    else:
        input_text = pa.array([""] * batch.num_rows, pa.string())
    has_input = pc.greater(pc.utf8_length(input_text), 0)
    user = pc.if_else(has_input, pc.binary_join_element_wise(instruction, input_text, "\n"), instruction)
    ok = pc.and_(_text_ok(user, max_chars), _text_ok(output, max_chars))
    ok = pc.and_(ok, _text_ok(instruction, max_chars))  # a blank instruction before an input is none
    if not pc.all(ok).as_py():
        return None
    extra_names = [n for n in names if n not in get_format("alpaca").owned]
    inputs = input_text.to_pylist() if pc.any(has_input).as_py() else None
    return pa.table({
        "messages": _messages(user, output),
        "tools": pa.nulls(batch.num_rows, pa.string()),
        EXTRA: _extras(batch, extra_names, inputs),
    })


def _one_turn(role: int, content: pa.Array) -> pa.ListArray:
    """list<message> of one ``role`` turn per row."""
    n = len(content)
    return _message_lists(np.arange(n + 1), np.full(n, role, np.int8), content)


def _system_and_user(system: pa.Array | None, prompt: pa.Array) -> pa.ListArray:
    """list<message> per row: [system, user] where ``system`` is a non-empty string, else [user]."""
    n = len(prompt)
    if system is None:
        return _one_turn(USER, prompt)
    system = system.cast(pa.string()).fill_null("")
    has = pc.greater(pc.utf8_length(system), 0).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(1 + has)])
    index = np.empty(offsets[-1], np.int64)
    index[offsets[1:] - 1] = n + np.arange(n)  # the user turn closes each row
    index[offsets[:-1][has]] = np.flatnonzero(has)  # the system turn opens it, when there is one
    roles = np.full(offsets[-1], USER, np.int8)
    roles[offsets[:-1][has]] = SYSTEM
    content = pa.concat_arrays([system, prompt.cast(pa.string())]).take(pa.array(index))
    return _message_lists(offsets, roles, content)


def _dpo(batch: pa.RecordBatch, max_chars: int) -> pa.Table | None:
    """Flat prompt/chosen/rejected strings, with an optional system prompt and numeric scores (no
    input or other prompt keys)."""
    names = batch.schema.names
    if {"question", "instruction", "input"} & set(names):
        return None
    scores = {}
    for key in ("score_chosen", "score_rejected"):
        column = batch.column(key) if key in names else pa.nulls(batch.num_rows, pa.float64())
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                or column.null_count == len(column)):
            return None  # text or true/false scores: the exact path says which record
        scores[key] = column.cast(pa.float64())
    prompt, chosen, rejected = (batch.column(n) for n in ("prompt", "chosen", "rejected"))
    ok = pc.and_(pc.and_(_text_ok(prompt, max_chars), _text_ok(chosen, max_chars)), _text_ok(rejected, max_chars))
    if not pc.all(ok).as_py():
        return None
    system = batch.column("system") if "system" in names else None
    if system is not None:
        if system.type not in _STRING_TYPES and system.null_count != len(system):
            return None
        given = pc.greater(pc.utf8_length(system.cast(pa.string()).fill_null("")), 0)
        if not pc.all(pc.or_(pc.invert(given), _text_ok(system, max_chars))).as_py():
            return None  # a blank or too long system prompt: the exact path says which
    same = pc.equal(pc.utf8_trim_whitespace(chosen), pc.utf8_trim_whitespace(rejected))
    if pc.any(same).as_py():
        return None  # the exact path quarantines the pair as same_replies
    extra_names = [n for n in names if n not in get_format("dpo").owned]
    return pa.table({
        "prompt": _system_and_user(system, prompt), "chosen": _one_turn(ASSISTANT, chosen),
        "rejected": _one_turn(ASSISTANT, rejected), **scores,
        "tools": pa.nulls(batch.num_rows, pa.string()), EXTRA: _extras(batch, extra_names),
    })


def _text(batch: pa.RecordBatch, max_chars: int) -> pa.Table | None:
    text = batch.column("text")
    if not pc.all(_text_ok(text, max_chars)).as_py():
        return None
    extra_names = [n for n in batch.schema.names if n != "text"]
    return pa.table({"text": text, EXTRA: _extras(batch, extra_names)})


#: raw role names the chat fast path maps, and their role codes (tool turns and function calls
#: take the exact path)
_CHAT_ROLES = {raw: role for raw, role in ROLE_ALIASES.items() if role in _ROLE_NAMES and raw != "function_call"}
_CHAT_RAW = pa.array(list(_CHAT_ROLES))
_CHAT_CODES = np.array([_ROLE_NAMES.index(role) for role in _CHAT_ROLES.values()], np.int8)


def _chat(column: str, role_key: str, content_key: str):
    """A converter for clean ``column`` message lists of exactly {role_key, content_key} strings."""

    def convert(batch: pa.RecordBatch, max_chars: int) -> pa.Table | None:
        if column not in batch.schema.names or {"system", "tools"} & set(batch.schema.names):
            return None
        lists = batch.column(column)
        value_type = getattr(lists.type, "value_type", None)
        if not pa.types.is_list(lists.type) or not pa.types.is_struct(value_type) or \
                sorted(f.name for f in value_type) != sorted((role_key, content_key)) or \
                any(value_type.field(k).type not in _STRING_TYPES for k in (role_key, content_key)):
            return None
        if lists.null_count:
            return None
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
        if (lengths == 0).any():
            return None
        flat = lists.flatten()
        if flat.null_count:
            return None
        raw_roles, content = flat.field(role_key), flat.field(content_key)
        position = pc.index_in(raw_roles, value_set=_CHAT_RAW)
        if position.null_count:
            return None  # an unknown or tool role: the exact path says which
        roles = _CHAT_CODES[position.to_numpy(zero_copy_only=False)]
        if not pc.all(_text_ok(content, max_chars)).as_py():
            return None
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        starts = offsets[:-1]
        within = np.arange(len(roles)) - np.repeat(starts, lengths)
        if ((roles == SYSTEM) & (within > 0)).any():
            return None  # a system turn after the start
        lead = (roles[starts] == SYSTEM).astype(np.int64)  # the first turn after an optional system prompt
        if ((lengths - lead) == 0).any():
            return None  # only a system turn
        if (roles[np.minimum(starts + lead, len(roles) - 1)] != USER).any() or \
                (roles[offsets[1:] - 1] != ASSISTANT).any():
            return None  # not user first and assistant last
        extra_names = [n for n in batch.schema.names if n != column]
        return pa.table({
            "messages": _message_lists(offsets, roles, content),
            "tools": pa.nulls(batch.num_rows, pa.string()),
            EXTRA: _extras(batch, extra_names),
        })

    return convert


_CONVERTERS = {"alpaca": (_alpaca, ("instruction", "output")), "text": (_text, ("text",)),
               "openai": (_chat("messages", "role", "content"), ()),
               "sharegpt": (_chat("conversations", "from", "value"), ()),
               "dpo": (_dpo, ("prompt", "chosen", "rejected"))}


class _Guarded(io.RawIOBase):
    """The file (a path, or an open binary stream) as pyarrow reads it, each chunk checked
    first: a line that may nest too deep for pyarrow's parser (it overflows its stack and kills
    the process) ends the stream with an error."""

    def __init__(self, path: str | io.RawIOBase | io.BufferedIOBase):
        self._file = open(path, "rb") if isinstance(path, str) else path  # noqa: SIM115 (closed with the reader)
        self._guard = ArrowGuard(max_line=_BLOCK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._file.readinto(buffer)
        if n and not self._guard.feed(memoryview(buffer)[:n]):
            raise OSError("a line nests too deep or is too long for the columnar path")
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _has_float(type_: pa.DataType) -> bool:
    if pa.types.is_floating(type_):
        return True
    return any(_has_float(type_.field(i).type) for i in range(type_.num_fields))


def _floats_exact(path: str) -> bool:
    """Whether every number of a file pyarrow read as floats reads back as written (no NaN, no
    16-digit integer, no 3-digit exponent: those take the exact path)."""
    with open(path, "rb") as fh:
        tail = b""
        while chunk := fh.read(_BLOCK):
            if float_hazard(tail + chunk):
                return False
            tail = chunk[-32:]
    return True


def fast_load(src: Source, *, format: str | None, max_chars: int) -> tuple[pa.Table, Detection, list[dict]] | None:
    """Return (canonical table, detection, the records detection saw) for a clean flat file, else None."""
    if src.container != "jsonl" or src.compressed:
        return None
    try:
        guarded = _Guarded(src.location)
    except OSError:  # the exact path says why the file cannot be read
        return None
    with guarded:
        return _fast_load(guarded, src.name, lambda: _floats_exact(src.location), format=format, max_chars=max_chars)


def has_columnar_path(format_name: str) -> bool:
    """Whether records of this format can take the columnar path."""
    return format_name in _CONVERTERS


def fast_part(data: bytes, format: str, max_chars: int, name: str = "part") -> pa.Table | None:
    """The canonical table of the JSON Lines records in ``data`` (a file's lines, e.g. one Ray
    read task's byte range) converted as ``format``, indices from 0; None where the file path
    would not take the columnar path (then the records are read one by one, as the load does).
    The same all-or-nothing rule as :func:`fast_load`, per piece: a clean piece gives the records
    the record-by-record path gives."""
    with _Guarded(io.BytesIO(data)) as guarded:
        out = _fast_load(guarded, name, lambda: not float_hazard(data), format=format, max_chars=max_chars)
    return None if out is None else out[0]


def _fast_load(guarded: _Guarded, name: str, floats_exact: Any, *, format: str | None,
               max_chars: int) -> tuple[pa.Table, Detection, list[dict]] | None:
    try:
        reader = pajson.open_json(guarded, read_options=pajson.ReadOptions(block_size=_BLOCK))
        first = reader.read_next_batch()
        first.validate(full=True)  # pyarrow does not check UTF-8 while parsing
    except (pa.ArrowInvalid, StopIteration, OSError):
        return None
    head = [{k: v for k, v in row.items() if v is not None} for row in first.slice(0, 1000).to_pylist()]
    try:
        detection = detect(head, forced=format)
    except UnknownFormatError:  # the slow path reports it with the right message
        return None
    if detection.format not in _CONVERTERS or (format is None and detection.confidence < 1.0):
        return None
    convert, required = _CONVERTERS[detection.format]
    schema = schema_for(detection.kind)
    tables: list[pa.Table] = []
    start = 0
    batch: pa.RecordBatch | None = first
    floats = False
    while batch is not None:
        floats = floats or _has_float(pa.struct(list(batch.schema)))
        if any(name not in batch.schema.names or batch.schema.field(name).type not in _STRING_TYPES
               for name in required):
            return None
        converted = convert(batch, max_chars)
        if converted is None:
            return None
        index = pa.array(range(start, start + batch.num_rows), pa.int64())
        tables.append(converted.add_column(0, INDEX, index).select(schema.names).cast(schema))
        start += batch.num_rows
        try:
            batch = reader.read_next_batch()
            batch.validate(full=True)
        except StopIteration:
            batch = None
        except (pa.ArrowInvalid, OSError):
            logger.info("%s: a later block does not parse as one table; reading record by record", name)
            return None
    if floats and not floats_exact():
        return None
    return pa.concat_tables(tables), detection, head
