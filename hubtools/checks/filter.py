"""Drop what checks flagged (and optionally redact personal data), writing the kept records in
the input's own format and ``removed.jsonl`` with every removed record and why.

``kept + removed = read`` always: quarantined records cannot be kept (they broke the schema), so
they are listed in ``removed.jsonl`` under ``schema`` whatever ``drop`` says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import HubtoolsError
from ..io import atomic_write, output_set, write_jsonl
from ..load import LoadResult, canonical_dataset
from ..records import INDEX, Kind
from ..shapes import SHAPES
from .runner import QualityResult, default_checks, resolve_checks, run_checks

__all__ = ["FilterResult", "filter_dataset", "redact_table", "removal_reasons"]

@dataclass
class FilterResult:
    """What ``filter`` kept and removed, and where it wrote them."""

    read: int
    kept: int
    removed: int
    path: Path
    removed_path: Path
    by_reason: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"read": self.read, "kept": self.kept, "removed": self.removed, "out": str(self.path),
                "removed_file": str(self.removed_path), "by_reason": self.by_reason,
                "redacted": self.redacted}


def _redact_strings(values: pa.Array, counts: dict[str, int]) -> pa.Array:
    from .pii import redact_array

    redacted, found = redact_array(values)
    for kind, n in found.items():
        counts[kind] = counts.get(kind, 0) + n
    return redacted


def _redact_messages(column: pa.Array, counts: dict[str, int]) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = pc.list_flatten(column)
    struct_type = flat.type
    children = [flat.field(i) for i in range(struct_type.num_fields)]
    names = [struct_type.field(i).name for i in range(struct_type.num_fields)]
    pos = names.index("content")
    children[pos] = _redact_strings(children[pos], counts)
    new_flat = pa.StructArray.from_arrays(children, fields=list(struct_type), mask=flat.is_null())
    offsets = column.offsets
    if column.offset or len(flat) != len(column.values):
        # a sliced list array: rebase the offsets onto the flattened values
        offsets = pc.subtract(offsets, offsets[0])
    return pa.ListArray.from_arrays(offsets, new_flat, mask=column.is_null())


def redact_table(table: pa.Table, kind: Kind) -> tuple[pa.Table, dict[str, int]]:
    """Replace personal data in every text of a canonical table with typed placeholders."""
    counts: dict[str, int] = {}
    message_columns = SHAPES[Kind(kind)].message_columns
    for name in table.column_names:
        column = table.column(name)
        if name in message_columns:
            new = _redact_messages(column, counts)
        elif name == "text" and kind is Kind.TEXT:
            new = _redact_strings(column.combine_chunks(), counts)
        else:
            continue
        table = table.set_column(table.column_names.index(name), name, new)
    return table, counts


def removal_reasons(quality: QualityResult, drop: list[str], *, min_quality: float | None = None
                    ) -> dict[int, dict[str, str]]:
    """Source index -> {check: reason} of the valid records that ``drop`` (and ``min_quality``) remove.

    ``schema`` (the quarantine) is not among them: quarantined records are not in the data.
    """
    reasons: dict[int, dict[str, str]] = {}
    for name in drop:
        if name == "schema":
            continue
        result = quality.results[name]
        for index in result.flagged:
            reasons.setdefault(index, {})[name] = result.reasons.get(index, "")
    if min_quality is not None:
        scores = quality.scores()
        for index, score in scores.scores.items():
            if score < min_quality and index not in scores.quarantined:
                reasons.setdefault(index, {})["quality_score"] = f"score {score:g} < {min_quality:g}"
    return reasons


def filter_dataset(
    source: str | os.PathLike | LoadResult,
    out_dir: str | os.PathLike,
    *,
    drop: list[str] | str,
    min_quality: float | None = None,
    redact_pii: bool = False,
    quality: QualityResult | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    num_proc: int = 1,
    progress: bool = False,
    format: str | None = None,
    engine: str | Any = "local",
    shards: str | None = None,
    shard_rows: int | None = None,
) -> FilterResult:
    """Remove the records the ``drop`` checks flag; write the rest in the input's format.

    Args:
        source: a path or Hub id, or a ``LoadResult``.
        out_dir: gets ``<name>.<ext>`` (kept records, same format and container as the input;
            JSON Lines for directories, Hub ids and gzip), ``removed.jsonl`` and ``filter_summary.json``.
        drop: check names whose flagged records are removed.
        min_quality: also remove records whose quality score (:mod:`hubtools.checks.score`) is
            below this; the score comes from the default scan plus ``drop``.
        redact_pii: replace e-mails, phone numbers, cards, ids and secrets in kept records with
            typed placeholders such as ``[EMAIL]``.
        quality: results of an earlier ``run_checks`` on the same input (else the checks run now).
        engine: where those checks run (``"local"``, ``"ray"`` or an engine object; see
            :func:`hubtools.checks.engines.get_engine`).
        shards: ``"parquet"`` or ``"jsonl"``: write the kept records (canonical, with their
            source index) as ``kept/part-NNNNN.<ext>`` shards instead of one file in the
            input's format (the default with the Ray engine: large inputs).
        shard_rows: records per shard (default :data:`hubtools.checks.engines.SHARD_ROWS`).

    Example:
        >>> filter_dataset("data.jsonl", "clean/", drop="exact_duplicates,pii")  # doctest: +SKIP
    """
    from ..convert import WriteResult, write  # convert imports load; keep the import graph one-way
    from .engines import SHARD_ROWS, get_engine, write_record_shards

    engine = get_engine(engine)
    shards = shards or ("parquet" if engine.name == "ray" else None)

    names = resolve_checks(drop) if drop else []
    if not names and min_quality is None:
        raise HubtoolsError("nothing to filter on", hint="name checks with --drop, or give --min-quality")
    # the engine reads a path (Ray: its files in read tasks on the workers)
    loaded = source if isinstance(source, LoadResult) else engine.load(source, format=format, progress=progress)
    if quality is None:
        run = [n for n in names if n != "schema"] or ["schema"]
        if min_quality is not None:  # the score reads every default check's flags
            run = resolve_checks(sorted({*run, *default_checks()}))
        quality = run_checks(loaded, checks=run, options=options, num_proc=num_proc, progress=progress,
                             engine=engine)
    missing = [n for n in names if n not in quality.results]
    if missing:
        raise HubtoolsError(f"the quality results have no {', '.join(missing)} check",
                            hint="run `hubtools check` with those checks first, or omit --quality")
    reasons = removal_reasons(quality, names, min_quality=min_quality)

    table = loaded.dataset.data.table
    drop_mask = pc.is_in(table.column(INDEX), value_set=pa.array(sorted(reasons), pa.int64()))
    kept_table = table.filter(pc.invert(drop_mask))
    redacted: dict[str, int] = {}
    if redact_pii:
        kept_table, redacted = redact_table(kept_table, loaded.kind)

    out = Path(out_dir)
    container = loaded.source.container
    ext = "jsonl" if container in ("dir", "hub") or loaded.source.compressed else container
    stem = Path(loaded.source.name).name.split(".")[0] or "data"
    kept_path = out / "kept" if shards else out / f"{stem}.{ext}"
    removed_path = out / "removed.jsonl"
    # one set: a full disk or an error leaves the previous kept records, removed.jsonl and summary
    with output_set(out, last=("filter_summary.json",), replaces=["kept/part-*"] if shards else ()) as stage:
        if shards:
            written = WriteResult(kept_path, shards, write_record_shards(
                kept_table, stage / "kept", shards, rows_per_shard=shard_rows or SHARD_ROWS))
        else:
            written = write(canonical_dataset(kept_table, loaded.kind), stage / kept_path.name,
                            format=loaded.format, kind=loaded.kind)

        removed_rows = [{"index": row.index, "reasons": ["schema"], "details": {"schema": f"{row.code}: {row.reason}"}}
                        for row in loaded.quarantine]
        removed_rows += [{"index": row.index, "reasons": ["write"], "details": {"write": f"{row.code}: {row.reason}"}}
                         for row in written.quarantine]
        removed_rows += [{"index": index, "reasons": list(detail), "details": detail}
                         for index, detail in reasons.items()]
        removed_rows.sort(key=lambda r: r["index"])
        write_jsonl(stage / removed_path.name, removed_rows)

        by_reason: dict[str, int] = {}
        for row in removed_rows:
            for reason in row["reasons"]:
                by_reason[reason] = by_reason.get(reason, 0) + 1
        result = FilterResult(read=loaded.total, kept=written.written, removed=len(removed_rows),
                              path=kept_path, removed_path=removed_path, by_reason=by_reason, redacted=redacted)
        if result.kept + result.removed != result.read:
            raise HubtoolsError(f"internal error: {result.read} records read, {result.kept} kept + "
                                f"{result.removed} removed", hint="please report this with the input file")
        with atomic_write(stage / "filter_summary.json") as fh:
            fh.write(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return result
