"""The ``toxicity`` check: planted toxic replies, preference/KTO/text rules, real HH-RLHF and
Alpaca data, the detoxify and transformers backends on tiny models built here, clear errors,
the CLI, and the same answers with worker processes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from hubtools.checks import REGISTRY, CheckData, run_checks
from hubtools.checks._toxicity_backends import _toxic_labels
from hubtools.checks.toxicity import (
    BACKENDS,
    DEFAULT_THRESHOLDS,
    DetoxifyBackend,
    TransformersBackend,
    load_backend,
    score_fields,
)
from hubtools.cli import app
from hubtools.errors import BackendError, UnknownCheckError
from hubtools.load import load
from tests.fixtures.build import preference, sft, text, unpaired
from tests.fixtures.tiny_models import DETOXIFY_CLASSES, tiny_bert_classifier, tiny_detoxify_checkpoint

runner = CliRunner()
SPEC = REGISTRY["toxicity"]
ROOT = Path(__file__).resolve().parents[1]

CLEAN = [
    "Paris is the capital of France.",
    "To reverse a list in Python, use reversed(items) or items[::-1].",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Preheat the oven to 180 °C and bake the cake for 35 minutes.",
    "Run `kill -9 PID` to stop a process that no longer responds.",
    "A black hole forms when a massive star collapses under its own gravity.",  # 0.85: word-level limit
    "The defendant was charged with assault and the trial starts in May.",
    "Dress warmly: the forecast says it will be freezing tonight.",
    "Shakespeare wrote Hamlet around 1600.",
    "Drink black coffee without sugar if you want fewer calories.",
    "The bomb calorimeter measures the heat of combustion of a sample.",
    "Thank you for your question! The answer is 42.",
    "Mix two cups of flour with one egg and a pinch of salt.",
    "The Battle of Hastings was fought in 1066.",
    "Exercise for thirty minutes a day to improve your heart health.",
    "You can dispose of old batteries at most supermarkets.",
    "Hydrogen is the lightest chemical element.",
    "Her essay on poverty and hunger won the school prize.",
    "The stock market fell sharply after the announcement.",
    "Bright, cheerful, warm.",
]

TOXIC = [
    "You are a worthless idiot and everyone hates you.",
    "Shut the fuck up, nobody asked you.",
    "What a stupid question, you moron.",
    "Go to hell, you pathetic loser.",
    "This is bullshit and you are an asshole.",
    "I will beat the shit out of you, bitch.",
    "Fuck off and die.",
    "You dumb bastard, learn to read.",
    "Only an ugly moron would believe that crap.",
    "Screw you, you piece of shit.",
]


def _planted():
    """20 clean and 10 toxic replies, interleaved: (replies, is_toxic)."""
    replies, toxic = [], []
    for i, reply in enumerate(CLEAN):
        replies.append(reply)
        toxic.append(False)
        if i % 2 == 1:
            replies.append(TOXIC[i // 2])
            toxic.append(True)
    return replies, toxic


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Every test here runs as if offline: HF_HUB_OFFLINE=1 and an empty torch hub cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.fixture(scope="module")
def tiny_detoxify(tmp_path_factory):
    return tiny_detoxify_checkpoint(tmp_path_factory.mktemp("detoxify"))


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    return tiny_bert_classifier(tmp_path_factory.mktemp("classifier"), {0: "non-toxic", 1: "toxic"})


# --------------------------------------------------------------------------- offline backend


def test_planted_toxic_replies_are_found_and_clean_ones_are_not():
    replies, toxic = _planted()
    result = SPEC.run(sft([("Say something.", r) for r in replies]))
    flagged = set(result.flagged)
    planted = {i for i, t in enumerate(toxic) if t}
    clean = {i for i, t in enumerate(toxic) if not t}
    assert len(planted & flagged) / len(planted) >= 0.9, [replies[i] for i in planted - flagged]
    assert len(clean & flagged) / len(clean) <= 0.1, [replies[i] for i in clean & flagged]
    stats = result.stats
    assert stats["backend"] == "offline" and stats["threshold"] == DEFAULT_THRESHOLDS["offline"] == 0.6
    assert stats["backend_version"].startswith("alt-profanity-check ")
    assert stats["above_threshold"] == {"response": len(flagged)} and stats["records_flagged"] == len(flagged)
    assert sum(stats["histogram"]["counts"]["response"]) == len(replies)
    assert stats["histogram"]["edges"][0] == 0.0 and stats["histogram"]["edges"][-1] == 1.0
    top = stats["top"]
    assert len(top) == 10 and [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    assert {t["index"] for t in top[:8]} <= planted
    reason = result.reasons[replies.index("Shut the fuck up, nobody asked you.")]
    assert reason.startswith("toxicity ") and reason.endswith(" in response") and float(reason.split()[1]) >= 0.6
    assert result.options["threshold"] == 0.6 and "alt-profanity-check" in result.versions
    assert len(result.examples) == 3 and all(e["index"] in planted for e in result.examples)


def test_offline_backend_gives_predict_probs_own_scores(corpus):
    """The Arrow TF-IDF path is a faster route to the same numbers, on real English and Chinese text."""
    from profanity_check import predict_prob

    texts = []
    for path in ("hh_rlhf/harmless_base_test.jsonl.gz", "llama_factory/alpaca_en_demo.json",
                 "llama_factory/alpaca_zh_demo.json", "llama_factory/wiki_demo.txt"):
        data = CheckData.from_dataset(load(corpus / path).dataset)
        texts += [t for name in data.fields for t in data.texts(name)]
    texts += ["ÉCOLE Straße İstanbul naïve café_au_lait x2 a-b", "don't stop-believing, 2nd place!!", "",
              "ΕΤΗΤΗΣ ετητησ", "Σ"]
    assert len(texts) > 8_000
    np.testing.assert_allclose(load_backend(batch_size=3_000).score(texts), predict_prob(texts), rtol=0, atol=1e-12)


def test_ascii_rows_tokenized_on_bytes_give_the_regex_paths_features_exactly(corpus, tmp_path):
    """The byte-table tokenizer of ASCII rows against the regex split for every row: the same
    TF-IDF matrix, value for value, on the bench's records and real English/Chinese files."""
    from hubtools.checks._toxicity_backends import _profanity_model, _tfidf_arrow

    spec = importlib.util.spec_from_file_location("bench_checks", ROOT / "bench" / "bench_checks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sources = [bench.build_input(3000, tmp_path), corpus / "hh_rlhf/harmless_base_test.jsonl.gz",
               corpus / "llama_factory/alpaca_zh_demo.json", corpus / "real_world/codealpaca_code_alpaca_2k.json"]
    texts = [t for path in sources for name, column in CheckData.from_dataset(load(path).dataset).fields.items()
             for t in column.to_pylist()]
    texts += ["A_B c__d 9x Hello\tWORLD\n\nok", "", None, "ÉCOLE İstanbul", "x"]
    values = pa.array(texts, pa.string())
    ascii_rows = pc.sum(pc.string_is_ascii(values)).as_py()
    assert 0.5 * len(texts) < ascii_rows < len(texts) - 2_000  # both paths well used
    vectorizer, _, vocabulary = _profanity_model()
    fast, regex = (_tfidf_arrow(values, vectorizer, vocabulary, fast=f) for f in (True, False))
    assert fast.nnz > 100_000
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(fast, part), getattr(regex, part)), part


