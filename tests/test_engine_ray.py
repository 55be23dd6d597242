"""The Ray engine gives the local engine's answers: every corpus file and a synthetic file with
planted duplicates, on a local Ray this module starts (and stops) itself."""

from __future__ import annotations

import json
import random

import orjson
import pytest
import ray

from hubtools.checks import run_checks
from hubtools.errors import HubtoolsError
from hubtools.load import load

#: files of the corpus that are not datasets (a registry of datasets, judge prompt templates
#: are datasets too, so only this one is left out)
NOT_DATA = {"README.md", "dataset_info.json"}


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray for the module: 2 CPUs, a 400 MB object store (spilling beyond)."""
    ray.init(num_cpus=2, object_store_memory=400 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def corpus_files(corpus):
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.name not in NOT_DATA)


def assert_same(local, distributed, where: str) -> None:
    """Same checks, same flagged indices, reasons and figures."""
    assert list(local.results) == list(distributed.results), where
    for name, expected in local.results.items():
        got = distributed.results[name]
        assert got.flagged == expected.flagged, f"{where}: {name} flags differ"
        assert got.reasons == expected.reasons, f"{where}: {name} reasons differ"
        assert got.stats == expected.stats, f"{where}: {name} figures differ"
        assert got.applicable == expected.applicable, f"{where}: {name}"


def planted(path, rows: int, corpus) -> tuple[set[int], set[int]]:
    """Alpaca records from the corpus's words with planted exact (case/space) and near
    (one word changed in a long reply) duplicates; returns (exact, near) planted indices."""
    seeds = json.loads((corpus / "llama_factory" / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    vocab = sorted({w for s in seeds for w in s["output"].split() if w.isalpha()})
    rng = random.Random(7)
    records, exact, near = [], set(), set()
    for i in range(rows):
        roll = rng.random()
        if i > 100 and roll < 0.03:
            base = records[rng.randrange(i)]
            records.append({**base, "instruction": "  " + base["instruction"].upper()})
            exact.add(i)
        elif i > 100 and roll < 0.06:
            base = records[rng.randrange(i)]
            words = base["output"].split()
            if len(words) > 60:
                words[rng.randrange(len(words))] = rng.choice(vocab)
                near.add(i)
            records.append({**base, "output": " ".join(words)})
        else:
            seed = seeds[rng.randrange(len(seeds))]
            mutate = lambda text: " ".join(rng.choice(vocab) if rng.random() < 0.4 else w for w in text.split())
            records.append({"instruction": mutate(seed["instruction"]), "input": seed["input"],
                            "output": mutate(seed["output"]) + f" ({i})"})
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return exact, near


def test_every_corpus_file_same_results_on_ray(local_ray, corpus):
    """Each corpus file the local engine can check gives the same results on Ray."""
    compared = 0
    for path in corpus_files(corpus):
        try:
            loaded = load(path)
        except HubtoolsError:  # not a dataset (both engines start from the same load)
            continue
        local = run_checks(loaded)
        distributed = run_checks(loaded, engine="ray")
        assert_same(local, distributed, str(path.relative_to(corpus)))
        engine = distributed.dataset["engine"]
        assert engine["name"] == "ray" and engine["cluster"]["cpus"] == 2
        for name, figures in engine["checks"].items():
            assert figures["records_in"] == loaded.valid
            assert figures["flagged"] == distributed.results[name].count
        compared += 1
    assert compared >= 30


def test_planted_duplicates_found_alike(local_ray, corpus, tmp_path):
    """20k records, several batches: the planted duplicates are flagged, identically."""
    path = tmp_path / "planted.jsonl"
    exact, near = planted(path, 20_000, corpus)
    loaded = load(path)
    local = run_checks(loaded, checks="exact_duplicates,near_duplicates,length_outliers,language,pii,refusals")
    distributed = run_checks(loaded, checks="exact_duplicates,near_duplicates,length_outliers,language,pii,"
                                            "refusals", engine="ray")
    assert_same(local, distributed, "planted")
    assert exact <= set(distributed.results["exact_duplicates"].flagged)
    assert near <= set(distributed.results["near_duplicates"].flagged) | exact
    steps = distributed.dataset["engine"]["checks"]["exact_duplicates"]["steps"]
    assert steps[0]["where"] == "ray tasks"


def test_unknown_engine_is_an_error(corpus):
    with pytest.raises(HubtoolsError, match="unknown engine"):
        run_checks(corpus / "llama_factory" / "identity.json", engine="spark")
