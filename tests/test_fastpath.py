"""The columnar fast path gives exactly what the record-by-record path gives, or steps aside."""

from __future__ import annotations

import json

import pytest

import hubtools
from hubtools._fastpath import fast_load
from hubtools.convert import write
from hubtools.io import open_source

from .conftest import CORPUS


def _rows(result):
    return result.dataset.to_list()


@pytest.fixture
def alpaca_jsonl(tmp_path):
    rows = json.loads((CORPUS / "llama_factory/alpaca_en_demo.json").read_text())
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row["id"] = f"r{i}"  # an extra column must survive the fast path too
    path = tmp_path / "alpaca.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    return path


@pytest.mark.parametrize("name", ["alpaca", "text"])
def test_fast_path_matches_the_record_by_record_path(name, alpaca_jsonl):
    path = alpaca_jsonl if name == "alpaca" else CORPUS / "llama_factory/c4_demo.jsonl"
    assert fast_load(open_source(path), format=None, max_chars=1_000_000) is not None
    fast, slow = hubtools.load(path), hubtools.load(path, fast=False)
    assert fast.format == slow.format == name
    assert fast.summary() == slow.summary()
    assert fast.fields == slow.fields and fast.samples == slow.samples
    assert _rows(fast) == _rows(slow)


def test_fast_path_output_writes_back_to_the_same_alpaca(alpaca_jsonl, tmp_path):
    write(hubtools.load(alpaca_jsonl), tmp_path / "out.jsonl", format="alpaca")
    original = [json.loads(line) for line in alpaca_jsonl.read_text().splitlines() if line.strip()]
    again = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert again == original


@pytest.mark.parametrize("bad", [
    {"instruction": "a", "input": "", "output": ""},        # a rule broken
    {"instruction": "a", "input": "", "output": None},      # a null
    {"conversations": [{"from": "human", "value": "x"}]},    # another format
])
def test_one_bad_record_sends_the_file_to_the_exact_path(bad, tmp_path):
    path = tmp_path / "data.jsonl"
    good = {"instruction": "Say hi", "input": "", "output": "Hi!"}
    path.write_text("\n".join(json.dumps(r) for r in [good, bad, good]) + "\n")
    assert fast_load(open_source(path), format=None, max_chars=1_000_000) is None
    result = hubtools.load(path)
    assert result.valid == 2 and result.quarantine[0].index == 1
    assert result.quarantine[0].raw == json.dumps(bad)


@pytest.fixture
def chat_jsonl(tmp_path):
    """The real ShareGPT file as JSON Lines, and the same conversations in OpenAI chat form."""
    from hubtools.convert import convert

    rows = json.loads((CORPUS / "fastchat/dummy_conversation.json").read_text())
    sharegpt = tmp_path / "sharegpt.jsonl"
    sharegpt.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    openai = tmp_path / "openai.jsonl"
    convert(sharegpt, openai, to="openai")
    return {"sharegpt": sharegpt, "openai": openai}


@pytest.mark.parametrize("name", ["sharegpt", "openai"])
def test_chat_fast_path_matches_the_record_by_record_path(name, chat_jsonl):
    path = chat_jsonl[name]
    assert fast_load(open_source(path), format=None, max_chars=1_000_000) is not None
    fast, slow = hubtools.load(path), hubtools.load(path, fast=False)
    assert fast.format == slow.format == name and fast.valid == 500
    assert fast.summary() == slow.summary() and fast.samples == slow.samples
    assert _rows(fast) == _rows(slow)


GOOD_CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": "Hello!"}], "id": "a"}