def test_compiled_scorer_gives_the_arrow_and_sklearn_paths_scores_bit_for_bit(corpus, tmp_path):
    """The compiled kernel (bytes tokenised, TF-IDF and the calibrated SVMs without sklearn)
    against the Arrow tokenizer + sklearn's predict_proba: the same float64 scores, exactly, on
    the bench's records, real English/Chinese/code files and the Unicode cases the kernel hands
    to the regex path (İ, Σ, characters beyond the basic plane) or maps itself (Kelvin sign)."""
    from hubtools.checks._toxicity_backends import _compiled_scores, _linear_model, _profanity_model, _tfidf_arrow
    from hubtools.checks._toxicity_second_opinion import _top_words, _top_words_sklearn

    spec = importlib.util.spec_from_file_location("bench_checks", ROOT / "bench" / "bench_checks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sources = [bench.build_input(3000, tmp_path), corpus / "hh_rlhf/harmless_base_test.jsonl.gz",
               corpus / "llama_factory/alpaca_zh_demo.json", corpus / "real_world/codealpaca_code_alpaca_2k.json"]
    texts = [t for path in sources for column in CheckData.from_dataset(load(path).dataset).fields.values()
             for t in column.to_pylist()]
    texts += ["ÉCOLE Straße İstanbul naïve café_au_lait x2 a-b", "", None, "ΕΤΗΤΗΣ ετητησ", "Σ", "x",
              "BEYONCÉ and POKÉMON, \u212aILL them 😀 fuck", "JOSÉ’s Míkka—ok Ⱥⱥ", "a" * 5000 + " shit"]
    values = pa.array(texts, pa.string())
    linear = _linear_model()
    assert linear is not None
    vectorizer, model, vocabulary = _profanity_model()
    for start in range(0, len(values), 4000):
        part = values.slice(start, 4000)
        expected = model.predict_proba(_tfidf_arrow(part, vectorizer, vocabulary))[:, 1]
        assert np.array_equal(_compiled_scores(part, linear), expected), start
    flagged = values.filter(pa.array(_compiled_scores(values, linear) >= 0.5))
    assert len(flagged) > 50 and _top_words(flagged) == _top_words_sklearn(flagged)


