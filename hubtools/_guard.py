"""Checks on raw JSON text that keep hostile input from crashing a parser or changing silently.

- Nesting: a record nested deeper than :data:`MAX_DEPTH` is quarantined (``too_deep``). pyarrow's
  JSON parser overflows its stack on ~20,000 levels and takes the process down, so the fast path
  never lets it see a line that may nest deeper; JSON Lines and CSV cells are checked before
  orjson too. orjson (1,024 levels) and Python's json (its recursion limit) refuse deeper input
  by themselves, with an error rather than a crash, so whole documents and JSON arrays are
  parsed first and checked after.
- Numbers: JSON parsers turn ``-1e-400`` into ``-0.0``, ``1e400`` into infinity and a 100-digit
  integer into a float. Such a record is quarantined (``unsafe_number``); integers that fit 64 bits
  are kept exactly.
- Duplicate keys: parsers keep the last one silently; the record is quarantined (``duplicate_key``).

Every check is cheap on ordinary records: a C-speed test first, the exact scan only when it fires.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "ArrowGuard", "depth", "duplicate_key", "float_hazard", "number_problem", "too_deep",
           "unsafe_number"]

#: Deepest nesting of objects and arrays read (real datasets nest a few levels, OASST trees ~15).
MAX_DEPTH = 128

# a JSON string (skipped whole) or a bracket; the unrolled string pattern keeps the scan linear
_TOKENS_B = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|([\[{])|[\]}]')
_TOKENS_S = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|([\[{])|[\]}]')
# a JSON string (skipped whole) or a number
_NUMBERS_B = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')
_NUMBERS_S = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')
# a number a parser may change has 16+ digits in a row or a 3-digit exponent: found with one
# translate (digits -> 0, e/E -> e, signs -> +, the rest -> space) and a few finds, at C speed
_HINT_TABLE = bytes(0x30 if 0x30 <= b <= 0x39 else 0x65 if b in b"eE" else 0x2B if b in b"+-" else 0x20
                    for b in range(256))
_HINTS = (b"0" * 16, b"e000", b"e+000")
_KEY_B = re.compile(rb'"\s*:')
_KEY_GAP = re.compile(rb'"[ \t\r\n]+:')
_KEY_S = re.compile(r'"\s*:')
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 64 - 1  # what orjson reads and writes exactly


def _openers(data: bytes | str, start: int = 0, end: int | None = None) -> int:
    end = len(data) if end is None else end
    if isinstance(data, bytes):
        return data.count(b"[", start, end) + data.count(b"{", start, end)
    return data.count("[", start, end) + data.count("{", start, end)


def depth(data: bytes | str, start: int = 0, end: int | None = None) -> tuple[int, int | None]:
    """(deepest nesting, where the value starting at ``start`` closes or None) of ``data[start:end]``.

    Brackets inside strings do not count. Stops early once past :data:`MAX_DEPTH`.
    """
    tokens = _TOKENS_B if isinstance(data, bytes) else _TOKENS_S
    level = deepest = 0
    for match in tokens.finditer(data, start, len(data) if end is None else end):
        if match.lastindex:  # an opener
            level += 1
            if level > deepest:
                deepest = level
                if deepest > MAX_DEPTH:
                    return deepest, None
        elif match.end() - match.start() == 1:  # a closer
            level -= 1
            if level <= 0:
                return deepest, match.end()
    return deepest, None


def too_deep(data: bytes | str, start: int = 0, end: int | None = None) -> bool:
    """Whether the JSON in ``data[start:end]`` nests deeper than :data:`MAX_DEPTH`."""
    if _openers(data, start, end) <= MAX_DEPTH:
        return False
    return depth(data, start, end)[0] > MAX_DEPTH


def unsafe_number(token: str) -> str | None:
    """Why a JSON number literal would not read back as written (None when it would)."""
    if not any(c in token for c in ".eE"):
        digits = token.lstrip("-")
        if len(digits) > 20 or not _INT_MIN <= int(token) <= _INT_MAX:
            shown = token if len(token) <= 24 else f"{token[:12]}…({len(digits):,} digits)"
            return f"the integer {shown} does not fit 64 bits (a JSON reader would turn it into a float)"
        return None
    value = float(token)
    shown = token if len(token) <= 24 else token[:20] + "…"
    if value in (float("inf"), float("-inf")):
        return f"the number {shown} is too large for a float (it would read as infinity)"
    mantissa = token.lower().partition("e")[0]
    if value == 0.0 and any(c in "123456789" for c in mantissa):
        return f"the number {shown} is too small for a float (it would read as {value})"
    return None


def number_problem(raw: bytes | str, start: int = 0, end: int | None = None) -> str | None:
    """The first number in ``raw`` that a parser would change, described; None when there is none."""
    end = len(raw) if end is None else end
    is_bytes = isinstance(raw, bytes)
    data = raw[start:end] if is_bytes else raw[start:end].encode("utf-8", "surrogatepass")
    shape = data.translate(_HINT_TABLE)
    if _HINTS[0] not in shape and _HINTS[1] not in shape and _HINTS[2] not in shape:
        return None
    for match in (_NUMBERS_B if is_bytes else _NUMBERS_S).finditer(raw, start, end):
        token = match.group(1)
        if token:
            problem = unsafe_number(token.decode() if is_bytes else token)
            if problem:
                return problem
    return None


def _count_keys(value: Any) -> int:
    """How many keys the objects in ``value`` have, all levels together."""
    count = len(value) if isinstance(value, dict) else 0
    for item in (value.values() if isinstance(value, dict) else value):
        if isinstance(item, (dict, list)):
            count += _count_keys(item)
    return count


class _Duplicate(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return out


def duplicate_key(raw: bytes | str, value: Any) -> str | None:
    """The first key that appears twice in one object of ``raw`` (parsed as ``value``), or None."""
    if not isinstance(value, (dict, list)):
        return None
    if isinstance(raw, bytes) and not _KEY_GAP.search(raw):
        keys = raw.count(b'":')  # compact or ", "-separated JSON: every key ends in '":'
    else:
        keys = len((_KEY_B if isinstance(raw, bytes) else _KEY_S).findall(raw))
    if keys <= _count_keys(value):
        return None
    try:  # more '":' than keys: a duplicate, or '":' inside a string; parse again to know which
        json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except _Duplicate as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None
    return None


class ArrowGuard:
    """Counts, chunk by chunk, the brackets of each line of a JSON Lines stream before pyarrow
    parses it; ``feed`` returns False for a line that may nest deeper than :data:`MAX_DEPTH` (its
    opener count bounds its depth) or that spans more than ``max_line`` bytes."""

    def __init__(self, max_line: int):
        self.max_line = max_line
        self._carry_openers = 0
        self._carry_length = 0

    def feed(self, chunk: bytes) -> bool:
        data = np.frombuffer(chunk, np.uint8)
        # '[' (0x5B) and '{' (0x7B) differ only in bit 0x20
        openers = np.flatnonzero((data | 0x20) == 0x7B)
        newlines = np.flatnonzero(data == 0x0A)
        bounds = np.concatenate(([0], newlines + 1, [len(data)]))
        counts = np.diff(np.searchsorted(openers, bounds))
        counts[0] += self._carry_openers
        lengths = np.diff(bounds)
        lengths[0] += self._carry_length
        if counts.max() > MAX_DEPTH or lengths.max() > self.max_line:
            return False
        self._carry_openers, self._carry_length = int(counts[-1]), int(lengths[-1])
        return True


def float_hazard(chunk: bytes) -> bool:
    """Whether a chunk may hold a number pyarrow would read differently from the exact path:
    NaN or Infinity, 16 digits in a row, or a 3-digit exponent."""
    if b"NaN" in chunk or b"Infinity" in chunk:
        return True
    data = np.frombuffer(chunk, np.uint8)
    digit = (data - 0x30) < 10
    # runs of digits: where they start and end
    edges = np.flatnonzero(np.diff(np.concatenate(([False], digit, [False])).astype(np.int8)))
    if len(edges) and (edges[1::2] - edges[0::2]).max() >= 16:
        return True
    exp = np.flatnonzero((data | 0x20) == 0x65)  # 'e' or 'E'
    exp = exp[exp + 4 < len(data)]
    if not len(exp):
        return False
    after = exp + 1 + np.isin(data[exp + 1], (0x2B, 0x2D))
    three = digit[after] & digit[after + 1] & digit[np.minimum(after + 2, len(data) - 1)]
    return bool((three & digit[np.maximum(exp - 1, 0)]).any())
