"""Run checks: read the input once, build the text view once, run each check over it.

``run_checks`` accepts a path or Hub id, a :class:`~hubtools.load.LoadResult`, or a canonical
``datasets.Dataset``. Per-record checks map over Arrow batches, in worker processes with
``num_proc > 1``; whole-dataset checks (duplicates, outliers, diversity) run in this process.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

from datasets import Dataset

from ..errors import HubtoolsError, UnknownCheckError
from ..load import LoadResult
from ..records import Kind
from ..shapes import SHAPES
from .base import REGISTRY, CheckData, CheckResult, options_dict, release_memory
from .score import QualityScores, record_scores

__all__ = ["QualityResult", "default_checks", "resolve_checks", "run_checks"]

logger = logging.getLogger(__name__)


def default_checks() -> list[str]:
    """The checks a plain ``hubtools check`` runs."""
    return [name for name, spec in REGISTRY.items() if spec.default]


def resolve_checks(names: list[str] | str | None) -> list[str]:
    """Validate check names (a list or comma-separated string); None means the defaults."""
    if names is None:
        return default_checks()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if names == ["all"]:
        return list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UnknownCheckError(f"unknown check(s): {', '.join(unknown)}",
                                hint=f"choose from: {', '.join(REGISTRY)}")
    # registry order, so reports are stable whatever order the user typed
    return [n for n in REGISTRY if n in names]


@dataclass
class QualityResult:
    """Every check's result on one dataset, plus what the dataset was."""

    dataset: dict[str, Any]
    results: dict[str, CheckResult]
    data: CheckData | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``quality.json``."""
        return {
            "dataset": self.dataset,
            "checks": {name: result.to_dict() for name, result in self.results.items()},
            "quality_score": self.scores().to_dict(),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def scores(self) -> QualityScores:
        """Each record's 0-1 quality score (see :mod:`hubtools.checks.score`)."""
        return record_scores(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityResult:
        return cls(dataset=dict(data.get("dataset", {})),
                   results={name: CheckResult.from_dict(name, r) for name, r in data.get("checks", {}).items()},
                   timings=dict(data.get("timings", {})))

    def flagged_by(self, names: list[str] | None = None) -> dict[int, list[str]]:
        """Source index -> names of the checks (among ``names``) that flagged it."""
        out: dict[int, list[str]] = {}
        for name, result in self.results.items():
            if names is not None and name not in names:
                continue
            for index in result.flagged:
                out.setdefault(index, []).append(name)
        return out


#: How many flagged records each check shows in the report.
EXAMPLES = 3


def _redactor():
    """PII redaction for report examples (a report gets published)."""
    from .pii import redact

    return lambda text: redact(text)[0]


def _redact_examples(result: CheckResult, redact) -> None:
    for example in result.examples:
        example["fields"] = {k: redact(v) for k, v in example.get("fields", {}).items()}


def examples_for(result: CheckResult, data: CheckData, n: int = EXAMPLES, redact=None) -> list[dict[str, Any]]:
    """The first ``n`` flagged valid records of a result: redacted, then shortened."""
    out = []
    for index in result.flagged:
        try:
            fields = data.record(index, transform=redact)
        except KeyError:  # quarantined: not in the valid data
            continue
        out.append({"index": index, "reason": result.reasons.get(index, ""), "fields": fields})
        if len(out) >= n:
            break
    return out


def _as_load_result(source: Any, format: str | None, progress: bool,
                    runner: Any) -> tuple[LoadResult | None, Dataset]:
    if isinstance(source, LoadResult):
        return source, source.dataset
    if isinstance(source, Dataset):
        return None, source
    result = runner.load(source, format=format, progress=progress)  # the engine reads it (Ray: in its workers)
    return result, result.dataset


def _without_text(dataset: Dataset, kind: Kind) -> Dataset:
    """``dataset`` without the columns the text view was built from (the bulk of its memory)."""
    text = {field.column for field in SHAPES[kind].text_fields} & set(dataset.column_names)
    return dataset.remove_columns(sorted(text)) if text else dataset


def _run_one(name: str, data: CheckData, opts: Any) -> CheckResult:
    """One check's result; a check that breaks on this data costs its own line, not the report."""
    try:
        return REGISTRY[name].run(data, opts)
    except HubtoolsError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported in the result and logged with its traceback
        logger.error("check %s could not run on %s records", name, len(data), exc_info=True)
        return CheckResult(name, applicable=False, options=options_dict(opts),
                           stats={"skipped": f"could not run: {type(exc).__name__}: {exc}"})


def run_checks(
    source: str | os.PathLike | LoadResult | Dataset,
    *,
    checks: list[str] | str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    num_proc: int = 1,
    progress: bool = False,
    format: str | None = None,
    engine: str | Any = "local",
) -> QualityResult:
    """Run quality checks over a dataset and return every result.

    Args:
        source: a file, directory or Hub id (read with :func:`hubtools.load`), a ``LoadResult``,
            or a canonical ``Dataset``.
        checks: names (list or "a,b"); None runs the default scan, "all" every check.
        options: per-check options, e.g. ``{"language": {"languages": ["en"]}}``.
        num_proc: worker processes for the per-record checks.
        progress: progress bars on stderr.
        engine: where the batches run: ``"local"`` (this process or ``num_proc`` workers),
            ``"ray"`` (a local Ray), or an engine from :func:`hubtools.checks.engines.get_engine`
            (e.g. a Ray cluster's address). Same checks, same results; the engine's per-check
            figures go to ``dataset["engine"]``.

    Raises:
        UnknownCheckError: a check name or option that does not exist.
    """
    from .engines import get_engine

    runner = get_engine(engine)
    names = resolve_checks(checks)
    options = options or {}
    for name in options:
        if name not in REGISTRY:
            raise UnknownCheckError(f"options given for unknown check {name!r}",
                                    hint=f"choose from: {', '.join(REGISTRY)}")
    try:
        opts = {name: REGISTRY[name].make_options(options.get(name)) for name in names}
    except (TypeError, ValueError) as exc:
        raise UnknownCheckError(str(exc)) from None
    loaded, dataset = _as_load_result(source, format, progress, runner)
    started = time.perf_counter()
    data = runner.view(dataset, loaded.kind if loaded else None, quarantine=loaded.quarantine if loaded else [],
                       num_proc=num_proc, progress=progress)
    if loaded is not None and loaded is not source:
        # read here, so nobody else holds it: the text now lives in the view, and the checks
        # read only the other columns (scores, labels) of the dataset itself
        data.dataset = _without_text(dataset, data.kind)
        loaded = replace(loaded, dataset=data.dataset)
        del dataset
        release_memory()
    timings = {"prepare": time.perf_counter() - started}
    info = loaded.summary() if loaded else {"source": None, "kind": data.kind.value,
                                            "total": len(data), "valid": len(data), "quarantined": 0}
    results: dict[str, CheckResult] = {}
    redact = _redactor()
    with runner.session(data, num_proc=num_proc) as view:
        for name in names:
            t0 = time.perf_counter()
            logger.info("running check %s", name)
            runner.begin(name)
            results[name] = _run_one(name, view, opts[name])
            if not results[name].examples:
                results[name].examples = examples_for(results[name], data, redact=redact)
            else:  # a check's own examples: redact again, whatever the check did
                _redact_examples(results[name], redact)
            release_memory()  # what the check freed: back to the system before the next one
            timings[name] = time.perf_counter() - t0
            runner.end(name, results[name], len(data), timings[name])
    info = {**info, "engine": runner.describe()}
    return QualityResult(dataset=info, results=results, data=data, timings=timings)