def test_offline_models_arrays_are_kept_and_read_back(tmp_path, monkeypatch):
    """Worker processes read the model's arrays from the cache (no sklearn unpickling); a cache
    that cannot be written or read is only a slower start."""
    import hubtools.config
    from hubtools.checks import _toxicity_kernel as kernel
    from hubtools.checks._toxicity_backends import _linear_model

    made = _linear_model()
    monkeypatch.setattr(hubtools.config, "CACHE_DIR", str(tmp_path / "cache"))
    assert kernel.linear_model(lambda: made) is made
    path = kernel._cache_path()
    assert path.startswith(str(tmp_path / "cache")) and Path(path).is_file()
    again = kernel.linear_model(lambda: pytest.fail("the cache was not read"))
    assert all(np.array_equal(a, b) for a, b in zip(again.arrays().values(), made.arrays().values()))
    Path(path).write_bytes(b"not an npz")
    assert kernel.linear_model(lambda: made) is made
    monkeypatch.setattr(hubtools.config, "CACHE_DIR", "/proc/no-such-place")
    assert kernel.linear_model(lambda: made) is made


def test_offline_backend_scores_words_not_implicit_harm():
    """The documented limit: politely worded harm has no offensive words, so it scores low."""
    scores = load_backend().score(["Mix the two household cleaners in a closed room so the gas builds up.",
                                   "You fucking idiot."])
    assert scores[0] < 0.6 <= scores[1]


def test_prompts_are_not_scored_and_empty_replies_score_zero():
    ds = sft([("Shut the fuck up, you moron.", "Here is a polite answer."), ("Hi", "")])
    result = SPEC.run(ds)
    assert result.flagged == []
    assert score_fields(ds, load_backend())["response"][1] == 0.0
    from hubtools.checks.toxicity import _score_batch

    texts = ["Shut the fuck up.", " \n\t", "\u3000\u00a0 ", "", "ok"]
    scores = _score_batch({"response": pa.array(texts)}, load_backend())["response"]
    assert scores[0] >= 0.6 and scores[1:4].tolist() == [0.0, 0.0, 0.0] and scores[4] > 0.0  # blank: never scored


def test_threshold_option_changes_what_is_flagged():
    replies, _ = _planted()
    ds = sft([("q", r) for r in replies])
    raw = score_fields(ds, load_backend())["response"]
    for threshold in (0.05, 0.3, 0.99):
        scores = score_fields(ds, load_backend(), threshold=threshold)["response"]  # with the second opinion
        result = SPEC.run(ds, SPEC.make_options({"threshold": threshold}))
        assert result.flagged == [i for i, s in enumerate(scores) if s >= threshold]
        assert set(result.flagged) <= {i for i, s in enumerate(raw) if s >= threshold}
        assert result.stats["threshold"] == threshold


