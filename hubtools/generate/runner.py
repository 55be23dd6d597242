"""Run many completions against one backend: bounded concurrency, retries, cache, checkpoint.

* at most ``concurrency`` requests in flight;
* retryable failures (429, 5xx, timeouts, connection drops, malformed bodies) are retried
  with exponential backoff and full jitter; a ``Retry-After`` (429/503) is honoured;
* an answer a task's ``parse`` cannot read is asked again, with the bad answer and the
  reason, up to ``parse_retries`` times;
* answers go to an on-disk cache (model + parameters + messages) and every finished row to an
  fsync-ed checkpoint, group-committed in the background (no worker waits for the disk), so a
  killed run resumes with no row lost and none done twice;
* tokens and cost are counted into :class:`RunStats` (``summary.json``).

Example:
    >>> runner = Runner(backend, checkpoint="out/checkpoint.jsonl", concurrency=8)  # doctest: +SKIP
    >>> outcome = runner.run([Task("row-0", [{"role": "user", "content": "Hi"}])])  # doctest: +SKIP
    >>> outcome.results["row-0"].completion.text  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, UnparseableOutputError
from .backends import Backend, Completion, Usage, wire_messages
from .store import Checkpoint, CompletionCache, cache_key

__all__ = ["Pricing", "Result", "RunOutcome", "RunStats", "Runner", "Task"]

logger = logging.getLogger(__name__)

#: Reasons that make every other request fail too: stop the run instead of failing each row.
_FATAL = frozenset({"auth", "model_not_found", "tls"})
#: A run whose first this-many rows all fail (after their retries) with the same error, none
#: done, stops there instead of writing every row of a long run into the failures.
FAIL_FAST_ROWS = 8


@dataclass
class Task:
    """One row to complete. ``key`` must be unique and stable across runs (it is the resume key)."""

    key: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    #: reads the answer into a JSON-serialisable value; raises UnparseableOutputError to ask again
    parse: Callable[[str], Any] | None = None
    #: what the repair message asks for after an unparseable answer
    repair: str = "Answer again in exactly the requested format."


@dataclass
class Result:
    """A finished row: its completion, the parsed value, and how many requests it took."""

    key: str
    completion: Completion
    value: Any = None
    attempts: int = 1

    def to_row(self) -> dict[str, Any]:
        return {"key": self.key, "completion": self.completion.to_dict(), "value": self.value,
                "attempts": self.attempts}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Result:
        return cls(row["key"], Completion.from_dict(row["completion"]), row.get("value"), row.get("attempts", 1))


@dataclass(frozen=True)
class Pricing:
    """Price in USD per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input_per_million
                + usage.completion_tokens * self.output_per_million) / 1e6


@dataclass
class RunStats:
    """What a run did and cost; ``to_dict()`` is the ``run`` part of ``summary.json``."""

    tasks: int = 0
    resumed: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    unparseable: int = 0
    errors: Counter = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0
    concurrency: int = 1
    pricing: Pricing | None = None
    backend: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cost = round(self.pricing.cost(self.usage), 6) if self.pricing else None
        return {
            "backend": self.backend,
            "tasks": self.tasks,
            "done": self.tasks - self.failed,
            "resumed_from_checkpoint": self.resumed,
            "from_cache": self.cached,
            "generated": self.generated,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "unparseable_answers": self.unparseable,
            "errors_by_reason": dict(self.errors.most_common()),
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens,
                      "total_tokens": self.usage.total_tokens},
            "cost_usd": cost,
            "pricing_per_million_tokens": (
                {"input": self.pricing.input_per_million, "output": self.pricing.output_per_million}
                if self.pricing else None),
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed_s, 3),
            "requests_per_s": round(self.requests / self.elapsed_s, 2) if self.elapsed_s else None,
        }


@dataclass
class RunOutcome:
    """Every task's result by key, the failures with their reason, and the stats."""

    results: dict[str, Result]
    failures: dict[str, str]
    stats: RunStats


