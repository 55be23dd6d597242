"""Pipeline tab: one recipe, every stage, in one click (``hubtools build`` in the app).

The visitor writes (or loads, or starts from a template) a recipe, uploads the files it reads, and
presses **Validate** (every problem listed at once) or **Run**: the stages run in this session's
scratch folder with a progress bar and the accounting table filling as each stage finishes. The
recipe and the run's ``report.md`` are offered for download. Running again resumes: finished
stages are reused, an interrupted one continues from its checkpoints.

Every handler is public, so a recipe typed here is held to the app's rules, not the CLI's:

* its files are the visitor's uploads, named by file name (``prompts: prompts.jsonl``); any other
  local path (sources, ``check.eval_sets``, ``review.store``) is refused; Hub ids are read as the
  visitor (their token or sign-in, else no token), never with the server's ``HF_TOKEN``;
* endpoints get the key typed in the key box (``api_key_env`` is refused: the server's environment
  is not the visitor's), Hugging Face routes the visitor's sign-in, and in a Space the endpoint rule
  of the Generate tab (:func:`~hubtools.app.generate_tab._access`);
* ``push`` publishes with the visitor's own token (typed, or their sign-in), the server's only where
  the operator allowed it, as the Publish tab does; the review gate queues pairs in the app's own
  annotation store (the Rank & review tab's).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import BackendError
from ..generate.endpoint_guard import EndpointGuard
from ..pipeline import Access, RecipeError, StageRow, accounting_table, build, init_recipe, parse_recipe, plan
from ..pipeline import recipe_problems as library_problems
from ..redact import redact, remember
from . import generate_tab
from .load_tab import _hub_id_problem
from .publish_tab import _same_repo
from .session import AppSettings, Session, problem, too_big, visitor, with_dataset, workdir

__all__ = ["PipelineScreen", "build_tab", "load_recipe_file", "run_recipe", "starter_recipe", "validate_recipe"]

#: the longest recipe the app reads (characters)
MAX_RECIPE = 64 * 1024
_FILE_SOURCES = ("documents", "prompts", "dataset")
_MODEL_STAGES = ("instructions", "responses", "judge")
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".gz")
_MARK = {"pending": "○", "running": "▶", "done": "✓", "waiting": "⏸", "failed": "✗"}


class PipelineScreen(NamedTuple):
    """What the Pipeline tab shows (in the order of its output components)."""

    status: str
    stages: str
    accounting: str
    recipe_file: str | None
    report_file: str | None
    session: Session


@dataclass
class _Prepared:
    session: Session
    problems: list[str]
    recipe: Any = None
    access: Access | None = None
    recipe_file: str | None = None
    tokens: tuple[str | None, ...] = ()


# --------------------------------------------------------------------------- reading the visitor's recipe


def _copy_uploads(settings: AppSettings, session: Session, files: list[str] | None) -> tuple[Session, Path, list[str]]:
    """A folder of this session holding exactly ``files`` (by file name), named by their content: the same
    uploads give the same folder (a run resumes), and a folder a build reads is never changed under it."""
    problems, accepted = [], []
    for path in [f for f in files or [] if f]:
        refused = too_big(path, settings)
        if refused:
            problems.append(f"{Path(path).name}: {refused}")
        else:
            accepted.append(Path(path))
    digest = hashlib.sha256()
    for path in sorted(accepted, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    session, folder = workdir(session, "pipeline", "uploads", digest.hexdigest()[:16])
    for path in accepted:
        if not (folder / path.name).is_file():
            part = folder / f".{path.name}.{uuid.uuid4().hex}.part"
            shutil.copyfile(path, part)
            os.replace(part, folder / path.name)
    return session, folder, problems


def _upload_path(folder: Path, value: Any) -> Path | None:
    """The upload ``value`` names (a file name, or ``.`` for all of them); None when it names anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = (folder / value.strip()).resolve()
    root = folder.resolve()
    if (path == root or root in path.parents) and path.exists():
        return path
    return None


def _not_an_upload(where: str, value: Any, names: list[str]) -> str:
    have = ", ".join(names) if names else "none yet"
    return (f"{where}: {value!r} is not one of your uploads (yours: {have}). This app reads only files uploaded "
            "here, named by their file name, and Hub ids (sources.hub)")


