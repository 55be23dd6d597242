"""The ``near_duplicates`` check on a planted set: near copies (true shingle Jaccard >= 0.9) vs
related records (Jaccard <= 0.5), clusters, the threshold option, and a datasketch baseline."""

from __future__ import annotations

import json
import random
import re

import pytest
from datasketch import MinHash, MinHashLSH

from hubtools.checks import REGISTRY
from tests.fixtures.build import preference, sft, text

SPEC = REGISTRY["near_duplicates"]
SHINGLE = 3  # the check's default shingle size

N_BASES = 200
N_COPIES = 60        # bases with one near copy
N_CLUSTERS = 8       # bases with three near copies
N_RELATED = 60       # records sharing one contiguous part of a base (Jaccard 0.3-0.5)


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))))
    return sorted(words)


def _shingles(record: tuple[str, str]) -> set[str]:
    """Word 3-shingles of prompt and reply together, computed without hubtools."""
    tokens = re.findall(r"\w+", f"{record[0]}\n{record[1]}".casefold())
    return {" ".join(tokens[i:i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def _planted(seed: int = 13):
    """A shuffled SFT set. Returns (pairs, clusters of positions, related: position -> (position
    of the base it borrows from, their Jaccard), copies: position -> Jaccard with its original)."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng)

    def fresh(n: int) -> list[str]:
        return [rng.choice(vocab) for _ in range(n)]

    def record(tokens: list[str], cut: int) -> tuple[str, str]:
        return " ".join(tokens[:cut]), " ".join(tokens[cut:])

    bases = [fresh(rng.randint(200, 260)) for _ in range(N_BASES)]
    cut = 20  # prompt words
    rows: list[tuple[list[str], int, str]] = [(b, i, "base") for i, b in enumerate(bases)]
    for i in range(N_COPIES + N_CLUSTERS):
        for _ in range(3 if i >= N_COPIES else 1):
            tokens = list(bases[i])
            for pos in rng.sample(range(len(tokens)), rng.randint(1, 3)):  # a few words changed
                tokens[pos] = rng.choice(vocab)
            rows.append((tokens, i, "copy"))
    for k in range(N_RELATED):
        i = N_COPIES + N_CLUSTERS + k
        base = bases[i]
        keep = int(len(base) * rng.uniform(0.5, 0.64))
        start = rng.randint(0, len(base) - keep)
        tokens = fresh(start) + base[start:start + keep] + fresh(len(base) - keep - start)
        rows.append((tokens, i, "related"))
    rng.shuffle(rows)

    pairs = [record(tokens, cut) for tokens, _, _ in rows]
    shingles = [_shingles(p) for p in pairs]
    position_of_base = {i: pos for pos, (_, i, role) in enumerate(rows) if role == "base"}
    clusters: dict[int, list[int]] = {}
    related: dict[int, tuple[int, float]] = {}
    copies: dict[int, float] = {}
    for pos, (_, i, role) in enumerate(rows):
        if role == "copy":
            clusters.setdefault(i, [position_of_base[i]]).append(pos)
            copies[pos] = _jaccard(shingles[pos], shingles[position_of_base[i]])
        elif role == "related":
            base = position_of_base[i]
            related[pos] = (base, _jaccard(shingles[pos], shingles[base]))
    return pairs, [sorted(c) for c in clusters.values()], related, copies


@pytest.fixture(scope="module")
def planted():
    pairs, clusters, related, copies = _planted()
    return pairs, clusters, related, copies, SPEC.run(sft(pairs))


def _expected_flags(clusters: list[list[int]]) -> set[int]:
    """Every member of a cluster after the first (lowest index)."""
    return {pos for members in clusters for pos in members[1:]}


def test_the_planted_set_is_what_it_claims(planted):
    pairs, clusters, related, copies, _ = planted
    assert min(copies.values()) >= 0.9  # a few words changed
    similarity = [j for _, j in related.values()]
    assert max(similarity) <= 0.5 and min(similarity) >= 0.3
    assert sum(len(c) == 4 for c in clusters) == N_CLUSTERS
    # unrelated bases share nothing
    shingles = [_shingles(p) for p in pairs]
    firsts = [c[0] for c in clusters]
    assert max(_jaccard(shingles[a], shingles[b]) for a in firsts for b in firsts if a < b) < 0.05


def test_near_copies_are_found_with_recall_at_least_0_9(planted):
    _, clusters, _, _, result = planted
    expected = _expected_flags(clusters)
    recall = len(expected & set(result.flagged)) / len(expected)
    assert recall >= 0.9, recall
    assert not {c[0] for c in clusters} & set(result.flagged)  # the first member is kept


def _related_flagged(related: dict[int, tuple[int, float]], flagged: list[int]) -> set[int]:
    """Related records whose pair (record, base) had a member flagged."""
    flagged = set(flagged)
    return {pos for pos, (base, _) in related.items() if pos in flagged or base in flagged}


def test_related_records_and_unrelated_ones_are_not_flagged(planted):
    pairs, clusters, related, _, result = planted
    false_flag_rate = len(_related_flagged(related, result.flagged)) / len(related)
    assert false_flag_rate <= 0.05, false_flag_rate
    in_clusters = {pos for c in clusters for pos in c}
    unrelated = [pos for pos in range(len(pairs)) if pos not in in_clusters]
    assert not set(unrelated) & set(result.flagged)


def test_each_flag_names_a_member_of_its_cluster_and_its_jaccard(planted):
    _, clusters, _, copies, result = planted
    cluster_of = {pos: members for members in clusters for pos in members}
    for pos in result.flagged:
        match = re.fullmatch(r"near-duplicate of #(\d+) \(jaccard (\d\.\d\d)\)", result.reasons[pos])
        assert match, result.reasons[pos]
        assert int(match[1]) in cluster_of[pos] and int(match[1]) != pos
        assert 0.8 <= float(match[2]) <= 1.0
    # a pair copy-original is reported with (about) its true Jaccard
    pair_copies = [c for c in clusters if len(c) == 2]
    for first, second in pair_copies[:10]:
        reported = float(result.reasons[second].rsplit(" ", 1)[1].rstrip(")"))
        assert abs(reported - copies[second if second in copies else first]) <= 0.12


def test_clusters_are_reported_with_their_members(planted):
    _, clusters, _, _, result = planted
    stats = result.stats
    assert stats["clusters"] == len(clusters)
    assert stats["flagged"] == len(result.flagged)
    largest = stats["largest_clusters"]
    big = sorted((c for c in clusters if len(c) == 4), key=lambda c: c[0])
    assert [c["indices"] for c in largest] == big[:5]
    assert all(c["size"] == 4 and c["first"] == c["indices"][0] and c["min_jaccard"] >= 0.8 for c in largest)
    assert sum(stats["jaccard_histogram"]["counts"]) >= len(_expected_flags(clusters))


def _datasketch_flags(pairs: list[tuple[str, str]], threshold: float = 0.8, num_perm: int = 128) -> set[int]:
    """The textbook baseline: one datasketch MinHash per record, MinHashLSH, a record is flagged
    when an earlier record is an LSH candidate (no verification)."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    flagged = set()
    for pos, pair in enumerate(pairs):
        sketch = MinHash(num_perm=num_perm, seed=1)
        sketch.update_batch([s.encode() for s in _shingles(pair)])
        if lsh.query(sketch):
            flagged.add(pos)
        lsh.insert(str(pos), sketch)
    return flagged


def test_recall_is_at_least_the_datasketch_baselines(planted):
    pairs, clusters, related, _, result = planted
    expected = _expected_flags(clusters)
    baseline = _datasketch_flags(pairs)
    ours = len(expected & set(result.flagged)) / len(expected)
    theirs = len(expected & baseline) / len(expected)
    assert theirs >= 0.8  # the baseline works on this set
    assert ours >= theirs - 0.02, (ours, theirs)
    ours_false = len(_related_flagged(related, result.flagged)) / len(related)
    theirs_false = len(_related_flagged(related, sorted(baseline))) / len(related)
    assert ours_false <= theirs_false + 0.02, (ours_false, theirs_false)


def test_a_higher_threshold_flags_fewer_and_a_lower_one_more(planted):
    pairs, clusters, related, copies, default = planted
    ds = sft(pairs)
    strict = SPEC.run(ds, SPEC.make_options({"threshold": 0.95}))
    loose = SPEC.run(ds, SPEC.make_options({"threshold": 0.3}))
    assert set(strict.flagged) < set(default.flagged) < set(loose.flagged)
    assert (strict.stats["threshold"], loose.stats["threshold"]) == (0.95, 0.3)
    # strict: only copies at or above 0.95 are left (when a cluster has one copy)
    lone = {c[1] if c[1] in copies else c[0]: c for c in clusters if len(c) == 2}
    below = [pos for pos in lone if copies[pos] < 0.94]
    above = [pos for pos in lone if copies[pos] >= 0.96]
    assert below and above
    assert not {max(lone[pos]) for pos in below} & set(strict.flagged)
    assert len({max(lone[pos]) for pos in above} & set(strict.flagged)) / len(above) >= 0.9
    # loose: a related record and its base (Jaccard 0.3-0.5) become near duplicates, the later flagged
    later = {max(pos, base) for pos, (base, _) in related.items()}
    assert len(later & set(loose.flagged)) / len(later) >= 0.9
    assert not later & set(default.flagged)


def test_short_records_only_match_the_same_words():
    ds = sft([("hi", "thanks a lot"), ("Hi!", "Thanks, a lot."), ("hi", "thanks a bunch"), ("", "")])
    result = SPEC.run(ds)
    assert result.reasons == {1: "near-duplicate of #0 (jaccard 1.00)"}
    assert result.stats["no_words"] == 1


def test_preference_and_text_data_are_compared_whole():
    reply = " ".join(f"word{i}" for i in range(60))
    other = " ".join(f"other{i}" for i in range(60))
    pref = SPEC.run(preference([("q one", reply, "no"), ("q one", reply.replace("word30", "other"), "no"),
                                ("q one", reply, other)]))
    assert pref.flagged == [1]
    assert pref.stats["fields"] == ["prompt", "chosen", "rejected"]
    raw = SPEC.run(text([reply, "something else entirely " * 5, reply + " and one more"]))
    assert raw.flagged == [2]


# --------------------------------------------------------------------------- shared templates


def _alpaca_with_preamble(corpus, share: int):
    """alpaca_en_demo with FastChat's longest real judge system prompt (163 words) put before the
    first ``share`` instructions, as a file with a shared system prompt in the user turn looks."""
    judge = [json.loads(line) for line in (corpus / "fastchat" / "judge_prompts.jsonl").read_text().splitlines()]
    preamble = max((j["system_prompt"] for j in judge), key=len)
    records = json.loads((corpus / "llama_factory" / "alpaca_en_demo.json").read_text())
    pairs = [(r["instruction"] + ("\n" + r["input"] if r["input"] else ""), r["output"]) for r in records]
    return pairs, [(preamble + "\n\n" + p, o) for p, o in pairs[:share]] + pairs[share:], preamble


def test_a_shared_preamble_does_not_make_different_tasks_near_duplicates(corpus):
    """None of the corpus files has such a preamble in its text today (their system prompts and
    tools are not in the compared text; glaive_toolcall's 43 flags are real repeats, unchanged);
    this builds one from two real files."""
    spec = REGISTRY["near_duplicates"]
    plain, framed, preamble = _alpaca_with_preamble(corpus, 400)
    base = spec.run(sft(plain))
    assert base.count == 14  # alpaca_en_demo's own near-duplicates
    without = spec.run(sft(framed), spec.make_options({"strip_templates": False}))
    assert without.count >= 90  # the preamble alone puts different tasks together
    assert max(c["size"] for c in without.stats["largest_clusters"]) >= 40
    result = spec.run(sft(framed))
    assert result.flagged == base.flagged
    assert result.stats["templates_stripped"].startswith("prompt prefix in 400 records: Please act as an impartial")
    # the diversity check names the template
    diversity = REGISTRY["diversity"].run(sft(framed))
    assert "prompt prefix (1,022 characters) in 400 records (40%)" in diversity.stats["shared_templates"]
    assert REGISTRY["diversity"].run(sft(plain)).stats["shared_templates"] == "none"


def test_true_near_duplicates_behind_a_shared_preamble_are_still_found(corpus):
    plain, framed, preamble = _alpaca_with_preamble(corpus, 400)

    def copies(pairs):  # earlier records with one word of the reply changed: real near-duplicates
        out = []
        for p, o in pairs[:300:10]:
            words = o.split()
            words[len(words) // 2] = "banana"
            out.append((p, " ".join(words)))
        return out

    spec = REGISTRY["near_duplicates"]
    planted = set(range(len(plain), len(plain) + 30))
    found_plain = planted & set(spec.run(sft(plain + copies(plain))).flagged)
    found_framed = planted & set(spec.run(sft(framed + copies(framed))).flagged)
    assert len(found_plain) >= 20  # 23 of 30: the long-enough replies (one word in a 10-word reply is not 0.8)
    assert found_framed == found_plain  # the same recall with the preamble stripped
