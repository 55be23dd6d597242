"""``hubtools card``, ``hubtools push`` and ``hubtools space deploy``: publish a dataset and the app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from ._options import FormatOpt, JsonOpt, PathArg, _errors, _print_json, _progress_enabled
from ._app import app
from ..errors import PublishError

__all__ = []

QualityOpt = Annotated[Path | None, typer.Option(
    "--quality", "-q", help="Use this quality.json (from `hubtools check --out DIR`) instead of running the checks.")]
SplitOpt = Annotated[str, typer.Option("--split", "-s", help="Split name of these records (train, test, ...).")]
ToOpt = Annotated[str | None, typer.Option(
    "--to", "-t", help="Publish the records in this format (default: the input's own, so they load back as given).")]
LicenseOpt = Annotated[str | None, typer.Option(
    "--license", help="License id for the card, e.g. cc-by-4.0 (default: what the card has, else 'unknown').")]
NameOpt = Annotated[str | None, typer.Option("--pretty-name", help="Human-readable name for the card.")]
LanguageOpt = Annotated[str | None, typer.Option(
    "--language", help="Languages for the card, e.g. 'en,fr' (default: found by the language check).")]
ProvenanceOpt = Annotated[Path | None, typer.Option(
    "--provenance", help="JSON file saying how the data was made (sources, models, judge, strategy), e.g. the "
                         "summary.json of a generation or ranking run.")]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="Hugging Face token (default: HF_TOKEN or `hf auth login`). Never printed.", show_default=False)]
PrivateOpt = Annotated[bool, typer.Option("--private", help="Create the repo private (an existing repo keeps its visibility).")]


def _settings(repo_id: str | None, split: str, license: str | None, pretty_name: str | None,
              language: str | None, provenance: Path | None, to: str | None):
    from ..publish.context import CardSettings

    given = None
    if provenance is not None:
        try:
            given = orjson.loads(provenance.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise PublishError(f"{provenance}: cannot read the provenance file ({exc.__class__.__name__})",
                               hint="give a JSON object, e.g. the summary.json of `hubtools rank`") from None
        if not isinstance(given, dict):
            raise PublishError(f"{provenance}: the provenance file is not a JSON object",
                               hint='write e.g. {"sources": [...], "models": [...], "judge": "..."}')
    langs = tuple(x.strip() for x in language.split(",") if x.strip()) if language else None
    return CardSettings(repo_id=repo_id, split=split, license=license, pretty_name=pretty_name, language=langs,
                        provenance=given, format=to)


def _print_push(result: Any) -> None:
    if result.dry_run:
        typer.echo(f"dry run: would publish {result.records:,} records as `{result.split}` to {result.repo_id}"
                   f"{' (new repo)' if result.created else ''}; {result.quarantined:,} quarantined")
        for path in result.added:
            typer.echo(f"  + {path}")
        for path in result.deleted:
            typer.echo(f"  - {path}")
        typer.echo(f"the files are in {result.staging_dir}; nothing was uploaded")
    elif not result.changed:
        typer.echo(f"{result.repo_id} already holds exactly these files: nothing to commit")
        typer.echo(result.url)
    else:
        typer.echo(f"published {result.records:,} records as `{result.split}` to {result.repo_id} "
                   f"({len(result.added)} files written, {len(result.deleted)} removed, "
                   f"{result.quarantined:,} records quarantined)")
        typer.echo(result.pr_url or result.commit_url)
    for name, sections in result.kept_sections.items():
        typer.echo(f"kept hand-edited sections of {name}: {', '.join(sections)}", err=True)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)


def _secrets(names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        if "=" in name:
            raise PublishError(f"--secret takes a name, not NAME=VALUE ({name.split('=')[0]})",
                               hint="export the value in an environment variable of that name; secret values "
                                    "are never taken from the command line")
        if name not in os.environ:
            raise PublishError(f"--secret {name}: the environment variable {name} is not set",
                               hint=f"export {name}=... first; secret values are never taken from the command line")
        out[name] = os.environ[name]
    return out


def _variables(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PublishError(f"--variable {item!r} is not NAME=VALUE", hint="write e.g. --variable MODEL_ID=me/model")
        out[name] = value
    return out


@app.command()
def card(
    dataset: PathArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for README.md, annotation_guidelines.md "
                                                          "and the quality report.")],
    quality: QualityOpt = None,
    repo_id: Annotated[str | None, typer.Option("--repo-id", help="Repo id the card's loading snippets use.")] = None,
    split: SplitOpt = "train",
    to: ToOpt = None,
    license: LicenseOpt = None,
    pretty_name: NameOpt = None,
    language: LanguageOpt = None,
    provenance: ProvenanceOpt = None,
    format: FormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the dataset card, the annotation guidelines and the quality report into a directory.

    An existing README.md or annotation_guidelines.md in DIR is merged, not overwritten:
    metadata and sections a person edited are kept.

    Example: hubtools card data.jsonl --out card/ --quality checked/quality.json --license cc-by-4.0
    """
    from ..publish.card import write_cards

    with _errors():
        settings = _settings(repo_id, split, license, pretty_name, language, provenance, to)
        result = write_cards(dataset, out, quality=quality, settings=settings, format=format,
                             progress=_progress_enabled(as_json))
    if as_json:
        _print_json(result.to_dict())
        return
    for path in result.files.values():
        typer.echo(f"wrote {path}")
    for name, sections in result.kept_sections.items():
        typer.echo(f"kept hand-edited sections of {name}: {', '.join(sections)}", err=True)

