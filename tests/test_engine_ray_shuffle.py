"""The duplicate checks' dataset-wide steps on Ray (hubtools.checks.engines.ray_shuffle) find
what the local engine finds: the same groups, the same near-duplicate clusters row by row
(chains A~B~C whose ends are not similar, so only connected components join them), on a local
Ray this module starts once."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest
import ray

from hubtools.checks import REGISTRY, run_checks
from hubtools.checks.base import CheckData
from hubtools.checks.engines.ray import RayCheckData, RayEngine
from hubtools.checks.minhash import choose_bands
from hubtools.checks.near_duplicates import NearDuplicateOptions, _graph
from hubtools.load import load
from hubtools.text import jaccard, word_shingles

#: near_duplicates figures that count compared pairs: locally a pair already inside one cluster
#: is skipped, on Ray every candidate pair is decided (the clusters are the same)
PAIR_FIGURES = {"candidate_pairs", "exact_pairs", "similar_pairs", "rejected_pairs", "jaccard_histogram"}


@pytest.fixture(scope="module")
def ray_engine():
    """One small local Ray for the module (2 CPUs), and an engine connected to it."""
    ray.init(num_cpus=2, object_store_memory=300 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    engine = RayEngine()
    engine.connect()
    try:
        yield engine
    finally:
        ray.shutdown()


def assert_near_same(local, distributed, where: str) -> None:
    """Same flagged records and clusters; a Ray reason names a similar neighbour in the same
    cluster (not always the one the local engine compared)."""
    assert distributed.flagged == local.flagged, f"{where}: near_duplicates flags differ"
    assert set(distributed.reasons) == set(local.reasons), where
    ignore = PAIR_FIGURES | {"largest_clusters"}
    assert {k: v for k, v in distributed.stats.items() if k not in ignore} == \
        {k: v for k, v in local.stats.items() if k not in ignore}, f"{where}: near_duplicates figures differ"
    strip = [{k: v for k, v in c.items() if k != "min_jaccard"} for c in local.stats.get("largest_clusters", [])]
    assert strip == [{k: v for k, v in c.items() if k != "min_jaccard"}
                     for c in distributed.stats.get("largest_clusters", [])], where


def _sentence(rng: random.Random, vocab: list[str], words: int) -> list[str]:
    return [rng.choice(vocab) for _ in range(words)]


def chained(path, rows: int) -> list[list[int]]:
    """Text records: unrelated ones, exact copies (case and spacing changed), and chains in which
    each record changes one word of the one before (neighbours similar at about 0.85, the ends
    of a chain not), the members placed at random positions. Returns the chains' positions."""
    rng = random.Random(11)
    vocab = [f"w{k}" for k in range(5_000)]
    texts: list[str | None] = [None] * rows
    free = list(range(rows))
    rng.shuffle(free)
    chains = []
    for _ in range(rows // 40):
        words = _sentence(rng, vocab, 40)
        members = sorted(free.pop() for _ in range(rng.randint(3, 7)))
        rng.shuffle(members)  # the chain's order is not its members' order in the file
        for pos in members:
            texts[pos] = " ".join(words)
            words = list(words)
            words[rng.randrange(len(words))] = rng.choice(vocab)
        chains.append(sorted(members))
    for pos in free:
        texts[pos] = " ".join(_sentence(rng, vocab, 40))
    for _ in range(rows // 50):  # exact copies of an earlier record, case and spaces changed
        a, b = sorted(rng.sample(free, 2))
        texts[b] = "  " + texts[a].upper()
    path.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in texts))
    return chains


