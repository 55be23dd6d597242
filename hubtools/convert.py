"""Write canonical datasets in any format and container; convert files between formats.

Writing never flattens: a record the target format cannot hold (tool calls into Alpaca,
multi-turn into flat DPO) goes to the quarantine with a reason, and ``written + quarantined``
equals the records given.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset

from .errors import ConversionError, ErrorCode, HubtoolsError, UnknownFormatError
from .formats import FORMATS, from_canonical, get_format
from .formats.llamafactory_v1 import MEDIA_COLUMNS
from .io import CONTAINERS, atomic_write, container_for_path, output_set, write_jsonl, write_records
from .load import LoadResult, load
from .records import INDEX, Kind
from .validate import QuarantineRow

__all__ = [
    "WriteResult",
    "convert",
    "llama_factory_entry",
    "update_dataset_info",
    "writable_formats",
    "write",
    "write_quarantine",
    "write_stage",
]

logger = logging.getLogger(__name__)

#: Output formats offered by ``convert --to``, by kind.
WRITE_FORMATS = ("alpaca", "sharegpt", "openai", "dpo", "trl", "kto", "text",
                 "sharegpt_preference", "hh_rlhf", "trl_unpaired", "alpaca_eval",
                 "alpaca_eval_pairwise", "self_instruct", "mt_bench", "fastchat_answers",
                 "judge_prompts", "prompt_completion", "dolly", "question_answer", "prompt_response",
                 "query_response", "problem_solution", "input_output", "conversation", "capybara",
                 "shp", "alpaca_response", "firefly", "oasst", "llamafactory_v1", "llamafactory_v1_preference",
                 "pandalm", "chatbot_arena", "autoj_pairwise", "stack_exchange_paired",
                 "prompt", "alpaca_prompt", "openai_prompt", "sharegpt_prompt", "question", "prompt_text")


def writable_formats(kind: Kind | str) -> list[str]:
    """Formats a dataset of ``kind`` can be written as."""
    kind = Kind(kind)
    return [name for name in WRITE_FORMATS if FORMATS[name].kind is kind]


@dataclass
class WriteResult:
    """What a write produced: the file, how many records went in, and what could not."""

    path: Path
    format: str
    written: int
    quarantine: list[QuarantineRow] = field(default_factory=list)
    #: every top-level key the written records have, in first-seen order
    columns: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)


def _iter_records(dataset: Dataset, batch_size: int = 5_000):
    for batch in dataset.iter(batch_size=batch_size):
        columns = list(batch)
        for row in zip(*(batch[c] for c in columns)):
            yield dict(zip(columns, row))


def write(
    dataset: Dataset | LoadResult,
    path: str | os.PathLike,
    *,
    format: str,
    kind: Kind | str | None = None,
) -> WriteResult:
    """Write a canonical dataset to ``path`` as ``format``, atomically.

    The container (JSONL, JSON, CSV, Parquet, TXT) comes from ``path``'s extension.

    Raises:
        UnknownFormatError: ``format`` is unknown or cannot hold data of this kind.
    """
    if isinstance(dataset, LoadResult):
        kind = kind or dataset.kind
        dataset = dataset.dataset
    if kind is None:
        raise HubtoolsError("write() needs the kind of a plain Dataset", hint="pass kind='sft' etc.")
    kind = Kind(kind)
    fmt = get_format(format)
    if fmt.kind is not kind:
        raise UnknownFormatError(
            f"{kind.value} data cannot be written as {fmt.name} ({fmt.kind.value})",
            hint=f"use one of {', '.join(writable_formats(kind))}")
    container, _ = container_for_path(path)
    if container == "txt" and fmt.name != "text":
        raise UnknownFormatError(f".txt holds raw text only, not {fmt.name}",
                                 hint="use .jsonl, .json, .csv or .parquet")
    quarantine: list[QuarantineRow] = []
    columns: dict[str, None] = {}

    def wire_records():
        for record in _iter_records(dataset):
            try:
                wire = from_canonical(fmt, record)
                if container == "txt" and "\n" in wire["text"]:
                    raise ConversionError(ErrorCode.CANNOT_CONVERT, "a .txt line cannot hold a "
                                          "text with line breaks", hint="write .jsonl instead")
            except ConversionError as exc:
                index = record[INDEX]
                quarantine.append(QuarantineRow.from_issues([exc.to_issue(index)], _plain(record)))
                continue
            columns.update(dict.fromkeys(wire))
            yield wire

    written = write_records(path, wire_records(), container=container)
    logger.info("wrote %d %s records to %s (%d quarantined)", written, fmt.name, path, len(quarantine))
    return WriteResult(Path(path), fmt.name, written, quarantine, list(columns))


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A canonical record as it goes into a quarantine file: without the all-None message keys."""
    out = {}
    for key, value in record.items():
        if isinstance(value, list):
            value = [{k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m for m in value]
        if value is not None:
            out[key] = value
    return out


def write_stage(dataset: Dataset, target: str | os.PathLike, *, name: str, format: str, kind: Kind,
                summary: dict[str, Any], loaded: LoadResult) -> WriteResult:
    """Write one stage's output into its directory: ``target``, ``quarantine.jsonl`` (or remove a
    stale one) and ``summary.json`` (``summary`` plus what was read and written, and the files).

    The generation stages (judge, rank) end this way, so their directories look alike.
    """
    target = Path(target)
    out = target.parent
    # one set: the new file, its quarantine and summary arrive together, or the old set stays
    with output_set(out, replaces=[f"{_stem(target)}.{c}" for c in _OUTPUT_EXTS] + ["quarantine.jsonl"]) as stage:
        written = write(dataset, stage / target.name, format=format, kind=kind)
        written.path = target
        files = {name: str(target), "summary": str(out / "summary.json")}
        if written.quarantined:
            files["quarantine"] = str(out / "quarantine.jsonl")
            write_quarantine(stage / "quarantine.jsonl", written.quarantine)
        summary.update({"input": loaded.summary(), "format": written.format, "written": written.written,
                        "quarantined": written.quarantined, "files": files})
        with atomic_write(stage / "summary.json") as fh:
            fh.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    return written


def write_quarantine(path: str | os.PathLike, rows: list[QuarantineRow]) -> int:
    """Write quarantine rows as JSON Lines (``index``, ``code``, ``reason``, ``raw``)."""
    return write_jsonl(path, (row.to_dict() for row in rows))


def convert(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    to: str,
    format: str | None = None,
    max_chars: int | None = None,
    split: str | None = None,
    progress: bool = False,
    oasst_path: str = "all",
) -> tuple[LoadResult, WriteResult]:
    """Read ``src`` (any format), write it to ``out`` as ``to``; quarantine what cannot go.

    Records quarantined on read and on write both land in ``<out stem>.quarantine.jsonl``
    beside ``out``. For LLaMA-Factory formats, ``dataset_info.json`` beside ``out`` gets the
    matching entry.
    """
    loaded = load(src, format=format, max_chars=max_chars, split=split, progress=progress,
                  oasst_path=oasst_path)
    result = write(loaded, out, format=to)
    rows = sorted(loaded.quarantine + result.quarantine, key=lambda r: r.index)
    out_path = Path(out)
    qpath = quarantine_path(out_path)
    if rows:
        write_quarantine(qpath, rows)
    elif qpath.exists():
        qpath.unlink()
    result.quarantine = rows
    entry = llama_factory_entry(out_path.name, to, result.columns)
    if entry is not None:
        update_dataset_info(out_path.parent / "dataset_info.json", _stem(out_path), entry)
    return loaded, result


#: Every file name ending a stage output can have (a rerun may pick another container).
_OUTPUT_EXTS = tuple(ext for c in CONTAINERS for ext in (c, f"{c}.gz"))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".parquet", ".txt"):
        name = name.removesuffix(suffix)
    return name