@app.command()
def push(
    path: PathArg,
    repo_id: Annotated[str, typer.Argument(help="Dataset repo: namespace/name (or its URL).")],
    private: PrivateOpt = False,
    create_pr: Annotated[bool, typer.Option("--create-pr", help="Open a pull request instead of "
                                                                "committing to main.")] = False,
    split: SplitOpt = "train",
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Prepare the files and compare with the Hub; "
                                                            "upload nothing.")] = False,
    quality: QualityOpt = None,
    include_quarantine: Annotated[bool, typer.Option(
        "--include-quarantine", help="Also publish the quarantined records as quarantine/SPLIT.jsonl "
                                     "(never as data).")] = False,
    to: ToOpt = None,
    license: LicenseOpt = None,
    pretty_name: NameOpt = None,
    language: LanguageOpt = None,
    provenance: ProvenanceOpt = None,
    token: TokenOpt = None,
    format: FormatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a dataset to the Hub: Parquet data, card, guidelines and quality report in one commit.

    Validates first: quarantined records never go into the data. Runs the checks unless
    --quality is given. Pushing again replaces what hubtools wrote (data/SPLIT-*, the card,
    the reports) and keeps every file others added; hand edits to the card are kept.
    Prints the commit URL (or the pull request URL with --create-pr).

    Example: hubtools push pairs.json me/pairs --quality checked/quality.json --create-pr
    """
    from ..publish.hub import push as run_push

    with _errors():
        settings = _settings(None, split, license, pretty_name, language, provenance, to)
        result = run_push(path, repo_id, split=split, private=private, create_pr=create_pr, message=message,
                          dry_run=dry_run, quality=quality, include_quarantine=include_quarantine, to=to,
                          format=format, settings=settings, token=token, progress=_progress_enabled(as_json))
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_push(result)

space = typer.Typer(help="Deploy the hubtools app as a Hugging Face Space.", no_args_is_help=True,
                    rich_markup_mode=None)
app.add_typer(space, name="space")

@space.command()
def deploy(
    repo_id: Annotated[str, typer.Argument(help="Space repo: namespace/name (or its URL).")],
    private: PrivateOpt = False,
    hardware: Annotated[str | None, typer.Option("--hardware", help="Space hardware, e.g. cpu-basic, "
                                                                    "cpu-upgrade, t4-small.")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="Set a Space secret from the environment variable of the same name (repeatable); "
                         "the value is never taken from the command line.")] = None,
    variable: Annotated[list[str] | None, typer.Option(
        "--variable", help="Set a Space variable, NAME=VALUE (repeatable).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title shown on the Space page.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update a Gradio Space that runs this very version of hubtools.

    Uploads the app, its requirements and the hubtools source in one commit, sets the
    secrets and variables, and prints the Space URL.

    Example: HF_TOKEN=hf_... hubtools space deploy me/hubtools --secret HF_TOKEN --variable HUBTOOLS_MAX_UPLOAD_MB=500
    """
    from ..publish.space import deploy_space

    with _errors():
        result = deploy_space(repo_id, private=private, hardware=hardware, secrets=_secrets(secret or []),
                              variables=_variables(variable or []), title=title, message=message, token=token)
    if as_json:
        _print_json(result.to_dict())
        return
    typer.echo(f"{'created' if result.created else 'updated'} Space {result.repo_id}: {len(result.files)} files, "
               f"{len(result.deleted)} removed; secrets: {', '.join(result.secrets) or 'none'}; "
               f"variables: {', '.join(result.variables) or 'none'}")
    typer.echo(result.url)
