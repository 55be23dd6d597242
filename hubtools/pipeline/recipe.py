"""The recipe: what a build reads, which stages it runs, and their settings (``hubtools.yaml``).

A recipe is YAML with three keys: ``name`` (the run folder's name), ``sources`` and ``stages``.
Stages run in the fixed order of :data:`STAGES`; the ones the recipe names run, the others are
skipped. :func:`recipe_problems` lists every problem at once (unknown stages and settings, a
stage without the input it needs, a missing endpoint, a push without a token) before any work.

Secrets never go into a recipe (it is copied into the dataset card): an endpoint's key is named
by the environment variable that holds it (``api_key_env``), and pushing uses ``HF_TOKEN`` or the
saved login.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HubtoolsError

__all__ = ["SOURCES", "STAGES", "Recipe", "RecipeError", "init_recipe", "load_recipe", "parse_recipe",
           "recipe_problems"]

#: the stages a recipe may name, in the order they run
STAGES = ("instructions", "responses", "judge", "rank", "review", "check", "filter", "card", "push")
#: where data can come from: documents to write instructions from, a prompt list, a dataset file, a Hub id
SOURCES = ("documents", "prompts", "dataset", "hub")

#: each stage's settings and their types (a tuple: any of them)
SETTINGS: dict[str, dict[str, Any]] = {
    "instructions": {"per_chunk": int, "chunk_size": int, "max_chunks": int, "task_mix": dict,
                     "complexity_mix": dict, "negative_ratio": float, "seed": int, "endpoint": str, "model": str,
                     "api_key_env": str},
    "responses": {"endpoint": str, "model": str, "models": list, "n": int, "api_key_env": str,
                  "temperature": float, "max_tokens": int, "concurrency": int},
    "judge": {"endpoint": str, "model": str, "api_key_env": str, "pairwise": bool},
    "rank": {"strategy": str, "min_margin": float, "threshold": float},
    "review": {"mode": str, "store": str, "keep_unreviewed": bool},
    "check": {"checks": (list, str), "lang": (list, str), "categories": (list, str), "eval_sets": (list, str),
              "num_proc": int, "engine": str, "ray_address": str, "ray_workers": int, "ray_memory": (str, int),
              "ray_worker_memory": (str, int)},
    "filter": {"drop": (list, str), "min_quality": float, "engine": str, "ray_address": str, "ray_workers": int,
               "ray_memory": (str, int), "ray_worker_memory": (str, int)},
    "card": {"license": str, "language": (list, str), "pretty_name": str, "description": str, "tags": list},
    "push": {"repo": str, "private": bool, "create_pr": bool, "split": str},
}
#: what each stage consumes: the stages or sources that can feed it (first present wins)
_NEEDS = {
    "instructions": ("documents",),
    "responses": ("instructions", "prompts"),
    "judge": ("responses",),
    "rank": ("judge",),
    "review": ("rank",),
}
_DATA_STAGES = ("check", "filter", "card", "push")
_SECRET = re.compile(r"^(?:hf_[A-Za-z0-9]{6,}|sk-[A-Za-z0-9_-]{8,})$")


class RecipeError(HubtoolsError, ValueError):
    """The recipe cannot run: every problem found, one per line."""

    def __init__(self, problems: list[str], path: str | None = None):
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{len(problems)} problem(s) in the recipe:\n" + "\n".join(f"  - {p}" for p in problems),
                         hint="fix them and run again (`hubtools init` writes a commented recipe)")


@dataclass
class Recipe:
    """A parsed recipe. ``sources`` hold resolved paths (or a Hub id); ``stages`` each stage's settings."""

    name: str
    sources: dict[str, str] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the recipe as written (it goes into the dataset card)
    text: str = ""
    #: the folder relative paths are resolved against
    base: Path = Path(".")

    def stage_list(self) -> list[str]:
        return [s for s in STAGES if s in self.stages]

    def feeds(self, stage: str) -> str | None:
        """The stage or source whose output ``stage`` reads."""
        before = [s for s in STAGES[: STAGES.index(stage)] if s in self.stages]
        if stage in _NEEDS:
            return next((s for s in _NEEDS[stage] if s in self.stages or s in self.sources), None)
        for prior in reversed(before):
            if prior not in ("check",):  # check passes its input through
                return prior
        return next((s for s in ("dataset", "hub", "prompts") if s in self.sources), None)


