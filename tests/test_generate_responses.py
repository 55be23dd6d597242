"""Candidate responses: n per prompt from several models (stand-in and a tiny local model)."""

from __future__ import annotations

from collections import Counter

from hubtools.generate import InferenceClientBackend, TransformersBackend
from hubtools.generate.responses import Sampling, generate_responses, prompt_messages
from hubtools.records import Kind, dump_extra, load_extra, message
from hubtools.load import canonical_dataset
from tests.fixtures import build
from tests.fixtures.openai import OPENAI_TOKEN
from tests.openai_server import Fault


def prompts(n=4):
    return canonical_dataset([{"hubtools_index": i, "messages": [message("user", f"Explain topic {i} briefly.")],
                               "hubtools_extra": dump_extra({"prompt_id": f"c0/{i}", "task_type": "qa",
                                                             "source_chunk": "doc.txt:0"})}
                              for i in range(n)], Kind.SFT)


def test_n_candidates_from_two_models_with_sampling_recorded(openai_server, tmp_path):
    backends = [InferenceClientBackend(m, endpoint=openai_server.base_url, token=OPENAI_TOKEN)
                for m in ("stand-in-small", "stand-in-large")]
    result = generate_responses(prompts(), backends, n=3, sampling=Sampling(temperature=0.9, seed=10),
                                out_dir=tmp_path)
    rows = list(result.dataset)
    extras = [load_extra(r["hubtools_extra"]) for r in rows]
    assert result.summary["candidates"] == result.summary["expected"] == 24 and not result.failures
    assert Counter((e["prompt_id"], e["model"]) for e in extras) == {(f"c0/{i}", m): 3 for i in range(4)
                                                                     for m in ("stand-in-small", "stand-in-large")}
    assert [e["sampling"]["seed"] for e in extras[:3]] == [10, 11, 12]
    assert all(e["sampling"]["temperature"] == 0.9 and e["synthetic"] and e["task_type"] == "qa" for e in extras)
    assert rows[0]["messages"][0]["content"] == "Explain topic 0 briefly."
    assert rows[0]["messages"][1]["role"] == "assistant"
    texts = [r["messages"][1]["content"] for r, e in zip(rows, extras) if e["prompt_id"] == "c0/0"]
    assert len(set(texts)) == 6  # candidates differ
    assert [r["hubtools_index"] for r in rows] == list(range(24))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.stand-in-large.jsonl",
                                                          "checkpoint.stand-in-small.jsonl"]


def test_failed_candidates_are_counted_not_lost(openai_server):
    openai_server.fail_when("topic 2", Fault(status=500), times=100)
    backend = InferenceClientBackend("stand-in-small", endpoint=openai_server.base_url, token=OPENAI_TOKEN)
    result = generate_responses(prompts(), [backend], n=2, max_retries=1, base_delay=0.01)
    assert result.summary["candidates"] + result.summary["failed"] == result.summary["expected"] == 8
    assert {(f["prompt_index"], f["candidate"]) for f in result.failures} == {(2, 0), (2, 1)}
    assert all(f["reason"].startswith("server_error") for f in result.failures)


def test_prompts_come_from_any_kind():
    sft = build.sft([("q", "a")])[0]
    assert prompt_messages(sft, Kind.SFT) == [sft["messages"][0]]
    pref = build.preference([("q", "good", "bad")])[0]
    assert prompt_messages(pref, Kind.PREFERENCE)[0]["content"] == "q"
    assert prompt_messages({"text": "hello"}, Kind.TEXT) == [message("user", "hello")]


def test_a_tiny_local_model_answers(tiny_causal_lm):
    result = generate_responses(prompts(2), [TransformersBackend(tiny_causal_lm)], n=2,
                                sampling=Sampling(max_tokens=4, seed=3))
    extras = [load_extra(r["hubtools_extra"]) for r in result.dataset]
    assert result.summary["candidates"] == 4 and {e["model"] for e in extras} == {tiny_causal_lm.name}
    assert all(r["messages"][-1]["role"] == "assistant" for r in result.dataset)
