"""Judging: parsing, the LLM judge against the stand-in, the heuristic on planted defects,
length control, and ranking into pairs."""

from __future__ import annotations

import numpy as np
import pytest

from hubtools.errors import HubtoolsError, UnparseableOutputError
from hubtools.generate import InferenceClientBackend
from hubtools.judge import (
    HeuristicJudge,
    JudgeItem,
    LLMJudge,
    PairItem,
    judge_dataset,
    length_controlled,
    length_controlled_win_rate,
    parse_rubric,
    parse_verdict,
    rank,
)
from hubtools.load import canonical_dataset
from hubtools.records import Kind, dump_extra, load_extra, message
from tests.fixtures.openai import OPENAI_TOKEN

FULL = {"helpfulness": 8, "correctness": 7, "safety": 10, "instruction_following": 9}


class TestParseRubric:
    @pytest.mark.parametrize("text", [
        '{"helpfulness": {"score": 8, "rationale": "ok"}, "correctness": {"score": 7}, '
        '"safety": {"score": 10}, "instruction_following": {"score": 9}}',
        'Here you go:\n```json\n{"scores": {"Helpfulness": 8, "Groundedness": 7, "Safety": "10/10", '
        '"Instruction following": 9}}\n```\nHope that helps.',
        "Helpfulness: 8/10 - clear\nCorrectness: 7 - one slip\nSafety: 10\nInstruction following: 9/10",
        '{"helpfulness": 8, "correctness": 7} and later {"safety": 10, "instruction_following": 9}',
    ])
    def test_accepts_the_shapes_judges_really_write(self, text):
        assert {c: v["score"] for c, v in parse_rubric(text).items()} == FULL

    def test_keeps_rationales(self):
        parsed = parse_rubric("Helpfulness: 8/10 - clear\nCorrectness: 7 - one slip\nSafety: 10\n"
                              "Instruction following: 9/10")
        assert parsed["correctness"]["rationale"] == "one slip"

    @pytest.mark.parametrize(("text", "message"), [
        ("It is quite good, an eight.", "no score for helpfulness, correctness, safety, instruction_following"),
        ('{"helpfulness": 8, "correctness": 7, "safety": 10}', "no score for instruction_following"),
        ('{"helpfulness": 80, "correctness": 7, "safety": 10, "instruction_following": 9}', "from 1 to 10"),
    ])
    def test_refuses_what_it_cannot_read(self, text, message):
        with pytest.raises(UnparseableOutputError, match=message):
            parse_rubric(text)


def test_parse_verdict():
    assert parse_verdict("A is wrong. [[B]]") == "B"
    assert parse_verdict("First I thought [[A]] but on reflection [[C]]") == "C"
    assert parse_verdict("My verdict: A") == "A"
    with pytest.raises(UnparseableOutputError):
        parse_verdict("Both have merits.")


SOURCE = "The Loire is the longest river in France. It flows 1006 kilometres to the Atlantic at Saint-Nazaire."


class TestLLMJudge:
    def judge(self, server, **kw):
        return LLMJudge(InferenceClientBackend("stand-in-judge", endpoint=server.base_url, token=OPENAI_TOKEN), **kw)

    def test_rubric_scores_come_from_the_judge_and_bad_answers_are_asked_again(self, openai_server, tmp_path):
        items = [JudgeItem("grounded", "How long is the Loire?", "The Loire flows 1006 kilometres.", SOURCE),
                 JudgeItem("garbled", "How long is the Loire?", "It is long [[garble]]", SOURCE)]
        results = self.judge(openai_server, out_dir=tmp_path).score(items)
        assert results[0].scores == {"helpfulness": 2, "correctness": 10, "safety": 10, "instruction_following": 1}
        assert results[0].judge == "llm:stand-in-judge" and "stand-in" in results[0].rationales["safety"]
        # "it is long garble": 2 of 4 words in the source, 1 + 9 * 0.5 = 5.5, rounded to 6
        assert results[1] is not None and results[1].scores["correctness"] == 6
        assert (tmp_path / "checkpoint.rubric.jsonl").exists()

    def test_both_orders_cancel_position_bias(self, make_openai_server):
        pairs = [PairItem("p0", "Describe the Loire.", "The Loire is a river.",
                          "The Loire is the longest river in France, flowing to the Atlantic.")]
        fair = self.judge(make_openai_server()).compare(pairs)[0]
        assert (fair.winner, fair.verdicts, fair.consistent) == ("b", ("B", "A"), True)
        biased_server = make_openai_server(position_bias="first")
        biased = self.judge(biased_server).compare(pairs)[0]
        assert (biased.winner, biased.verdicts, biased.consistent) == ("tie", ("A", "A"), False)
        shown_first = [r.messages[1]["content"].split("<response_a>\n")[1].split("\n")[0]
                       for r in biased_server.completions()]
        # each reply shown first once (the two orders go out concurrently: either may arrive first)
        assert sorted(shown_first) == sorted([pairs[0].a, pairs[0].b])