def test_preference_flags_toxic_chosen_and_counts_toxic_rejected():
    ds = preference([
        ("Insult me.", "You are a worthless idiot.", "I'd rather not insult you."),
        ("Tell me a joke.", "Why did the chicken cross the road? To get to the other side.", "Fuck off."),
        ("Insult my boss.", "Your boss is a stupid moron.", "Tell him he is a fucking asshole."),
        ("2+2?", "4", "5"),
    ])
    result = SPEC.run(ds)
    assert result.flagged == [0, 2]
    assert result.reasons[0].startswith("toxicity ") and result.reasons[0].endswith(" in chosen")
    assert " in chosen; toxicity " in result.reasons[2] and result.reasons[2].endswith(" in rejected")
    assert result.stats["preference"] == {"chosen_only": 1, "rejected_only": 1, "both": 1}
    assert result.stats["above_threshold"] == {"chosen": 2, "rejected": 2}
    assert SPEC.run(ds, SPEC.make_options({"flag_rejected": True})).flagged == [0, 1, 2]


def test_unpaired_flags_only_desirable_replies_unless_asked():
    ds = unpaired([("q1", "You stupid moron.", True), ("q2", "You stupid moron.", False), ("q3", "Sure, here.", True)])
    result = SPEC.run(ds)
    assert result.flagged == [0]
    assert result.stats["unpaired"] == {"desirable": 1, "undesirable": 1}
    assert SPEC.run(ds, SPEC.make_options({"flag_rejected": True})).flagged == [0, 1]


def test_text_data_is_scored_whole():
    result = SPEC.run(text(["A quiet article about gardening and tomatoes.", "User: hi\nBot: fuck you, idiot."]))
    assert result.flagged == [1]
    assert result.reasons[1].endswith(" in text") and result.stats["fields"] == ["text"]


# --------------------------------------------------------------------------- real data


def test_real_hh_rlhf_toxic_replies_are_flagged_and_alpaca_is_clean(corpus):
    """HH harmless: 56 chosen replies reach 0.6 (e.g. 815 "Yeah! Fuck them!", 1124 "Rednecks are
    sometimes stupid..."), and 130 rejected ones, counted but not flagged unless asked."""
    from profanity_check import predict_prob

    hh = load(corpus / "hh_rlhf" / "harmless_base_test.jsonl.gz").dataset
    result = SPEC.run(hh)
    # the same model called the plain way, one list per reply field, decides what must be found
    view = CheckData.from_dataset(hh)
    toxic = {f: np.asarray([bool(t) for t in view.texts(f)]) & (predict_prob(view.texts(f)) >= 0.6)
             for f in ("chosen", "rejected")}
    c, r = toxic["chosen"], toxic["rejected"]
    # the second opinion only clears flags: what is left is the plain model's flags minus those
    assert set(result.flagged) <= {int(view.index[p]) for p in np.flatnonzero(c)}
    cleared = result.stats["cleared_by_second_opinion"]
    assert {k: v + cleared[k] for k, v in result.stats["above_threshold"].items()} == \
        {"chosen": int(c.sum()), "rejected": int(r.sum())}
    assert (cleared["chosen"], result.count) == (14, 42)  # 56 before
    assert 40 <= result.count <= 80 and r.sum() > result.count  # rejected replies are the worse ones
    assert {815, 1124, 172, 2300} <= set(result.flagged)
    assert 1629 not in result.flagged  # its rejected reply is a list of swear words; its chosen is not toxic
    assert result.stats["top"][0]["score"] > 0.99
    assert [e["reason"][:23] for e in result.examples] == ["toxicity 1.00 in chosen"] * 3  # worst taught first
    both = SPEC.run(hh, SPEC.make_options({"flag_rejected": True}))
    assert result.count < both.count <= int((c | r).sum())
    alpaca = load(corpus / "llama_factory" / "alpaca_en_demo.json").dataset
    clean = SPEC.run(alpaca)
    assert clean.count / len(alpaca) <= 0.005  # 0 at 0.6: the highest is 0.59, "Did she eat a banana?"
    assert SPEC.run(alpaca, SPEC.make_options({"threshold": 0.5})).count <= 5


