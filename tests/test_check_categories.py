"""The ``categories`` check: the rule classifier on hand-labelled prompts and on real labelled
corpora (MT-Bench categories, Self-Instruct classification tasks), coverage statistics,
and every data kind."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from hubtools.checks import REGISTRY, run_checks
from hubtools.checks.base import CheckData
from hubtools.checks.categories import CATEGORIES, assign, classify, under_represented_bound
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired

#: Hand-labelled prompts, 7-8 per category, in the styles found in Alpaca, Dolly and ShareGPT data.
LABELLED: list[tuple[str, str]] = [
    ("qa", "What is the capital of Australia?"),
    ("qa", "Why is the sky blue?"),
    ("qa", "Explain how vaccines train the immune system."),
    ("qa", "Who wrote Pride and Prejudice and when was it published?"),
    ("qa", "How does a bill become law in the United States?"),
    ("qa", "Describe the water cycle."),
    ("qa", "What are the main differences between a virus and a bacterium?"),
    ("qa", "Tell me about the history of the Eiffel Tower."),
    ("summarization", "Summarize the following article in three sentences.\n\nThe city council voted on Tuesday "
                      "to approve a new budget that increases funding for public transport and parks."),
    ("summarization", "Can you give me a brief summary of this email? Hi team, the quarterly review has been "
                      "moved to Friday and we need everyone's slides by Thursday noon."),
    ("summarization", "TL;DR this paragraph: Researchers at the university found that mice given a high-fat "
                      "diet slept less and showed signs of stress."),
    ("summarization", "Write a one-paragraph summary of the plot of Hamlet."),
    ("summarization", "Condense the text below into a single sentence: Our store will close early on Monday "
                      "because of the holiday, and reopen on Tuesday at the usual time."),
    ("summarization", "Please sum up the main points of the meeting transcript below.\nAnna: we ship Monday.\n"
                      "Ben: QA needs two more days."),
    ("summarization", "Provide a short synopsis of the novel 1984 by George Orwell."),
    ("code", "Write a Python function that checks whether a string is a palindrome."),
    ("code", "What does this code do?\n```js\nconst x = arr.map(a => a * 2);\n```"),
    ("code", "Fix the bug in my SQL query: SELECT name FROM users WHERE age > 30 ORDER name;"),
    ("code", "How do I reverse a linked list in Java?"),
    ("code", "Implement binary search in C++ and explain its time complexity."),
    ("code", "Convert this Python 2 code to Python 3: print 'hello'"),
    ("code", "Write a bash script that backs up my home directory every night."),
    ("reasoning_math", "If a train travels 120 km in 1.5 hours, what is its average speed?"),
    ("reasoning_math", "Solve for x: 3x + 7 = 22."),
    ("reasoning_math", "What is 15% of 240?"),
    ("reasoning_math", "A farmer has 17 sheep and all but 9 run away. How many are left?"),
    ("reasoning_math", "Prove that the sum of two even numbers is even."),
    ("reasoning_math", "Calculate the area of a circle with a radius of 4 cm."),
    ("reasoning_math", "Alice is taller than Bob, and Bob is taller than Carol. Who is the shortest? "
                       "Think step by step."),
    ("creative_writing", "Write a short story about a robot who learns to paint."),
    ("creative_writing", "Compose a haiku about autumn leaves."),
    ("creative_writing", "Draft a cover letter for a junior data analyst position."),
    ("creative_writing", "Write a poem in the style of Emily Dickinson about the sea."),
    ("creative_writing", "Write a persuasive blog post about why cities should invest in bike lanes."),
    ("creative_writing", "Create a catchy slogan for an eco-friendly water bottle brand."),
    ("creative_writing", "Write a wedding toast for my best friend Sarah."),
    ("classification", "Classify the sentiment of this review as positive, negative or neutral: The food was "
                       "cold and the waiter was rude."),
    ("classification", "Is the following email spam or not spam? Congratulations! You have won a $1000 gift card."),
    ("classification", "Categorize these animals into mammals, birds and reptiles: eagle, lizard, dolphin, "
                       "parrot, snake."),
    ("classification", "Determine whether the following statement is a fact or an opinion: Chocolate ice cream "
                       "is the best flavor."),
    ("classification", "Which category does this news headline belong to: sports, politics, technology or "
                       "entertainment? 'Apple unveils new chip'"),
    ("classification", "Label each sentence as formal or informal.\n1. Hey, what's up?\n2. Dear Sir or Madam,"),
    ("classification", "Tell me if this tweet is sarcastic: 'Oh great, another Monday.'"),
    ("extraction", "Extract all the dates mentioned in the following text: The contract was signed on "
                   "March 3, 2021 and renewed on May 1, 2023."),
    ("extraction", "List all the people named in this paragraph: Maria met John and Dr. Lee at the station."),
    ("extraction", "From the passage below, pull out every company name and its headquarters city. Acme is "
                   "based in Denver; Globex in Springfield."),
    ("extraction", "Identify the named entities in this sentence: Barack Obama visited Berlin in 2013."),
    ("extraction", "Find all email addresses in the text below and return them as a JSON list. Contact "
                   "sales@example.com or support@example.org."),
    ("extraction", "Given the product description, extract the price, the color and the weight. The "
                   "SuperKettle costs $35, comes in red and weighs 1.2 kg."),
    ("extraction", "Pick out the ingredients from this recipe: mix flour, sugar and two eggs, then bake."),
    ("rewriting", "Rewrite this sentence in the passive voice: The chef cooked a delicious meal."),
    ("rewriting", "Paraphrase the following paragraph in simpler language: The committee has resolved to "
                  "defer the decision pending further deliberation."),
    ("rewriting", "Correct the grammar in this sentence: She don't like apples."),
    ("rewriting", "Make this email more formal: hey boss, can't come in today, feeling sick."),
    ("rewriting", "Edit the following text to make it more concise: In my personal opinion, I think that "
                  "we should probably start the meeting on time."),
    ("rewriting", "Proofread my paragraph and fix any spelling mistakes: Their going too the park tomorow."),
    ("rewriting", "Rephrase 'the meeting is postponed' in three different ways."),
    ("brainstorming", "Give me 10 ideas for a birthday party for a 7-year-old."),
    ("brainstorming", "Brainstorm some names for a coffee shop that also sells books."),
    ("brainstorming", "What are some ways to reduce my household's energy consumption?"),
    ("brainstorming", "Suggest a few weekend activities for a rainy day."),
    ("brainstorming", "List five creative uses for an old ladder."),
    ("brainstorming", "Come up with possible themes for our company's annual hackathon."),
    ("brainstorming", "I need gift ideas for my dad who loves fishing."),
    ("translation", "Translate 'Where is the train station?' into Spanish."),
    ("translation", "How do you say 'thank you very much' in Japanese?"),
    ("translation", "Translate the following paragraph from German to English: Ich habe heute keine Zeit."),
    ("translation", "Can you translate this menu into French for me? Grilled salmon, green salad, apple pie."),
    ("translation", "Please render this sentence in Italian: The weather is beautiful today."),
    ("translation", "What is the English translation of 'carpe diem'?"),
    ("translation", "Translate this Chinese sentence to English: 我爱学习。"),
    ("open_conversation", "Hi! How are you doing today?"),
    ("open_conversation", "What do you think about pineapple on pizza?"),
    ("open_conversation", "I'm feeling a bit lonely tonight, can we just talk?"),
    ("open_conversation", "Pretend you are a pirate captain and greet me."),
    ("open_conversation", "Do you ever get bored?"),
    ("open_conversation", "Let's chat about movies. What's your favorite?"),
    ("open_conversation", "Thanks, that was really helpful!"),
]

#: MT-Bench category -> ours (stem and humanities are knowledge questions; roleplay is conversation)
MT_BENCH_MAP = {"writing": "creative_writing", "roleplay": "open_conversation", "reasoning": "reasoning_math",
                "math": "reasoning_math", "coding": "code", "extraction": "extraction", "stem": "qa",
                "humanities": "qa"}


def _accuracy(pairs: list[tuple[str, str]]) -> tuple[float, list[tuple[str, str, str]]]:
    predicted = classify([p for _, p in pairs])
    misses = [(gold, got, p[:60]) for (gold, p), got in zip(pairs, predicted) if gold != got]
    return 1 - len(misses) / len(pairs), misses


def test_hand_labelled_set_covers_every_category():
    counts = Counter(gold for gold, _ in LABELLED)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 6 and len(LABELLED) >= 60


def test_classifier_accuracy_on_hand_labelled_prompts():
    accuracy, misses = _accuracy(LABELLED)
    assert accuracy >= 0.9, misses


def test_agreement_with_mt_bench_categories(corpus):
    """MT-Bench labels 80 questions with 8 categories; mapped onto ours (MT_BENCH_MAP) the
    rules agree on about two thirds (its 'reasoning' puzzles are often plain questions, its
    'extraction' tasks often rate or classify)."""
    rows = [json.loads(line) for line in (corpus / "fastchat/mt_bench_question.jsonl").read_text().splitlines()]
    accuracy, misses = _accuracy([(MT_BENCH_MAP[r["category"]], r["turns"][0]) for r in rows])
    assert len(rows) == 80
    assert accuracy >= 0.6, misses
    by_category = Counter(gold for gold, _, _ in misses)
    assert by_category["code"] <= 2 and by_category["creative_writing"] <= 4


def test_self_instruct_classification_tasks(corpus):
    """Self-Instruct marks its seed tasks is_classification: most are found, few others claimed."""
    rows = [json.loads(line) for line in (corpus / "self_instruct/seed_tasks.jsonl").read_text().splitlines()]
    predicted = classify([r["instruction"] for r in rows])
    marked = [p for r, p in zip(rows, predicted) if r["is_classification"]]
    others = [p for r, p in zip(rows, predicted) if not r["is_classification"]]
    recall = sum(p == "classification" for p in marked) / len(marked)
    false_share = sum(p == "classification" for p in others) / len(others)
    assert recall >= 0.7 and false_share <= 0.05
    # and the named task families land where their names say
    by_name = {r["name"]: p for r, p in zip(rows, predicted)}
    assert by_name["english_to_chinese_translation"] == "translation"
    assert by_name["summarizing_news"] == by_name["summarize_email"] == "summarization"
    assert by_name["python_sorting"] == by_name["javascript_date_and_time"] == "code"
    assert by_name["solving_equation"] == "reasoning_math"


def _coverage_dataset():
    by_cat: dict[str, list[str]] = {}
    for gold, prompt in LABELLED:
        by_cat.setdefault(gold, []).append(prompt)
    prompts = ([by_cat["qa"][i % 8] for i in range(30)] + [by_cat["code"][i % 7] for i in range(30)]
               + [by_cat["creative_writing"][i % 7] for i in range(30)] + [by_cat["translation"][0]])
    return prompts, sft([(p, "ok") for p in prompts])


def test_coverage_statistics_name_missing_and_under_represented():
    prompts, dataset = _coverage_dataset()
    result = REGISTRY["categories"].run(dataset)
    stats = result.stats
    assert stats["total"] == 91 and result.flagged == []
    assert stats["categories"]["qa"] == {"count": 30, "share": round(30 / 91, 4)}
    assert stats["categories"]["translation"]["count"] == 1
    assert sum(c["count"] for c in stats["categories"].values()) == 91
    assert set(stats["categories"]) == set(CATEGORIES)
    assert stats["intended"] == list(CATEGORIES)
    assert set(stats["missing"]) == set(CATEGORIES) - {"qa", "code", "creative_writing", "translation"}
    assert stats["under_represented"] == ["translation"]  # 1.1% < max(2%, half of 1/11)
    assert stats["min_share"] == round(under_represented_bound(11), 4)
    assert stats["examples"]["code"] == [30, 31, 32]


def test_intended_categories_and_off_scope_flags():
    prompts, dataset = _coverage_dataset()
    opts = REGISTRY["categories"].make_options(
        {"intended": ["qa", "code", "translation", "summarization"], "flag_unintended": True})
    result = REGISTRY["categories"].run(dataset, opts)
    assert result.stats["missing"] == ["summarization"]
    assert result.stats["under_represented"] == ["translation"]  # bound max(0.02, 0.5/4)
    assert result.flagged == list(range(60, 90))  # the creative-writing prompts
    assert result.reasons[60].startswith("category creative_writing is not intended")


def test_unknown_intended_category_is_an_error():
    with pytest.raises(ValueError, match="unknown categor"):
        REGISTRY["categories"].run(sft([("hi", "hello")]), REGISTRY["categories"].make_options({"intended": ["poetry"]}))


def test_assign_matches_classify_on_real_data(corpus):
    loaded = load(corpus / "llama_factory/alpaca_en_demo.json")
    data = CheckData.from_dataset(loaded.dataset)
    names = assign(data)
    assert names.shape == (len(data),)
    assert names.tolist() == classify(data.texts("prompt"))


def _whole_rules(texts: list[str]) -> list[str]:
    """The rules run one whole pattern at a time, first match wins (what _PARTS must equal)."""
    import pyarrow.compute as pc

    from hubtools.checks.categories import HEAD_CHARS, RULES

    head = pc.utf8_lower(pc.utf8_slice_codeunits(pa.array(texts, pa.string()), 0, HEAD_CHARS))
    out = ["open_conversation"] * len(texts)
    done = np.zeros(len(texts), dtype=bool)
    for category, pattern in RULES:
        hit = pc.match_substring_regex(head, pattern).to_numpy(zero_copy_only=False) & ~done
        for i in np.flatnonzero(hit):
            out[i] = category
        done |= hit
    return out


def test_prefiltered_rule_parts_give_the_whole_rules_answers(corpus, tmp_path):
    """The rules whose bounded gaps are slow run in parts behind cheap prefilters ("how ", a code
    noun, a language): the same category for every prompt of real files and the bench's records,
    and for prompts written to hit exactly those parts."""
    import importlib.util
    from pathlib import Path

    from hubtools.checks.categories import _PARTS

    assert sum(len(parts) > 1 or parts[0][0] is not None for parts in _PARTS.values()) == 3
    spec = importlib.util.spec_from_file_location("bench_checks", Path(__file__).parents[1] / "bench/bench_checks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    texts = []
    for path in (bench.build_input(3000, tmp_path), corpus / "llama_factory/alpaca_en_demo.json",
                 corpus / "real_world/codealpaca_code_alpaca_2k.json",
                 corpus / "real_world/gpteacher_roleplay_simple_deduped_instruct.json",
                 corpus / "real_world/arena_hard_v0.1_question.jsonl"):
        texts += CheckData.from_dataset(load(path).dataset).texts("prompt")
    texts += ["I have 3 apples and eat one. How many are left?", "How many legs do two spiders have?",
              "how long is 5 km in miles", "Write a function that reverses a linked list.",
              "Please convert this script to Python code.", "How do you say thank you in Japanese?",
              "Put this sentence into German: good night", "how many stars are there"]
    assert len(texts) > 6_000
    assert classify(texts) == _whole_rules(texts)


def test_alpaca_demo_covers_all_but_translation_and_extraction_are_rare(corpus):
    """The Alpaca demo file has every category but hardly any translation or extraction tasks;
    count those independently from the raw instructions."""
    raw = json.loads((corpus / "llama_factory/alpaca_en_demo.json").read_text(encoding="utf-8"))
    result = run_checks(corpus / "llama_factory/alpaca_en_demo.json", checks=["categories"])
    stats = result.results["categories"].stats
    translate = sum("translat" in r["instruction"].lower() for r in raw)
    extract = sum("extract" in r["instruction"].lower() for r in raw)
    assert translate <= 10 and extract <= 10  # really rare in the file
    assert stats["total"] == len(raw) and stats["missing"] == []
    assert {"translation", "extraction"} <= set(stats["under_represented"])
    assert stats["categories"]["translation"]["count"] <= translate


@pytest.mark.parametrize("dataset, applicable", [
    (sft([("Write a poem about rain.", "...")]), True),
    (preference([("Translate 'cat' into French.", "chat", "chien")]), True),
    (unpaired([("What is 2 + 2?", "4", True)]), True),
    (text(["some raw web text"]), False),
])
def test_runs_on_every_kind(dataset, applicable):
    result = REGISTRY["categories"].run(dataset)
    assert result.applicable is applicable
    if applicable:
        assert result.stats["total"] == 1
    else:
        assert "does not apply to text data" in result.stats["skipped"]


def test_classify_empty_and_odd_inputs():
    assert classify([]) == []
    assert classify(["", "   ", "?"]) == ["open_conversation", "open_conversation", "qa"]
    assert np.array_equal(assign(sft([("hi", "hello")])), np.array(["open_conversation"]))
