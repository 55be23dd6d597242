"""The race's own helpers (bench/bench_peers.py): the pinned requirements, the agreement and
speed-up figures. The race itself (peers in their own virtualenvs) never runs in the suite."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import bench_peers  # noqa: E402


def test_every_peer_requirement_is_pinned_with_what_the_peers_pull_in():
    sections = bench_peers.peer_requirements((BENCH / "peers" / "requirements.txt").read_text(encoding="utf-8"))
    assert set(sections) == set(bench_peers.PEERS)
    for name, lines in sections.items():
        assert lines and all("==" in line for line in lines), name
    pins = {name: {line.split("==")[0].split("[")[0].lower(): line.split("==")[1] for line in lines}
            for name, lines in sections.items()}
    assert pins["datatrove"]["datatrove"] == "0.10.1"
    assert {"spacy", "orjson"} <= set(pins["datatrove"])
    assert int(pins["datatrove"]["xxhash"].split(".")[0]) < 4  # datatrove's MinHash breaks on xxhash 4
    assert pins["data-juicer"]["py-data-juicer"] == "1.6.1"
    # pinned, or data-juicer installs them (ray, a CUDA torch of several GB) by itself on first use
    assert pins["data-juicer"]["torch"] == "2.13.0"
    assert {"ray", "aiohttp", "scipy"} <= set(pins["data-juicer"])


def test_a_requirement_outside_a_peer_section_is_refused():
    with pytest.raises(ValueError, match="before any"):
        bench_peers.peer_requirements("numpy==2.0\n# peer: a\nx==1\n")


def test_agreement_and_speedup():
    assert bench_peers.jaccard([1, 2, 3], [2, 3, 4]) == 0.5
    assert bench_peers.jaccard([], []) == 1.0
    assert bench_peers.jaccard([1], []) == 0.0
    hub = {"seconds": 2.0, "cpu_seconds": 3.0, "label": "hubtools"}
    peers = [{"seconds": 10.0, "cpu_seconds": 30.0, "label": "a"}, {"seconds": 8.0, "cpu_seconds": 40.0, "label": "b"},
             {"error": "boom", "label": "c"}]
    assert bench_peers._speedup(hub, peers) == (4.0, "b")  # the fastest peer that ran
    assert bench_peers._speedup(hub, peers, "cpu_seconds") == (10.0, "a")
    assert bench_peers._speedup({"error": "x"}, peers) is None


def test_looped_replies_are_longer_and_of_a_known_kind():
    rng = random.Random(0)
    reply = "Paris is the capital of France. It lies on the Seine. Many people visit it each year."
    kinds = set()
    for _ in range(40):
        kind, text = bench_peers.loop_reply(reply, rng)
        kinds.add(kind)
        assert len(text) > len(reply) or kind == "sentence" and text.count(".") >= 2
    assert kinds == {"sentence", "lines", "tail", "paragraph"}


def test_the_gopher_runner_reads_the_replies_alone_and_catches_the_planted_loops(tmp_path):
    """hubtools' side of the Gopher line on a small file: the reply column alone, one process
    (under the workers' size floor), and the loops planted the bench's way are flagged."""
    import orjson

    rng = random.Random(2)
    honest = ["Paris is the capital of France. It lies on the Seine. Many people visit it each year.",
              "Water boils at 100 degrees Celsius at sea level, and at a lower temperature higher up.",
              "A haiku has three lines of five, seven and five syllables."]
    path, planted = tmp_path / "replies.jsonl", []
    with path.open("wb") as fh:
        for i in range(60):
            reply = honest[i % 3]
            if i % 5 == 0:
                kind, reply = bench_peers.loop_reply(reply, rng)
                if kind != "sentence" or reply.count(".") >= 3:  # said twice in one line is no loop for hubtools
                    planted.append(i)
            fh.write(orjson.dumps({"instruction": "q", "input": "", "output": reply, "extra": [1, 2]}) + b"\n")
    flagged, timings = bench_peers.gopher_child(str(path), 2, {})
    assert timings["workers"] == 1 and "read replies" in timings
    assert len(planted) >= 8, planted
    assert set(planted) <= flagged <= set(range(0, 60, 5)), (planted, flagged)
