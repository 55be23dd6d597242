"""Candidate responses: ``n`` per prompt from one or more models, sampling settings recorded.

Prompts come from any canonical dataset: a prompt-only record's ``prompt`` (every prompt list
hubtools reads: Alpaca without output, ``{"prompt"}``, ``{"question"}``, chats ending on a user
turn, bare strings, MT-Bench ``turns``), an SFT record's turns up to its last user message
(a trailing reply is dropped), a preference or unpaired record's ``prompt``, a text record's
``text`` as one user message. Candidate ``j`` of a prompt is sampled with ``seed + j`` so the
candidates differ, a rerun is reproducible and the cache can tell them apart.

Each output record is the prompt plus one assistant reply; ``hubtools_extra`` keeps the
prompt's provenance and adds ``prompt_id``, ``candidate``, ``model``, ``sampling`` and
``synthetic: true``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset

from ..convert import writable_formats, write, write_quarantine
from ..errors import BackendError, UnknownFormatError
from ..formats import get_format
from ..io import CONTAINERS, atomic_write, container_for_path, output_set, write_jsonl
from ..load import canonical_dataset, load
from ..records import EXTRA, INDEX, Kind, dump_extra, load_extra, message
from ..shapes import prompt_messages
from .backends import Backend
from .runner import Runner, RunStats, Task
from .store import run_lock

__all__ = ["ResponsesResult", "Sampling", "check_writable", "generate_responses", "prompt_messages",
           "responses_to_dir"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    """Sampling settings, recorded with every candidate."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0

    def for_candidate(self, j: int) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": self.seed + j}


@dataclass
class ResponsesResult:
    """The candidates, the rows that failed (prompt index, model, candidate, reason), and the summary."""

    dataset: Dataset
    failures: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def generate_responses(prompts: Dataset, backends: list[Backend], *, kind: Kind | str = Kind.SFT, n: int = 1,
                       sampling: Sampling = Sampling(), out_dir: str | Path | None = None, resume: bool = False,
                       **runner_options: Any) -> ResponsesResult:
    """Sample ``n`` candidates per prompt from each backend; return them as an SFT dataset.

    Args:
        prompts: a canonical dataset of ``kind``.
        backends: one or more models; each gets its own checkpoint in ``out_dir``.
        out_dir: where checkpoints go (``checkpoint.<model>.jsonl``); ``None`` keeps none.
        runner_options: passed to :class:`~hubtools.generate.runner.Runner`.

    Example:
        >>> result = generate_responses(prompts, [backend], n=2)  # doctest: +SKIP
        >>> result.summary["candidates"]  # doctest: +SKIP
    """
    records = list(prompts)
    turns = [prompt_messages(r, kind) for r in records]
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    runs: list[RunStats] = []
    order: list[tuple[int, int, int]] = []
    for b, backend in enumerate(backends):
        tasks = [Task(f"{i}:{j}", turns[i], sampling.for_candidate(j))
                 for i in range(len(records)) if turns[i] for j in range(n)]
        checkpoint = Path(out_dir) / f"checkpoint.{_slug(backend.model)}.jsonl" if out_dir else None
        runner = Runner(backend, checkpoint=checkpoint, resume=resume, desc=f"responses ({backend.model})",
                        header={"stage": "responses", "n": n, "sampling": asdict(sampling)}, **runner_options)
        outcome = runner.run(tasks)
        runs.append(outcome.stats)
        for task in tasks:
            i, j = map(int, task.key.split(":"))
            result = outcome.results.get(task.key)
            if result is None:
                failures.append({"prompt_index": records[i][INDEX], "model": backend.model, "candidate": j,
                                 "reason": outcome.failures.get(task.key, "not run")})
                continue
            extra = load_extra(records[i].get(EXTRA))
            extra.setdefault("prompt_id", f"p{records[i][INDEX]}")
            extra.update({"prompt_index": records[i][INDEX], "candidate": j, "model": result.completion.model,
                          "sampling": task.params, "finish_reason": result.completion.finish_reason,
                          "synthetic": True})
            if result.completion.reasoning:  # the thinking stays in provenance, out of the reply
                extra["reasoning"] = result.completion.reasoning
            rows.append({"messages": [*turns[i], message("assistant", result.completion.text)],
                         "tools": records[i].get("tools"), EXTRA: dump_extra(extra)})
            order.append((i, b, j))
    rows = [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]
    for index, row in enumerate(rows):
        row[INDEX] = index
    skipped = sum(t is None for t in turns)
    summary = {
        "prompts": len(records), "prompts_without_user_turn": skipped, "n": n,
        "models": [b.model for b in backends], "sampling": asdict(sampling),
        "expected": (len(records) - skipped) * n * len(backends), "candidates": len(rows),
        "failed": len(failures), "runs": [s.to_dict() for s in runs],
    }
    logger.info("responses: %d candidates, %d failed", len(rows), len(failures))
    return ResponsesResult(canonical_dataset(rows, Kind.SFT), failures, summary)


