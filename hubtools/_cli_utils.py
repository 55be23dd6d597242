"""Option types and helpers shared by every ``hubtools`` command module."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Annotated, Any

import typer

from .errors import HubtoolsError

__all__ = ["FormatOpt", "JsonOpt", "MaxCharsOpt", "PathArg", "SplitOpt", "_errors", "_print_json", "_progress_enabled"]

PathArg = Annotated[str, typer.Argument(help="A .jsonl/.json/.csv/.parquet/.txt file (optionally "
                                              ".gz), a directory of them, or a Hub dataset id.")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", help="Read as this format instead of detecting it (see `hubtools formats`).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a report.")]
SplitOpt = Annotated[str | None, typer.Option(
    "--split", help="The split of a Hub dataset id (default: train, else its first split).")]
MaxCharsOpt = Annotated[int | None, typer.Option(
    "--max-chars", help="Quarantine records with a text longer than this (default 1,000,000).")]


@contextlib.contextmanager
def _errors():
    """Turn a hubtools error into one line on stderr and its exit code."""
    try:
        yield
    except HubtoolsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _progress_enabled(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()
