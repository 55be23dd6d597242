"""The ``language`` check: planted French/German/Chinese replies among English ones, expected
languages, short texts, determinism, the real demo files, and the fast path against langdetect."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from langdetect import DetectorFactory, detect
from langdetect.lang_detect_exception import LangDetectException

from hubtools.checks import REGISTRY, CheckData, run_checks
from hubtools.checks import _langid
from hubtools.errors import UnknownCheckError
from hubtools.load import load
from tests.fixtures.build import preference, sft, text

SPEC = REGISTRY["language"]
ROOT = Path(__file__).resolve().parents[1]

ENGLISH = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
    "Photosynthesis is the process by which green plants turn sunlight, water and carbon dioxide into sugar.",
    "To reset your password, open the settings page and click on the link that says forgot password.",
    "The French Revolution began in 1789 and changed the political landscape of Europe for decades.",
    "A balanced diet includes vegetables, fruit, whole grains, and a moderate amount of protein.",
    "Machine learning models learn patterns from data instead of following hand-written rules.",
    "Please remember to water the tomatoes every morning before the sun gets too hot.",
    "The museum opens at nine o'clock and closes at five, except on public holidays.",
    "Regular exercise improves your mood, your sleep and your long-term cardiovascular health.",
    "He packed his bags, locked the front door and drove to the airport just before dawn.",
    "Our team will send you the signed contract and the invoice by the end of next week.",
    "Paris is the capital of France and one of the most visited cities in the world.",
    "Water boils at one hundred degrees Celsius at sea level, and at lower temperatures on mountains.",
    "Here is a short poem about autumn leaves drifting slowly across the quiet village square.",
    "The library lends books, films and music for free to everyone who lives in the city.",
    "Remember that a good night's sleep is just as important as studying for the exam.",
    "In chess, the knight moves in an L shape and is the only piece that can jump over others.",
    "Sure! Start by preheating the oven, then mix the flour, sugar and butter in a large bowl.",
    "The meeting has been moved to Thursday afternoon because the manager is travelling.",
    "Solar panels convert sunlight into electricity and can lower a household's energy bills.",
]
PLANTED = {
    "fr": [
        "Le petit chat dort tranquillement sur le canapé pendant que la pluie tombe dehors.",
        "Nous avons visité le musée du Louvre et admiré la Joconde pendant plus d'une heure.",
        "Pour préparer une bonne soupe, il faut des légumes frais, du sel et beaucoup de patience.",
        "La réunion de demain matin est annulée parce que le directeur est malade.",
        "Je voudrais réserver une table pour deux personnes ce soir vers vingt heures.",
        "Les élèves doivent rendre leurs devoirs avant la fin de la semaine prochaine.",
    ],
    "de": [
        "Der Zug nach Berlin hat heute leider eine Verspätung von ungefähr dreißig Minuten.",
        "Ich habe gestern einen langen Spaziergang durch den Wald mit meinem Hund gemacht.",
        "Die Kinder spielen im Garten, während die Eltern in der Küche das Abendessen kochen.",
        "Bitte schließen Sie das Fenster, bevor Sie das Büro am Abend verlassen.",
        "Unsere Firma sucht ab sofort einen erfahrenen Mitarbeiter für die Buchhaltung.",
        "Wir haben im Urlaub viele schöne Städte besucht und sehr gut gegessen.",
    ],
    "zh": [
        "今天天气很好，我们一起去公园散步吧，顺便买一些水果回家。",
        "机器学习是人工智能的一个分支，它让计算机从数据中学习规律。",
        "请在下周五之前把报告发给我，我需要时间仔细检查一遍。",
        "这家餐厅的菜非常好吃，价格也很合理，我们下次还要再来。",
        "长城是中国古代最伟大的建筑工程之一，每年吸引数百万游客。",
    ],
}
#: English prompts long enough to be read, and ones too short to judge
PROMPTS = ["Please answer the following question in a few friendly sentences.", "Reply, please."]


def _planted():
    """English replies with the planted ones spread among them; (pairs, language of each reply)."""
    rows = [(reply, "en") for reply in ENGLISH] + [(r, lang) for lang, rs in PLANTED.items() for r in rs]
    random.Random(3).shuffle(rows)
    pairs = [(PROMPTS[i % 2], reply) for i, (reply, _) in enumerate(rows)]
    return pairs, [lang for _, lang in rows]


def _recall_and_false_flags(result, langs: list[str], foreign: set[str]) -> tuple[float, float]:
    flagged = set(result.flagged)
    planted = [i for i, lang in enumerate(langs) if lang in foreign]
    others = [i for i, lang in enumerate(langs) if lang not in foreign]
    return (sum(i in flagged for i in planted) / len(planted),
            sum(i in flagged for i in others) / len(others))


@pytest.fixture(scope="module")
def planted():
    pairs, langs = _planted()
    return pairs, langs, SPEC.run(sft(pairs))


def test_planted_french_german_and_chinese_replies_are_flagged_and_english_ones_are_not(planted):
    _, langs, result = planted
    recall, false_flag_rate = _recall_and_false_flags(result, langs, {"fr", "de", "zh"})
    assert recall >= 0.9, recall
    assert false_flag_rate <= 0.05, false_flag_rate
    assert result.stats["expected"] == ["en"] and result.stats["expected_source"] == "majority"
    for i in result.flagged:
        assert result.reasons[i] == f"language {langs[i]} (response), expected en"


def test_distribution_counts_every_planted_language(planted):
    _, langs, result = planted
    distribution = result.stats["distribution"]
    assert {lang: d["count"] for lang, d in distribution.items()} == {"en": 20, "fr": 6, "de": 6, "zh": 5}
    assert list(distribution)[0] == "en"
    assert distribution["en"]["share"] == round(20 / len(langs), 6)
    assert result.stats["flagged_by_language"] == {"fr": 6, "de": 6, "zh": 5}
    # every other prompt is too short to judge, the rest are English
    assert result.stats["by_field"]["prompt"] == {"en": (len(langs) + 1) // 2, "und": len(langs) // 2}


def test_expected_languages_option_allows_them(planted):
    pairs, langs, _ = planted
    ds = sft(pairs)
    for languages in ("en,fr", ["en", "fr"], " EN , fr "):
        result = SPEC.run(ds, SPEC.make_options({"languages": languages}))
        recall, false_flag_rate = _recall_and_false_flags(result, langs, {"de", "zh"})
        assert (recall, false_flag_rate) == (1.0, 0.0), languages
        assert result.stats["expected"] == ["en", "fr"] and result.stats["expected_source"] == "option"
    only_zh = SPEC.run(ds, SPEC.make_options({"languages": "zh"}))  # English prompts count too
    assert only_zh.flagged == [i for i, lang in enumerate(langs) if lang != "zh" or pairs[i][0] == PROMPTS[0]]
    with pytest.raises(UnknownCheckError, match="xx"):
        SPEC.run(ds, SPEC.make_options({"languages": "en,xx"}))


def test_the_majority_language_is_the_default_whatever_it_is():
    replies = PLANTED["fr"] + ENGLISH[:2]
    result = SPEC.run(sft([("Réponds en français, s'il te plaît, avec soin.", r) for r in replies]))
    assert result.stats["expected"] == ["fr"]
    assert result.reasons == {6: "language en (response), expected fr", 7: "language en (response), expected fr"}


SHORT = ["ok", "thanks!", "Thanks a lot!", "Sure.", "Yes", "No problem", "lol", "Got it.", "Nice one",
         "Great job!", "Merci", "Danke schön", "Bien sûr", "ciao", "π", "是"]


def test_short_texts_are_undetermined_and_never_flagged():
    pairs = [("ok", reply) for reply in SHORT] + [("Tell me something.", ENGLISH[0])]
    ds = sft(pairs)
    result = SPEC.run(ds, SPEC.make_options({"languages": "en"}))
    assert result.flagged == []
    assert result.stats["undetermined"] == len(SHORT)
    assert result.stats["decided_by"]["too_short"] == 2 * len(SHORT) + 1
    # without the rule langdetect guesses on them, and most English ones come out as another language
    noisy = SPEC.run(ds, SPEC.make_options({"languages": "en", "min_chars": 0, "fields": "response"}))
    english_short = set(range(SHORT.index("Great job!") + 1))
    assert len(english_short & set(noisy.flagged)) >= 5, noisy.reasons


#: short replies whose script settles the language (all under the 40-letter floor)
SHORT_BY_SCRIPT = {"谢谢": "zh", "好的，没问题": "zh", "ありがとう": "ja", "コーヒー": "ja", "감사합니다": "ko",
                   "ขอบคุณครับ": "th", "תודה רבה": "he", "Ευχαριστώ πολύ": "el", "მადლობა": "ka",
                   "Շնորհակալություն": "hy", "Спасибо": None, "धन्यवाद": None}


def test_short_texts_whose_script_settles_the_language_are_decided_and_flagged():
    pairs = [("Say thank you in one word.", reply) for reply in SHORT_BY_SCRIPT] + [("ok", r) for r in SHORT]
    result = SPEC.run(sft(pairs), SPEC.make_options({"languages": "en"}))
    decided = {reply: lang for reply, lang in SHORT_BY_SCRIPT.items() if lang}
    # Cyrillic and Devanagari are shared by several languages: still undetermined when short
    assert result.flagged == list(range(len(decided)))
    for i, (reply, lang) in enumerate(decided.items()):
        assert result.reasons[i] == f"language {lang} (response), expected en", reply
    assert result.stats["decided_by"]["short_script"] == len(decided)
    assert set(result.stats["by_field"]["response"]) == {*decided.values(), "und"}


def test_a_short_chinese_record_in_a_real_english_file_is_flagged(corpus):
    english = json.loads((corpus / "llama_factory" / "alpaca_en_demo.json").read_text())[:200]
    chinese = [r for r in json.loads((corpus / "llama_factory" / "alpaca_zh_demo.json").read_text())
               if not r["input"] and max(len(r["instruction"]), len(r["output"])) <= 12][:3]
    assert len(chinese) == 3, "the zh demo has short records such as 回应：“早上好！” / 早上好！"
    pairs = [(r["instruction"] + ("\n" + r["input"] if r["input"] else ""), r["output"]) for r in english]
    at = [50, 120, 199]
    for pos, r in zip(at, chinese):
        pairs.insert(pos, (r["instruction"], r["output"]))
    result = SPEC.run(sft(pairs))
    assert result.stats["expected"] == ["en"]
    assert set(at) <= set(result.flagged), (result.reasons, chinese)
    assert all("zh" in result.reasons[i] for i in at)
    assert len(result.flagged) <= len(at) + 2  # the English records stay unflagged (alpaca_en: 0 of 999)


#: unfenced code and shell commands, which langdetect reads as da/ro/ca/fr
CODE_REPLIES = [
    "def is_even(number):\n    if number % 2 == 0:\n        return True\n    else:\n        return False",
    "SELECT COUNT(orderdate) as 'TotalOrders', MONTH(orderdate) as 'month'\nFROM Orders\nGROUP BY MONTH(orderdate);",
    "const express = require('express');\nconst app = express();\napp.listen(3000);",
    "du -sh /var/log/*\nls -la ~/projects | grep src",
    "public static int factorial(int n) {\n    int result = 1;\n    for (int i = 2; i <= n; i++) {\n"
    "        result *= i;\n    }\n    return result;\n}",
]


def test_code_and_shell_commands_are_not_read_as_natural_language():
    cleaned = _langid.clean_text(pa.array(CODE_REPLIES + ["Use the len() function to count the items.\n"
                                                          "Run it with python, then read the output."]))
    assert [t.strip() for t in cleaned.to_pylist()[:-1]] == [""] * len(CODE_REPLIES)
    assert "len() function" in cleaned.to_pylist()[-1] and "then read the output" in cleaned.to_pylist()[-1]
    # code under an English explanation: the explanation decides
    mixed = [("Write it in Python.", "Here is the function you asked for, with a loop over the list:\n" + code)
             for code in CODE_REPLIES]
    result = SPEC.run(sft(mixed), SPEC.make_options({"languages": "en"}))
    assert result.flagged == []


def test_real_code_instruction_file_is_not_flagged_as_french(corpus):
    """codealpaca (2,015 code instructions): 9.8% of the records were flagged (da 43, ro 42, ca 33,
    fr 29, ...), nearly all for a code reply; with code lines not read, 0.55% (11 records)."""
    dataset = load(corpus / "real_world" / "codealpaca_code_alpaca_2k.json").dataset
    result = SPEC.run(dataset)
    assert result.stats["expected"] == ["en"]
    assert result.count / len(dataset) <= 0.01, result.reasons
    plain = REGISTRY["language"].fn  # the same check with the code-line rule switched off
    saved, _langid._CODE_LINE = _langid._CODE_LINE, r"(?m)^\b\B$"
    try:
        before = plain(CheckData.from_dataset(dataset), SPEC.make_options({}))
    finally:
        _langid._CODE_LINE = saved
    assert before.count / len(dataset) >= 0.08  # what the rule removes


def _close_calls() -> list[str]:
    """English prompts on which langdetect wavers (unseeded: af, ro, cy, it, fr, ca, pt...)."""
    return ["How would you generate random numbers between 1 and 10 in Java?",
            "edit this code and make sure it compile\ndef sum(num1, num2): return num1 + num2",
            "Tell me what you would do if you won a million dollars",
            "Generate an appropriate template to describe a customer service interaction",
            "Construct a regular expression to identify email addresses.",
            "Write an email to persuade your manager to grant you a pay raise.",
            "Construct a query to retrieve data from a database."]


def test_two_runs_give_identical_results_even_on_close_calls(planted):
    pairs, _, _ = planted
    ds = sft(pairs + [(prompt, ENGLISH[1]) for prompt in _close_calls()])
    first, second = SPEC.run(ds).to_dict(), SPEC.run(ds).to_dict()
    assert first == second
    assert first["flagged"] == SPEC.run(sft(pairs)).flagged  # close calls are und, not a wrong language
    assert first["stats"]["decided_by"]["langdetect"] + first["stats"]["decided_by"]["langdetect_unsure"] >= 5


#: a fresh interpreter that loads ``_langid`` (as a worker process would) and answers the
#: close calls with langdetect, the one tier that draws random numbers
FRESH = """
import importlib, json, sys
langid = importlib.import_module(sys.argv[1])
texts = json.load(sys.stdin)
print(json.dumps([[langid.langdetect_one(t), langid._langdetect_sure(t)] for t in texts]))
"""


def test_langdetect_answers_are_the_same_in_a_fresh_process():
    texts = _close_calls()
    here = [[_langid.langdetect_one(t), _langid._langdetect_sure(t)] for t in texts]
    out = subprocess.run([sys.executable, "-c", FRESH, _langid.__name__], input=json.dumps(texts),
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here
    # even seeded, plain langdetect misreads some (fr, pt); none is sure enough to count
    assert {code for code, _ in here} > {"en"}
    assert {sure for _, sure in here} == {0}


def test_fields_option_and_other_kinds():
    ds = sft([(PLANTED["de"][0], ENGLISH[0]), (ENGLISH[1], PLANTED["fr"][0])])
    assert SPEC.run(ds, SPEC.make_options({"languages": "en", "fields": "prompt"})).flagged == [0]
    assert SPEC.run(ds, SPEC.make_options({"languages": "en", "fields": "response"})).flagged == [1]
    with pytest.raises(UnknownCheckError, match="chosen"):
        SPEC.run(ds, SPEC.make_options({"fields": "chosen"}))
    pref = SPEC.run(preference([(ENGLISH[2], ENGLISH[3], PLANTED["zh"][0]), (ENGLISH[4], ENGLISH[5], ENGLISH[6])]),
                    SPEC.make_options({"languages": "en"}))
    assert pref.reasons == {0: "language zh (rejected), expected en"}
    raw = SPEC.run(text(ENGLISH[:3] + PLANTED["de"][:1]))
    assert raw.reasons == {3: "language de, expected en"}


# --------------------------------------------------------------------------- real corpus


def test_real_chinese_alpaca_is_zh_and_nearly_all_flagged_when_en_is_expected(corpus):
    loaded = load(corpus / "llama_factory" / "alpaca_zh_demo.json")
    default = run_checks(loaded, checks=["language"]).results["language"]
    assert default.stats["expected"] == ["zh"]
    assert default.stats["distribution"]["zh"]["share"] >= 0.9
    assert default.count / len(loaded.dataset) < 0.05  # replies written in English, e.g. "Here is a list..."
    as_en = run_checks(loaded, checks=["language"], options={"language": {"languages": "en"}}).results["language"]
    assert as_en.count / len(loaded.dataset) >= 0.95, as_en.count
    assert sum("zh" in reason for reason in as_en.reasons.values()) / as_en.count >= 0.98


def test_real_english_alpaca_flags_very_few_with_default_settings(corpus):
    dataset = load(corpus / "llama_factory" / "alpaca_en_demo.json").dataset
    result = SPEC.run(dataset)
    assert result.stats["expected"] == ["en"]
    assert result.count / len(dataset) < 0.02, result.reasons
    assert result.stats["distribution"]["en"]["share"] >= 0.98


#: files and fields the agreement is measured on, and texts sampled from each
AGREEMENT_SAMPLE = [("llama_factory/alpaca_en_demo.json", 70), ("llama_factory/alpaca_zh_demo.json", 70),
                    ("llama_factory/dpo_en_demo.json", 50), ("hh_rlhf/harmless_base_test.jsonl.gz", 50),
                    ("llama_factory/c4_demo.jsonl", 30), ("alpaca_eval/Mistral-7B-Instruct-v0.2_outputs.json", 30)]


def _plain_langdetect(value: str) -> str:
    DetectorFactory.seed = 0
    try:
        code = detect(value)
    except LangDetectException:
        return "und"
    return "zh" if code.startswith("zh") else code


def test_fast_path_agrees_with_plain_seeded_langdetect_where_it_decides(corpus):
    rng = random.Random(0)
    texts: list[str] = []
    for path, k in AGREEMENT_SAMPLE:
        data = CheckData.from_dataset(load(corpus / path).dataset)
        pool = [t[:600] for name in data.prompt_fields + data.response_fields for t in data.texts(name)]
        texts += rng.sample(pool, k)
    lang, method, _ = _langid.detect_texts(pa.array(texts), min_chars=40)
    fast = [i for i, m in enumerate(method) if _langid.METHODS[m] in ("script", "ngram_model")]
    assert len(fast) >= 0.7 * len(texts)  # the fast path decides most texts
    ours = _langid.codes(lang[fast])
    reference = [_plain_langdetect(texts[i]) for i in fast]
    agreement = sum(a == b for a, b in zip(ours, reference)) / len(fast)
    assert agreement >= 0.95, [(texts[i][:60], a, b) for i, a, b in zip(fast, ours, reference) if a != b]
    assert {"en", "zh"} <= set(ours)


def test_compiled_tiers_give_the_numpy_references_scores_exactly(corpus, tmp_path):
    """The compiled n-gram scoring (one pass over the bytes) against the whole-array numpy
    version, with the ASCII table and with every n-gram found by its code points, and the
    compiled script counts against numpy's: the same figures to the bit on the bench's records,
    real English, Chinese and code files, and odd scripts, at both prefixes the tier reads."""
    texts: list[str] = []
    for path in (_bench_checks().build_input(3000, tmp_path), corpus / "llama_factory/alpaca_zh_demo.json",
                 corpus / "real_world/codealpaca_code_alpaca_2k.json", corpus / "hh_rlhf/harmless_base_test.jsonl.gz"):
        data = CheckData.from_dataset(load(path).dataset)
        texts += [t for name in data.fields for t in data.texts(name)]
    texts += ["Ελληνικά ΚΕΙΜΕΝΑ", "Привет МИР", "日本語のテキスト", "𝒜𝒷𝒸 😀 text", "ÀÉÎ çà ñ", ""]
    cleaned = _langid.clean_text(pa.array(texts))
    assert np.array_equal(_langid.script_counts(cleaned), _langid._script_counts_numpy(cleaned))
    for prefix in (_langid.NB_FIRST, _langid.NB_PREFIX):
        compiled = _langid.nb_scores(cleaned, prefix=prefix)
        for start in range(0, len(cleaned), _langid.NB_ROWS):
            part = cleaned.slice(start, _langid.NB_ROWS)
            rows = slice(start, start + len(part))
            for direct in (True, False) if prefix == _langid.NB_PREFIX else (True,):
                scores, matched, _ = _langid._nb_scores_numpy(part, direct=direct, prefix=prefix)
                assert np.array_equal(compiled[0][rows], scores) and np.array_equal(compiled[1][rows], matched)
    assert compiled[1].sum() > 0


def test_ngram_extraction_gives_langdetects_own_list(corpus, tmp_path):
    """The close-call tier's n-gram reader against langdetect's ``Detector._extract_ngrams``, text
    for text, on the bench's records, real English, Chinese and code files, and odd scripts."""
    from langdetect import detector_factory

    rng = random.Random(2)
    texts: list[str] = []
    for path in (_bench_checks().build_input(3000, tmp_path), corpus / "llama_factory/alpaca_zh_demo.json",
                 corpus / "real_world/codealpaca_code_alpaca_2k.json", corpus / "hh_rlhf/harmless_base_test.jsonl.gz"):
        data = CheckData.from_dataset(load(path).dataset)
        texts += rng.sample([t for name in data.fields for t in data.texts(name)], 700)
    texts += ["Ελληνικά ΚΕΙΜΕΝΑ", "Привет МИР", "日本語のテキスト ｶﾀｶﾅ", "𝒜𝒷𝒸 😀 text", "ÀÉÎ çà ñ ș ț", "ABC DEF gHI",
              "Tiếng Việt có dấu", "한국어 텍스트", "\u2019quotes\u201d — dash", "\uff21\uff22 fullwidth", " ", ""]
    factory = detector_factory._factory
    values = _langid.clean_text(pa.array(texts)).to_pylist()
    expected = []
    for value in values:
        detector = factory.create()
        detector.append(value)
        detector.cleaning_text()
        grams = detector._extract_ngrams()
        assert _langid._extract_ngrams(detector.text, factory.word_lang_prob_map) == grams
        expected.append([_langid._profiles().row[g] for g in grams])
    # the compiled reader, as profile rows (a text outside the BMP goes to the reader above)
    rows, sizes = _langid._langdetect_rows(values)
    assert [part.tolist() for part in np.split(rows, np.cumsum(sizes)[:-1])] == expected
    assert sum(map(len, expected)) > 100000


