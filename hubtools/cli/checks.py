"""``hubtools check`` and ``hubtools filter``: find what is wrong in a dataset, then drop it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import (
    FormatOpt,
    JsonOpt,
    PathArg,
    SplitOpt,
    _errors,
    _exit_if_unusable,
    _print_json,
    _progress_enabled,
)
from ..checks.options import check_options
from ._app import app

__all__: list[str] = []

ChecksOpt = Annotated[str | None, typer.Option(
    "--checks", "-c", help="Comma-separated checks to run (default: the default scan; 'all' for every "
                           "check). See `hubtools check --list`.")]
NumProcOpt = Annotated[int, typer.Option("--num-proc", "-p", min=1,
                                         help="Worker processes for the per-record checks.")]
LangOpt = Annotated[str | None, typer.Option(
    "--lang", help="Expected languages, e.g. 'en,fr' (default: the majority language).")]
CategoriesOpt = Annotated[str | None, typer.Option(
    "--categories", help="Task categories the data should cover, e.g. 'qa,code,summarization'.")]
ToxBackendOpt = Annotated[str | None, typer.Option(
    "--toxicity-backend", help="offline (default, no download), detoxify, or transformers.")]
ToxModelOpt = Annotated[str | None, typer.Option(
    "--toxicity-model", help="Checkpoint path or model name for the detoxify/transformers backend.")]
ToxThresholdOpt = Annotated[float | None, typer.Option(
    "--toxicity-threshold", help="Flag replies scoring at least this (0-1).")]
NearDupOpt = Annotated[float | None, typer.Option(
    "--near-dup-threshold", help="Jaccard similarity above which two records are near duplicates (default 0.8).")]
RepetitionOpt = Annotated[str | None, typer.Option(
    "--repetition", help="Repetition thresholds, e.g. 'dup_line_frac=0.4,top_2_gram=0.25,char_rep=off' "
                         "(Gopher's by default). Rules: dup_para_frac, dup_para_char_frac, dup_line_frac, "
                         "dup_line_char_frac, top_2_gram..top_4_gram, dup_5_gram..dup_10_gram, char_rep; "
                         "'min_words=N' sets the shortest text the top n-gram rules read (50); "
                         "'min_repeats=N' how often a shorter text must repeat an n-gram (3).")]
EngineOpt = Annotated[str, typer.Option(
    "--engine", help="Where the checks run: local (this machine's processes) or ray (Ray Data on a local Ray, "
                     "or the cluster at --ray-address). Same checks, same results.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="With --engine ray: the cluster to use (auto, HOST:6379, ray://HOST:10001); default: "
                          "start a local Ray for the run. Under `ray job submit` use auto.")]
RayWorkersOpt = Annotated[int | None, typer.Option(
    "--ray-workers", min=1, help="With --engine ray: CPUs of the local Ray, and actors per model check.")]
RayMemoryOpt = Annotated[str | None, typer.Option(
    "--ray-memory", help="With --engine ray: object store memory, e.g. 2GB (a local Ray spills to disk beyond it; "
                         "on a cluster, what this run may hold).")]
RayWorkerMemoryOpt = Annotated[str | None, typer.Option(
    "--ray-worker-memory", help="With --engine ray: memory each Ray task reserves, e.g. 2GB: Ray runs no more tasks "
                                "on a node than its memory holds (a measured 1M-record scan needs about 1GB).")]
EvalSetsOpt = Annotated[str | None, typer.Option(
    "--eval-sets", help="Evaluation sets to check for contamination (13-word overlap): comma-separated files "
                        "or Hub ids, optionally named, e.g. 'mt_bench=question.jsonl,tatsu-lab/alpaca_eval'. "
                        "Turns the contamination check on.")]


def _source(path: str, split: str | None) -> Any:
    """The path itself, or with ``--split`` that split of the Hub dataset (the engine reads it)."""
    if split is None:
        return path
    from ..io import open_source

    return open_source(path, split=split)


@app.command()
def check(
    path: Annotated[str | None, typer.Argument(
        help="A .jsonl/.json/.csv/.parquet/.txt file (optionally .gz), a directory of them, "
             "or a Hub dataset id.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for quality.json, "
                   "dataset_quality_report.md, category_distribution.json and plots/.")] = None,
    checks: ChecksOpt = None,
    num_proc: NumProcOpt = 1,
    lang: LangOpt = None,
    categories: CategoriesOpt = None,
    toxicity_backend: ToxBackendOpt = None,
    toxicity_model: ToxModelOpt = None,
    toxicity_threshold: ToxThresholdOpt = None,
    near_dup_threshold: NearDupOpt = None,
    eval_sets: EvalSetsOpt = None,
    repetition: RepetitionOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    ray_memory: RayMemoryOpt = None,
    ray_worker_memory: RayWorkerMemoryOpt = None,
    format: FormatOpt = None,
    split: SplitOpt = None,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run quality checks and write the quality report.

    Reads the data once and runs duplicates, near duplicates, length outliers, language,
    toxicity, PII, refusals, task categories, diversity and preference checks over it. Flagged
    records are reported by source index (the record's position in the file, from 0); nothing
    is removed: use `hubtools filter` for that.

    With --engine ray the flags are also written as Parquet shards in DIR/flagged/.

    Example: hubtools check data.jsonl --out report/ --lang en --num-proc 2
    """
    from ..checks import REGISTRY, resolve_checks, run_checks
    from ..checks.engines import get_engine, write_flagged_shards
    from ..publish.report import write_report

    if list_checks:
        rows = [{"check": n, "default": s.default, "kinds": sorted(k.value for k in s.kinds),
                 "description": s.description} for n, s in REGISTRY.items()]
        if as_json:
            _print_json(rows)
            return
        for r in rows:
            typer.echo(f"{r['check']:<18} {'default' if r['default'] else 'opt-in ':<8} {r['description']}")
        return
    if path is None or out is None:
        typer.echo("error: give PATH and --out DIR (or --list). Example: hubtools check data.jsonl "
                   "--out report/", err=True)
        raise typer.Exit(2)
    with _errors():
        runner = get_engine(engine, address=ray_address, workers=ray_workers, memory=ray_memory,
                            worker_memory=ray_worker_memory)
        names = resolve_checks(checks)
        if eval_sets and checks is None:  # naming evaluation sets asks for the contamination check
            names = resolve_checks([*names, "contamination"])
        options = check_options(lang=lang, categories=categories, toxicity_backend=toxicity_backend,
                                toxicity_model=toxicity_model, toxicity_threshold=toxicity_threshold,
                                near_dup_threshold=near_dup_threshold, eval_sets=eval_sets, repetition=repetition,
                                only=names)
        quality = run_checks(_source(path, split), checks=names, options=options,
                             num_proc=num_proc, progress=_progress_enabled(as_json), format=format,
                             engine=runner)
        files = write_report(quality, out)
        if runner.name == "ray":
            files["flagged/"] = write_flagged_shards(quality, out)
    if as_json:
        _print_json(quality.to_dict())
        _exit_if_unusable(quality.dataset)
        return
    info = quality.dataset
    typer.echo(f"{info.get('source')}: {info.get('total', 0):,} records = {info.get('valid', 0):,} valid "
               f"+ {info.get('quarantined', 0):,} quarantined")
    width = max(len(n) for n in quality.results)
    for name, result in quality.results.items():
        shown = f"{result.count:,} flagged" if result.applicable else \
            f"n/a: {result.stats.get('skipped') or 'does not apply'}"
        typer.echo(f"  {name:<{width}}  {shown}")
    if runner.name == "ray":
        cluster = info.get("engine", {}).get("cluster", {})
        typer.echo(f"engine: ray, {cluster.get('nodes', '?')} node(s), {cluster.get('cpus', '?')} CPUs; per check "
                   "the records in, flagged, seconds and where each step ran are in quality.json (dataset.engine)")
    typer.echo(f"wrote {', '.join(str(p) for name, p in files.items() if not name.startswith('plots/'))}")
    _exit_if_unusable(info)

