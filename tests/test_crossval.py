"""Gold cross-validation on real corpus data: ratio, per-category figures, similarity on shared prompts,
groundedness, and hallucination flags that the review queue puts first."""

from __future__ import annotations

import json
import re
from collections import Counter

import orjson
import pytest

from hubtools.checks.categories import classify
from hubtools.errors import HubtoolsError
from hubtools.generate import InferenceClientBackend
from hubtools.generate.ingest import ingest
from hubtools.generate.instructions import generate_instructions
from hubtools.judge import HeuristicJudge, JudgeItem, LLMJudge
from hubtools.judge.claims import claims
from hubtools.judge.crossval import HALLUCINATION_FLAGS, METRICS_DIR, cross_validate, crossval_files, read_flags
from hubtools.load import canonical_dataset, load
from hubtools.records import EXTRA, Kind, dump_extra, load_extra, message
from hubtools.review import build_queue
from hubtools.text import groundedness
from tests.conftest import CORPUS
from tests.fixtures.openai import OPENAI_TOKEN

ALPACA = CORPUS / "llama_factory" / "alpaca_en_demo.json"
PLANTED = " The first edition appeared on March 3, 1921 and sold 42,000 copies."


@pytest.fixture(scope="module")
def alpaca() -> list[dict]:
    return json.loads(ALPACA.read_text())


@pytest.fixture
def slices(alpaca, tmp_path):
    """gold = records 0-99, synthetic = records 500-699 with a date and a number planted in three replies
    that had no digit, link, bracket or citation."""
    gold, synthetic = alpaca[:100], [dict(r) for r in alpaca[500:700]]
    clean = [i for i, r in enumerate(synthetic) if not re.search(r"\d|http|\[|et al", r["output"])]
    planted = clean[:3]
    for i in planted:
        synthetic[i]["output"] += PLANTED
    (tmp_path / "gold.json").write_text(json.dumps(gold))
    (tmp_path / "synthetic.json").write_text(json.dumps(synthetic))
    return tmp_path / "synthetic.json", tmp_path / "gold.json", planted, [i for i in clean if i not in planted]