def _publish_token(settings: AppSettings, typed: str | None, oauth_token: str | None) -> str | None:
    """The token ``push`` may use: the visitor's (typed, or their sign-in), the server's only where allowed."""
    typed = (typed or "").strip() or None
    return typed or oauth_token or (settings.hf_token if settings.allow_server_token_for_publish else None)


def _visitor_problems(settings: AppSettings, recipe: Any, raw: dict[str, Any], folder: Path,
                      push_token: str | None, signed_in: bool) -> list[str]:
    """What this app refuses in a recipe that the CLI would accept (local paths, the server's secrets)."""
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    problems = []
    raw_sources = raw.get("sources") if isinstance(raw.get("sources"), dict) else {}
    for key in _FILE_SOURCES:
        if key in recipe.sources:
            path = _upload_path(folder, raw_sources.get(key))
            if path is None:
                problems.append(_not_an_upload(f"sources.{key}", raw_sources.get(key), names))
            else:
                recipe.sources[key] = str(path)
    if "hub" in recipe.sources:
        value = recipe.sources["hub"]
        refused = _hub_id_problem(value.strip()) if isinstance(value, str) else "it is not text"
        if refused:
            problems.append(f"sources.hub: {refused}; files come in through the upload")
    for stage, s in recipe.stages.items():
        if not isinstance(s, dict) or "_invalid" in s:
            continue
        if "api_key_env" in s:
            problems.append(f"stages.{stage}.api_key_env: this app does not read its server's environment; remove "
                            "it and type the endpoint's key in the key box")
        if stage in _MODEL_STAGES:
            problems += _endpoint_problems(settings, stage, s)
    review = recipe.stages.get("review")
    if review is not None and settings.team and not signed_in:
        problems.append("stages.review: the review gate queues pairs in the team's annotations; sign in with "
                        "Hugging Face first")
    if isinstance(review, dict) and "store" in review:
        problems.append("stages.review.store: this app queues reviews in its own store (the Rank & review tab); "
                        "remove it")
    check = recipe.stages.get("check")
    if isinstance(check, dict):
        if check.get("eval_sets"):
            specs = [check["eval_sets"]] if isinstance(check["eval_sets"], str) else list(check["eval_sets"])
            resolved = []
            for spec in specs:
                name, _, location = str(spec).rpartition("=")
                path = _upload_path(folder, location)
                if path is None:
                    problems.append(_not_an_upload("stages.check.eval_sets", spec, names))
                else:
                    resolved.append(f"{name}={path}" if name else str(path))
            check["eval_sets"] = resolved
        if isinstance(check.get("num_proc"), int) and check["num_proc"] > 1:
            problems.append("stages.check.num_proc: this app runs the checks in one process; remove it")
    push = recipe.stages.get("push")
    if isinstance(push, dict):
        if settings.team_repo and isinstance(push.get("repo"), str) and _same_repo(push["repo"], settings.team_repo):
            problems.append(f"stages.push.repo: {settings.team_repo} holds this app's team annotations; publish to "
                            "another repo")
        if not push_token:
            where = "sign in with Hugging Face or type it in the token box" if settings.oauth else \
                "type it in the token box (it is not shown or stored)"
            problems.append(f"stages.push needs your Hugging Face token with write access: {where}")
    return problems


def _endpoint_problems(settings: AppSettings, stage: str, s: dict[str, Any]) -> list[str]:
    """The Generate tab's endpoint rules, said before the build starts."""
    endpoint, model = s.get("endpoint"), s.get("model")
    if not settings.space:
        return []
    if isinstance(endpoint, str) and endpoint.strip():
        try:
            EndpointGuard(settings.allowed_endpoints).check(endpoint.strip())
        except BackendError as exc:
            return [f"stages.{stage}.endpoint: {exc}"]
        return []
    models = [m for m in (s.get("models") or [model]) if isinstance(m, str) and m]
    if any(Path(m).is_absolute() or m.startswith((".", "~")) or Path(m).exists() for m in models):
        return [f"stages.{stage}.model: a folder on the server is not a model here; give an endpoint URL with its "
                "model, or a Hugging Face model id"]
    return []