def _stage_settings(value: Any) -> dict[str, Any]:
    if value is None or value is True:
        return {}
    if isinstance(value, str):  # "review: gate"
        return {"mode": value}
    return dict(value) if isinstance(value, dict) else {"_invalid": value}


def parse_recipe(text: str, *, base: str | os.PathLike = ".", path: str | None = None) -> Recipe:
    """Parse recipe YAML (no validation beyond its shape: see :func:`recipe_problems`)."""
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RecipeError([f"not valid YAML: {str(exc).splitlines()[0]}"], path) from None
    if not isinstance(data, dict):
        raise RecipeError(["a recipe is a mapping with name, sources and stages"], path)
    base = Path(base)
    sources = {}
    for key, value in (data.get("sources") or {}).items():
        if key in ("documents", "prompts", "dataset") and isinstance(value, str) and value:
            sources[key] = str((base / value).resolve()) if not Path(value).is_absolute() else value
        else:
            sources[key] = value
    stages = {k: _stage_settings(v) for k, v in (data.get("stages") or {}).items()
              if v is not False and v != "off"}
    name = str(data.get("name") or (Path(path).stem if path else "build"))
    recipe = Recipe(name=name, sources=sources, stages=stages, text=text, base=base)
    recipe._extra_keys = sorted(set(data) - {"name", "sources", "stages"})  # type: ignore[attr-defined]
    return recipe


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read a recipe file; relative paths in it are relative to its folder."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError([f"no recipe at {path}: write one with `hubtools init`"], str(path))
    return parse_recipe(path.read_text(encoding="utf-8"), base=path.parent, path=str(path))


def _type_ok(value: Any, expected: Any) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def recipe_problems(recipe: Recipe, *, env: dict[str, str] | None = None, have_token: bool | None = None) -> list[str]:
    """Every reason ``recipe`` cannot run, as sentences (empty: it can)."""
    env = dict(os.environ if env is None else env)
    problems = [f"unknown key '{k}' (a recipe has name, sources, stages)"
                for k in getattr(recipe, "_extra_keys", [])]
    for key, value in recipe.sources.items():
        if key not in SOURCES:
            problems.append(f"unknown source '{key}': use {', '.join(SOURCES)}")
        elif key == "hub":
            from ..hub_ids import DATASET_URI

            if not isinstance(value, str) or not DATASET_URI.match(value):
                problems.append(f"sources.hub: '{value}' is not a Hub dataset id like owner/name")
        elif not isinstance(value, str) or not Path(value).exists():
            problems.append(f"sources.{key}: {value} does not exist")
    data_sources = [s for s in ("dataset", "hub") if s in recipe.sources]
    if len(data_sources) > 1:
        problems.append("give one of sources.dataset and sources.hub, not both")
    if not recipe.stages:
        problems.append(f"no stage to run: name some of {', '.join(STAGES)} under stages")
    for stage, settings in recipe.stages.items():
        if stage not in SETTINGS:
            problems.append(f"unknown stage '{stage}': stages are {', '.join(STAGES)}")
            continue
        if "_invalid" in settings:
            problems.append(f"stages.{stage}: give a mapping of settings (or nothing), not {settings['_invalid']!r}")
            continue
        allowed = SETTINGS[stage]
        for key, value in settings.items():
            if key not in allowed:
                problems.append(f"stages.{stage}: unknown setting '{key}' (it has {', '.join(allowed)})")
            elif not _type_ok(value, allowed[key]):
                problems.append(f"stages.{stage}.{key}: {value!r} is not a {_type_name(allowed[key])}")
            elif isinstance(value, str) and _SECRET.match(value.strip()):
                problems.append(f"stages.{stage}.{key}: looks like a secret; recipes go into the card: put the key "
                                "in an environment variable and name it with api_key_env")
        for key in ("api_key_env",):
            name = settings.get(key)
            if isinstance(name, str) and name and name not in env:
                problems.append(f"stages.{stage}.api_key_env: the environment has no {name}")
    problems += _flow_problems(recipe)
    problems += _stage_value_problems(recipe, env, have_token)
    return problems


