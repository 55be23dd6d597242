"""Option types and helpers shared by every ``hubtools`` command module."""

from __future__ import annotations

import contextlib
import errno
import json
import sys
from typing import Annotated, Any

import typer

from ..errors import HubtoolsError

__all__ = ["FormatOpt", "JsonOpt", "MaxCharsOpt", "PathArg", "SplitOpt", "_errors", "_exit_if_unusable", "_print_json",
           "_progress_enabled"]

PathArg = Annotated[str, typer.Argument(help="A .jsonl/.json/.csv/.parquet/.txt file (optionally "
                                              ".gz), a directory of them, or a Hub dataset id.")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", help="Read as this format instead of detecting it (see `hubtools formats`).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a report.")]
SplitOpt = Annotated[str | None, typer.Option(
    "--split", help="The split of a Hub dataset id (default: train, else its first split).")]
MaxCharsOpt = Annotated[int | None, typer.Option(
    "--max-chars", help="Quarantine records with a text longer than this (default 1,000,000).")]


#: errno values that mean "the disk (or the quota, or the file size limit) is full".
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def _errors():
    """Turn a hubtools error, or a full disk, into one line on stderr and its exit code."""
    try:
        yield
    except HubtoolsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if exc.errno not in _DISK_FULL and "No space left on device" not in str(exc):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or 'no space left on device'}{where}; the previous outputs were left "
                   "as they were. Free some space (or choose another --out) and run the same command again",
                   err=True)
        raise typer.Exit(1) from None


def _exit_if_unusable(summary: dict[str, Any]) -> None:
    """Exit 2 with the top reasons and what would work when no record of the input was usable.

    Called after the command wrote what it could (the quarantine, the report), so the user has
    every record's reason on disk.
    """
    from ..load import no_usable_record

    error = no_usable_record(summary) if summary.get("total") is not None else None
    if error is not None:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _progress_enabled(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()