class Runner:
    """Completes :class:`Task` lists through a backend; see the module docstring.

    Args:
        backend: any :class:`~hubtools.generate.backends.Backend`.
        checkpoint: JSON Lines file of finished rows (``None``: keep nothing on disk).
        header: what identifies the run; a resume with other settings is refused.
        resume: continue the run found in ``checkpoint``.
        cache: an SQLite file (or :class:`CompletionCache`) of answers; ``None`` for no cache.
        concurrency: requests in flight at most.
        max_retries: tries after the first for a retryable failure.
        base_delay, max_delay: the backoff schedule (seconds): ``base_delay * 2**attempt``,
            jittered, capped at ``max_delay``; a longer ``Retry-After`` fails the row.
        parse_retries: how often to ask again after an unparseable answer.
        pricing: prices for the cost estimate.
        progress: show a tqdm bar on stderr.
    """

    def __init__(self, backend: Backend, *, checkpoint: str | os.PathLike | None = None,
                 header: dict[str, Any] | None = None, resume: bool = False,
                 cache: str | os.PathLike | CompletionCache | None = None, concurrency: int = 8,
                 max_retries: int = 6, base_delay: float = 0.5, max_delay: float = 60.0,
                 parse_retries: int = 2, pricing: Pricing | None = None, progress: bool = False,
                 desc: str = "generating", seed: int | None = None):
        self.backend = backend
        self.checkpoint_path = Path(checkpoint) if checkpoint else None
        self.header = {"model": backend.model, **(header or {})}
        self.resume = resume
        self.cache = CompletionCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.parse_retries = parse_retries
        self.pricing = pricing
        self.progress = progress
        self.desc = desc
        self._random = random.Random(seed)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1``: the server's Retry-After, or jittered exponential."""
        if retry_after is not None:
            return retry_after + self._random.uniform(0, min(1.0, 0.1 * retry_after + 0.05))
        return self._random.uniform(0.5, 1.0) * min(self.max_delay, self.base_delay * 2 ** attempt)

    def run(self, tasks: list[Task]) -> RunOutcome:
        """Complete every task not already in the checkpoint; return all results (old and new).

        Raises:
            BackendError: a failure no row can get past (bad token, unknown model); finished
                rows are in the checkpoint, so fix it and resume.
            RunStateError: the checkpoint holds a different run, or one exists without ``resume``.
        """
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            dup = next(k for k, n in Counter(keys).items() if n > 1)
            raise ValueError(f"task keys must be unique; {dup!r} repeats")
        stats = RunStats(tasks=len(tasks), concurrency=self.concurrency, pricing=self.pricing,
                         backend=self.backend.describe())
        checkpoint = (Checkpoint(self.checkpoint_path, self.header, resume=self.resume)
                      if self.checkpoint_path else None)
        results: dict[str, Result] = {}
        if checkpoint is not None:
            wanted = set(keys)
            results = {k: Result.from_row(r) for k, r in checkpoint.rows.items() if k in wanted}
            stats.resumed = len(results)
        pending = [t for t in tasks if t.key not in results]
        failures: dict[str, str] = {}
        started = time.monotonic()
        try:
            _run_coroutine(self._run_all(pending, results, failures, checkpoint, stats))
        finally:
            stats.elapsed_s = time.monotonic() - started
            if checkpoint is not None:
                checkpoint.close()
        stats.failed = len(failures)
        logger.info("run: %d tasks, %d resumed, %d cached, %d generated, %d failed",
                    stats.tasks, stats.resumed, stats.cached, stats.generated, stats.failed)
        return RunOutcome(results, failures, stats)

    async def _run_all(self, pending: list[Task], results: dict[str, Result], failures: dict[str, str],
                       checkpoint: Checkpoint | None, stats: RunStats) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=stats.tasks, initial=stats.resumed, desc=self.desc, unit=" rows",
                   disable=not self.progress, leave=False)
        queue = iter(pending)
        fatal: list[BackendError] = []

        async def worker() -> None:
            for task in queue:
                if fatal:
                    return
                try:
                    result = await self._one(task, stats)
                except BackendError as exc:
                    if exc.reason in _FATAL:
                        fatal.append(exc)
                        return
                    failures[task.key] = f"{exc.reason}: {exc.message}"
                    bar.update(1)
                    if (len(failures) >= FAIL_FAST_ROWS and not stats.generated and not stats.cached
                            and len(set(failures.values())) == 1):
                        # nothing has worked and every row failed the same way: the endpoint is down
                        # or refuses these requests (rows too long for the context window say so
                        # each in its own words, and do not stop the run)
                        fatal.append(BackendError(
                            f"stopped: the first {len(failures)} rows all failed, none worked "
                            f"(last: {exc.reason}: {exc.message})", reason=exc.reason, status=exc.status,
                            hint=exc.hint))
                        return
                    continue
                except UnparseableOutputError as exc:
                    failures[task.key] = f"unparseable: {exc.message}"
                    bar.update(1)
                    continue
                results[task.key] = result
                if checkpoint is not None:
                    checkpoint.submit(result.to_row())  # committed in the background; drained below
                bar.update(1)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, max(1, len(pending))))))
        finally:
            try:
                if checkpoint is not None:
                    await checkpoint.drain()  # raises a failed commit's OSError
            finally:
                bar.close()
                aclose = getattr(self.backend, "aclose", None)
                if aclose is not None:
                    await aclose()
        if fatal:
            raise fatal[0]

    async def _request(self, messages: list[dict[str, Any]], params: dict[str, Any],
                       stats: RunStats) -> tuple[Completion, int]:
        """The completion and how many requests it took (0 from the cache)."""
        key = cache_key(self.backend.model, params, wire_messages(messages))
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            stats.cached += 1
            return Completion.from_dict({**hit, "cached": True}), 0
        attempt = 0
        while True:
            stats.requests += 1
            try:
                completion = await self.backend.acomplete(messages, **params)
                break
            except BackendError as exc:
                stats.errors[exc.reason] += 1
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                if exc.retry_after is not None and exc.retry_after > self.max_delay:
                    raise BackendError(f"{exc.message}; the server asks to wait {exc.retry_after:g} s",
                                       reason=exc.reason, status=exc.status, hint=exc.hint) from None
                delay = self.backoff(attempt, exc.retry_after)
                logger.debug("%s: retry %d in %.2f s", exc.reason, attempt + 1, delay)
                stats.retries += 1
                attempt += 1
                await asyncio.sleep(delay)
        stats.generated += 1
        stats.usage.prompt_tokens += completion.usage.prompt_tokens
        stats.usage.completion_tokens += completion.usage.completion_tokens
        if self.cache is not None:
            self.cache.put(key, completion.to_dict())
        return completion, attempt + 1

    async def _one(self, task: Task, stats: RunStats) -> Result:
        messages = list(task.messages)
        attempts = 0
        while True:
            completion, requests = await self._request(messages, task.params, stats)
            attempts += requests
            if task.parse is None:
                return Result(task.key, completion, None, attempts)
            try:
                return Result(task.key, completion, task.parse(completion.text), attempts)
            except UnparseableOutputError as exc:
                stats.unparseable += 1
                if len(messages) - len(task.messages) >= 2 * self.parse_retries:
                    raise
                messages = messages + [
                    {"role": "assistant", "content": completion.text},
                    {"role": "user", "content": f"Your answer could not be parsed: {exc.message}. {task.repair}"},
                ]


def _run_coroutine(coroutine: Any) -> Any:
    """``asyncio.run``, also from code that already runs an event loop (e.g. a web app handler)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")