class TestHeuristicJudge:
    QUESTIONS = [
        ("How long is the Loire?", SOURCE, "The Loire flows 1006 kilometres to the Atlantic at Saint-Nazaire."),
        ("Where does the Loire end?", SOURCE, "The Loire reaches the Atlantic at Saint-Nazaire, in France."),
        ("What is photosynthesis?", "Photosynthesis is how plants turn light, water and carbon dioxide into "
         "sugar and oxygen.", "Photosynthesis is how plants turn light, water and carbon dioxide into sugar."),
    ]
    DEFECTS = {
        "unsupported numbers": lambda good: good.replace(".", "") + " in 1834, costing 250 million.",
        "repetition": lambda good: " ".join([good] * 6),
        "refusal": lambda good: "I'm sorry, I cannot help with that.",
        "offensive": lambda good: good + " Only an idiot would ask this, you stupid moron.",
        "empty": lambda good: "",
    }

    @pytest.mark.parametrize("defect", DEFECTS)
    def test_planted_defects_score_below_the_good_answer(self, defect):
        judge = HeuristicJudge()
        items = []
        for q, source, good in self.QUESTIONS:
            items += [JudgeItem("good", q, good, source), JudgeItem("bad", q, self.DEFECTS[defect](good), source)]
        results = judge.score(items)
        overall = [r.overall for r in results]
        assert all(overall[i] > overall[i + 1] for i in range(0, len(overall), 2)), overall

    def test_constraints_and_unanswerable_questions(self):
        judge = HeuristicJudge()
        one_word = judge.score([JudgeItem("a", "Answer in one word: what colour is the sky?", "Blue."),
                                JudgeItem("b", "Answer in one word: what colour is the sky?",
                                          "The sky is usually blue during a clear day because of scattering.")])
        assert one_word[0].scores["instruction_following"] > one_word[1].scores["instruction_following"]
        negative = judge.score([
            JudgeItem("says so", "What does the passage say about the Loire's fish?",
                      "The passage does not mention the Loire's fish.", SOURCE, negative=True),
            JudgeItem("invents", "What does the passage say about the Loire's fish?",
                      "The Loire holds 52 species of fish, mostly salmon.", SOURCE, negative=True)])
        assert negative[0].scores["correctness"] == 9 and negative[1].scores["correctness"] == 2

    def test_it_says_it_is_a_heuristic(self):
        assert HeuristicJudge().describe()["judge"] == "heuristic"
        assert "does not read for meaning" in HeuristicJudge().describe()["note"]


def test_length_control_removes_a_planted_length_effect():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 4000, 400)
    quality = rng.normal(0, 1, 400)
    scores = 5 + quality + 0.8 * np.log1p(lengths)
    controlled, beta = length_controlled(scores.tolist(), lengths.tolist())
    assert beta == pytest.approx(0.8, abs=0.1)
    assert abs(np.corrcoef(controlled, np.log1p(lengths))[0, 1]) < 0.01
    assert np.corrcoef(controlled, quality)[0, 1] > 0.95


def test_length_controlled_win_rate_removes_a_length_preference():
    rng = np.random.default_rng(1)
    log_ratio = rng.normal(0.7, 0.5, 3000)  # a is usually longer
    wins = rng.random(3000) < 1 / (1 + np.exp(-2.0 * log_ratio))  # and wins only because of length
    len_b = np.full(3000, 200)
    len_a = (np.exp(log_ratio) * 201 - 1).round().astype(int)
    result = length_controlled_win_rate(["a" if w else "b" for w in wins], len_a.tolist(), len_b.tolist())
    assert result["win_rate"] > 0.75
    assert result["win_rate_lc"] == pytest.approx(0.5, abs=0.05)
    assert result["length_coef"] == pytest.approx(2.0, abs=0.3)


