"""The diversity and categories figures on Ray (hubtools.checks.engines.ray_aggregate) are the
local engine's, figure for figure: each Ray task returns a partial (counts with first positions,
distinct words of the sample, category counts and examples) and the driver only joins them.
One local Ray for the module."""

from __future__ import annotations

import random

import orjson
import pytest

from hubtools.checks import REGISTRY
from hubtools.checks.base import BATCH_SIZE, CheckData
from hubtools.checks.categories import CategoryOptions
from hubtools.checks.diversity import DiversityOptions
from hubtools.checks.engines.ray import RayCheckData, RayEngine
from hubtools.load import load
from tests import test_engine_ray_shuffle

#: one small local Ray for the module (the duplicate checks' test module's fixture)
ray_engine = test_engine_ray_shuffle.ray_engine

CORPUS_FILES = ["llama_factory/alpaca_en_demo.json", "self_instruct/seed_tasks.jsonl",
                "hh_rlhf/harmless_base_test.jsonl.gz", "llama_factory/alpaca_zh_demo.json"]


def both(engine: RayEngine, loaded, check: str, options=None):
    """The check's result on the local view and on the Ray view, and the Ray steps."""
    local = REGISTRY[check].run(CheckData.from_dataset(loaded.dataset), options)
    engine.begin(check)
    distributed = REGISTRY[check].run(RayCheckData.wrap(CheckData.from_dataset(loaded.dataset), engine), options)
    steps = list(engine._steps)
    return local, distributed, steps


def assert_same(local, distributed, where: str) -> None:
    assert distributed.flagged == local.flagged, f"{where}: flags differ"
    assert distributed.reasons == local.reasons, f"{where}: reasons differ"
    assert distributed.stats == local.stats, f"{where}: figures differ"


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_same_figures(ray_engine, corpus, name):
    """Every corpus file: the same diversity and category figures, on Ray tasks, not the driver."""
    loaded = load(corpus / name)
    for check in ("diversity", "categories"):
        local, distributed, steps = both(ray_engine, loaded, check)
        assert_same(local, distributed, f"{name} {check}")
        assert steps and {s["where"] for s in steps} == {"ray tasks"}, steps
    assert local.stats["total"] == len(loaded.dataset)


def synthetic(path, rows: int) -> None:
    """Prompts over several Ray blocks: planted templates (over-used, spread over every block),
    openings and opening words in near-equal numbers (ties), categories of every kind."""
    rng = random.Random(7)
    vocab = [f"w{k}" for k in range(3_000)]
    openers = ["Write a poem about", "Explain why", "Translate into German:", "Summarize this:",
               "Please list ideas for", "Compute 3 + 4 and", "hello there", "Classify the sentiment of"]
    names = ["Paris", "Lima", "Oslo", "Quito", "Hanoi"]
    texts = []
    for i in range(rows):
        r = rng.random()
        if r < 0.06:
            texts.append(f"What is the capital of {rng.choice(names)} in {rng.randint(1900, 2020)}?")
        elif r < 0.09:
            texts.append(f'Translate "{rng.choice(vocab)} {rng.choice(vocab)}" into German.')
        else:
            texts.append(f"{openers[i % len(openers)]} " + " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25))))
    path.write_bytes(b"".join(orjson.dumps({"instruction": t, "input": "", "output": "Done."}) + b"\n" for t in texts))


def test_synthetic_over_blocks(ray_engine, tmp_path):
    """42,000 prompts in three blocks: the same figures and flags with a sample smaller than the
    data, over-used templates with a ``keep`` below the cap (members flagged from the offsets of
    earlier blocks), and off-scope categories flagged."""
    path = tmp_path / "prompts.jsonl"
    synthetic(path, 42_000)
    loaded = load(path)
    assert len(loaded.dataset) > 2 * BATCH_SIZE
    opts = DiversityOptions(sample_size=9_000, keep=7, min_template_count=5, max_template_share=0.001)
    local, distributed, steps = both(ray_engine, loaded, "diversity", opts)
    assert_same(local, distributed, "diversity")
    assert local.stats["sample"]["prompts"] == 9_000
    assert local.stats["templates"]["over_used"] > 2 and local.count > 1_000
    assert any(s["step"] == "diversity: members beyond the cap" for s in steps), steps
    assert max(s["batches"] for s in steps) >= 3, steps
    assert "returns a partial" in ray_engine.describe()["dataset_wide"]

    opts = CategoryOptions(intended=["qa", "translation", "code"], flag_unintended=True, examples=4)
    local, distributed, _ = both(ray_engine, loaded, "categories", opts)
    assert_same(local, distributed, "categories off scope")
    assert local.count > 10_000 and len(local.stats["examples"]) >= 5
