"""``hubtools init`` and ``hubtools build``: a recipe, and everything it names in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import JsonOpt, _errors, _print_json
from ._app import app

__all__ = []


def _recipe_from_flags(documents: str | None, prompts: str | None, dataset: str | None, endpoint: str | None,
                       model: str | None, push: str | None):
    """The recipe `hubtools init` writes for these sources, without the review gate (a recipe's job)."""
    from ..pipeline import init_recipe, parse_recipe

    name = Path(documents or prompts or dataset).name.split(".")[0] or "build"
    text = init_recipe(documents=documents, prompts=prompts, dataset=dataset, endpoint=endpoint, model=model,
                       name=name)
    lines = [line for line in text.splitlines() if not line.strip().startswith("review: gate")]
    if push:
        lines = [line.replace("  # push:", "  push:").replace("  #   repo: me/my-dataset", f"    repo: {push}")
                 if line.startswith(("  # push:", "  #   repo:")) else line for line in lines]
    return parse_recipe("\n".join(lines) + "\n", base=Path.cwd())


@app.command()
def init(
    documents: Annotated[str | None, typer.Option("--documents", help="A folder or file of documents "
                                                   "(.txt/.md/.html/.pdf/.jsonl) to write instructions from.")] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="A prompt list (Alpaca without output, "
                                                 "{prompt}, {question}, messages ending on a user turn, .txt).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="An existing dataset file to check, "
                                                 "filter, card and publish.")] = None,
    hub: Annotated[str | None, typer.Option("--hub", help="A Hub dataset id (owner/name).")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="OpenAI-compatible URL for responses.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="The model the endpoint serves.")] = None,
    name: Annotated[str, typer.Option("--name", help="The build's name (its run folder: runs/NAME).")] = "my-dataset",
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the recipe.")] = Path("hubtools.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing recipe.")] = False,
) -> None:
    """Write a commented recipe (hubtools.yaml) for the sources given.

    With documents or prompts the recipe generates responses, judges and ranks them into pairs,
    stops for review, then checks, filters and writes the card; with a dataset it starts at the
    checks. Edit it, then run `hubtools build`.

    Example: hubtools init --documents docs/ --endpoint http://127.0.0.1:8000/v1 --model my-model
    """
    from ..pipeline import init_recipe

    if out.exists() and not force:
        typer.echo(f"error: {out} exists; edit it, or pass --force to replace it", err=True)
        raise typer.Exit(1)
    text = init_recipe(documents=documents, prompts=prompts, dataset=dataset, hub=hub, endpoint=endpoint,
                       model=model, name=name, file=str(out))
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}: edit it, check it with `hubtools build {out} --dry-run`, run `hubtools build {out}`")

@app.command()
def build(
    recipe: Annotated[Path, typer.Argument(help="The recipe (default: hubtools.yaml).")] = Path("hubtools.yaml"),
    documents: Annotated[str | None, typer.Option("--documents", help="No recipe: write instructions from "
                                                   "these documents (with --endpoint and --model).")] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="No recipe: answer this prompt list "
                                                 "(with --endpoint and --model).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="No recipe: check, filter and card "
                                                 "this dataset file.")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="No recipe: the OpenAI-compatible URL "
                                                  "for responses (key: HUBTOOLS_API_KEY).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="No recipe: the model to ask.")] = None,
    push: Annotated[str | None, typer.Option("--push", help="No recipe: publish to this dataset repo "
                                              "(owner/name; needs HF_TOKEN).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The run folder (default: runs/NAME).")] = None,
    from_stage: Annotated[str | None, typer.Option("--from", help="Run this stage and every later one "
                                                    "afresh, even where an earlier run finished them.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the recipe and print the plan: what "
                                          "would run, resume or be reused. Nothing runs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a recipe's stages in order: generate, judge, rank, review, check, filter, card, push.

    Each stage writes its data, quarantine, summary and manifest into runs/NAME/STAGE/. Run it
    again to reuse finished stages and resume an interrupted one (even after kill -9) without
    asking the model for any row twice. At the end, runs/NAME/report.md holds the accounting
    table: every stage's records in, kept, dropped by reason, out, time, tokens and cost.

    For the simple case, flags instead of a recipe: the sources (--documents, --prompts,
    --dataset), --endpoint and --model for responses, --push REPO; the recipe they make is
    the one `hubtools init` writes for them, without the review gate, and goes into the
    run's report and card like any other.

    Example: hubtools build hubtools.yaml --dry-run
    Example: hubtools build --prompts prompts.jsonl --endpoint http://127.0.0.1:8000/v1 --model m
    """
    from ..pipeline import build as run_build
    from ..pipeline import load_recipe, plan

    with _errors():
        if documents or prompts or dataset:
            parsed = _recipe_from_flags(documents, prompts, dataset, endpoint, model, push)
        else:
            parsed = load_recipe(recipe)
        if dry_run:
            steps = plan(parsed, out=out, from_stage=from_stage)
            if as_json:
                _print_json([{"stage": s.stage, "action": s.action, "folder": str(s.folder)} for s in steps])
                return
            typer.echo(f"{recipe}: the recipe is valid. Plan:")
            for s in steps:
                typer.echo(f"  {s.stage:<16} {s.action:<7} {s.folder}")
            return

        def announce(stage: str, event: str) -> None:
            if event == "start" and not as_json:
                typer.echo(f"[{stage}] ...", err=True)

        result = run_build(parsed, out=out, from_stage=from_stage, progress=not as_json, on_stage=announce)
    if as_json:
        _print_json(result.to_dict())
    else:
        from ..pipeline import accounting_table

        typer.echo(accounting_table(result.rows))
        if result.stopped:
            typer.echo(f"\nstopped at {result.stopped}: {result.message}")
        else:
            typer.echo(f"\nwrote {result.report}" + (f"; published {result.url}" if result.url else ""))
    if result.stopped:
        raise typer.Exit(3)
