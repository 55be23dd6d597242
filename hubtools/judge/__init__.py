"""Judging: the LLM judge, the offline heuristic judge, ranking into pairs and the gold cross-check.

Two judges share one interface (``score(items)``, ``compare(pairs)``, ``describe()``):

* :class:`LLMJudge` (:mod:`.llm`) asks a model through any backend, via the resumable runner,
  with the prompts and answer parsing of :mod:`.prompts`;
* :class:`HeuristicJudge` (:mod:`.heuristic`) scores offline from text features and says so in
  every result.

Pairwise comparison asks both orders (A/B, then B/A): a winner counts only when both orders
agree, otherwise it is a tie and counts as position-inconsistent. Beside each raw score a
length-controlled one removes the part explained by response length (:mod:`.length`).
:mod:`.dataset` judges a dataset, :mod:`.rank` turns judged replies into preference pairs and
:mod:`.crossval` measures synthetic data against human-written gold.

Example:
    >>> judge = HeuristicJudge()
    >>> judged = judge_dataset(responses, judge)  # doctest: +SKIP
    >>> pairs = rank(judged.dataset, strategy="best_vs_worst", min_margin=1.0)  # doctest: +SKIP
"""

from .dataset import JudgeResult, item_from_record, judge_dataset, judge_file
from .heuristic import HEURISTIC_NAME, HeuristicJudge, heuristic_scores
from .length import length_controlled, length_controlled_win_rate
from .llm import LLMJudge, make_judge
from .prompts import CRITERIA, pairwise_messages, parse_rubric, parse_verdict, rubric_messages
from .rank import STRATEGIES, RankResult, prompt_key, rank, rank_file
from .results import JudgeItem, PairItem, PairResult, RubricResult, to_dict

__all__ = [
    "CRITERIA",
    "HEURISTIC_NAME",
    "STRATEGIES",
    "HeuristicJudge",
    "JudgeItem",
    "JudgeResult",
    "LLMJudge",
    "PairItem",
    "PairResult",
    "RankResult",
    "RubricResult",
    "heuristic_scores",
    "item_from_record",
    "judge_dataset",
    "judge_file",
    "length_controlled",
    "length_controlled_win_rate",
    "make_judge",
    "pairwise_messages",
    "parse_rubric",
    "parse_verdict",
    "prompt_key",
    "rank",
    "rank_file",
    "rubric_messages",
    "to_dict",
]
