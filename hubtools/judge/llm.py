"""The model as judge (:class:`LLMJudge`), through the resumable runner, and :func:`make_judge`.

An answer that cannot be parsed is asked again with the reason. Pairwise comparison asks both
orders (A/B, then B/A): a winner counts only when both orders agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..generate.runner import Runner, RunStats, Task
from .heuristic import HeuristicJudge
from .prompts import pairwise_messages, parse_rubric, parse_verdict, rubric_messages
from .results import JudgeItem, PairItem, PairResult, RubricResult, combine

__all__ = ["LLMJudge", "make_judge"]


class LLMJudge:
    """A model as judge, through the resumable runner.

    Args:
        backend: any backend (an endpoint, HF Inference Providers, a local model).
        out_dir: where the judge's checkpoints go (``checkpoint.rubric.jsonl``,
            ``checkpoint.pairwise.jsonl``); ``None`` keeps nothing on disk.
        runner_options: passed to :class:`~hubtools.generate.runner.Runner` (``resume``,
            ``cache``, ``concurrency``, ``pricing``, ``progress``...).
    """

    def __init__(self, backend, *, out_dir: str | Path | None = None, temperature: float = 0.0,
                 max_tokens: int = 768, **runner_options: Any):
        self.backend = backend
        self.name = f"llm:{backend.model}"
        self.out_dir = Path(out_dir) if out_dir else None
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.runner_options = runner_options
        self.stats: list[RunStats] = []

    def describe(self) -> dict[str, Any]:
        return {"judge": self.name, "offline": False, **self.backend.describe(), "sampling": self.params}

    def _run(self, stage: str, tasks: list[Task]):
        checkpoint = self.out_dir / f"checkpoint.{stage}.jsonl" if self.out_dir else None
        runner = Runner(self.backend, checkpoint=checkpoint, header={"stage": f"judge-{stage}", **self.params},
                        desc=f"judging ({stage})", **self.runner_options)
        outcome = runner.run(tasks)
        self.stats.append(outcome.stats)
        return outcome

    def score(self, items: Sequence[JudgeItem]) -> list[RubricResult | None]:
        """Rubric results in item order; ``None`` for an item the judge never answered usably."""
        tasks = [Task(f"rubric:{it.key}", rubric_messages(it), self.params, parse=parse_rubric,
                      repair='Reply with only the JSON object: {"helpfulness": {"score": <1-10>, "rationale": '
                             '"..."}, "correctness": {...}, "safety": {...}, "instruction_following": {...}}')
                 for it in items]
        outcome = self._run("rubric", tasks)
        out: list[RubricResult | None] = []
        for it in items:
            result = outcome.results.get(f"rubric:{it.key}")
            if result is None:
                out.append(None)
                continue
            out.append(RubricResult(it.key, {c: v["score"] for c, v in result.value.items()},
                                    {c: v["rationale"] for c, v in result.value.items()}, self.name))
        return out

    def compare(self, pairs: Sequence[PairItem]) -> list[PairResult | None]:
        """Both-order verdicts in pair order; ``None`` where either order had no usable answer."""
        tasks = []
        for p in pairs:
            tasks.append(Task(f"pair:{p.key}:ab", pairwise_messages(p.question, p.a, p.b, p.source), self.params,
                              parse=parse_verdict, repair='End with "[[A]]", "[[B]]" or "[[C]]".'))
            tasks.append(Task(f"pair:{p.key}:ba", pairwise_messages(p.question, p.b, p.a, p.source), self.params,
                              parse=parse_verdict, repair='End with "[[A]]", "[[B]]" or "[[C]]".'))
        outcome = self._run("pairwise", tasks)
        out: list[PairResult | None] = []
        for p in pairs:
            ab, ba = outcome.results.get(f"pair:{p.key}:ab"), outcome.results.get(f"pair:{p.key}:ba")
            out.append(combine(p.key, ab.value, ba.value, self.name) if ab and ba else None)
        return out


def make_judge(backend=None, *, out_dir: str | Path | None = None, **runner_options: Any) -> HeuristicJudge | LLMJudge:
    """The judge for a backend: an :class:`LLMJudge` on it, or the offline :class:`HeuristicJudge` without one.

    ``out_dir`` and ``runner_options`` (``resume``, ``concurrency``, ``progress``...) go to the
    LLM judge's runner; the heuristic needs none.

    >>> make_judge().describe()["offline"]
    True
    """
    if backend is None:
        return HeuristicJudge()
    return LLMJudge(backend, out_dir=out_dir, **runner_options)