def judged(rows: list[tuple[str, str, float]]):
    """An SFT dataset of (prompt_id, reply, score) with judge scores already in place."""
    records = []
    for i, (pid, reply, score) in enumerate(rows):
        extra = {"prompt_id": pid, "candidate": i, "model": f"m{i % 2}", "task_type": "qa", "synthetic": True,
                 "judge": {"judge": "heuristic", "overall": score, "overall_lc": score}}
        records.append({"hubtools_index": i, "messages": [message("user", f"question {pid}"),
                                                          message("assistant", reply)],
                        "hubtools_extra": dump_extra(extra)})
    return canonical_dataset(records, Kind.SFT)


class TestRank:
    DATA = [("p1", "a", 9.0), ("p1", "b", 5.0), ("p1", "c", 7.0),   # clear order
            ("p2", "d", 6.0), ("p2", "e", 6.0),                      # a tie
            ("p3", "f", 6.5), ("p3", "g", 6.0),                      # below a margin of 1
            ("p4", "h", 8.0)]                                        # one candidate

    def test_best_vs_worst(self):
        result = rank(judged(self.DATA), strategy="best_vs_worst", min_margin=1.0)
        s = result.summary
        assert (s["pairs"], s["ties_dropped"], s["below_margin_dropped"], s["single_candidate"]) == (1, 1, 1, 1)
        pair = result.dataset[0]
        assert (pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == ("a", "b")
        extra = load_extra(pair["hubtools_extra"])
        assert extra["margin"] == 4.0 == pair["score_chosen"] - pair["score_rejected"]
        assert extra["strategy"] == "best_vs_worst" and extra["judge"] == "heuristic" and extra["synthetic"]
        assert pair["prompt"][0]["content"] == "question p1" and extra["task_type"] == "qa"

    def test_all_pairs_above_a_margin(self):
        result = rank(judged(self.DATA), strategy="all_pairs", min_margin=2.0)
        pairs = [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in result.dataset]
        assert sorted(pairs) == [("a", "b"), ("a", "c"), ("c", "b")]
        assert result.summary["ties_dropped"] == 1 and result.summary["below_margin_dropped"] == 1

    def test_threshold(self):
        result = rank(judged(self.DATA), strategy="threshold", threshold=7.0, min_margin=0.1)
        pairs = sorted((p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in result.dataset)
        assert pairs == [("a", "b"), ("c", "b")]
        assert result.summary["no_split_at_threshold"] == 2  # p2 and p3 have nothing at 7 or above

    def test_unknown_strategy_names_the_choices(self):
        with pytest.raises(HubtoolsError, match="use one of best_vs_worst, all_pairs, threshold"):
            rank(judged(self.DATA), strategy="best")


def test_judge_dataset_end_to_end_with_the_stand_in(openai_server, tmp_path):
    rows = [("p1", "short", 0), ("p1", "a much longer reply with many more words than the other one", 0),
            ("p2", "[[bad]] reply", 0), ("p2", "fine reply here", 0)]
    dataset = judged(rows)
    judge = LLMJudge(InferenceClientBackend("stand-in-judge", endpoint=openai_server.base_url, token=OPENAI_TOKEN),
                     out_dir=tmp_path)
    result = judge_dataset(dataset, judge, pairwise=True)
    extras = [load_extra(r["hubtools_extra"])["judge"] for r in result.dataset]
    assert [e["scores"]["safety"] for e in extras] == [10, 10, 1, 10]
    assert [e["win_rate"] for e in extras] == [0.0, 1.0, 0.0, 1.0]
    assert result.summary["pairwise"]["position_consistency_rate"] == 1.0
    assert result.summary["scored"] == 4 and result.summary["judge"]["judge"] == "llm:stand-in-judge"
    assert all("overall_lc" in e for e in extras)
    pairs = rank(result.dataset, strategy="best_vs_worst", min_margin=0.5)
    chosen = [p["chosen"][0]["content"] for p in pairs.dataset]
    assert chosen == ["a much longer reply with many more words than the other one", "fine reply here"]