def test_close_call_tier_gives_langdetects_own_answer_bit_for_bit(corpus):
    """`_langdetect_sure` (numpy draws, early stop) against langdetect's detect_langs itself."""
    rng = random.Random(1)
    texts: list[str] = list(_close_calls())
    for path, k in AGREEMENT_SAMPLE:
        data = CheckData.from_dataset(load(corpus / path).dataset)
        pool = [t[:300] for name in data.prompt_fields + data.response_fields for t in data.texts(name)]
        texts += rng.sample(pool, k)
    texts += [t for lang in PLANTED for t in PLANTED[lang]]
    cleaned = _langid.clean_text(pa.array(texts)).to_pylist()
    reference = [_langid._langdetect_sure_reference(t) for t in cleaned]
    assert _langid.langdetect_sure_many(cleaned).tolist() == reference  # all texts stepping together
    assert [_langid._langdetect_sure(t) for t in cleaned[:40]] == reference[:40]  # one at a time
    codes = set(_langid.codes(np.array(reference)))
    assert {"und", "en", "zh", "fr", "de"} <= codes  # sure and unsure answers, several languages


def _bench_checks():
    spec = importlib.util.spec_from_file_location("bench_checks", ROOT / "bench" / "bench_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_close_calls_of_the_bench_data_get_langdetects_own_answers(tmp_path):
    """Every text of the bench's records that reaches the langdetect tier (about 2% of them),
    decided in one batch as the check does, against langdetect's detect_langs text by text."""
    path = _bench_checks().build_input(3000, tmp_path)
    data = CheckData.from_dataset(load(path).dataset)
    texts = pa.concat_arrays([data.column("prompt"), data.column("response")])
    _, method, _ = _langid.detect_texts(texts, min_chars=40)
    close = np.flatnonzero(np.isin(method, [_langid.M_LANGDETECT, _langid.M_UNSURE]))
    assert len(close) >= 60
    cleaned = _langid.clean_text(texts.take(pa.array(close))).to_pylist()
    ours = _langid.langdetect_sure_many(cleaned).tolist()
    assert ours == [_langid._langdetect_sure_reference(t) for t in cleaned]
    assert 0 < ours.count(0) < len(ours)  # some sure, some not
