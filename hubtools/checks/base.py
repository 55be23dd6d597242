"""What every check shares: the text view of a dataset, the result type, the registry, and
batched (optionally multi-process) mapping over Arrow arrays.

A check is a function ``(data, options) -> CheckResult``. ``data`` is a :class:`CheckData`, the
columnar text view of a canonical dataset (built once per run by the runner, or on the fly from
a ``datasets.Dataset``); ``options`` is the check's own options dataclass. Adding a check is
adding one module with a ``@register``-ed function and one line in ``checks/__init__.py``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..records import INDEX, Kind
from ..shapes import SHAPES, kind_of
from ..validate import QuarantineRow
from .shared_view import SharedView, drop_mapped, read_batch

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = [
    "BATCH_SIZE",
    "REGISTRY",
    "CheckData",
    "CheckResult",
    "CheckSpec",
    "FormattedReasons",
    "NoOptions",
    "joined_role_text",
    "register",
]

logger = logging.getLogger(__name__)

#: Rows of a mapped view read between two hand-backs of its pages (:meth:`CheckData.take`)
TAKE_ROWS = 1_000

#: Rows per batch handed to a mapped function (and to a worker process).
BATCH_SIZE = 20_000

#: Turn separator when several messages of one role are joined into one text.
TURN_SEP = "\n\n"


# --------------------------------------------------------------------------- text view


def joined_role_text(messages: pa.Array, roles: Sequence[str], sep: str = TURN_SEP) -> pa.Array:
    """Join the contents of the messages with one of ``roles`` per row into one string.

    ``messages`` is a ``list<struct<role, content, ...>>`` Arrow array; the result is a string
    array of the same length ("" for rows with no such message). Done with Arrow kernels, no
    Python loop: about 1M rows per second.
    """
    if isinstance(messages, pa.ChunkedArray):
        # chunk by chunk: combining the chunks first would copy the whole column (about the
        # size of the input) only to join it; each chunk's text is copied into the result's
        # buffers as it is made (concatenating the pieces would hold the text twice)
        if messages.num_chunks == 1:
            messages = messages.chunk(0)
        elif messages.num_chunks == 0:
            return pa.array([], pa.string())
        else:
            return _join_chunks(messages.chunks, roles, sep)
    n = len(messages)
    if n == 0:
        return pa.array([], pa.string())
    values, counts = _role_values(messages, roles)
    if len(values) == n and (counts == 1).all():
        return values  # one such message per row (single-turn data): nothing to join
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
    return pc.fill_null(pc.binary_join(lists, sep), "")


def _role_values(messages: pa.Array, roles: Sequence[str]) -> tuple[pa.Array, np.ndarray]:
    """The contents of the messages with one of ``roles`` (in order, nulls as ""), and how many
    each row has."""
    flat = pc.list_flatten(messages)
    parents = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False)
    role = pc.struct_field(flat, "role")
    content = pc.fill_null(pc.struct_field(flat, "content"), "")
    keep = pc.fill_null(pc.is_in(role, value_set=pa.array(list(roles), pa.string())), False)
    counts = np.bincount(parents[keep.to_numpy(zero_copy_only=False)], minlength=len(messages))
    return pc.filter(content, keep), counts


def _join_chunks(chunks: Sequence[pa.Array], roles: Sequence[str], sep: str) -> pa.Array:
    """:func:`joined_role_text` of a chunked column as one array, written straight into buffers
    sized beforehand (from the contents' lengths, without copying any text)."""
    sizes = []
    for chunk in chunks:
        values, counts = _role_values(chunk, roles)
        text = pc.sum(pc.binary_length(values)).as_py() or 0
        sizes.append(text + len(sep.encode()) * int(np.maximum(counts - 1, 0).sum()))
    if sum(sizes) >= 2**31:  # beyond 32-bit string offsets: as before, Arrow's own concatenation
        return pa.concat_arrays([joined_role_text(chunk, roles, sep) for chunk in chunks])
    n = sum(len(chunk) for chunk in chunks)
    data = np.empty(sum(sizes), dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = row = byte = 0
    for chunk, size in zip(chunks, sizes):
        part = joined_role_text(chunk, roles, sep)
        m = len(part)
        if m:
            _, off_buf, data_buf = part.buffers()
            off = np.frombuffer(off_buf, dtype=np.int32, count=m + 1, offset=part.offset * 4)
            if off[-1] - off[0] != size or part.null_count:
                raise RuntimeError("joined_role_text: a chunk's text is not the size measured")
            if size:
                data[byte:byte + size] = np.frombuffer(data_buf, dtype=np.uint8, count=int(off[-1]))[off[0]:]
            offsets[row + 1:row + m + 1] = off[1:] - off[0] + byte
        row, byte = row + m, byte + size
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _views(table: pa.Table, kind: Kind) -> dict[str, pa.Array]:
    """The text fields of each kind (see :class:`CheckData` and ``hubtools.shapes``); message
    columns are joined chunk by chunk."""
    views = {}
    for text in SHAPES[kind].text_fields:
        column = table.column(text.column)
        views[text.name] = (joined_role_text(column, text.roles) if text.roles
                            else pc.fill_null(column.combine_chunks(), ""))
    return views


def kind_of_dataset(table: pa.Table, kind: Kind | str | None = None) -> Kind:
    """``kind``, or the kind a canonical table's columns show."""
    return Kind(kind) if kind is not None else kind_of(table.column_names)


@dataclass
class CheckData:
    """A columnar text view of a canonical dataset, the one input every check reads.

    Fields by kind (Arrow string arrays, one value per valid record, never null):

    * ``sft``: ``prompt`` (user turns joined), ``response`` (assistant turns joined);
    * ``prompt``: ``prompt`` (user turns joined); prompt-only data has no reply;
    * ``preference``: ``prompt``, ``chosen``, ``rejected``;
    * ``unpaired``: ``prompt``, ``response`` (the completion);
    * ``text``: ``text``.

    ``index`` holds each row's source index (the number reports and flags use).
    """

    kind: Kind
    index: np.ndarray
    fields: dict[str, pa.Array]
    #: the canonical dataset itself, for checks that need more than text (e.g. scores)
    dataset: Dataset | None = None
    #: what validation quarantined (the ``schema`` check reports it)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    #: worker pool for :meth:`map`; None runs in this process
    pool: Executor | None = None
    num_proc: int = 1
    progress: bool = False
    #: the fields in a memory-mapped file the workers read in place (set by the local engine's
    #: session when it has a pool; :mod:`.shared_view`)
    shared: SharedView | None = None

    @classmethod
    def from_dataset(cls, dataset: Dataset, kind: Kind | str | None = None, **kwargs: Any) -> CheckData:
        """Build the view of a canonical dataset (its kind is read from its columns if not given)."""
        table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
        kind = kind_of_dataset(table, kind)
        index = table.column(INDEX).to_numpy() if INDEX in table.column_names else np.arange(len(table))
        fields = _views(table, kind)
        release_memory()  # the views' temporaries (copies of text columns) are freed by now
        return cls(kind=kind, index=np.asarray(index, dtype=np.int64), fields=fields,
                   dataset=dataset, **kwargs)

    @classmethod
    def of(cls, data: CheckData | Dataset) -> CheckData:
        """Accept either a view or a canonical dataset (so a check can be called on a Dataset)."""
        return data if isinstance(data, CheckData) else cls.from_dataset(data)

    def __len__(self) -> int:
        return len(self.index)

    # which fields a check should read --------------------------------------------------
    @property
    def prompt_fields(self) -> list[str]:
        """Where the instructions are (the whole text for ``text`` data)."""
        return ["text"] if self.kind is Kind.TEXT else ["prompt"]

    @property
    def response_fields(self) -> list[str]:
        """Where the model replies are: both replies for preference data, none for prompt-only data."""
        if self.kind is Kind.TEXT:
            return ["text"]
        if self.kind is Kind.PROMPT:
            return []
        return ["chosen", "rejected"] if self.kind is Kind.PREFERENCE else ["response"]

    def select_fields(self, requested: Sequence[str] | str | None, default: Sequence[str], check: str) -> list[str]:
        """The fields a check's ``fields`` option names: field names, or ``prompt`` / ``response``
        for the kind's prompt or reply fields (``default`` when None), without repeats.

        Raises:
            UnknownCheckError: a name that is neither.
        """
        from ..errors import UnknownCheckError

        if isinstance(requested, str):
            requested = [part.strip() for part in requested.split(",") if part.strip()]
        out: list[str] = []
        for name in requested if requested is not None else default:
            if name in self.fields:
                out.append(name)
            elif name in ("prompt", "prompts"):
                out.extend(self.prompt_fields)
            elif name in ("response", "responses", "reply", "replies"):
                out.extend(self.response_fields)
            else:
                raise UnknownCheckError(f"the {check} check has no field {name!r} in {self.kind.value} data",
                                        hint=f"use prompt, response or one of: {', '.join(self.fields)}")
        return list(dict.fromkeys(out))

    @property
    def all_fields(self) -> list[str]:
        return list(self.fields)

    def column(self, name: str) -> pa.Array:
        return self.fields[name]

    def texts(self, name: str) -> list[str]:
        return self.fields[name].to_pylist()

    def example_text(self, sep: str = "\n") -> pa.Array:
        """Prompt and reply(ies) of each row joined: the whole example as one string."""
        columns = list(self.fields.values())
        if len(columns) == 1:
            return columns[0]
        return pc.binary_join_element_wise(*columns, sep)

    def position(self, index: int) -> int:
        """Row position of a source index (raises KeyError when it is not a valid record)."""
        pos = int(np.searchsorted(self.index, index))
        if pos >= len(self.index) or self.index[pos] != index:
            raise KeyError(index)
        return pos

    def record(self, index: int, max_chars: int | None = 300,
               transform: Callable[[str], str] | None = None) -> dict[str, str]:
        """The text fields of one record by source index, ``transform``-ed (e.g. PII-redacted)
        and then shortened for a report (in that order, so nothing is cut mid-secret)."""
        pos = self.position(index)
        out = {}
        for name, arr in self.fields.items():
            text = arr[pos].as_py() or ""
            if transform is not None:
                text = transform(text)
            out[name] = text if max_chars is None or len(text) <= max_chars else text[: max_chars - 1] + "…"
        return out

    def take(self, name: str, rows: np.ndarray) -> pa.Array:
        """The field's texts at ``rows`` (ascending positions), copied out. From a view shared
        through a mapped file they are copied :data:`TAKE_ROWS` at a time with the pages handed
        back in between: the kernel maps a whole stretch around each row it reads, so a sample
        spread over the file would otherwise map all of it."""
        arr = self.fields[name]
        if self.shared is None or len(rows) <= TAKE_ROWS:
            out = arr.take(pa.array(rows, pa.int64()))
            self.drop_pages()
            return out
        parts = []
        for start in range(0, len(rows), TAKE_ROWS):
            parts.append(arr.take(pa.array(rows[start:start + TAKE_ROWS], pa.int64())))
            self.drop_pages()
        return pa.concat_arrays(parts)

    def drop_pages(self) -> None:
        """Hand back the pages of a view shared through a mapped file that this process has
        read (:func:`.shared_view.drop_pages`); nothing for a view in memory."""
        if self.shared is not None:
            self.shared.drop_pages()

    # batched mapping --------------------------------------------------------------------
    def map(self, fn: Callable[..., Any], names: Sequence[str], *, desc: str = "",
            batch_size: int = BATCH_SIZE, parallel: bool = True, **kwargs: Any) -> list[Any]:
        """Call ``fn(batch, **kwargs)`` on consecutive row slices and return the results in order.

        ``batch`` is a dict of field name -> Arrow string array slice. With a pool the batches
        run in worker processes, so ``fn`` must be a module-level function and its results
        picklable; ``parallel=False`` keeps a cheap function in this process (shipping
        batches costs more than Arrow kernels save). Progress goes to stderr when enabled.
        """
        n = len(self)
        starts = list(range(0, n, batch_size)) or [0]
        in_process = self.pool is None or len(starts) == 1 or not parallel
        names = list(names)
        if in_process:
            batches = ({k: self.fields[k].slice(s, batch_size) for k in names} for s in starts)
        elif self.shared is not None and self.shared.covers(self.fields, names):
            # the workers read the batch from the shared file: only its place is sent
            tasks = ((_in_worker_shared, fn, self.shared.path, names, s, min(batch_size, n - s), kwargs)
                     for s in starts)
        else:
            # a pickled Arrow slice carries its parent's whole buffer: copy slices for workers
            tasks = ((_in_worker, fn, {k: pa.concat_arrays([self.fields[k].slice(s, batch_size)]) for k in names},
                      kwargs) for s in starts)
        bar = _bar(n, desc, self.progress)
        results: list[Any] = []
        try:
            if in_process:
                for batch in batches:
                    results.append(fn(batch, **kwargs))
                    bar.update(len(next(iter(batch.values()))) if batch else 0)
            else:
                # a bounded window of batches in flight: submitting them all at once would hold
                # a copy of every batch in this process (a second copy of the whole text)
                window: deque = deque()
                sizes = iter(min(batch_size, n - s) for s in starts)
                for task in tasks:
                    window.append(self.pool.submit(*task))
                    if len(window) > 2 * self.num_proc:
                        results.append(window.popleft().result())
                        bar.update(next(sizes))
                while window:
                    results.append(window.popleft().result())
                    bar.update(next(sizes))
                release_memory()  # the shipped batch copies and their pickles
        finally:
            bar.close()
        return results


def release_memory() -> None:
    """Hand freed memory back to the system: Arrow's pool (mimalloc) and glibc's malloc (numpy)
    both keep what a batch freed, so an idle worker would otherwise stay at its peak size
    through every later check."""
    pa.default_memory_pool().release_unused()
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _in_worker(fn: Callable[..., Any], batch: dict[str, pa.Array], kwargs: dict[str, Any]) -> Any:
    """Run one batch in a worker process, then release the batch's memory."""
    try:
        return fn(batch, **kwargs)
    finally:
        release_memory()


def _in_worker_shared(fn: Callable[..., Any], path: str, names: list[str], start: int, rows: int,
                      kwargs: dict[str, Any]) -> Any:
    """Run one batch read from the shared view in a worker process; then hand the view's pages
    back, so a worker holds the batch in flight, not every page it has read."""
    try:
        return _in_worker(fn, read_batch(path, names, start, rows), kwargs)
    finally:
        drop_mapped(path)


def teaching_rows(data: CheckData, name: str, flag_rejected: bool) -> np.ndarray | None:
    """Rows whose ``name`` reply the data teaches (None: all rows).

    For preference data that is ``chosen`` (unless ``flag_rejected``); for unpaired data the
    replies labelled desirable. The reply checks (refusals, toxicity) flag only those.
    """
    if flag_rejected:
        return None
    if data.kind is Kind.PREFERENCE:
        return np.full(len(data), name == "chosen")
    if data.kind is Kind.UNPAIRED and data.dataset is not None and "label" in data.dataset.column_names:
        labels = data.dataset.data.table.column("label").combine_chunks()
        return pc.fill_null(labels, True).to_numpy(zero_copy_only=False).astype(bool)
    return None


def reply_split(data: CheckData, hits: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Where a reply check's hits fall: chosen only / rejected only / both for preference data,
    desirable / undesirable for unpaired data; ``{}`` for other kinds."""
    if data.kind is Kind.PREFERENCE:
        c, r = hits["chosen"], hits["rejected"]
        return {"preference": {"chosen_only": int((c & ~r).sum()), "rejected_only": int((r & ~c).sum()),
                               "both": int((c & r).sum())}}
    if data.kind is Kind.UNPAIRED and (labels := teaching_rows(data, "response", False)) is not None:
        return {"unpaired": {"desirable": int((hits["response"] & labels).sum()),
                             "undesirable": int((hits["response"] & ~labels).sum())}}
    return {}


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc or "checking", unit=" records", unit_scale=True, leave=False)


def make_pool(num_proc: int) -> Executor | None:
    """A process pool for :meth:`CheckData.map` (spawned, not forked: a fork after rensa or
    torch have started threads can hang), or None for ``num_proc <= 1``."""
    if num_proc <= 1:
        return None
    return ProcessPoolExecutor(max_workers=num_proc, mp_context=multiprocessing.get_context("spawn"))


# --------------------------------------------------------------------------- results


class FormattedReasons(Mapping[int, str]):
    """Reasons kept as columns and written out when read: the reason of ``keys[k]`` is
    ``templates[kinds[k]].format(*(column[k] for column in columns))``.

    A read-only mapping from source index to reason, like the ``dict`` a check would build, at
    a few bytes per flagged record where a dict of strings costs about 215 (measured: a check
    that flags 40M records of a billion holds about 1 GB of reasons, not 8.6 GB). For the checks
    that flag the most records at scale (the duplicate checks).

    >>> r = FormattedReasons([7, 3], "duplicate of #{}", [[1, 0]])
    >>> r[3], r.get(7), r.get(5), list(r), len(r)
    ('duplicate of #0', 'duplicate of #1', None, [3, 7], 2)
    >>> r == {3: "duplicate of #0", 7: "duplicate of #1"}
    True
    >>> two = FormattedReasons([1, 2], ("as #{}", "near #{} ({:.2f})"), [[0, 1], [1.0, 0.8512]], kinds=[0, 1])
    >>> dict(two)
    {1: 'as #0', 2: 'near #1 (0.85)'}
    """

    __slots__ = ("_columns", "_keys", "_kinds", "_templates")

    def __init__(self, keys: Sequence[int] | np.ndarray, templates: str | Sequence[str],
                 columns: Sequence[Sequence[Any] | np.ndarray] = (),
                 kinds: Sequence[int] | np.ndarray | None = None) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        order = None if bool((keys[1:] > keys[:-1]).all()) else np.argsort(keys, kind="stable")

        def sort(values: Any, dtype: Any = None) -> np.ndarray:
            values = np.asarray(values, dtype)
            return values if order is None else values[order]

        self._keys = sort(keys)
        if not bool((self._keys[1:] > self._keys[:-1]).all()):
            raise ValueError("FormattedReasons: a source index has two reasons")
        self._templates = (templates,) if isinstance(templates, str) else tuple(templates)
        self._columns = tuple(sort(c) for c in columns)
        if any(len(c) != len(keys) for c in self._columns):
            raise ValueError("FormattedReasons: every column needs one value per key")
        self._kinds = None if kinds is None else sort(kinds, np.uint8)

    def _at(self, index: int) -> int:
        k = int(np.searchsorted(self._keys, index))
        if k >= len(self._keys) or self._keys[k] != index:
            raise KeyError(index)
        return k

    def __getitem__(self, index: int) -> str:
        k = self._at(index)
        template = self._templates[0 if self._kinds is None else self._kinds[k]]
        return template.format(*(c[k].item() for c in self._columns))

    def __contains__(self, index: object) -> bool:
        try:
            self._at(index)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self._keys), 65_536):
            yield from self._keys[start:start + 65_536].tolist()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        head = ", ".join(f"{k}: {self[k]!r}" for k in self._keys[:3].tolist())
        return f"FormattedReasons({{{head}{', ...' if len(self) > 3 else ''}}}, {len(self)} reasons)"

    @property
    def keys_array(self) -> np.ndarray:
        """The source indices, sorted (an int64 array: no Python int per record)."""
        return self._keys


@dataclass
class CheckResult:
    """What one check found.

    ``flagged`` are source indices (sorted, unique); ``reasons`` gives a short reason per
    flagged index (what ``filter`` writes to ``removed.jsonl``); ``stats`` are the check's
    figures for the report; ``options`` the thresholds it ran with; ``versions`` the libraries.
    """

    name: str
    flagged: list[int] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    #: False when the check could not run on this data (e.g. preference checks on SFT)
    applicable: bool = True
    #: a few flagged records (index, reason, shortened and PII-redacted text) for the report
    examples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.flagged, np.ndarray):  # one pass in numpy, no Python set per record
            self.flagged = np.unique(self.flagged.astype(np.int64, copy=False)).tolist()
        else:
            self.flagged = sorted({int(i) for i in self.flagged})

    @property
    def count(self) -> int:
        return len(self.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "count": self.count,
            "stats": self.stats,
            "reasons": {str(k): v for k, v in sorted(self.reasons.items())},
            "options": self.options,
            "versions": self.versions,
            "applicable": self.applicable,
            "examples": self.examples,
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> CheckResult:
        return cls(name=name, flagged=list(data.get("flagged", [])), stats=dict(data.get("stats", {})),
                   reasons={int(k): v for k, v in (data.get("reasons") or {}).items()},
                   options=dict(data.get("options", {})), versions=dict(data.get("versions", {})),
                   applicable=bool(data.get("applicable", True)),
                   examples=list(data.get("examples", [])))


# --------------------------------------------------------------------------- registry


@dataclass
class NoOptions:
    """For checks without settings."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    fn: Callable[[CheckData, Any], CheckResult]
    description: str
    options: type = NoOptions
    #: part of the default scan
    default: bool = True
    #: kinds the check applies to
    kinds: frozenset[Kind] = frozenset(Kind)
    #: the check reads only the replies (skipped, saying why, on prompt-only data)
    replies: bool = False
    #: the check measures valid records (skipped, saying why, when there are none)
    needs_records: bool = True

    def make_options(self, values: dict[str, Any] | None = None) -> Any:
        """The options dataclass with ``values`` applied; unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in fields(self.options)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"check {self.name!r} has no option(s) {sorted(unknown)}; "
                             f"it has {sorted(known) or 'none'}")
        return self.options(**values)

    def skipped(self, data: CheckData) -> str | None:
        """Why the check cannot measure this data (None when it can)."""
        if data.kind is Kind.PROMPT and (self.replies or data.kind not in self.kinds):
            return "prompt-only data has no replies to check" if self.replies else \
                "does not apply to prompt-only data"
        if data.kind not in self.kinds:
            return f"does not apply to {data.kind.value} data"
        if self.needs_records and len(data) == 0:
            return "no valid record to measure: every record was quarantined (see the schema check)"
        return None

    def run(self, data: CheckData | Dataset, options: Any = None) -> CheckResult:
        data = CheckData.of(data)
        opts = options if options is not None else self.options()
        skipped = self.skipped(data)
        if skipped:
            return CheckResult(self.name, applicable=False, options=options_dict(opts), stats={"skipped": skipped})
        result = self.fn(data, opts)
        if not result.options:
            result.options = options_dict(opts)
        return result


def options_dict(opts: Any) -> dict[str, Any]:
    return asdict(opts) if is_dataclass(opts) else dict(opts or {})


#: name -> spec, in the order checks run and appear in reports
REGISTRY: dict[str, CheckSpec] = {}


def register(name: str, *, description: str, options: type = NoOptions, default: bool = True,
             kinds: Iterable[Kind] = tuple(Kind), replies: bool = False, needs_records: bool = True) -> Callable:
    """Register a check function under ``name`` (decorator).

    Args:
        replies: the check reads only replies: on prompt-only data it is skipped, saying so.
        needs_records: with no valid record the check is skipped, saying so (the ``schema``
            check, which reports the quarantine, sets this False).
    """
    def deco(fn: Callable[[CheckData, Any], CheckResult]) -> Callable:
        REGISTRY[name] = CheckSpec(name, fn, description, options, default, frozenset(kinds), replies,
                                   needs_records)
        return fn
    return deco