def quarantine_path(out: Path) -> Path:
    """Where ``convert`` puts the records it could not write: ``<stem>.quarantine.jsonl``."""
    return out.with_name(f"{_stem(out)}.quarantine.jsonl")


_OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                "assistant_tag": "assistant"}


#: LLaMA-Factory column name -> our wire key, per format; optional ones only when written.
_LF_COLUMNS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "alpaca": ({"prompt": "instruction", "query": "input", "response": "output"},
               {"system": "system", "history": "history"}),
    "sharegpt": ({"messages": "conversations"}, {"system": "system", "tools": "tools"}),
    "openai": ({"messages": "messages"}, {"tools": "tools"}),
    "dpo": ({"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}, {"system": "system"}),
    "sharegpt_preference": ({"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
                            {"system": "system", "tools": "tools"}),
    "kto": ({"messages": "messages", "kto_tag": "label"}, {}),
    "text": ({"prompt": "text"}, {}),
}
_LF_EXTRA: dict[str, dict[str, Any]] = {
    "sharegpt": {"formatting": "sharegpt"},
    "openai": {"formatting": "sharegpt",
               "tags": {**_OPENAI_TAGS, "system_tag": "system", "observation_tag": "tool"}},
    "dpo": {"ranking": True},
    "sharegpt_preference": {"ranking": True, "formatting": "sharegpt"},
    "kto": {"formatting": "sharegpt", "tags": _OPENAI_TAGS},
}


def llama_factory_entry(file_name: str, format: str, columns: list[str] | None = None) -> dict[str, Any] | None:
    """The ``dataset_info.json`` entry LLaMA-Factory needs to load a file of ``format``.

    Follows the conventions of LLaMA-Factory's own ``data/dataset_info.json``: ``ranking`` for
    pairs, ``formatting: sharegpt`` with role ``tags`` for message lists, ``kto_tag`` for
    labels. Optional columns (system, history, tools, and the media columns images, videos,
    audios) are listed only when ``columns`` (the keys the file has) includes them. Returns
    None for formats LLaMA-Factory does not read.
    """
    if format not in _LF_COLUMNS:
        return None
    required, optional = _LF_COLUMNS[format]
    present = set(columns or ())
    extra = _LF_EXTRA.get(format, {})
    entry: dict[str, Any] = {"file_name": file_name}
    if extra.get("ranking"):
        entry["ranking"] = True
    if "formatting" in extra:
        entry["formatting"] = extra["formatting"]
    entry["columns"] = {**required, **{k: v for k, v in optional.items() if v in present}}
    # multimodal data (<image>/<video>/<audio> tokens in the text): LLaMA-Factory reads the
    # files from these columns, and cannot load the data without them
    entry["columns"].update({column: column for column in MEDIA_COLUMNS if column in present})
    if "tags" in extra:
        entry["tags"] = dict(extra["tags"])
    return entry


def update_dataset_info(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Add or replace one entry of a ``dataset_info.json``, keeping the others, atomically."""
    info = orjson.loads(path.read_bytes()) if path.exists() else {}
    info[name] = entry
    with atomic_write(path) as fh:
        fh.write(orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")


def validate_to_dir(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    format: str | None = None,
    max_chars: int | None = None,
    split: str | None = None,
    progress: bool = False,
    oasst_path: str = "all",
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Validate ``src`` and write ``valid.<ext>``, ``quarantine.jsonl`` and ``summary.json``.

    ``valid.<ext>`` is in the input's own format and container (JSONL for directories, Hub
    datasets and gzip files). Returns the summary, which states ``total = valid + quarantined``.
    """
    loaded = load(src, format=format, max_chars=max_chars, split=split, progress=progress,
                  oasst_path=oasst_path, max_bytes=max_bytes)
    out = Path(out_dir)
    container = loaded.source.container
    ext = "jsonl" if container in ("dir", "hub") or loaded.source.compressed else container
    valid_path = out / f"valid.{ext}"
    qpath = out / "quarantine.jsonl"
    # one set: a full disk or an error leaves the previous valid/quarantine/summary as they were
    with output_set(out, replaces=[f"valid.{c}" for c in _OUTPUT_EXTS]) as stage:
        result = write(loaded, stage / valid_path.name, format=loaded.format)
        rows = sorted(loaded.quarantine + result.quarantine, key=lambda r: r.index)
        write_quarantine(stage / qpath.name, rows)
        summary = {**loaded.summary(), "valid": result.written, "quarantined": len(rows)}
        summary["by_code"] = dict(Counter(row.code for row in rows).most_common())
        if summary["total"] != summary["valid"] + summary["quarantined"]:
            raise HubtoolsError(f"internal error: {summary['total']} records in, {summary['valid']} "
                                f"written + {summary['quarantined']} quarantined",
                                hint="please report this with the input file")
        summary["files"] = {"valid": str(valid_path), "quarantine": str(qpath),
                            "summary": str(out / "summary.json")}
        with atomic_write(stage / "summary.json") as fh:
            fh.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return summary