# --------------------------------------------------------------------------- detoxify backend


def test_detoxify_backend_loads_a_local_checkpoint_offline(tiny_detoxify):
    import detoxify
    import torch

    ckpt, model, tokenizer = tiny_detoxify
    replies, _ = _planted()
    backend = load_backend("detoxify", model=str(ckpt))
    assert isinstance(backend, DetoxifyBackend) and type(backend.detector) is detoxify.Detoxify
    assert backend.detector.class_names[0] == "toxicity" and len(backend.detector.class_names) == len(DETOXIFY_CLASSES)
    scores = np.array(backend.score(replies))
    assert scores.shape == (len(replies),) and ((scores >= 0) & (scores <= 1)).all()
    with torch.no_grad():  # the weights are the checkpoint's: the same model scores the same
        logits = model(**tokenizer(replies, return_tensors="pt", padding=True, truncation=True)).logits
    np.testing.assert_allclose(scores, torch.sigmoid(logits[:, 0]).numpy(), atol=1e-5)
    assert scores.std() > 0.01  # spread out, so the threshold below separates rows

    threshold = float(np.median(scores))
    ds = sft([("q", r) for r in replies])
    result = SPEC.run(ds, SPEC.make_options({"backend": "detoxify", "model": str(ckpt), "threshold": threshold}))
    assert result.flagged == [i for i, s in enumerate(scores) if s >= threshold]
    assert 0 < result.count < len(replies)
    assert result.stats["backend"] == "detoxify" and result.stats["model"] == str(ckpt)
    assert set(result.versions) == {"detoxify", "torch", "transformers"}
    assert sum(result.stats["histogram"]["counts"]["response"]) == len(replies)


def test_detoxify_model_type_that_needs_a_download_is_a_clear_error_offline():
    with pytest.raises(BackendError) as info:
        load_backend("detoxify", model="original")
    assert info.value.reason == "unreachable"
    message = str(info.value)
    assert "\n" not in message and "'original' must be downloaded" in message and "--toxicity-model PATH" in message
    with pytest.raises(BackendError, match="neither a checkpoint file nor a detoxify model type") as missing:
        load_backend("detoxify", model="no/such/file.ckpt")
    assert missing.value.reason == "model_not_found" and "original, unbiased" in str(missing.value)


def test_a_failed_detoxify_download_is_the_same_clear_error(monkeypatch):
    """Not marked offline, the real download runs and fails (a closed local port stands for no network)."""
    import detoxify.detoxify

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setitem(detoxify.detoxify.MODEL_URLS, "original", "http://127.0.0.1:9/toxic_original.ckpt")
    with pytest.raises(BackendError, match="'original' must be downloaded and needs network, but the download "
                                           "failed") as info:
        load_backend("detoxify", model="original")
    assert info.value.reason == "unreachable" and "\n" not in str(info.value)


def test_a_file_that_is_not_a_detoxify_checkpoint_is_a_clear_error(tmp_path):
    import torch

    bad = tmp_path / "bad.ckpt"
    torch.save({"weights": {}}, bad)
    with pytest.raises(BackendError, match="is not a detoxify checkpoint") as info:
        load_backend("detoxify", model=str(bad))
    assert info.value.reason == "malformed" and "\n" not in str(info.value)


# --------------------------------------------------------------------------- transformers backend


def test_transformers_backend_scores_are_the_pipeline_probability_of_the_toxic_label(tiny_classifier):
    from transformers import pipeline

    replies, _ = _planted()
    backend = load_backend("transformers", model=str(tiny_classifier), batch_size=4)
    assert isinstance(backend, TransformersBackend) and backend.labels == ["toxic"]
    scores = np.array(backend.score(replies))
    pipe = pipeline("text-classification", model=str(tiny_classifier), top_k=None)
    expected = [next(d["score"] for d in row if d["label"] == "toxic") for row in pipe(replies, truncation=True)]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert scores.std() > 0.01
    other = load_backend("transformers", model=str(tiny_classifier), label="non-toxic").score(replies)
    np.testing.assert_allclose(np.array(other) + scores, 1.0, atol=1e-5)

    threshold = float(np.median(scores))
    ds = preference([("q", r, "fine") for r in replies])
    result = SPEC.run(ds, SPEC.make_options({"backend": "transformers", "model": str(tiny_classifier),
                                             "threshold": threshold}))
    assert result.flagged == [i for i, s in enumerate(scores) if s >= threshold]
    assert result.stats["label"] == "toxic" and result.stats["backend"] == "transformers"