def _type_name(expected: Any) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({int: "whole number", float: "number", str: "text", bool: "true/false", list: "list",
                        dict: "mapping"}[k] for k in kinds)


def _flow_problems(recipe: Recipe) -> list[str]:
    problems = []
    for stage in recipe.stage_list():
        if stage in _NEEDS and recipe.feeds(stage) is None:
            wants = " or ".join(f"the {s} {'source' if s in SOURCES else 'stage'}" for s in _NEEDS[stage])
            problems.append(f"stages.{stage} needs {wants}")
        elif stage in _DATA_STAGES and recipe.feeds(stage) is None:
            problems.append(f"stages.{stage} needs data: a rank or review stage, or sources.dataset / sources.hub")
    if "documents" in recipe.sources and "instructions" not in recipe.stages:
        problems.append("sources.documents is read only by the instructions stage: add it under stages")
    return problems


def _stage_value_problems(recipe: Recipe, env: dict[str, str], have_token: bool | None) -> list[str]:
    from ..checks import REGISTRY
    from ..judge.rank import STRATEGIES

    problems = []
    stages = recipe.stages
    responses = stages.get("responses")
    if responses is not None:
        if not (responses.get("model") or responses.get("models")):
            problems.append("stages.responses needs model (or models): the model to ask")
        if not responses.get("endpoint") and not _local_models(responses):
            problems.append("stages.responses needs endpoint: an OpenAI-compatible URL (or model: a local folder)")
        if int(responses.get("n", 2) or 0) < 1:
            problems.append("stages.responses.n must be at least 1")
    judge = stages.get("judge")
    if judge is not None and bool(judge.get("endpoint")) != bool(judge.get("model")):
        problems.append("stages.judge: give both endpoint and model for a model judge, or neither for the "
                        "offline heuristic judge")
    rank = stages.get("rank")
    if rank is not None and rank.get("strategy", "best_vs_worst") not in STRATEGIES:
        problems.append(f"stages.rank.strategy: use one of {', '.join(STRATEGIES)}")
    review = stages.get("review")
    if review is not None and review.get("mode", "gate") not in ("gate",):
        problems.append("stages.review: 'gate' (stop for people to review) or leave it out")
    for stage, key in (("check", "checks"), ("filter", "drop")):
        names = _names(stages.get(stage, {}).get(key))
        unknown = [n for n in names if n not in REGISTRY and n not in ("all", "default")]
        if unknown:
            problems.append(f"stages.{stage}.{key}: unknown check(s) {', '.join(unknown)} (see `hubtools check --list`)")
    problems += _engine_problems(stages)
    filt = stages.get("filter")
    if filt is not None and not _names(filt.get("drop")) and filt.get("min_quality") is None:
        problems.append("stages.filter needs drop (checks whose flagged records go) or min_quality")
    push = stages.get("push")
    if push is not None:
        from ..hub_ids import is_repo_id

        repo = push.get("repo")
        if not repo:
            problems.append("stages.push needs repo: the dataset to publish to, like me/my-dataset")
        elif not is_repo_id(str(repo)):
            problems.append(f"stages.push.repo: '{repo}' is not a Hub id like owner/name")
        if have_token is None:
            from huggingface_hub import get_token

            have_token = bool(env.get("HF_TOKEN") or get_token())
        if not have_token:
            problems.append("stages.push needs a Hub token: set HF_TOKEN or run `hf auth login` (a write token)")
    return problems


def _engine_problems(stages: dict[str, dict[str, Any]]) -> list[str]:
    """The check and filter stages' engine settings: a known engine, Ray options only with Ray,
    a memory size that reads as one, and Ray installed when a stage asks for it."""
    from ..checks.engines import ENGINES, parse_memory

    problems = []
    for stage in ("check", "filter"):
        settings = stages.get(stage)
        if settings is None:
            continue
        engine = settings.get("engine", "local")
        ray_keys = [k for k in ("ray_address", "ray_workers", "ray_memory", "ray_worker_memory") if settings.get(k) is not None]
        if engine not in ENGINES:
            problems.append(f"stages.{stage}.engine: use one of {', '.join(ENGINES)}")
        elif engine != "ray" and ray_keys:
            problems.append(f"stages.{stage}: {', '.join(ray_keys)} need engine: ray")
        elif engine == "ray" and importlib.util.find_spec("ray") is None:
            problems.append(f"stages.{stage}.engine: ray is not installed (pip install 'hubtools[ray]')")
        for key in ("ray_memory", "ray_worker_memory"):
            try:
                memory = settings.get(key)
                parse_memory(memory if memory is None or isinstance(memory, (str, int)) else str(memory))
            except HubtoolsError:
                problems.append(f"stages.{stage}.{key}: not a memory size like 2GB or 512MB")
    return problems


