"""``hubtools formats|inspect|validate|convert``: reading, checking and converting files.

The ``hubtools`` command line: each command a few lines over the library.

Results go to stdout (a short report, or JSON with ``--json``); progress and errors go to
stderr. A hubtools error prints one line with what to do and exits 1 (2 when the input is
not usable at all); never a traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ._options import (
    FormatOpt,
    JsonOpt,
    MaxCharsOpt,
    PathArg,
    SplitOpt,
    _errors,
    _exit_if_unusable,
    _print_json,
    _progress_enabled,
)
from ._app import app


@app.command()
def formats(as_json: JsonOpt = False) -> None:
    """List the formats hubtools reads and writes, with the kind each becomes.

    Example: hubtools formats
    """
    from ..formats import FORMATS

    rows = [{"format": f.name, "kind": f.kind.value, "description": f.description} for f in FORMATS.values()]
    if as_json:
        _print_json(rows)
        return
    width = max(len(r["format"]) for r in rows)
    for r in rows:
        typer.echo(f"{r['format']:<{width}}  {r['kind']:<10}  {r['description']}")


class OasstPath(str, Enum):
    """How OpenAssistant message trees become conversations."""

    all = "all"
    best = "best"


OasstPathOpt = Annotated[OasstPath, typer.Option(
    "--oasst-path", help="OpenAssistant trees: one conversation per path to a leaf (all) or the "
                         "best-ranked path only (best).")]


@app.command()
def inspect(path: PathArg, format: FormatOpt = None, split: SplitOpt = None, as_json: JsonOpt = False,
            oasst_path: OasstPathOpt = OasstPath.all) -> None:
    """Show a dataset's format, kind, record counts, fields and two sample records.

    Example: hubtools inspect ../shared/corpus/llama_factory/dpo_en_demo.json
    """
    from ..load import load

    with _errors():
        result = load(path, format=format, split=split, progress=_progress_enabled(as_json),
                      oasst_path=oasst_path.value)
    data = {**result.summary(), "fields": result.fields, "samples": result.samples,
            "detection": result.detection.to_dict()}
    if as_json:
        _print_json(data)
        _exit_if_unusable(data)
        return
    typer.echo(f"{result.source.name}: {result.format} ({result.kind.value}), "
               f"detection confidence {result.detection.confidence:.0%}")
    typer.echo(f"records: {result.total} = {result.valid} valid + {result.quarantined} quarantined")
    for code, n in result.by_code.items():
        typer.echo(f"  {code}: {n}")
    typer.echo(f"fields: {', '.join(result.fields)}")
    for i, sample in enumerate(result.samples):
        text = json.dumps(sample, ensure_ascii=False)
        typer.echo(f"sample {i}: {text[:400]}{'…' if len(text) > 400 else ''}")
    _exit_if_unusable(data)


@app.command()
def validate(
    path: PathArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for valid.*, quarantine.jsonl and summary.json.")],
    format: FormatOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any record was quarantined.")] = False,
    max_chars: MaxCharsOpt = None,
    split: SplitOpt = None,
    as_json: JsonOpt = False,
    oasst_path: OasstPathOpt = OasstPath.all,
) -> None:
    """Validate a dataset: write the valid records, the quarantine with reasons, and a summary.

    Writes DIR/valid.<ext> in the input's own format and container, DIR/quarantine.jsonl (one
    line per bad record: index, code, reason, raw) and DIR/summary.json. The index is 0-based
    among the non-blank records of the input. Exit 0 when it ran, 1 with --strict when
    anything was quarantined, 2 when the input is not usable.

    Example: hubtools validate data.jsonl --out checked/
    """
    from ..convert import validate_to_dir

    with _errors():
        summary = validate_to_dir(path, out, format=format, max_chars=max_chars, split=split,
                                  progress=_progress_enabled(as_json), oasst_path=oasst_path.value)
    if as_json:
        _print_json(summary)
    else:
        typer.echo(f"{summary['format']} ({summary['kind']}): {summary['total']} records = "
                   f"{summary['valid']} valid + {summary['quarantined']} quarantined")
        for code, n in summary["by_code"].items():
            typer.echo(f"  {code}: {n}")
        typer.echo(f"wrote {summary['files']['valid']}, {summary['files']['quarantine']}, "
                   f"{summary['files']['summary']}")
    _exit_if_unusable(summary)
    if strict and summary["quarantined"]:
        raise typer.Exit(1)


@app.command()
def convert(
    src: PathArg,
    out: Annotated[Path, typer.Argument(help="Output file; its extension picks the container "
                                             "(.jsonl, .json, .csv, .parquet, .txt).")],
    to: Annotated[str, typer.Option("--to", "-t", help="Output format: alpaca, sharegpt, openai, dpo, "
                                                       "trl, kto, text, ... (see `hubtools formats`).")],
    format: FormatOpt = None,
    max_chars: MaxCharsOpt = None,
    split: SplitOpt = None,
    as_json: JsonOpt = False,
    oasst_path: OasstPathOpt = OasstPath.all,
) -> None:
    """Convert a dataset to another format; records the target cannot hold are quarantined.

    The quarantine goes beside OUT as <name>.quarantine.jsonl. For LLaMA-Factory formats
    (alpaca, sharegpt, openai, dpo, sharegpt_preference, kto, text) the matching entry is
    added to dataset_info.json beside OUT, so the file loads in LLaMA-Factory as it is.

    Example: hubtools convert alpaca.json chat.jsonl --to sharegpt
    """
    from ..convert import convert as run_convert
    from ..convert import quarantine_path

    with _errors():
        loaded, result = run_convert(src, out, to=to, format=format, max_chars=max_chars, split=split,
                                     progress=_progress_enabled(as_json), oasst_path=oasst_path.value)
    data = {"from": loaded.format, "to": result.format, "kind": loaded.kind.value,
            "total": loaded.total, "written": result.written, "quarantined": result.quarantined,
            "out": str(result.path),
            "quarantine": str(quarantine_path(result.path)) if result.quarantined else None}
    # nothing written is an error: what was quarantined on read and by the target, with counts
    codes = Counter(row.code for row in [*loaded.quarantine, *result.quarantine])
    usable = {**loaded.summary(), "valid": result.written, "by_code": dict(codes.most_common())}
    if as_json:
        _print_json(data)
        _exit_if_unusable(usable)
        return
    typer.echo(f"{data['from']} -> {data['to']}: {data['total']} records = {data['written']} written "
               f"+ {data['quarantined']} quarantined")
    typer.echo(f"wrote {data['out']}" + (f" and {data['quarantine']}" if data["quarantine"] else ""))
    _exit_if_unusable(usable)