def _library_problems(recipe: Any, checked_sources: set[str]) -> list[str]:
    """The library's own problems, less those the app said in its words above."""
    out = []
    for text in library_problems(recipe, env={}, have_token=True):
        if any(text.startswith(f"sources.{k}:") for k in checked_sources) or ".api_key_env:" in text:
            continue
        if "looks like a secret" in text:
            text = text.split(";")[0] + "; recipes go into the dataset card: type keys in the key and token boxes"
        out.append(text)
    return out


def _prepare(settings: AppSettings, store_path: Path, text: str | None, files: list[str] | None,
             api_key: str | None, token: str | None, session: Session, oauth_token: str | None) -> _Prepared:
    """Parse and check the recipe as this visitor may run it; every problem at once."""
    api_key = (api_key or "").strip() or None
    remember(api_key, token, oauth_token)
    text = text or ""
    if not text.strip():
        return _Prepared(session, ["write a recipe above, load a recipe file, or start from the template"])
    if len(text) > MAX_RECIPE:
        return _Prepared(session, [f"the recipe is {len(text):,} characters; this app reads recipes up to "
                                   f"{MAX_RECIPE:,}"])
    session, folder, problems = _copy_uploads(settings, session, files)
    session, home = workdir(session, "pipeline")
    recipe_file = home / "hubtools.yaml"
    recipe_file.write_text(text, encoding="utf-8")
    try:
        recipe = parse_recipe(text, base=folder, path="hubtools.yaml")
    except RecipeError as exc:
        return _Prepared(session, problems + exc.problems, recipe_file=str(recipe_file))
    import yaml

    raw = yaml.safe_load(text)
    push_token = _publish_token(settings, token, oauth_token)
    problems += _visitor_problems(settings, recipe, raw, folder, push_token, bool(oauth_token))
    problems += _library_problems(recipe, {k for k in (*_FILE_SOURCES, "hub") if k in recipe.sources})

    def backend(stage_settings: dict[str, Any], model: str | None):
        return generate_tab._backend(settings, stage_settings.get("endpoint"), model, api_key, oauth_token)

    reader = (token or "").strip() or oauth_token or False  # the visitor's identity, never the server's
    access = Access(backend=backend, hub_token=reader, push_token=push_token, review_store=store_path)
    return _Prepared(session, problems, recipe, access, str(recipe_file), (api_key, token, oauth_token))