def responses_to_dir(prompts: str | os.PathLike, out_dir: str | os.PathLike, backends: list[Backend], *,
                     n: int = 1, sampling: Sampling = Sampling(), format: str = "openai", container: str = "jsonl",
                     input_format: str | None = None, resume: bool = False, progress: bool = False,
                     **runner_options: Any) -> ResponsesResult:
    """Answer the prompts in ``prompts`` (any dataset ``hubtools.load`` reads) into ``out_dir``.

    Writes ``responses.<container>`` (prompt + one reply per record, as ``format``, with the
    prompt's provenance, ``model``, ``candidate``, ``sampling`` and ``synthetic: true``),
    ``failures.jsonl`` when candidates failed, ``summary.json``, and the runner's checkpoints,
    so a run killed at any point continues with ``resume=True`` and asks for no row twice.

    Raises:
        BackendError: no backend was given, or one no row can get past (bad token, unknown model).
        UnknownFormatError: ``format`` cannot hold SFT records (checked before any request).
        InputUnusableError: ``prompts`` holds no usable record (the reasons, with counts).
        RunStateError: ``out_dir`` holds a run and ``resume`` is off, or a run with other settings.

    Example:
        >>> responses_to_dir("prompts/prompts.jsonl", "responses/", [backend], n=2)  # doctest: +SKIP
    """
    if not backends:
        raise BackendError("generating responses needs a model and there is none", reason="bad_request",
                           hint="pass --endpoint URL --model NAME, or --model with a local model path")
    out = Path(out_dir)
    target = out / f"responses.{container}"
    check_writable(format, target)  # before the run, not after it
    loaded = load(prompts, format=input_format, progress=progress).ensure_usable()  # no prompt: say why
    with run_lock(out):  # one live run per folder, from the first request to the last file written
        return _responses_run(loaded, out, target, backends, n=n, sampling=sampling, format=format, resume=resume,
                              progress=progress, **runner_options)


def _responses_run(loaded, out: Path, target: Path, backends: list[Backend], *, n: int, sampling: Sampling,
                   format: str, resume: bool, progress: bool, **runner_options: Any) -> ResponsesResult:
    result = generate_responses(loaded.dataset, backends, kind=loaded.kind, n=n, sampling=sampling, out_dir=out,
                                resume=resume, progress=progress, **runner_options)
    # one set (the checkpoints stay where they are); a quarantine or failures file of an earlier
    # run of this directory that is no longer true goes
    with output_set(out, replaces=[f"responses.{c}" for c in CONTAINERS] + ["quarantine.jsonl", "failures.jsonl"]
                    ) as stage:
        written = write(result.dataset, stage / target.name, format=format, kind=Kind.SFT)
        written.path = target
        files = {"responses": str(target), "summary": str(out / "summary.json")}
        for name, rows, write_rows in (("quarantine", written.quarantine, write_quarantine),
                                       ("failures", result.failures, write_jsonl)):
            if rows:
                files[name] = str(out / f"{name}.jsonl")
                write_rows(stage / f"{name}.jsonl", rows)
        result.summary.update({"input": loaded.summary(), "format": written.format, "written": written.written,
                               "quarantined": written.quarantined, "files": files})
        with atomic_write(stage / "summary.json") as fh:
            fh.write(orjson.dumps(result.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    return result


def check_writable(format: str, path: str | os.PathLike, kind: Kind | str = Kind.SFT) -> None:
    """Refuse, before a long run, an output ``format`` or file type that cannot hold records of ``kind``.

    Raises:
        UnknownFormatError: ``format`` is unknown or holds another kind.
        InputUnusableError: ``path`` has no known extension.

    >>> check_writable("openai", "out/responses.jsonl")
    """
    kind = Kind(kind)
    if get_format(format).kind is not kind:
        raise UnknownFormatError(f"{kind.value} records cannot be written as {format}",
                                 hint=f"use one of {', '.join(writable_formats(kind))}")
    container_for_path(path)
