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
