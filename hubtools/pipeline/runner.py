"""``build``: run a recipe's stages in order in a run folder, resumable, with per-stage accounting.

Layout: ``<run>/<stage>/`` holds the stage's data (``data.parquet``, canonical records),
``summary.json`` (its accounting row and the library's own summary), ``quarantine.jsonl`` when
it set records aside, and ``manifest.json``: the content hashes of its inputs, its settings and
the hubtools version, and the hash of its data. A re-run reuses a stage whose manifest still
matches; a stage whose manifest matches but is not complete (killed, even with ``kill -9``) is
resumed from its checkpoints, asking no model for a row twice; ``from_stage`` runs that stage
and every later one afresh. Stages hand datasets to each other in memory; only a reused stage's
data is read back from its folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from datasets import Dataset

from .._version import __version__
from ..errors import HubtoolsError
from ..io import atomic_write
from ..records import Kind
from .accounting import StageRow, accounting_problems, accounting_table
from .recipe import STAGES, Recipe, RecipeError, recipe_problems

__all__ = ["Access", "BuildResult", "PlanStep", "build", "plan"]

logger = logging.getLogger(__name__)

_DATA = "data.parquet"


@dataclass
class Output:
    """What a stage hands the next one."""

    dataset: Dataset
    kind: Kind
    row: StageRow
    summary: dict[str, Any] = field(default_factory=dict)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    quality: Any = None


@dataclass
class PlanStep:
    stage: str
    action: str  # "run", "resume", "reuse"
    folder: Path
    reads: str | None = None


@dataclass
class BuildResult:
    """A build's run folder, its accounting rows, and where it stopped (None: it finished)."""

    run_dir: Path
    rows: list[StageRow]
    stopped: str | None = None
    message: str = ""
    dataset: Dataset | None = None
    kind: Kind | None = None
    url: str | None = None

    @property
    def report(self) -> Path:
        return self.run_dir / "report.md"

    def to_dict(self) -> dict[str, Any]:
        return {"run": str(self.run_dir), "stopped": self.stopped, "message": self.message, "url": self.url,
                "stages": [r.to_dict() for r in self.rows], "report": str(self.report)}


# --------------------------------------------------------------------------- hashing and manifests