def _run_folder(session: Session, name: str) -> tuple[Session, Path]:
    """This session's run folder for a recipe name (the same name resumes the same run)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "build"
    return workdir(session, "pipeline", "runs", safe)


def _problems_text(problems: list[str]) -> str:
    return (f"**{len(problems)} problem(s) in the recipe** (nothing ran):\n\n"
            + "\n".join(f"- {p}" for p in problems))


# --------------------------------------------------------------------------- handlers


def validate_recipe(settings: AppSettings, store_path: Path, text: str | None, files: list[str] | None,
                    api_key: str | None, token: str | None, session: Session,
                    oauth_token: str | None = None) -> tuple[str, str | None, Session]:
    """Check the recipe without running it: every problem at once, or the plan (run, resume, reuse)."""
    prep = _prepare(settings, store_path, text, files, api_key, token, session, oauth_token)
    if prep.problems:
        return redact(_problems_text(prep.problems), *prep.tokens), prep.recipe_file, prep.session
    session, run = _run_folder(prep.session, prep.recipe.name)
    try:
        steps = plan(prep.recipe, out=run, access=prep.access)
    except RecipeError as exc:
        return redact(_problems_text(exc.problems), *prep.tokens), prep.recipe_file, session
    lines = [f"- `{s.stage}`: {dict(run='will run', resume='resumes where it stopped', reuse='done already')[s.action]}"
             for s in steps]
    return (redact("**The recipe is valid.** Press **Run** to run it:\n\n" + "\n".join(lines), *prep.tokens),
            prep.recipe_file, session)


def _stages_text(order: list[str], state: dict[str, str]) -> str:
    return " · ".join(f"{_MARK[state[s]]} {s}" for s in order)


def _row(run: Path, step: str) -> StageRow:
    summary = json.loads((run / step.replace("load:", "load-") / "summary.json").read_text(encoding="utf-8"))
    return StageRow.from_dict(summary["row"])


def run_recipe(settings: AppSettings, store_path: Path, text: str | None, files: list[str] | None,
               api_key: str | None, token: str | None, session: Session, progress: Any = None,
               oauth_token: str | None = None):
    """Run the recipe; yield a :class:`PipelineScreen` as each stage starts and finishes."""
    prep = _prepare(settings, store_path, text, files, api_key, token, session, oauth_token)
    secrets = prep.tokens

    def screen(status: str, stages: str, rows: list[StageRow], report: str | None, session: Session):
        table = accounting_table(rows) if rows else ""
        return PipelineScreen(redact(status, *secrets), stages, redact(table, *secrets), prep.recipe_file, report,
                              session)

    if prep.problems:
        yield screen(_problems_text(prep.problems), "", [], None, prep.session)
        return
    recipe = prep.recipe
    session, run = _run_folder(prep.session, recipe.name)
    try:
        steps = plan(recipe, out=run, access=prep.access)
    except RecipeError as exc:
        yield screen(_problems_text(exc.problems), "", [], None, session)
        return
    order = [s.stage for s in steps]
    reused = {s.stage for s in steps if s.action == "reuse"}
    state = dict.fromkeys(order, "pending")
    events: queue.Queue = queue.Queue()
    end = object()

    def work():
        try:
            events.put((end, build(recipe, out=run, progress=progress is not None, access=prep.access,
                                   on_stage=lambda step, event: events.put((step, event)))))
        except Exception as exc:  # noqa: BLE001 - shown to the visitor below, redacted
            events.put((end, exc))

    threading.Thread(target=work, name=f"build-{recipe.name}", daemon=True).start()
    rows: list[StageRow] = []
    yield screen(f"**Running `{recipe.name}`:** {len(order)} steps.", _stages_text(order, state), rows, None, session)
    while True:
        step, event = events.get()
        if step is end:
            result = event
            break
        state[step] = {"start": "running", "done": "done", "waiting": "waiting"}.get(event, state[step])
        if event == "start" and progress is not None:
            progress(order.index(step) / len(order), desc=f"{step} ({order.index(step) + 1} of {len(order)})")
        if event == "done":
            rows.append(replace(_row(run, step), reused=step in reused))
        yield screen(f"**Running `{recipe.name}`:** {sum(v == 'done' for v in state.values())} of {len(order)} "
                     "steps done.", _stages_text(order, state), rows, None, session)
    report = str(run / "report.md") if (run / "report.md").is_file() else None
    if isinstance(result, BaseException):
        state.update({s: "failed" for s, v in state.items() if v == "running"})
        what = _problems_text(result.problems) if isinstance(result, RecipeError) else \
            problem("The build stopped.", result) + ("\n\nWhat finished is kept: fix the problem and press **Run** "
                                                       "again to resume.")
        yield screen(what, _stages_text(order, state), rows, report, session)
        return
    if result.stopped:
        session = _queue_for_review(session, run, recipe.name)
        status = (f"**Stopped at `{result.stopped}` for review:** {rows[-1].records_out if rows else 0} pairs are "
                  "queued in the app's review store and are now the **current dataset**. Review them in "
                  "**Rank & review** (press Start), then press **Run** again here to apply the decisions and go on.")
        yield screen(status, _stages_text(order, state), result.rows, report, session)
        return
    session = _keep_result(session, run, recipe.name, result)
    status = f"**Built `{recipe.name}`:** {result.rows[-1].records_out:,} records; the figures add up at every stage."
    if result.url:
        status += f" Published: {result.url}"
    status += " The result is now the **current dataset** of the other tabs."
    yield screen(status, _stages_text(order, state), result.rows, report, session)


def _queue_for_review(session: Session, run: Path, name: str) -> Session:
    """The ranked pairs as the current dataset, so that the Rank & review tab shows the queued items."""
    from datasets import Dataset

    from ..convert import write

    pairs = run / "review-queue.jsonl"
    written = write(Dataset.from_parquet(str(run / "rank" / "data.parquet")), pairs, format="trl", kind="preference")
    return with_dataset(session, pairs, name=f"build {name}: pairs to review", kind="preference", format="trl",
                        records=written.written)


def _keep_result(session: Session, run: Path, name: str, result: Any) -> Session:
    """The build's final data as the current dataset (in its default format)."""
    from ..convert import write
    from ..publish.context import default_format

    if result.dataset is None or not len(result.dataset):
        return session
    fmt = default_format(result.kind)
    written = write(result.dataset, run / "result.jsonl", format=fmt, kind=result.kind)
    return with_dataset(session, run / "result.jsonl", name=f"build {name}", kind=result.kind.value, format=fmt,
                        records=written.written)