def _local_models(settings: dict[str, Any]) -> bool:
    models = [m for m in settings.get("models") or [settings.get("model")] if m]
    return bool(models) and all(isinstance(m, str) and Path(m).is_dir() for m in models)


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


_INIT = """\
# hubtools recipe: `hubtools build {file}` runs it; re-running skips what is done and resumes the rest.
# Stages run in this order; delete the ones you do not want. Secrets never go here (the recipe is
# copied into the dataset card): name the environment variable that holds an endpoint's key.
name: {name}

sources:
{sources}
stages:
{generation}  review: gate               # stop after ranking for people to review in `hubtools app`; delete to skip
  check:
    checks: default              # or a list: [exact_duplicates, near_duplicates, toxicity, ...]
    # lang: en                   # expected languages (default: the majority)
    # eval_sets: [mt_bench=question.jsonl]   # contamination against evaluation sets
  filter:
    drop: [schema, exact_duplicates, near_duplicates]
    # min_quality: 0.5           # also drop records whose quality score is below this
  card:
    license: apache-2.0
    language: [en]
    # pretty_name: My dataset
  # push:
  #   repo: me/my-dataset        # needs HF_TOKEN (a write token) or `hf auth login`
  #   private: true
  #   create_pr: false
"""

_GENERATION = """\
  instructions:                  # instructions written from the documents (offline templates unless a model is named)
    per_chunk: 3
    chunk_size: 1500
    max_chunks: 50
    complexity_mix: {{simple: 5, multi_step: 3, chain_of_thought: 2}}
  responses:
    endpoint: {endpoint}   # any OpenAI-compatible server (vLLM, TGI, Ollama, HF Inference Endpoints)
    model: {model}
    n: 2                         # candidates per prompt
    # api_key_env: HUBTOOLS_API_KEY   # the environment variable that holds the endpoint's key
  judge: {{}}                      # the offline heuristic judge; give endpoint and model for an LLM judge
  rank:
    strategy: best_vs_worst      # or all_pairs, threshold
    min_margin: 0.5
"""


def init_recipe(*, documents: str | None = None, prompts: str | None = None, dataset: str | None = None,
                hub: str | None = None, endpoint: str | None = None, model: str | None = None,
                name: str = "my-dataset", file: str = "hubtools.yaml") -> str:
    """A commented recipe for the sources given (documents or prompts: the generation stages too)."""
    lines = []
    for key, value in (("documents", documents), ("prompts", prompts), ("dataset", dataset), ("hub", hub)):
        if value:
            lines.append(f"  {key}: {value}")
    if not lines:
        lines.append("  # documents: docs/           # a folder of .txt/.md/.html/.pdf/.jsonl to write instructions from")
        lines.append("  # prompts: prompts.jsonl     # a prompt list (Alpaca without output, {prompt}, .txt, ...)")
        lines.append("  dataset: data.jsonl          # or an existing dataset file; hub: owner/name for a Hub dataset")
    generation = ""
    if documents or prompts:
        generation = _GENERATION.format(endpoint=endpoint or "http://127.0.0.1:8000/v1", model=model or "my-model")
        if not documents:
            generation = generation.split("  responses:", 1)[0].split("  instructions:")[0] + "  responses:" + \
                generation.split("  responses:", 1)[1]
    text = _INIT.format(file=file, name=name, sources="\n".join(lines) + "\n", generation=generation)
    if not generation:
        text = text.replace("  review: gate               # stop after ranking for people to review in "
                            "`hubtools app`; delete to skip\n", "")
    return text