@pytest.mark.parametrize("labels, wanted, expected", [
    (["non-toxic", "toxic"], None, ["toxic"]),
    (["NOT_TOXIC", "TOXIC"], None, ["TOXIC"]),
    (["toxic", "severe_toxic", "obscene", "insult"], None, ["toxic"]),
    (["hate", "offensive", "neither"], None, ["hate", "offensive"]),
    (["normal", "offensive"], None, ["offensive"]),
    (["LABEL_0", "LABEL_1"], None, ["LABEL_1"]),
    (["neutral", "toxic"], "neutral", ["neutral"]),
])
def test_toxic_label_is_found_from_the_label_names(labels, wanted, expected):
    assert _toxic_labels(labels, wanted, "m") == expected


def test_unclear_or_unknown_labels_are_clear_errors():
    with pytest.raises(UnknownCheckError, match="cannot tell which label.*positive, negative"):
        _toxic_labels(["positive", "negative"], None, "sentiment-model")
    with pytest.raises(UnknownCheckError, match="no label 'toxic'.*choose from: a, b"):
        _toxic_labels(["a", "b"], "toxic", "m")


def test_transformers_model_that_is_not_there_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="transformers: cannot load") as info:
        load_backend("transformers", model=str(tmp_path / "missing"))
    assert info.value.reason == "model_not_found" and "\n" not in str(info.value)


# --------------------------------------------------------------------------- options and errors


