"""Whitespace-delimited words per string in one compiled pass over an Arrow array's bytes."""

from __future__ import annotations

import numba

__all__ = ["count_words"]


@numba.njit(cache=True, nogil=True)
def count_words(data, offsets, space, out):
    """``out[row]`` = runs of non-``space`` bytes in ``data[offsets[row]:offsets[row + 1]]``."""
    for row in range(len(offsets) - 1):
        words = 0
        inside = False
        for i in range(offsets[row], offsets[row + 1]):
            if space[data[i]]:
                inside = False
            elif not inside:
                inside = True
                words += 1
        out[row] = words