@pytest.mark.parametrize(("change", "fast"), [
    (lambda r: r, True),
    (lambda r: {**r, "messages": [{"role": "human", "content": "Hi"}, {"role": "gpt", "content": "Yo"}]}, True),
    (lambda r: {**r, "messages": r["messages"][1:] + [r["messages"][0]]}, False),  # system turn at the end
    (lambda r: {**r, "messages": r["messages"][:2]}, False),                        # ends on the user
    (lambda r: {**r, "messages": r["messages"][:1]}, False),                        # only a system turn
    (lambda r: {**r, "messages": [{"role": "narrator", "content": "x"}] + r["messages"][1:]}, False),
    (lambda r: {**r, "messages": r["messages"][:2] + [{"role": "assistant", "content": "  "}]}, False),
    (lambda r: {**r, "messages": r["messages"][:2] + [{"role": "tool", "content": "42"}]}, False),
    (lambda r: {**r, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                                  {"role": "assistant", "content": "Yo"}]}, False),  # content parts
    (lambda r: {**r, "messages": r["messages"][1:] + [{"role": "user", "content": "Hm", "name": "bob"}]}, False),
    (lambda r: {**r, "system": "Be kind."}, False),                                  # a system column
    (lambda r: {**r, "messages": []}, False),
])
def test_chat_records_the_fast_path_cannot_vouch_for_take_the_exact_path(change, fast, tmp_path):
    path = tmp_path / "chat.jsonl"
    rows = [GOOD_CHAT, change(json.loads(json.dumps(GOOD_CHAT))), GOOD_CHAT]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert (fast_load(open_source(path), format=None, max_chars=1_000_000) is not None) is fast
    quick, exact = hubtools.load(path), hubtools.load(path, fast=False)
    assert quick.summary() == exact.summary() and _rows(quick) == _rows(exact)
    assert [(q.index, q.code) for q in quick.quarantine] == [(q.index, q.code) for q in exact.quarantine]


def test_tool_call_conversations_take_the_exact_path(tmp_path):
    rows = json.loads((CORPUS / "llama_factory/glaive_toolcall_en_demo.json").read_text())
    path = tmp_path / "glaive.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    assert fast_load(open_source(path), format=None, max_chars=1_000_000) is None
    assert _rows(hubtools.load(path)) == _rows(hubtools.load(path, fast=False))


def test_flat_dpo_fast_path_matches_the_record_by_record_path(tmp_path):
    from hubtools.convert import convert

    path = tmp_path / "dpo.jsonl"
    convert(CORPUS / "llama_factory/dpo_en_demo.json", path, to="dpo")  # 80 of its pairs carry a system prompt
    assert fast_load(open_source(path), format=None, max_chars=1_000_000) is not None
    fast, slow = hubtools.load(path), hubtools.load(path, fast=False)
    assert fast.format == slow.format == "dpo" and fast.summary() == slow.summary()
    assert _rows(fast) == _rows(slow)
    assert sum(r["prompt"][0]["role"] == "system" for r in _rows(fast)) == 80


GOOD_PAIR = {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven.", "id": 1}


@pytest.mark.parametrize(("change", "fast"), [
    (lambda r: r, True),
    (lambda r: {**r, "system": "Be brief."}, True),
    (lambda r: {**r, "system": ""}, True),
    (lambda r: {**r, "system": "   "}, False),                 # a blank system prompt
    (lambda r: {**r, "rejected": " Blue. "}, False),            # the same reply twice
    (lambda r: {**r, "chosen": ""}, False),
    (lambda r: {**r, "score_chosen": 7.5, "score_rejected": 2}, True),
    (lambda r: {**r, "score_chosen": 7.5}, True),
    (lambda r: {**r, "score_chosen": "high"}, False),
    (lambda r: {**r, "score_chosen": True}, False),
])
def test_dpo_pairs_the_fast_path_cannot_vouch_for_take_the_exact_path(change, fast, tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [GOOD_PAIR, change(dict(GOOD_PAIR)), GOOD_PAIR]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert (fast_load(open_source(path), format=None, max_chars=1_000_000) is not None) is fast
    quick, exact = hubtools.load(path), hubtools.load(path, fast=False)
    assert quick.summary() == exact.summary() and _rows(quick) == _rows(exact)
    assert [(q.index, q.code) for q in quick.quarantine] == [(q.index, q.code) for q in exact.quarantine]