def _hash_path(path: Path) -> str:
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _source_hash(key: str, value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest() if key == "hub" else _hash_path(Path(value))


def _key(inputs: dict[str, str], settings: dict[str, Any]) -> str:
    blob = json.dumps({"inputs": inputs, "settings": settings, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=False, default=str).encode() + b"\n")


def _state(folder: Path, key: str) -> str:
    """"reuse" (done with these inputs), "resume" (started with them), or "run"."""
    manifest = _read_json(folder / "manifest.json")
    if not manifest or manifest.get("key") != key:
        return "run"
    data = folder / _DATA
    if manifest.get("complete") and data.is_file() and _hash_path(data) == manifest.get("output"):
        return "reuse"
    return "resume"


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class Access:
    """Who a build acts as, given by the caller instead of the environment (the app's visitors).

    Every field left at its default keeps the CLI's behaviour: keys from ``api_key_env``, Hub reads
    and pushes with ``HF_TOKEN`` or the saved login, reviews in the recipe's or the app folder's store.
    """

    #: ``(stage settings, model) -> backend`` for every stage that asks a model
    backend: Callable[[dict[str, Any], str | None], Any] | None = None
    #: the identity ``sources.hub`` is read with (``False``: no token; ``None``: the environment's)
    hub_token: str | bool | None = None
    #: the token ``push`` publishes with (``None``: the environment's)
    push_token: str | None = field(default=None, repr=False)
    #: the review gate's annotation store (``None``: ``stages.review.store`` or the app folder's)
    review_store: str | os.PathLike | None = None


class _Build:
    def __init__(self, recipe: Recipe, run_dir: Path, from_stage: str | None, progress: bool,
                 on_stage: Callable[[str, str], None] | None, access: Access | None = None):
        self.recipe = recipe
        self.run_dir = run_dir
        self.from_stage = from_stage
        self.progress = progress
        self.on_stage = on_stage or (lambda stage, event: None)
        self.access = access or Access()
        self.rows: list[StageRow] = []
        self.quality = None

    def chain(self) -> list[str]:
        """The steps in order: the source the first stage reads, then the stages."""
        stages = self.recipe.stage_list()
        first = self.recipe.feeds(stages[0]) if stages else None
        head = "ingest" if first == "documents" or "instructions" in stages else f"load:{first}"
        if head == "ingest" and "prompts" in self.recipe.sources and "responses" in stages:
            # a prompt list beside the documents joins the written instructions before responses
            return [head, "instructions", "load:prompts", *stages[1:]]
        return [head, *stages]

    def _inputs(self, step: str, upstream_key: str | None) -> dict[str, str]:
        if step == "ingest":
            return {"documents": _source_hash("documents", self.recipe.sources["documents"])}
        if step.startswith("load:"):
            source = step.split(":", 1)[1]
            joined = {"upstream": upstream_key} if upstream_key else {}  # what it joins is an input too
            return {source: _source_hash(source, self.recipe.sources[source]), **joined}
        return {"upstream": upstream_key or ""}

    def _settings(self, step: str) -> dict[str, Any]:
        if step == "ingest":
            instructions = self.recipe.stages.get("instructions", {})
            return {k: instructions.get(k) for k in ("chunk_size", "max_chunks")}
        return dict(self.recipe.stages.get(step, {}))

    def steps(self) -> list[tuple[str, Path, str, str]]:
        """(step, folder, key, action) for every step, without running anything."""
        out = []
        upstream = None
        forced = False
        for step in self.chain():
            name = step.replace("load:", "load-")
            folder = self.run_dir / name
            key = _key(self._inputs(step, upstream), self._settings(step))
            forced = forced or (self.from_stage is not None and step == self.from_stage)
            action = "run" if forced else _state(folder, key)
            out.append((step, folder, key, action))
            upstream = key
        return out

    def run(self) -> BuildResult:
        from . import stages as impl

        output: Output | None = None
        joining: Output | None = None  # the instructions a prompt list joins
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for step, folder, key, action in self.steps():
            self.on_stage(step, "start")
            if step.startswith("load:") and output is not None:
                joining = output
            elif joining is not None:
                output, joining = impl.join(joining, output), None
            if action == "reuse":
                output = impl.reuse(step, folder)
                output.row.reused = True
            else:
                if action == "run" and folder.exists():
                    shutil.rmtree(folder)  # other inputs or settings, or forced: nothing to resume
                folder.mkdir(parents=True, exist_ok=True)
                _write_json(folder / "manifest.json", {"stage": step, "key": key, "complete": False,
                                                       "version": __version__,
                                                       "settings": self._settings(step)})
                started = time.monotonic()
                try:
                    output = impl.run(step, self, output, folder)
                except impl.Waiting as wait:
                    self._write_report(stopped=step, message=str(wait))
                    self.on_stage(step, "waiting")
                    return BuildResult(self.run_dir, self.rows, step, str(wait))
                output.row.seconds = round(time.monotonic() - started, 3)
                impl.save(output, folder)
                _write_json(folder / "manifest.json", {"stage": step, "key": key, "complete": True,
                                                       "version": __version__, "settings": self._settings(step),
                                                       "output": _hash_path(folder / _DATA)})
            if output.quality is not None:
                self.quality = output.quality
            output.row.joins = joining is not None
            self.rows.append(output.row)
            self.on_stage(step, "done")
        problems = accounting_problems(self.rows)
        if problems:
            raise HubtoolsError("the stage figures do not add up: " + "; ".join(problems),
                                hint="please report this with the recipe and the run folder")
        url = output.summary.get("url") if output else None
        self._write_report()
        return BuildResult(self.run_dir, self.rows, None, "", output.dataset if output else None,
                           output.kind if output else None, url)

    def table(self) -> str:
        return accounting_table(self.rows)

    def _write_report(self, stopped: str | None = None, message: str = "") -> None:
        lines = [f"# Build `{self.recipe.name}`", "",
                 f"hubtools {__version__}. Every stage: records in = kept + dropped; each stage reads what the "
                 "one before it gave.", "", self.table(), ""]
        if stopped:
            lines += [f"**Stopped at `{stopped}`:** {message}", ""]
        lines += ["## Recipe", "", "```yaml", self.recipe.text.rstrip(), "```", ""]
        with atomic_write(self.run_dir / "report.md") as fh:
            fh.write("\n".join(lines).encode())
        _write_json(self.run_dir / "summary.json", {"name": self.recipe.name, "stopped": stopped,
                                                    "stages": [r.to_dict() for r in self.rows]})


def _run_dir(recipe: Recipe, out: str | os.PathLike | None) -> Path:
    return Path(out) if out is not None else Path("runs") / recipe.name


def plan(recipe: Recipe, *, out: str | os.PathLike | None = None, from_stage: str | None = None,
         access: Access | None = None) -> list[PlanStep]:
    """What :func:`build` would do now: for each step, run, resume or reuse."""
    _check(recipe, from_stage, access)
    job = _Build(recipe, _run_dir(recipe, out), from_stage, False, None)
    return [PlanStep(step, action, folder) for step, folder, _key, action in job.steps()]


def _check(recipe: Recipe, from_stage: str | None, access: Access | None = None) -> None:
    have_token = True if access is not None and access.push_token else None
    problems = recipe_problems(recipe, have_token=have_token)
    if from_stage is not None and from_stage not in recipe.stage_list():
        problems.append(f"--from {from_stage}: the recipe runs {', '.join(recipe.stage_list()) or 'no stage'}")
    if problems:
        raise RecipeError(problems)


def build(recipe: Recipe, *, out: str | os.PathLike | None = None, from_stage: str | None = None,
          progress: bool = False, on_stage: Callable[[str, str], None] | None = None,
          access: Access | None = None) -> BuildResult:
    """Run ``recipe`` (see the module docstring); ``out`` is the run folder (default ``runs/<name>``).

    ``on_stage(step, event)`` is called as each step starts (``"start"``), finishes (``"done"``: its
    ``summary.json`` is written) or stops for review (``"waiting"``). ``access`` gives the credentials,
    backends and review store instead of the environment (see :class:`Access`).

    Raises:
        RecipeError: every problem of the recipe, before any work.
        HubtoolsError: a stage failed (what finished is kept: run again to resume).
    """
    _check(recipe, from_stage, access)
    return _Build(recipe, _run_dir(recipe, out), from_stage, progress, on_stage, access).run()


STAGE_NAMES = ("ingest", "load", *STAGES)