def test_chains_same_clusters_row_by_row(ray_engine, tmp_path):
    """3,000 records with chains: the Ray graph labels every row as the local one does, and the
    check flags the same records, with components taking more than one round."""
    path = tmp_path / "chains.jsonl"
    chains = chained(path, 3_000)
    loaded = load(path)
    data = CheckData.from_dataset(loaded.dataset)
    opts = NearDuplicateOptions()
    bands, rows_per_band = choose_bands(opts.threshold, opts.num_perm)
    names = list(data.fields)
    local = _graph(data, names, opts, bands, rows_per_band)
    view = RayCheckData.wrap(data, ray_engine)
    ray_engine.begin("near_duplicates")
    distributed = view.shuffle.near_duplicate_graph(view, names, opts, bands, rows_per_band)
    steps = [s["step"] for s in ray_engine._steps]
    assert np.array_equal(distributed.labels(len(data)), local.labels(len(data)))
    assert (distributed.identical, distributed.largest, distributed.compared, distributed.short) == \
        (local.identical, local.largest, local.compared, local.short)
    # every Ray pair is a verified one, and Ray decided at least the pairs the local engine did
    assert (distributed.edge_j >= opts.threshold - 1e-9).all()
    assert distributed.counts["candidate_pairs"] >= local.counts["candidate_pairs"]
    rounds = [int(s.split("(")[1].split()[0]) for s in steps if "connected components" in s]
    assert rounds and rounds[0] >= 2, steps

    # chains are one cluster although their ends are not similar (LSH finds a link at 0.85
    # with probability 0.999, so nearly every chain is whole)
    texts = data.fields["text"].to_pylist()
    whole = [c for c in chains if len(c) >= 5 and len(set(local.labels(len(data))[c].tolist())) == 1]
    assert len(whole) >= 0.9 * len([c for c in chains if len(c) >= 5])
    ends = [jaccard(word_shingles(texts[c[0]], 3), word_shingles(texts[c[-1]], 3)) for c in whole]
    assert min(ends) < opts.threshold

    # through the checks: the same flags, and each Ray reason names a similar row of its cluster
    checks = "exact_duplicates,near_duplicates"
    on_local, on_ray = run_checks(loaded, checks=checks), run_checks(loaded, checks=checks, engine=ray_engine)
    ex_local, ex_ray = on_local.results["exact_duplicates"], on_ray.results["exact_duplicates"]
    assert (ex_ray.flagged, ex_ray.reasons, ex_ray.stats) == (ex_local.flagged, ex_local.reasons, ex_local.stats)
    assert ex_local.count >= 50
    near = on_ray.results["near_duplicates"]
    assert_near_same(on_local.results["near_duplicates"], near, "chains")
    assert near.count >= len(chains)
    label = dict(zip(data.index.tolist(), local.labels(len(data)).tolist()))
    for index, reason in near.reasons.items():
        other = int(reason.split("#")[1].split()[0])
        assert label[other] == label[index]
        assert float(reason.rsplit(" ", 1)[1].rstrip(")")) >= opts.threshold - 0.005
    where = {s["step"]: s["where"] for s in on_ray.dataset["engine"]["checks"]["exact_duplicates"]["steps"]}
    assert where["exact duplicates: group by example"] == "ray shuffle"
    assert "group on Ray" in on_ray.dataset["engine"]["dataset_wide"]


def test_exact_duplicate_prompts_grouped_on_ray(ray_engine, corpus):
    """SFT data: example and prompt groups (empty prompts never grouped) as locally."""
    loaded = load(corpus / "llama_factory" / "alpaca_en_demo.json")
    local = REGISTRY["exact_duplicates"].run(CheckData.from_dataset(loaded.dataset))
    view = RayCheckData.wrap(CheckData.from_dataset(loaded.dataset), ray_engine)
    distributed = REGISTRY["exact_duplicates"].run(view)
    assert (distributed.flagged, distributed.reasons, distributed.stats) == (local.flagged, local.reasons, local.stats)
    assert local.stats["same_prompt"] > 0


