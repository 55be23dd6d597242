"""The ``hubtools`` Typer app, its global options and the console-script entry point.

Each command group lives in its own module of this package and registers itself on ``app``
when imported (``hubtools/cli/__init__.py`` imports them in the order ``--help`` lists them).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .._version import __version__
from ..config import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="hubtools",
    help="Build fine-tuning datasets you can trust: read any SFT, chat or preference format, "
         "validate it with nothing lost, convert it, generate and judge pairs, review them, "
         "check their quality and publish them to the Hub.\n\n"
         "Start with `hubtools inspect FILE`, then `hubtools validate FILE --out DIR`, "
         "`hubtools check FILE --out DIR` and `hubtools push FILE user/name`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what hubtools does to stderr.")] = False,
) -> None:
    configure_logging(10 if verbose else None)
    if version:
        typer.echo(f"hubtools {__version__}")
        raise typer.Exit()


def main() -> None:
    """Console-script entry point."""
    app()