@app.command(name="filter")
def filter_command(
    path: PathArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the kept records, "
                                                          "removed.jsonl and filter_summary.json.")],
    drop: Annotated[str | None, typer.Option("--drop", "-d", help="Comma-separated checks whose flagged "
                                                           "records are removed, e.g. exact_duplicates,near_duplicates,toxicity.")] = None,
    min_quality: Annotated[float | None, typer.Option(
        "--min-quality", min=0.0, max=1.0,
        help="Also remove records whose quality score (0-1, from the default checks' flags; see the "
             "quality report) is below this.")] = None,
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="Replace e-mails, phones, cards, "
                                             "IBANs, ids and secrets in kept records with [EMAIL]-style placeholders.")] = False,
    quality_file: Annotated[Path | None, typer.Option("--quality", help="Reuse quality.json from "
                                                         "`hubtools check` instead of running the checks again.")] = None,
    num_proc: NumProcOpt = 1,
    lang: LangOpt = None,
    categories: CategoriesOpt = None,
    toxicity_backend: ToxBackendOpt = None,
    toxicity_model: ToxModelOpt = None,
    toxicity_threshold: ToxThresholdOpt = None,
    near_dup_threshold: NearDupOpt = None,
    eval_sets: EvalSetsOpt = None,
    repetition: RepetitionOpt = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = None,
    ray_memory: RayMemoryOpt = None,
    ray_worker_memory: RayWorkerMemoryOpt = None,
    shards: Annotated[str | None, typer.Option(
        "--shards", help="Write the kept records as parquet or jsonl shards in DIR/kept/ (canonical records "
                         "with their source index) instead of one file in the input's format; "
                         "parquet by default with --engine ray.")] = None,
    format: FormatOpt = None,
    split: SplitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove flagged records and write the rest in the input's own format.

    Writes the kept records to DIR (same format and container as the input), and
    DIR/removed.jsonl with each removed record's index and reasons; kept + removed = read.
    Quarantined records are always removed (reason `schema`).

    Example: hubtools filter data.jsonl --out clean/ --drop exact_duplicates,near_duplicates --redact-pii
    """
    import orjson

    from ..checks import resolve_checks
    from ..checks.engines import get_engine
    from ..checks.filter import filter_dataset
    from ..checks.runner import QualityResult

    with _errors():
        if not drop and min_quality is None:
            typer.echo("error: give --drop CHECKS and/or --min-quality SCORE. Example: hubtools filter "
                       "data.jsonl --out clean/ --drop exact_duplicates", err=True)
            raise typer.Exit(2)
        runner = get_engine(engine, address=ray_address, workers=ray_workers, memory=ray_memory,
                            worker_memory=ray_worker_memory)
        names = resolve_checks(drop) if drop else []
        quality = QualityResult.from_dict(orjson.loads(quality_file.read_bytes())) if quality_file else None
        options = check_options(lang=lang, categories=categories, toxicity_backend=toxicity_backend,
                                toxicity_model=toxicity_model, toxicity_threshold=toxicity_threshold,
                                near_dup_threshold=near_dup_threshold, eval_sets=eval_sets, repetition=repetition,
                                only=names if min_quality is None else None)
        # the engine reads the input: with Ray, its files in the workers
        loaded = runner.load(_source(path, split), format=format, progress=_progress_enabled(as_json))
        result = filter_dataset(loaded, out, drop=names,
                                min_quality=min_quality, redact_pii=redact_pii,
                                quality=quality, options=options, num_proc=num_proc,
                                progress=_progress_enabled(as_json), format=format, engine=runner,
                                shards=shards)
    if as_json:
        _print_json(result.to_dict())
        _exit_if_unusable(loaded.summary())
        return
    typer.echo(f"{result.read:,} records = {result.kept:,} kept + {result.removed:,} removed")
    for reason, n in result.by_reason.items():
        typer.echo(f"  {reason}: {n:,}")
    if result.redacted:
        typer.echo("redacted: " + ", ".join(f"{k} {v:,}" for k, v in result.redacted.items()))
    typer.echo(f"wrote {result.path} and {result.removed_path}")
    _exit_if_unusable(loaded.summary())  # removed.jsonl holds every record's reason