def test_verification_ships_only_rows_named_by_a_pair(ray_engine, tmp_path):
    """The pair verification is a semi-join: the bit set of the rows some candidate pair names
    (built block by block), and only those rows' signatures (or texts) enter the shuffles."""
    import pyarrow as pa

    from hubtools.checks.engines.ray import POS
    from hubtools.checks.engines.ray_shuffle import Blocks, RayShuffle, _join_rows

    rows = 1_003  # not a multiple of 8: the last byte is partly used
    rng = np.random.default_rng(3)
    a = rng.integers(0, rows - 1, 150)
    b = np.minimum(a + rng.integers(1, 50, 150), rows - 1)
    pairs = Blocks([ray.put(pa.table({"a": a[:75], "b": b[:75]})), ray.put(pa.table({"a": a[75:], "b": b[75:]}))])
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"text": f"t{i}"}) + b"\n" for i in range(rows)))
    data = CheckData.from_dataset(load(path).dataset)
    shuffle = RayShuffle(RayCheckData.wrap(data, ray_engine))
    ref = shuffle.named_rows(pairs, rows)
    named = np.flatnonzero(np.unpackbits(ray.get(ref), bitorder="little")[:rows])
    assert named.tolist() == sorted(set(a.tolist()) | set(b.tolist()))
    assert len(named) < rows // 2

    sketch = pa.table({POS: np.arange(rows), "signature": pa.array([b"ab"] * rows, pa.binary(2))})
    sent = _join_rows(sketch, data=True, column="signature", kind=pa.binary(), bits=ref)
    assert sent.column("node").to_pylist() == named.tolist()
    assert sent.column("val").to_pylist() == [b"ab"] * len(named)
    view = pa.table({POS: np.arange(rows), "prompt": [f"t{i}" for i in range(rows)],
                     "response": [f"r{i}" for i in range(rows)]})
    sent = _join_rows(view, data=True, fields=["prompt", "response"], kind=pa.large_string(), bits=ref)
    assert sent.column("val").to_pylist() == [f"t{i}\nr{i}" for i in named]  # joined as the sketch joins



def test_a_block_is_cut_into_partitions_that_hold_each_key_once_in_order():
    """The task shuffle's two halves: a block cut by key hash (every row in exactly one piece,
    rows of a key together, order kept), and a partition's pieces joined, empty and column-less
    pieces (an empty block passes a Ray map untouched) left out, the function not called on none."""
    import pyarrow as pa

    from hubtools.checks.engines.ray_blocks import _joined, _split

    keys = np.array([5, 3, 5, 9, 3, 3, 1, 5], np.int64)
    table = pa.table({"k": keys, "row": np.arange(len(keys))})
    pieces = _split("k", 3, table)
    assert len(pieces) == 3 and sum(p.num_rows for p in pieces) == len(keys)
    for piece in pieces:
        rows = piece.column("row").to_numpy()
        assert (np.diff(rows) > 0).all()  # order kept
        others = [q for q in pieces if q is not piece]
        assert not set(piece.column("k").to_pylist()) & {k for q in others for k in q.column("k").to_pylist()}
    assert _split("k", 3, pa.table({})) == (pa.table({}),) * 3
    # consecutive blocks split together (empty, column-less ones left out): the same pieces
    together = _split("k", 3, table.slice(0, 3), pa.table({}), table.slice(3))
    assert [p.to_pydict() for p in together] == [p.to_pydict() for p in pieces]
    calls = []
    assert _joined(lambda t: calls.append(t.num_rows) or t, {}, pa.table({}), pieces[0].slice(0, 0)).num_rows == 0
    assert calls == []
    whole = _joined(lambda t: t, {}, pa.table({}), *pieces)
    assert sorted(whole.column("row").to_pylist()) == list(range(len(keys)))


def _plus(table, *, n):
    """Module level: Ray workers import it."""
    import pyarrow as pa

    return pa.table({"x": pa.array(table.column("x").to_numpy() + n)})


def test_blocks_run_pending_steps_once_as_one_task_per_block(ray_engine):
    """The shuffles' steps between Ray tasks: maps, selections and renames run as one task per
    block when the blocks are needed, once (the result replaces the steps); an empty block passes
    untouched, as through a Ray Data map; union keeps block order; count sums the blocks."""
    import pyarrow as pa

    from hubtools.checks.engines.ray_shuffle import Blocks, _collect, _totals

    blocks = Blocks([ray.put(pa.table({"x": [1, 2], "y": [0, 0]})), ray.put(pa.table({})),
                     ray.put(pa.table({"x": [5], "y": [1]}))])
    plus = blocks.select_columns(["x"]).map_batches(_plus, n=10).rename_columns({"x": "z"})
    refs = plus.to_arrow_refs()
    assert len(refs) == 3 and plus.to_arrow_refs() == refs  # made once
    tables = ray.get(refs)
    assert [t.to_pydict() for t in tables] == [{"z": [11, 12]}, {}, {"z": [15]}]
    assert plus.count() == 3 and plus.materialize() is plus
    both = plus.union(Blocks([ray.put(pa.table({"z": [7]}))]))
    assert _collect(both).column("z").to_pylist() == [11, 12, 15, 7]
    assert _totals(both, ["z"]) == {"sum(z)": 45, "max(z)": 15}