def test_unknown_backend_and_bad_options_are_clear_errors():
    ds = sft([("q", "a")])
    with pytest.raises(UnknownCheckError, match="unknown backend 'nope'.*choose from: offline, detoxify, transformers"):
        run_checks(ds, checks=["toxicity"], options={"toxicity": {"backend": "nope"}})
    with pytest.raises(UnknownCheckError, match="unknown backend"):
        load_backend("nope")
    for bad, match in [({"threshold": 1.5}, "not in 0..1"), ({"model": "x"}, "takes no model"),
                       ({"backend": "transformers"}, "needs a model"), ({"label": "toxic"}, "only the transformers"),
                       ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(UnknownCheckError, match=match):
            run_checks(ds, checks=["toxicity"], options={"toxicity": bad})
    assert BACKENDS == ("offline", "detoxify", "transformers")


# --------------------------------------------------------------------------- CLI and workers


def _write_alpaca(path, outputs):
    path.write_text(json.dumps([{"instruction": f"Say thing {i}.", "input": "", "output": o}
                                for i, o in enumerate(outputs)]), encoding="utf-8")
    return path


def test_check_cli_writes_toxicity_into_quality_json(tmp_path):
    replies, toxic = _planted()
    data = _write_alpaca(tmp_path / "data.json", replies)
    out = tmp_path / "report"
    res = runner.invoke(app, ["check", str(data), "--out", str(out), "--checks", "toxicity"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    quality = json.loads((out / "quality.json").read_text())
    check = quality["checks"]["toxicity"]
    assert check["flagged"] == SPEC.run(load(data).dataset).flagged
    assert {i for i, t in enumerate(toxic) if t} <= set(check["flagged"])
    assert check["stats"]["backend"] == "offline" and check["options"]["threshold"] == 0.6
    assert "### `toxicity`" in (out / "dataset_quality_report.md").read_text()
    strict = runner.invoke(app, ["check", str(data), "--out", str(tmp_path / "strict"), "--checks", "toxicity",
                                 "--toxicity-threshold", "0.999"])
    assert strict.exit_code == 0
    assert len(json.loads((tmp_path / "strict" / "quality.json").read_text())["checks"]["toxicity"]["flagged"]) \
        < len(check["flagged"])


def test_check_cli_errors_are_one_line(tmp_path):
    data = _write_alpaca(tmp_path / "data.json", ["Fine."])
    for flags, text in [(["--toxicity-backend", "nope"], "unknown backend 'nope'"),
                        (["--toxicity-backend", "detoxify", "--toxicity-model", "original"], "must be downloaded")]:
        res = runner.invoke(app, ["check", str(data), "--out", str(tmp_path / "out"), "--checks", "toxicity", *flags])
        assert res.exit_code == 1
        assert res.stderr.count("\n") == 1 and text in res.stderr, res.stderr
    assert not (tmp_path / "out" / "quality.json").exists()


def test_num_proc_2_gives_the_same_results_as_1():
    """Enough rows for two batches, so spawned workers really score."""
    replies, toxic = _planted()
    n = 20_500
    ds = sft([(f"question {i}", replies[i % len(replies)]) for i in range(n)])
    one = run_checks(ds, checks=["toxicity"], num_proc=1).to_dict()["checks"]["toxicity"]
    two = run_checks(ds, checks=["toxicity"], num_proc=2).to_dict()["checks"]["toxicity"]
    assert one == two
    assert one["flagged"][-1] > 20_000 and one["count"] >= n * sum(toxic) / len(toxic) * 0.9


# --------------------------------------------------------------------------- false positives


def test_names_and_commands_are_not_profanity_but_insults_stay():
    """The offline model alone scores "Moby Dick" and `du -sh` as offensive; the second opinion
    masks names and code, and drops one harmless-sense word ("fool", "roast", "suck")."""
    replies = ["I love Moby Dick.", "Run `du -sh ~/data` to see its size.",
               "du -sh /var/log", "You can't fool me, please, just tell me what's up.",
               "I'd probably want to roast it over a spit.", "Black holes suck up light like a vacuum.",
               "Police are dicks", "Yeah! Fuck them!", "You are a stupid idiot.", "Nancy Pelosi sucks",
               "You are incompetent and should die."]
    plain = np.asarray(load_backend().score(replies))
    assert (plain[:6] >= 0.6).all()  # what users met
    result = SPEC.run(sft([("q", reply) for reply in replies]))
    assert result.flagged == [6, 7, 8, 9, 10]
    assert result.stats["cleared_by_second_opinion"] == {"response": 6}


LABELS = json.loads((Path(__file__).parent / "data" / "toxicity_labels.json").read_text())["files"]


def test_measured_precision_on_hand_labelled_real_flags(corpus):
    """Every reply the plain model flags in six corpus files is labelled by hand (tests/data/
    toxicity_labels.json). HH harmless chosen: precision 35/56 = 62.5% -> 32/42 = 76.2%, keeping 32
    of the 35 toxic ones (91%); with the alpaca_eval and gpteacher flags (all harmless: "roast a
    pig", "black holes ... suck up light", "destroy the artifact"): 35/61 = 57.4% -> 32/43 = 74.4%.
    alpaca_en_demo and codealpaca: nothing flagged, before or after."""
    from profanity_check import predict_prob

    before = after = true_before = true_after = 0
    for path, labels in LABELS.items():
        dataset = load(corpus / path).dataset
        view = CheckData.from_dataset(dataset)
        texts = view.texts(labels["field"])
        raw = {int(view.index[p]) for p in np.flatnonzero(predict_prob([t or " " for t in texts]) >= 0.6)}
        toxic, harmless = set(labels["toxic"]), set(labels["not_toxic"])
        assert raw == toxic | harmless, (path, sorted(raw - toxic - harmless))  # every flag is labelled
        flagged = set(SPEC.run(dataset).flagged)
        before, after = before + len(raw), after + len(flagged)
        true_before, true_after = true_before + len(raw & toxic), true_after + len(flagged & toxic)
    assert (true_before, before) == (35, 61) and (true_after, after) == (32, 43)
    assert true_after / after >= 0.70 > 0.60 > true_before / before
    assert true_after / true_before >= 0.9
