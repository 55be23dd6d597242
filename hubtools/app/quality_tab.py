"""Quality tab: run the checks on the current dataset, see the plots and the flagged records, then
filter (drop what chosen checks flagged, optionally redact personal data) and download the result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from ..checks import REGISTRY, QualityResult, default_checks, run_checks
from ..checks.filter import filter_dataset
from ..checks.options import check_options
from ..errors import HubtoolsError
from ..publish.report import write_report
from .session import Session, fresh_dir, problem, with_dataset

__all__ = ["FilterScreen", "QualityScreen", "build", "run_filter", "run_quality"]

_NEED_DATASET = "Load a dataset first (in **Load** or **Generate**)."
_FLAGGED_COLUMNS = ["index", "checks", "reasons", "excerpt"]
_RESULT_COLUMNS = ["check", "flagged", "share", "what it looks for"]
#: flagged records shown in the table (all of them are in the report and in removed.jsonl)
MAX_ROWS = 500


class QualityScreen(NamedTuple):
    """What a check run shows (in the order of its output components)."""

    summary: str
    results: list[list[Any]]
    plots: list[tuple[str, str]]
    flagged: list[list[Any]]
    report_files: list[str]
    session: Session


class FilterScreen(NamedTuple):
    """What a filter run shows."""

    summary: str
    kept_file: str | None
    removed_file: str | None
    session: Session


def _excerpt(quality: QualityResult, index: int) -> str:
    try:
        fields = quality.data.record(index, max_chars=120) if quality.data is not None else {}
    except KeyError:  # quarantined: not in the valid data
        return ""
    return " | ".join(f"{k}: {v}" for k, v in fields.items())


def run_quality(checks: list[str] | None, languages: str | None, categories: str | None, session: Session,
                progress: Any = None) -> QualityScreen:
    """Run the chosen checks on the current dataset and write the quality report."""
    if session.dataset is None:
        return QualityScreen(_NEED_DATASET, [], [], [], [], session)
    if not checks:
        return QualityScreen("Choose at least one check.", [], [], [], [], session)
    if progress is not None:
        progress(0, desc="Running the checks")
    try:
        # the bundled offline toxicity model: no download, no token
        options = check_options(lang=languages, categories=categories, toxicity_backend="offline", only=list(checks))
        quality = run_checks(session.loaded(), checks=list(checks), options=options, progress=progress is not None)
        session, out = fresh_dir(session, "quality")
        files = write_report(quality, out)
    except HubtoolsError as exc:
        return QualityScreen(problem("The checks could not run.", exc), [], [], [], [], session)
    info = quality.dataset
    total = info.get("total", 0) or 0
    results = [[name, r.count if r.applicable else "n/a", f"{r.count / total:.1%}" if total and r.applicable else "",
                REGISTRY[name].description if name in REGISTRY else ""] for name, r in quality.results.items()]
    flagged = quality.flagged_by([n for n in quality.results if n != "schema"])
    rows = [[index, ", ".join(names),
             "; ".join(f"{n}: {quality.results[n].reasons.get(index, '')}" for n in names), _excerpt(quality, index)]
            for index, names in sorted(flagged.items())[:MAX_ROWS]]
    plots = [(str(path), name.removeprefix("plots/").removesuffix(".png"))
             for name, path in files.items() if name.startswith("plots/")]
    summary = (f"**{session.name}:** {total:,} records = {info.get('valid', 0):,} valid + "
               f"{info.get('quarantined', 0):,} quarantined; **{len(flagged):,} flagged** by at least one check"
               + (f" (the table shows the first {MAX_ROWS})" if len(flagged) > MAX_ROWS else "") + ". "
               "Record numbers are positions in the file, from 0. Nothing is removed until you filter.")
    session = replace(session, quality=str(files["quality.json"]))
    report = [str(p) for name, p in files.items() if not name.startswith("plots/")]
    return QualityScreen(summary, results, plots, rows, report, session)


def run_filter(drop: list[str] | None, redact_pii: bool, session: Session, progress: Any = None) -> FilterScreen:
    """Drop what the chosen checks flagged (and redact PII if asked); the kept file becomes the current dataset."""
    if session.dataset is None:
        return FilterScreen(_NEED_DATASET, None, None, session)
    if not drop and not redact_pii:
        return FilterScreen("Choose the checks whose flagged records to drop, or PII redaction.", None, None, session)
    quality = None
    if session.quality:
        import orjson

        earlier = QualityResult.from_dict(orjson.loads(Path(session.quality).read_bytes()))
        quality = earlier if all(name in earlier.results for name in drop or []) else None
    if progress is not None:
        progress(0, desc="Filtering")
    session, out = fresh_dir(session, "filtered")
    try:
        result = filter_dataset(session.loaded(), out, drop=list(drop or ["schema"]), redact_pii=redact_pii,
                                quality=quality, options=check_options(toxicity_backend="offline", only=list(drop or [])),
                                progress=progress is not None)
    except HubtoolsError as exc:
        return FilterScreen(problem("The filter could not run.", exc), None, None, session)
    reasons = ", ".join(f"{k}: {v:,}" for k, v in result.by_reason.items()) or "none"
    text = (f"**{result.read:,} records = {result.kept:,} kept + {result.removed:,} removed** "
            f"(by reason: {reasons}).")
    if result.redacted:
        text += " Redacted: " + ", ".join(f"{k} {v:,}" for k, v in result.redacted.items()) + "."
    if result.kept:
        session = with_dataset(session, result.path, name=f"{session.name} (filtered)", kind=session.kind or "",
                               format=session.format or "", records=result.kept, provenance=session.provenance)
        text += " The kept records are now the **current dataset**."
    else:
        text += " Nothing was kept, so the current dataset is unchanged."
    return FilterScreen(text, str(result.path), str(result.removed_path), session)


def build(gr, session_state, with_progress) -> None:
    """Lay out the Quality tab and wire its events (inside a ``gr.Blocks`` context)."""
    names = list(REGISTRY)
    gr.Markdown("Run the quality checks on the current dataset. Everything here runs offline; toxicity uses the "
                "bundled offline model (word-level offensive language, no download).\n\n"
                + "\n".join(f"- `{n}`: {REGISTRY[n].description}" for n in names))
    with gr.Row():
        checks = gr.CheckboxGroup(names, value=default_checks(), label="Checks to run", elem_id="quality-checks",
                                  scale=3)
        with gr.Column(scale=1):
            languages = gr.Textbox(label="Expected languages (optional)", placeholder="en, fr",
                                   elem_id="quality-languages")
            categories = gr.Textbox(label="Task categories it should cover (optional)", placeholder="qa, code",
                                    elem_id="quality-categories")
    run = gr.Button("Run the checks", variant="primary", elem_id="quality-run")
    summary = gr.Markdown(elem_id="quality-summary")
    results = gr.Dataframe(headers=_RESULT_COLUMNS, label="Checks", interactive=False, wrap=True,
                           elem_id="quality-results")
    plots = gr.Gallery(label="Plots", columns=3, height="auto", elem_id="quality-plots")
    flagged = gr.Dataframe(headers=_FLAGGED_COLUMNS, label="Flagged records", interactive=False, wrap=True,
                           elem_id="quality-flagged")
    report_files = gr.File(label="Report: quality.json, dataset_quality_report.md, category_distribution.json",
                           file_count="multiple", elem_id="quality-report-files")
    gr.Markdown("### Filter")
    with gr.Row():
        drop = gr.CheckboxGroup(names, value=["schema", "exact_duplicates"], label="Drop the records flagged by",
                                elem_id="filter-drop", scale=3)
        redact = gr.Checkbox(label="Redact personal data (e-mails, phones, cards, ids, keys) in what is kept",
                             elem_id="filter-redact", scale=1)
    filter_button = gr.Button("Filter", elem_id="filter-run")
    filter_summary = gr.Markdown(elem_id="filter-summary")
    with gr.Row():
        kept_file = gr.File(label="kept records", elem_id="filter-kept-file")
        removed_file = gr.File(label="removed.jsonl", elem_id="filter-removed-file")
    jobs = {"concurrency_id": "checks", "concurrency_limit": 1}
    run.click(with_progress(run_quality), inputs=[checks, languages, categories, session_state],
              outputs=[summary, results, plots, flagged, report_files, session_state], api_name="run_checks", **jobs)
    filter_button.click(with_progress(run_filter), inputs=[drop, redact, session_state],
                        outputs=[filter_summary, kept_file, removed_file, session_state], api_name="filter", **jobs)