def test_ratio_and_per_category_figures(slices, tmp_path):
    synthetic, gold, _, _ = slices
    result = crossval_files(synthetic, gold, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["synthetic_to_human_ratio"] == result.ratio == 2.0
    assert (summary["synthetic_records"], summary["gold_records"]) == (200, 100)

    # categories of records without provenance: the category check's classifier on the user turn
    def expected(path):
        return Counter(classify([r["messages"][0]["content"] for r in load(path).dataset]))

    per_category = summary["per_category"]
    assert {k: v["synthetic"] for k, v in per_category.items() if v["synthetic"]} == expected(synthetic)
    assert {k: v["gold"] for k, v in per_category.items() if v["gold"]} == expected(gold)
    for figures in per_category.values():
        assert figures["ratio"] == (round(figures["synthetic"] / figures["gold"], 4) if figures["gold"] else None)

    # the judge's scores, recounted for one category
    records = [r for r in load(synthetic).dataset if result.categories[r["hubtools_index"]] == "qa"]
    scores = HeuristicJudge().score([JudgeItem(str(i), r["messages"][0]["content"], r["messages"][1]["content"])
                                     for i, r in enumerate(records)])
    assert per_category["qa"]["synthetic_score"] == pytest.approx(sum(s.overall for s in scores) / len(scores),
                                                                  abs=1e-3)
    assert 0 < per_category["qa"]["score_win_rate"] < 1
    assert summary["judge"]["judge"] == "heuristic" and summary["judge"]["offline"] is True


def test_numbers_and_dates_are_flagged_and_reviewed_first(slices, tmp_path):
    synthetic, gold, planted, clean = slices
    result = crossval_files(synthetic, gold, tmp_path / "out")
    for i in planted:
        assert result.flags[i]["dates"] == ["March 3, 1921"] and "42,000" in result.flags[i]["numbers"]
    risky = {i for i, flags in result.flags.items() if set(flags) & set(HALLUCINATION_FLAGS)}
    assert set(planted) <= risky and not risky & set(clean)
    # a reply with a number (standalone, not "2D" or "S3", outside code and list markers) its prompt does not
    # hold is flagged; one whose numbers all come from its prompt is not
    def numbers(text):
        text = re.sub(r"(?m)^\s*\d+[.)]\s", " ", re.sub(r"```.*?```|`[^`]+`", " ", text, flags=re.S))
        return set(re.findall(r"(?<![\w.,])\d+(?:[.,]\d+)*(?!\w)", text))

    records = {r["hubtools_index"]: [m["content"] for m in r["messages"]] for r in load(synthetic).dataset}
    unsupported = {i for i, (prompt, reply) in records.items() if numbers(reply) - numbers(prompt)}
    from_prompt = {i for i, (prompt, reply) in records.items() if numbers(reply) and numbers(reply) <= numbers(prompt)}
    assert unsupported <= risky and len(unsupported) > 10
    assert from_prompt and not from_prompt & {i for i, f in result.flags.items() if "numbers" in f}

    flags = read_flags(tmp_path / "out" / "flags.jsonl")
    assert flags == result.review_flags() and set(flags) == set(result.flags)
    queue = build_queue(load(synthetic).dataset, flags=flags)
    first = queue.items[:len(risky)]
    assert {item.index for item in first} == risky
    assert all(item.reasons[0].startswith("hallucination-prone: ") for item in first)
    assert not any("hallucination-prone" in r for item in queue.items[len(risky):] for r in item.reasons)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["hallucination_prone_records"] == len(risky)


def test_a_weak_category_is_named_and_its_other_records_come_next(slices, tmp_path):
    synthetic, gold, _, _ = slices
    result = crossval_files(synthetic, gold, tmp_path / "out", prone_share=0.3)
    prone = result.hallucination_prone_categories
    assert prone and all(result.per_category[c]["flagged_share"] >= 0.3 for c in prone)
    assert all(not f["hallucination_prone"] for c, f in result.per_category.items() if c not in prone)
    others = [i for i, c in result.categories.items() if c in prone
              and not set(result.flags.get(i, {})) & set(HALLUCINATION_FLAGS)]
    assert others and all(result.flags[i]["risky_category"] == result.categories[i] for i in others)
    queue = build_queue(load(synthetic).dataset, flags=result.review_flags())
    priorities = {item.index: item.priority for item in queue}
    assert {priorities[i] for i in others} == {1.0}


def test_shared_prompts_get_similarity_win_rate_and_disagreement_flags(alpaca, tmp_path):
    chinese = json.loads((CORPUS / "llama_factory" / "alpaca_zh_demo.json").read_text())
    gold = alpaca[:30]
    synthetic = []
    for i, record in enumerate(gold):
        if i < 10:
            reply = record["output"]  # the same reply
        elif i < 20:
            reply = record["output"].split(". ", 1)[-1] if ". " in record["output"] else record["output"]
        else:
            reply = chinese[i]["output"]  # a reply that shares nothing with the gold one
        synthetic.append({**record, "output": reply})
    (tmp_path / "gold.json").write_text(json.dumps(gold))
    (tmp_path / "synthetic.json").write_text(json.dumps(synthetic, ensure_ascii=False))
    result = crossval_files(tmp_path / "synthetic.json", tmp_path / "gold.json", tmp_path / "out")
    overall = result.overall
    assert overall["shared_prompts"] == 30
    disagree = {i for i, f in result.flags.items() if "gold_disagreement" in f}
    assert disagree == set(range(20, 30))
    assert all(result.flags[i]["gold_disagreement"]["gold_index"] == i for i in disagree)
    # the similarity figures are the shipped evaluate metrics on the shared pairs
    import evaluate

    token_f1 = evaluate.load(str(METRICS_DIR / "token_f1")).compute(
        predictions=[r["output"] for r in synthetic], references=[r["output"] for r in gold])["token_f1"]
    rouge_l = evaluate.load(str(METRICS_DIR / "rouge_l")).compute(
        predictions=[r["output"] for r in synthetic], references=[r["output"] for r in gold])["rouge_l"]
    assert overall["token_f1"] == pytest.approx(token_f1, abs=1e-3)
    assert overall["rouge_l"] == pytest.approx(rouge_l, abs=1e-3)
    assert 0 < overall["win_rate"] < 1 and overall["win_rate_lc"] is not None


def test_chinese_prompts_that_differ_in_a_character_are_shared(tmp_path):
    # text.words makes each CJK character a word: the TF-IDF match counts them, so a reworded
    # Chinese prompt (one character dropped) still finds its gold one, an unrelated one does not
    # (tokenised by runs between punctuation, as before, 1 of the 5 matched)
    chinese = json.loads((CORPUS / "llama_factory" / "alpaca_zh_demo.json").read_text())
    gold = [r for r in chinese if len(r["instruction"]) >= 20 and not r["input"]][:10]
    synthetic = [{**r, "instruction": r["instruction"][:5] + r["instruction"][6:]} for r in gold[:5]] + chinese[-5:]
    (tmp_path / "gold.json").write_text(json.dumps(gold, ensure_ascii=False))
    (tmp_path / "synthetic.json").write_text(json.dumps(synthetic, ensure_ascii=False))
    result = crossval_files(tmp_path / "synthetic.json", tmp_path / "gold.json", tmp_path / "out", match_threshold=0.8)
    assert result.overall["shared_prompts"] == 5


@pytest.fixture(scope="module")
def wiki_prompts():
    """Prompts written from the first chunks of the real wiki corpus file (with their passages)."""
    chunks = ingest(CORPUS / "llama_factory" / "wiki_demo.txt", size=3000, overlap=0).dataset.select(range(8))
    return generate_instructions(chunks, per_chunk=4, negative_ratio=0.25, edge_ratio=0.0, seed=1).dataset


def test_groundedness_and_answers_the_source_cannot_support(wiki_prompts):
    rows = []
    for record in wiki_prompts:
        extra = load_extra(record[EXTRA])
        first_sentence = extra["source_text"].split(". ")[0] + "."
        if extra["negative"]:
            reply = "It began in 1492, when 300 ships left the harbour at dawn."
        elif len(rows) % 2:
            reply = first_sentence
        else:
            reply = "Bananas are yellow fruit that monkeys enjoy eating during the summer holidays."
        rows.append({**record, "messages": [*record["messages"], message("assistant", reply)]})
    synthetic = canonical_dataset(rows, Kind.SFT)
    gold = load(ALPACA).dataset.select(range(50))
    result = cross_validate(synthetic, gold)
    for record in synthetic:
        extra, reply = load_extra(record[EXTRA]), record["messages"][-1]["content"]
        flags = result.flags.get(record["hubtools_index"], {})
        if extra["negative"]:
            assert "hallucination" in flags and flags["dates"] == ["1492"] and flags["numbers"] == ["300"]
        elif reply.startswith("Bananas"):
            assert flags["low_groundedness"]["groundedness"] < 0.5
        else:
            assert "low_groundedness" not in flags and "hallucination" not in flags
    negatives = sum(load_extra(r[EXTRA])["negative"] for r in synthetic)
    assert negatives and result.to_dict()["flags"]["hallucination"] == negatives
    assert result.per_category["negative"]["hallucination_prone"]
    assert result.overall["groundedness"] is not None


def test_a_model_judge_scores_both_sets_through_the_stand_in(openai_server, alpaca, tmp_path):
    (tmp_path / "gold.json").write_text(json.dumps(alpaca[:12]))
    (tmp_path / "synthetic.json").write_text(json.dumps(alpaca[:4] + alpaca[200:216]))
    judge = LLMJudge(InferenceClientBackend("stand-in-judge", endpoint=openai_server.base_url, token=OPENAI_TOKEN),
                     out_dir=tmp_path / "out")
    result = crossval_files(tmp_path / "synthetic.json", tmp_path / "gold.json", tmp_path / "out", judge=judge)
    data = result.to_dict()
    assert data["judge"]["judge"] == "llm:stand-in-judge" and data["skipped"]["synthetic_unscored"] == 0
    rubric = [r for r in openai_server.completions() if "<response>" in r.messages[-1]["content"]]
    pairwise = [r for r in openai_server.completions() if "<response_a>" in r.messages[-1]["content"]]
    assert len(rubric) == 20 + 12 and len(pairwise) == 2 * 4  # 4 shared prompts, both orders
    assert data["overall"]["shared_prompts"] == 4 and data["overall"]["win_rate"] == 0.5  # identical replies tie
    assert [run["tasks"] for run in data["runs"]] == [32, 8]
    assert (tmp_path / "out" / "checkpoint.rubric.jsonl").exists()


class TestClaims:
    @pytest.mark.parametrize(("reply", "support", "expected"), [
        ("It sold 42,000 copies in 1921.", "", {"numbers": ["42,000"], "dates": ["1921"], "citations": []}),
        ("1. Mix the flour.\n2. Add 3 eggs.", "", {"numbers": ["3"], "dates": [], "citations": []}),
        ("The sum of 4 and 6 is 10.", "What is 4 + 6?", {"numbers": ["10"], "dates": [], "citations": []}),
        ("Use `range(10)` here:\n```python\nx = [1, 2]\n```", "", {"numbers": [], "dates": [], "citations": []}),
        ("Shown by Smith [3] and (Lee et al., 2019); see https://example.org/x.", "",
         {"numbers": [], "dates": [], "citations": ["[3]", "(Lee et al., 2019)", "https://example.org/x."]}),
        ("On 14 July 1789 the Bastille fell.", "The Bastille fell on 14 July 1789.",
         {"numbers": [], "dates": [], "citations": []}),
        ("Aim for 1500 calories and 2000 steps; 1200 mg of calcium.", "",
         {"numbers": ["1500", "2000", "1200"], "dates": [], "citations": []}),
        ("Built in 1889, popular in the 1990s, closed 1914-1918, since the year 2001; Caesar died in 44 BC.", "",
         {"numbers": [], "dates": ["1889", "1990s", "1914-1918", "2001", "44 BC"], "citations": []}),
    ])
    def test_claims_the_support_does_not_hold(self, reply, support, expected):
        assert claims(reply, support) == expected

    def test_groundedness_is_the_share_of_content_words_in_the_source(self):
        assert groundedness("Paris is the capital of France.", "France has Paris as capital.") == 1.0
        assert groundedness("Bananas are yellow.", "France has Paris as capital.") == 0.0
        assert groundedness("It is.", "anything") is None


def test_every_flag_name_is_hallucination_prone_for_the_review_queue():
    records = [{"hubtools_index": i, "messages": [message("user", "q"), message("assistant", f"a{i}")],
                "hubtools_extra": None} for i in range(len(HALLUCINATION_FLAGS) + 1)]
    flags = {i: [name] for i, name in enumerate(HALLUCINATION_FLAGS)}
    flags[len(HALLUCINATION_FLAGS)] = ["risky_category"]
    queue = build_queue(canonical_dataset(records, Kind.SFT), flags=flags)
    assert {item.index: item.priority for item in queue} == {**dict.fromkeys(range(len(HALLUCINATION_FLAGS)), 3.0),
                                                             len(HALLUCINATION_FLAGS): 1.0}


def test_bad_inputs_say_what_to_do(tmp_path):
    text = canonical_dataset([{"hubtools_index": 0, "text": "hello", "hubtools_extra": None}], Kind.TEXT)
    sft = load(ALPACA).dataset.select(range(3))
    with pytest.raises(HubtoolsError, match="text data cannot be cross-validated"):
        cross_validate(text, sft, synthetic_kind=Kind.TEXT)
    with pytest.raises(HubtoolsError, match="use one of provenance, classify"):
        cross_validate(sft, sft, categories="mine")
    (tmp_path / "flags.jsonl").write_bytes(orjson.dumps({"nope": 1}) + b"\n")
    with pytest.raises(HubtoolsError, match="line 1 is not a flags row"):
        read_flags(tmp_path / "flags.jsonl")
    prompts_only = canonical_dataset([{"hubtools_index": 0, "messages": [message("user", "q")],
                                       "hubtools_extra": dump_extra({"synthetic": True})}], Kind.SFT)
    with pytest.raises(HubtoolsError, match="synthetic data has no record with a reply"):
        cross_validate(prompts_only, sft)
