"""Shared templates: a long prefix or suffix (a system prompt, a tool description, an instruction
frame) that many records of a field carry around different content.

Such a preamble makes different tasks look alike to word shingles (a 300-word tool description
before a 20-word question puts any two records above Jaccard 0.8), so ``near_duplicates``
compares what differs, with the templates stripped, and ``diversity`` reports them.

Detection, on an evenly spaced sample of at most :data:`SAMPLE` texts per field: the first
(last, for suffixes) ``L`` characters are counted for ``L`` in :data:`LENGTHS`; a prefix is a
template when at least ``max(MIN_RECORDS, MIN_SHARE x sample)`` texts carry it, have more text
after it, and go on in different ways (the next :data:`NEXT_CHARS` characters differ in at least
half of them: a cluster of true near-duplicates, which continue alike, is not a template). Its
exact extent is the longest common prefix of those texts, cut back to a word boundary.
"""

from __future__ import annotations

from collections.abc import Callable

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Template", "find_templates", "strip_templates"]

SAMPLE = 20_000
LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096)
MIN_RECORDS = 10
MIN_SHARE = 0.02
NEXT_CHARS = 64
#: longest template looked for (characters)
MAX_CHARS = 8192


@dataclass(frozen=True)
class Template:
    """A prefix (``where="prefix"``) or suffix shared by ``records`` texts of ``field`` (counted
    on the whole field)."""

    field: str
    where: str
    text: str
    records: int = 0


def _sample(arr: pa.Array, take: Callable[[np.ndarray], pa.Array] | None = None) -> pa.Array:
    n = len(arr)
    if n <= SAMPLE:
        return arr
    rows = np.linspace(0, n - 1, SAMPLE).astype(np.int64)
    return take(rows) if take is not None else arr.take(pa.array(rows))


def _prefixes(arr: pa.Array) -> list[str]:
    """Template prefixes of the texts of ``arr`` (see the module docstring), longest first."""
    n = len(arr)
    need = max(MIN_RECORDS, int(MIN_SHARE * n))
    lengths = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
    found: set[str] = set()
    for size in LENGTHS:
        longer = np.flatnonzero(lengths > size + 8)
        if len(longer) < need:
            break
        part = arr.take(pa.array(longer))
        heads = pc.utf8_slice_codeunits(part, 0, size)
        counted = pc.value_counts(heads)
        common = [v for v, c in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())
                  if c >= need]
        if not common:
            break
        for head in common:
            members = pc.filter(part, pc.equal(heads, head))
            nexts = pc.utf8_slice_codeunits(members, size, size + NEXT_CHARS)
            if len(pc.unique(nexts)) * 2 < len(members):
                continue  # the sharers go on alike: near-duplicates, not a frame
            texts = pc.utf8_slice_codeunits(members, 0, MAX_CHARS).to_pylist()
            prefix = os.path.commonprefix(texts)
            cut = max(prefix.rfind(" "), prefix.rfind("\n"))
            if cut >= LENGTHS[0]:
                found.add(prefix[: cut + 1])
    # a template that only extends a shorter one by a few words ("... for a tie.\n\nWrite ") is
    # the opening of some tasks, not another frame
    frames = [t for t in found if not any(t != s and t.startswith(s) and len(t) - len(s) < NEXT_CHARS
                                          for s in found)]
    return sorted(frames, key=len, reverse=True)


def find_templates(arr: pa.Array, field: str, take: Callable[[np.ndarray], pa.Array] | None = None) -> list[Template]:
    """The prefixes and suffixes shared by many texts of ``arr`` with their record counts
    (``take(rows)``, when given, reads the sampled rows: :meth:`CheckData.take`)."""
    if len(arr) < MIN_RECORDS:
        return []
    sample = pc.fill_null(_sample(arr, take), "")
    out: list[Template] = []
    for where in ("prefix", "suffix"):
        view = sample if where == "prefix" else pc.utf8_reverse(sample)
        for text in _prefixes(view):
            text = text if where == "prefix" else text[::-1]
            hits = pc.starts_with(arr, text) if where == "prefix" else pc.ends_with(arr, text)
            out.append(Template(field, where, text, int(pc.sum(pc.fill_null(hits, False)).as_py() or 0)))
    return out


def strip_templates(arr: pa.Array, templates: list[Template]) -> pa.Array:
    """``arr`` with each text's longest matching template prefix and suffix removed (a text that
    is nothing but the template is left whole)."""
    for where in ("prefix", "suffix"):
        # longest first: a text matching several loses the longest; later, shorter ones see the
        # stripped text and match no more
        for t in sorted((t for t in templates if t.where == where), key=lambda t: -len(t.text)):
            k = len(t.text)
            hits = pc.starts_with(arr, t.text) if where == "prefix" else pc.ends_with(arr, t.text)
            hits = pc.and_(pc.fill_null(hits, False), pc.greater(pc.utf8_length(arr), k))
            if not pc.any(hits).as_py():
                continue
            cut = (pc.utf8_slice_codeunits(arr, k) if where == "prefix"
                   else pc.utf8_slice_codeunits(arr, 0, -k))
            arr = pc.if_else(hits, cut, arr)
    return arr
