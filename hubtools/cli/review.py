"""``hubtools review queue|export|agreement|apply``: the queue's order, what reviewers did, how far they
agree, and its effect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._options import JsonOpt, PathArg, _errors, _print_json
from ._app import app

__all__ = ["review_app"]

review_app = typer.Typer(
    help="Human review: show the queue, export the annotations, measure agreement, apply reviews to a dataset.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DbArg = Annotated[Path, typer.Argument(help="The annotation store (the app's reviews.sqlite).")]


def _open(db: Path):
    from ..review import AnnotationStore

    return AnnotationStore(db, create=False)


@review_app.command("queue")
def queue(
    dataset: PathArg,
    quality: Annotated[Path | None, typer.Option(
        "--quality", "-q", help="quality.json from `hubtools check DATA --out DIR`: its flags raise an item's "
                                "priority, its per-record quality scores are shown (and ordered by).")] = None,
    order: Annotated[str, typer.Option(
        "--order", help="priority (flags, low judge margins first) or quality (lowest quality score first; "
                        "needs --quality).")] = "priority",
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Items shown (0: all).")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show the review queue of a dataset in the order reviewers get it.

    Example: hubtools review queue pairs.jsonl --quality checked/quality.json --order quality
    """
    import orjson

    from ..checks import QualityResult
    from ..load import load
    from ..review import build_queue, flags_from_checks, quality_from_file

    with _errors():
        loaded = load(dataset)
        flags = scores = None
        if quality is not None:
            scores = quality_from_file(quality)
            result = QualityResult.from_dict(orjson.loads(quality.read_bytes()))
            flags = flags_from_checks(r for name, r in result.results.items() if name != "schema")
        built = build_queue(loaded.dataset, kind=loaded.kind, flags=flags, quality=scores, order=order)
    shown = built.items[:limit] if limit else built.items
    if as_json:
        _print_json({"order": order, "items": len(built), "shown": [
            {**item.to_row(), "quality": item.quality} for item in shown]})
        return
    typer.echo(f"{len(built)} items, by {order}" + (f"; the first {len(shown)}:" if len(shown) < len(built) else ":"))
    for item in shown:
        score = "" if item.quality is None else f"  quality {item.quality:g}"
        typer.echo(f"  {item.index:>6}  priority {item.priority:g}{score}  {'; '.join(item.reasons)}")


@review_app.command("export")
def export(
    db: DbArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .jsonl, .parquet or .csv.")],
    as_json: JsonOpt = False,
) -> None:
    """Write every annotation and adjudication to one file, a row per (item, reviewer).

    Example: hubtools review export reviews.sqlite --out annotations.parquet
    """
    from ..review import export_annotations

    with _errors():
        rows = export_annotations(_open(db), out)
    if as_json:
        _print_json({"rows": rows, "out": str(out)})
    else:
        typer.echo(f"wrote {rows} rows to {out}")


@review_app.command("agreement")
def agreement(db: DbArg, as_json: JsonOpt = False) -> None:
    """Show percent agreement, Cohen's kappa (two reviewers) and Krippendorff's alpha, per category.

    Example: hubtools review agreement reviews.sqlite --json
    """
    from ..review import agreement as compute

    with _errors():
        report = compute(_open(db))
    if as_json:
        _print_json(report.to_dict())
        return
    typer.echo(report.summary())
    for name, figures in report.per_category.items():
        data = figures.to_dict()
        values = ", ".join(f"{k} {data[k]:.3f}" for k in ("percent_agreement", "cohen_kappa", "krippendorff_alpha")
                           if data[k] is not None) or "not defined"
        typer.echo(f"  {name}: {data['items']} items, {values}")
    for note in report.overall.notes.values():
        typer.echo(f"note: {note}")
    for item in report.adjudication_queue[:20]:
        votes = ", ".join(f"{k} {v}" for k, v in item["votes"].items())
        typer.echo(f"  to adjudicate: {item['item_id']} ({votes})")


@review_app.command("apply")
def apply(
    dataset: PathArg,
    db: DbArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Reviewed dataset; its extension picks the container.")],
    to: Annotated[str | None, typer.Option("--to", "-t", help="Output format (default: the input's).")] = None,
    drop_unreviewed: Annotated[bool, typer.Option("--drop-unreviewed",
                                                  help="Leave out records nobody reviewed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply reviews: swap pairs reviewers reversed, apply edits, drop ties, flags and rejects.

    Disputed records (no majority, no adjudication) and the others left out go to
    <stem>.excluded.jsonl beside OUT with their reason.

    Example: hubtools review apply pairs.jsonl reviews.sqlite --out reviewed.jsonl
    """
    from ..review import apply_file

    with _errors():
        summary = apply_file(dataset, _open(db), out, to=to, keep_unreviewed=not drop_unreviewed)
    if as_json:
        _print_json(summary)
        return
    typer.echo(f"{summary['total']} records = {summary['written']} written + {summary['excluded']} excluded "
               f"+ {summary['quarantined']} quarantined ({summary['swapped']} swapped, {summary['edited']} edited)")
    for reason, n in summary["by_reason"].items():
        typer.echo(f"  {reason}: {n}")
    if summary["stale_items"]:
        typer.echo(f"note: {summary['stale_items']} reviewed items no longer match a record (their text changed)")
    typer.echo("wrote " + ", ".join(summary["files"].values()))


app.add_typer(review_app, name="review")
