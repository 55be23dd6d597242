"""The compiled sketching of ``near_duplicates`` (hubtools/checks/_kernels_text.py) against the
reference definitions: the words of hubtools.text.words, the numpy shingles, MinHash by formula."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hubtools.checks import _kernels_text as kernels
from hubtools.checks.minhash import _slow_word_hashes, shingle_hashes, sketch_batch, word_hashes
from hubtools.text import words

TRICKY = [
    "Hello, World! 你好", "Straße STRASSE strasse", "naïve café ÉCOLE", "emoji 😀 between words", "", None, "a",
    "x_y z9 ΣΑΣ ς σ", "“Quoted” — dash… it’s", "ﬁne ﬂow", "İstanbul ıi", "カタカナとひらがな漢字mixed", "e\u0301te\u0301 été",
    "tab\tnew\nline\u00a0nbsp\u2003em  end ", "Ǆemal ǅ ǆ", "😀", "𠀀𠀁 astral Han", "123 4.5 6,7",
]


def _reference(texts: list[str | None]) -> tuple[np.ndarray, list[int]]:
    """The words of hubtools.text.words, hashed by the kernel's own word hash."""
    per_text = [words(t or "") for t in texts]
    flat = [w for ws in per_text for w in ws]
    cps = np.frombuffer("".join(flat).encode("utf-32-le"), dtype=np.uint32)
    hashes = kernels.hash_tokens(cps, np.array([len(w) for w in flat], dtype=np.int64))
    return hashes, [len(ws) for ws in per_text]


def test_word_hashes_are_the_reference_words_in_every_script():
    hashes, counts = word_hashes(pa.array(TRICKY))
    ref, ref_counts = _reference(TRICKY)
    assert counts.tolist() == ref_counts
    assert np.array_equal(hashes, ref)
    # the regex path (for a text the tables cannot settle) hashes the same words the same way
    slow, slow_rows = _slow_word_hashes(pc.fill_null(pa.array(TRICKY), ""))
    assert np.array_equal(slow, ref) and np.bincount(slow_rows, minlength=len(TRICKY)).tolist() == ref_counts
    # the table settles "ß" (folds to "ss") and astral characters; a lone surrogate-free text
    # with a character it cannot settle is left to the regex (here: none of these)
    data = np.frombuffer("ßab".encode() + "abc".encode() + "a😀".encode() + "𠀀".encode(), np.uint8)
    _, counts, slow = kernels.word_hashes(np.array([0, 4, 7, 12, len(data)]), data, *kernels.tables())
    assert slow.tolist() == [False] * 4 and counts.tolist() == [1, 1, 1, 1]


def test_word_hashes_tell_words_apart_and_fold_case():
    hashes, counts = word_hashes(pa.array(["Apple apple APPLE", "apples appl"]))
    assert counts.tolist() == [3, 2]
    assert len(set(hashes[:3].tolist())) == 1 and len(set(hashes.tolist())) == 3


def test_permutations_and_formula_match_rensa_cores_golden_vector():
    # rensa-core's test digest_prehashed_matches_golden_vector (16 permutations, seed 42)
    a, b = kernels.permutations(16, 42)
    tokens = np.array([1, 2, 3, 10, 20, 30, 999], dtype=np.uint64)
    with np.errstate(over="ignore"):
        digest = ((a[None, :] * tokens[:, None] + b[None, :]) >> np.uint64(32)).min(axis=0)
    assert digest.tolist() == [571772611, 936133835, 752080753, 481772021, 45178047, 175317472, 470513164,
                               928706636, 766355169, 186861125, 104841669, 219275888, 723396917, 903182598,
                               455784955, 153681280]


def test_sketch_is_minhash_of_the_numpy_shingles():
    texts = pa.array(TRICKY + [" ".join(f"w{i % 7} x{i}" for i in range(60)), "one two", "one two three four"])
    shingles, offsets, _ = shingle_hashes(texts, 3)
    out = sketch_batch({"t": texts}, fields=["t"], shingle_size=3, num_perm=64, seed=7, bands=8, rows_per_band=8)
    a, b = kernels.permutations(64, 7)
    for row in range(len(texts)):
        x = shingles[offsets[row]:offsets[row + 1]]
        with np.errstate(over="ignore"):
            expected = (((a[None, :] * x[:, None] + b[None, :]) >> np.uint64(32)).min(axis=0) if len(x)
                        else np.full(64, 0xFFFFFFFF, np.uint64))
            total = x.sum(dtype=np.uint64)
        assert np.array_equal(out["signature"][row], expected.astype(np.uint16)), row
        assert out["multiset"][row] == total, row
    assert out["words"].tolist() == [len(words(t or "")) for t in texts.to_pylist()]
    assert out["keys"].shape == (len(texts), 8)


def test_repetition_words_compiled_are_the_regex_words():
    # the repetition check's \w words: the compiled pass and the regular-expression path agree
    # on rows, lengths and repeats (ids are per-row hashes; only their equality matters)
    from hubtools.checks.repetition import _slow_words, _words

    texts = pc.fill_null(pa.array(TRICKY + ["Stop. Stop. stop.", "a_b a_b c", "日本語の文章。日本語の文章。"]), "")
    fast, slow = _words(texts), _slow_words(texts)
    for got, want in zip(fast[1:], slow[1:]):
        assert got.tolist() == want.tolist()
    ids, rows = fast[0], fast[1]
    for r in np.unique(rows):
        here = np.flatnonzero(rows == r)
        assert len(set(ids[here].tolist())) == len(set(slow[0][here].tolist()))
