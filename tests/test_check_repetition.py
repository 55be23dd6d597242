"""The ``repetition`` check: looping replies planted among honest ones, the Gopher figures against a
plain-Python reading of the rules, thresholds from the options and the CLI, and the false-flag
rate on real corpus files."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from hubtools.checks import REGISTRY, CheckData
from hubtools.checks.repetition import DEFAULT_THRESHOLDS, figures
from hubtools.cli import app
from hubtools.errors import UnknownCheckError
from hubtools.load import load
from tests.fixtures.build import preference, sft

SPEC = REGISTRY["repetition"]

SENTENCE = "The quick brown fox jumps over the lazy dog near the old river bank."
HONEST = (
    "Photosynthesis is the process by which green plants, algae and some bacteria turn light into "
    "chemical energy. In the chloroplasts, chlorophyll absorbs mostly red and blue light. That energy "
    "splits water molecules, which releases oxygen as a by-product and frees electrons and protons. "
    "The electrons pass along a chain of proteins in the thylakoid membrane, pumping protons and "
    "producing ATP and NADPH.\n\nIn the second stage, the Calvin cycle, the plant uses ATP and NADPH "
    "to fix carbon dioxide from the air into three-carbon sugars. Most of these are recycled to keep "
    "the cycle going; the rest become glucose, sucrose, starch or cellulose. Temperature, light "
    "intensity and the concentration of carbon dioxide all limit how fast this happens, which is why "
    "greenhouses sometimes add carbon dioxide to the air.\n\nWithout photosynthesis there would be "
    "almost no oxygen in the atmosphere and no food chains as we know them.")


def test_a_sentence_repeated_sixty_times_is_flagged_whatever_its_layout_and_an_honest_answer_is_not():
    loops = [" ".join([SENTENCE] * 60), "\n".join([SENTENCE] * 60), "\n\n".join([SENTENCE] * 60),
             " ".join(["Sure, I can help with that."] * 60), "Yes.\nYes.\nYes.", "哈" * 200]
    pairs = [("Explain photosynthesis.", HONEST)] + [("Tell me a story.", loop) for loop in loops] + \
        [("Say hi.", "Hello! How can I help you today?"), ("Name a city.", "New York is in New York State.")]
    result = SPEC.run(sft(pairs))
    assert result.flagged == list(range(1, len(loops) + 1)), result.reasons
    assert result.reasons[2].startswith("repetition: dup_line_frac 0.98 > 0.3")
    assert result.reasons[1].startswith("repetition: top_3_gram")  # one line: the n-gram rules catch it
    honest = figures(pa.array([HONEST]))
    assert all(honest[rule][0] <= limit for rule, limit in DEFAULT_THRESHOLDS.items())
    assert result.stats["response"]["texts_breaking_a_rule"] == len(loops)
    assert sum(result.stats["first_rule_broken"].values()) == len(loops)


SHORT_LOOPS = [" ".join(["Yes."] * 60),
               " ".join(["I really like this idea."] * 20),  # a six-word sentence, one line
               " ".join(["I really like this idea."] * 5),  # the same, 25 words
               "\n".join(["    print('hello world')"] * 12),  # a code line repeated
               "print(total)\n" + "total = total + 1 " * 8,  # runaway code on one line
               "The answer is 42. " + "Let me check that again. " * 3,  # a loop after an honest start
               "Done. \n\nDone. ",  # the same paragraph twice, trailing spaces apart
               "好的。" * 40]
SHORT_HONEST = ["Yes.", "No, it is not.", "Paris is the capital of France.", "1. Apples\n2. Pears\n3. Plums",
                ("The random number generated between 1 and 100 is 42. The random number generated between 200 "
                 "and 300 is 278."),  # a phrase used twice: not a loop
                ("x inside of the function is in its local scope and has a value of 0. x outside of the function "
                 "is in its global scope and has a value of 1."),
                "def add(x, y):\n    return x + y\n\ndef sub(x, y):\n    return x - y",
                "New York is in New York State.", "Ha ha, that's a good one!", "北京是中国的首都。"]


def test_short_loops_are_flagged_and_short_honest_replies_are_not():
    """The rules reach replies under the 50-word floor: every loop below but the first two has fewer
    than 50 words, and each honest reply is as short."""
    pairs = [("q", t) for t in SHORT_LOOPS + SHORT_HONEST]
    result = SPEC.run(sft(pairs))
    assert result.flagged == list(range(len(SHORT_LOOPS))), result.reasons
    assert "dup_5_gram" in result.reasons[2] and "dup_line" in result.reasons[3]
    assert "dup_para" in result.reasons[6]
    # with Gopher's rule (a phrase seen twice counts) the reused phrase would be a loop; the guard
    # is the number of repeats, not a length: min_repeats=2 flags it
    loose = SPEC.run(sft(pairs), SPEC.make_options({"min_repeats": 2}))
    assert len(SHORT_LOOPS) + 4 in loose.flagged
    # and the old word floor (min_words for every n-gram rule) missed the one-line loops
    floor = figures(pa.array(SHORT_LOOPS[2:3]), min_repeats=10**6)
    assert floor["dup_5_gram"][0] == 0.0 and floor["dup_line_frac"][0] == 0.0


# --------------------------------------------------------------------------- a plain reading of the rules


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^\w]+", text) if w]


def _dups(items: list[str]) -> tuple[int, int]:
    seen, count, chars = set(), 0, 0
    for item in items:
        if item in seen:
            count, chars = count + 1, chars + len(item)
        seen.add(item)
    return count, chars


def _reference(text: str, min_words: int = 50, min_repeats: int = 3) -> dict[str, float]:
    """The Gopher figures of one text, written out plainly (datatrove's split rules, a line's trailing
    spaces and whitespace-only lines going with the break; top n-grams counted when repeated and
    only in texts of min_words words; repeated n-grams cover each word once, and in a shorter text
    only an n-gram seen min_repeats times counts)."""
    out = {}
    paras = [p.rstrip() for p in re.split(r"\n[^\S\n]*\n(?:[^\S\n]*\n)*", text.strip())]
    lines = [line.rstrip() for line in re.split(r"\n(?:[^\S\n]*\n)*", text.strip())]
    d, c = _dups(paras)
    out["dup_para_frac"], out["dup_para_char_frac"] = d / len(paras), c / max(len(text), 1)
    d, c = _dups(lines)
    out["dup_line_frac"], out["dup_line_char_frac"] = d / len(lines), c / max(len(text), 1)
    words = _words(text)
    for n in (2, 3, 4):
        grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        top = max(((len(g) * k) for g, k in grams.items() if k > 1), default=0)
        out[f"top_{n}_gram"] = top / len(text) if len(words) >= min_words else 0.0
    for n in range(5, 11):
        counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        least = 2 if len(words) >= min_words else min_repeats
        seen, covered = set(), set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen and counts[gram] >= least:
                covered.update(range(i, i + n))
            seen.add(gram)
        chars = sum(len(words[i]) for i in covered)
        out[f"dup_{n}_gram"] = chars / len(text) if text else 0.0
    return out


def test_figures_match_a_plain_reading_of_the_gopher_rules_on_real_replies(corpus):
    texts = []
    for path in ("alpaca_eval/Mistral-7B-Instruct-v0.2_outputs.json", "llama_factory/alpaca_en_demo.json",
                 "real_world/codealpaca_code_alpaca_2k.json"):
        data = CheckData.from_dataset(load(corpus / path).dataset)
        texts += data.texts("response")[:150]
    texts += [" ".join([SENTENCE] * 60), "\n".join([SENTENCE] * 7), HONEST]
    ours = figures(pa.array(texts))
    for i, text in enumerate(texts):
        ref = _reference(text)
        for rule, value in ref.items():
            assert ours[rule][i] == pytest.approx(value, abs=1e-9), (rule, text[:80])
    assert sum(ours["dup_5_gram"] > 0) >= 20  # the comparison covers texts with repeats


# --------------------------------------------------------------------------- options, kinds, CLI


def test_thresholds_and_rules_are_configurable():
    pairs = [("q", "\n".join([SENTENCE] * 4) + "\nAnd that is all."), ("q", HONEST)]
    default = SPEC.run(sft(pairs))
    assert default.flagged == [0]
    off = SPEC.run(sft(pairs), SPEC.make_options({"thresholds": {"dup_line_frac": None, "dup_line_char_frac": None,
                                                                 "char_rep": None}, "min_words": 1000}))
    assert off.flagged == [0] and "dup_5_gram" in off.reasons[0]  # said four times: a loop at any length
    off = SPEC.run(sft(pairs), SPEC.make_options({"thresholds": {"dup_line_frac": None, "dup_line_char_frac": None,
                                                                 "char_rep": None}, "min_words": 1000,
                                                 "min_repeats": 5}))
    assert off.flagged == []
    assert off.options["min_repeats"] == 5 and off.stats["min_repeats"] == 5
    assert "dup_line_frac" not in {k for k, v in off.options["thresholds"].items() if v is not None}
    strict = SPEC.run(sft(pairs), SPEC.make_options({"thresholds": "dup_line_frac=0.2", "min_words": 0}))
    assert strict.options["thresholds"]["dup_line_frac"] == 0.2
    with pytest.raises(UnknownCheckError, match="unknown rule"):
        SPEC.make_options({"thresholds": {"dup_lines": 0.3}})
    with pytest.raises(UnknownCheckError, match="min_repeats"):
        SPEC.make_options({"min_repeats": 1})
    with pytest.raises(UnknownCheckError, match="not in 0..1"):
        SPEC.make_options({"thresholds": {"dup_line_frac": 3}})


def test_preference_data_flags_a_looping_chosen_and_counts_a_looping_rejected():
    loop = "\n".join([SENTENCE] * 20)
    ds = preference([("q1", loop, HONEST), ("q2", HONEST, loop), ("q3", HONEST, "Fine.")])
    result = SPEC.run(ds)
    assert result.flagged == [0]
    assert result.stats["preference"] == {"chosen_only": 1, "rejected_only": 1, "both": 0}
    assert SPEC.run(ds, SPEC.make_options({"flag_rejected": True})).flagged == [0, 1]


def test_cli_check_takes_repetition_thresholds_and_filter_drops_repetition(tmp_path):
    rows = [{"instruction": "Explain photosynthesis.", "input": "", "output": HONEST},
            {"instruction": "Tell me a story.", "input": "", "output": "\n".join([SENTENCE] * 60)},
            {"instruction": "List it.", "input": "", "output": "A\nB\nA\nC"}]
    src = tmp_path / "data.json"
    src.write_text(json.dumps(rows))
    runner = CliRunner()
    out = runner.invoke(app, ["check", str(src), "--out", str(tmp_path / "q"), "--checks", "repetition"],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    quality = json.loads((tmp_path / "q" / "quality.json").read_text())
    assert quality["checks"]["repetition"]["flagged"] == [1]
    report = (tmp_path / "q" / "dataset_quality_report.md").read_text()
    assert "### `repetition`" in report and "dup_line_frac p95" in report
    out = runner.invoke(app, ["check", str(src), "--out", str(tmp_path / "q2"), "--checks", "repetition",
                              "--repetition", "dup_line_frac=0.2,dup_line_char_frac=0.1,min_repeats=4"],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    quality = json.loads((tmp_path / "q2" / "quality.json").read_text())
    assert quality["checks"]["repetition"]["flagged"] == [1, 2]
    assert quality["checks"]["repetition"]["options"]["thresholds"]["dup_line_frac"] == 0.2
    assert quality["checks"]["repetition"]["options"]["min_repeats"] == 4
    out = runner.invoke(app, ["filter", str(src), "--out", str(tmp_path / "clean"), "--drop", "repetition"],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    kept = json.loads(next((tmp_path / "clean").glob("*.json")).read_text()) \
        if list((tmp_path / "clean").glob("*.json")) else None
    removed = [json.loads(line) for line in (tmp_path / "clean" / "removed.jsonl").read_text().splitlines()]
    assert [r["index"] for r in removed] == [1]
    assert kept is None or len(kept) == 2


# --------------------------------------------------------------------------- real files

#: (file, records, flagged with the defaults): measured; mostly list answers that reuse a phrase in
#: every item ("To dry basil, harvest ..."), which Gopher's web-page thresholds count. The rules
#: reach short replies since min_repeats replaced the word floor for them (the numbers before, with
#: no rule but lines and paragraphs under 50 words, in brackets): each file gained at most 2 flags.
FALSE_FLAGS = [("real_world/gpteacher_roleplay_simple_deduped_instruct.json", 1923, 0),  # (0)
               ("fastchat/dummy_conversation.json", 500, 0),  # (0), every reply under 50 words
               ("hh_rlhf/harmless_base_test.jsonl.gz", 2308, 10),  # (10)
               ("llama_factory/alpaca_zh_demo.json", 1000, 6),  # (6)
               ("llama_factory/alpaca_en_demo.json", 999, 14),  # (13)
               ("real_world/codealpaca_code_alpaca_2k.json", 2015, 37),  # (37), 84% under 50 words
               ("alpaca_eval/alpaca-7b_outputs.json", 805, 36),  # (35), 42% of its replies under 50 words
               ("real_world/oasst_backend_realistic_seed_messages.json", 158, 7),  # (7)
               ("alpaca_eval/Mistral-7B-Instruct-v0.2_outputs.json", 805, 59)]  # (59)


@pytest.mark.parametrize(("path", "records", "flagged"), FALSE_FLAGS)
def test_false_flag_rate_on_real_files(corpus, path, records, flagged):
    """Flag rates with the defaults: gpteacher and FastChat's dummy conversations 0%, HH 0.4%,
    alpaca_zh 0.6%, alpaca_en 1.4%, codealpaca 1.8% (code that repeats a line), alpaca-7b's short
    answers 4.5%, OpenAssistant's seed replies 4.4% (3 of the 7 a paragraph given twice),
    Mistral's alpaca_eval answers 7.3% (long lists)."""
    dataset = load(corpus / path).dataset
    result = SPEC.run(dataset)
    assert len(dataset) == records
    assert result.count == flagged, result.reasons
    assert result.count / records <= 0.08
    # and every planted loop among them is caught
    data = CheckData.from_dataset(dataset)
    texts = data.texts(data.response_fields[0])[:50]
    planted = [t + "\n" + "\n".join([SENTENCE] * 30) for t in texts]
    looping = figures(pa.array(planted))
    assert np.all(looping["dup_line_frac"] > DEFAULT_THRESHOLDS["dup_line_frac"])


def test_no_record_one_record_and_empty_replies_give_a_report_not_an_error():
    empty = SPEC.run(sft([("q", "a")]).select([]))
    assert empty.count == 0  # skipped with a reason by the runner, or measured as nothing
    assert "skipped" in empty.stats if not empty.applicable else empty.stats["response"]["texts_breaking_a_rule"] == 0
    one = SPEC.run(sft([("q", "\n".join([SENTENCE] * 5))]))
    assert one.flagged == [0]
    blank = SPEC.run(sft([("q", ""), ("q", "   "), ("q", "!!!")]))
    assert blank.flagged == []


def test_prompt_only_data_is_skipped_with_a_reason(corpus):
    prompts = load(corpus / "real_world" / "fastchat_vicuna_bench_question.jsonl")
    assert prompts.kind.value == "prompt"
    result = SPEC.run(prompts.dataset)
    assert not result.applicable and "no replies" in result.stats["skipped"]