def load_recipe_file(path: str | None) -> str:
    """The text of an uploaded recipe file (for the editor)."""
    if not path:
        return ""
    data = Path(path).read_bytes()[: MAX_RECIPE + 1]
    return data.decode("utf-8", errors="replace")


def starter_recipe(files: list[str] | None) -> str:
    """A commented recipe for the uploaded files: a data file becomes ``sources.prompts``, documents
    ``sources.documents`` (edit it: a finished dataset goes under ``sources.dataset``)."""
    names = [Path(f).name for f in files or [] if f]
    prompts = next((n for n in names if n.lower().endswith(_DATA_SUFFIXES)), None)
    documents = next((n for n in names if n != prompts), None) if not prompts else None
    text = init_recipe(prompts=prompts, documents=documents, name="my-dataset")
    return "\n".join(line for line in text.splitlines() if "api_key_env" not in line) + "\n"


# --------------------------------------------------------------------------- layout


def build_tab(gr, settings: AppSettings, session_state, store) -> None:
    """Lay out the Pipeline tab and wire its events (inside a ``gr.Blocks`` context)."""
    from .publish_tab import token_status

    gr.Markdown("Run a whole **recipe** (`hubtools build`): responses, judge, rank, review, checks, filter, card "
                "and push, with the figures of every stage. Upload the files it reads and name them by file name "
                "(`prompts: prompts.jsonl`), or read a Hub dataset (`hub: owner/name`). Keys go in the boxes "
                "below, never in the recipe (it goes into the dataset card). Run again to resume.")
    with gr.Row():
        files = gr.File(label="Files the recipe reads (by file name)", file_count="multiple", type="filepath",
                        elem_id="pipeline-files", scale=2)
        recipe_upload = gr.File(label="or load a recipe file (hubtools.yaml)", type="filepath",
                                file_types=[".yaml", ".yml"], elem_id="pipeline-recipe-upload", scale=1)
    recipe = gr.Textbox(label="Recipe (YAML)", lines=16, max_lines=60, elem_id="pipeline-recipe",
                        placeholder="name: my-dataset\nsources:\n  prompts: prompts.jsonl\nstages:\n  ...")
    with gr.Row():
        api_key = gr.Textbox(label="Endpoint API key (for every endpoint in the recipe)", type="password",
                             elem_id="pipeline-api-key")
        token = gr.Textbox(label="Hugging Face token (write, for push; optional with sign-in)", type="password",
                           placeholder="hf_...", elem_id="pipeline-token")
    gr.Markdown(token_status(settings), elem_id="pipeline-token-status")
    with gr.Row():
        starter = gr.Button("Start from a template", elem_id="pipeline-starter")
        validate = gr.Button("Validate", elem_id="pipeline-validate")
        run = gr.Button("Run", variant="primary", elem_id="pipeline-run")
    status = gr.Markdown(elem_id="pipeline-status")
    stages = gr.Markdown(elem_id="pipeline-stages")
    accounting = gr.Markdown(elem_id="pipeline-accounting")
    with gr.Row():
        recipe_file = gr.File(label="hubtools.yaml", elem_id="pipeline-recipe-file")
        report_file = gr.File(label="report.md", elem_id="pipeline-report-file")
    inputs = [recipe, files, api_key, token, session_state]
    starter.click(starter_recipe, inputs=files, outputs=recipe, api_name="pipeline_starter", queue=False)
    recipe_upload.upload(load_recipe_file, inputs=recipe_upload, outputs=recipe, api_name="pipeline_load_recipe",
                         queue=False)
    validate.click(visitor(gr, settings, validate_recipe, store.path), inputs=inputs,
                   outputs=[status, recipe_file, session_state], api_name="pipeline_validate",
                   concurrency_id="pipeline-validate", concurrency_limit=2)
    run.click(visitor(gr, settings, run_recipe, store.path, stream=True), inputs=inputs,
              outputs=[status, stages, accounting, recipe_file, report_file, session_state], api_name="pipeline_run",
              concurrency_id="pipeline", concurrency_limit=1)
