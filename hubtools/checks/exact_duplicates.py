"""``exact_duplicates``: records that repeat an earlier one once case and whitespace are ignored.

Two keys per record, both xxh3-64 hashes of normalised text (lower case, every run of whitespace
one space, ends stripped; normalised with Arrow kernels, hashed over the Arrow buffers):

* the whole example: every field normalised on its own and joined with a separator that
  normalisation never produces, so text cannot slide from the prompt into the reply;
* the prompt alone (not for ``text`` data, where the prompt is the whole text). Empty prompts
  are never grouped.

Every member of a group after the first (lowest source index) of the whole example is flagged
("duplicate of #12"). Prompt-only repeats (same prompt, different reply) are flagged only for
``sft`` data by default ("same prompt as #12, different reply"): one instruction with two
different target answers teaches the model two things at once. For ``preference`` and
``unpaired`` data several pairs or completions per prompt are how those datasets are built, so
prompt repeats are only counted and shown; ``flag_same_prompt`` overrides either default.

With 64-bit hashes two different texts share a key with probability about n²/2⁶⁵
(3e-8 for a million records); groups are not re-compared character by character.

Example:
    >>> from hubtools.checks import REGISTRY
    >>> result = REGISTRY["exact_duplicates"].run(dataset)  # doctest: +SKIP
    >>> result.reasons  # doctest: +SKIP
    {7: 'duplicate of #2'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from ..records import Kind
from .base import CheckData, CheckResult, FormattedReasons, register

__all__ = [
    "ExactDuplicateOptions",
    "check_exact_duplicates",
    "group_firsts",
    "hash_strings",
    "largest_groups",
    "normalise",
    "preview",
]

#: Unicode spaces RE2's ``\s`` does not cover (NBSP, the U+2000 block, ideographic space...).
_UNICODE_SPACES = r"\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
#: Runs of two or more whitespace characters, or one that is not a plain space. Leaving single
#: spaces unmatched makes the replace about 8x faster than ``\s+`` on prose.
_WHITESPACE = rf"[\s\v{_UNICODE_SPACES}]{{2,}}|[\t\n\r\f\v{_UNICODE_SPACES}]"
#: Joins normalised fields into one example key (a control character normalisation keeps).
_FIELD_SEP = "\x1f"
#: Groups shown in the report, and members listed per group.
TOP_GROUPS = 5
MEMBERS_SHOWN = 10
PREVIEW_CHARS = 120
#: A flagged record's reason: the same example as an earlier one, or (SFT) only the same prompt
REASONS = ("duplicate of #{}", "same prompt as #{}, different reply")


@dataclass
class ExactDuplicateOptions:
    """Options of the ``exact_duplicates`` check."""

    #: flag records whose prompt repeats an earlier prompt with a different reply;
    #: None: yes for sft data, no for preference and unpaired data (report them only)
    flag_same_prompt: bool | None = None


def normalise(texts: pa.Array) -> pa.Array:
    """Lower-case ``texts``, turn every run of whitespace into one space and strip the ends.

    >>> normalise(pa.array(["  Hello\\n\\tWORLD "])).to_pylist()
    ['hello world']
    """
    lowered = pc.utf8_lower(texts)
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(lowered, _WHITESPACE, " "))


def hash_strings(texts: pa.Array) -> np.ndarray:
    """xxh3-64 of each string's UTF-8 bytes, read straight from the Arrow buffers (uint64)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, offsets_buf, data_buf = texts.buffers()
    offset_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)[texts.offset: texts.offset + n + 1]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    digest = xxhash.xxh3_64_intdigest
    return np.fromiter((digest(data[s:e]) for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist())),
                       dtype=np.uint64, count=n)


def _hash_batch(batch: dict[str, pa.Array], *, example: list[str], prompt: list[str]) -> dict[str, np.ndarray]:
    """Keys of one batch (runs in a worker process with ``num_proc > 1``)."""
    normalised = {name: normalise(batch[name]) for name in set(example) | set(prompt)}
    joined = (normalised[example[0]] if len(example) == 1
              else pc.binary_join_element_wise(*(normalised[name] for name in example), _FIELD_SEP))
    out = {"example": hash_strings(joined)}
    if prompt:
        text = (normalised[prompt[0]] if len(prompt) == 1
                else pc.binary_join_element_wise(*(normalised[name] for name in prompt), _FIELD_SEP))
        out["prompt"] = hash_strings(text)
        out["prompt_empty"] = pc.equal(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
    return out


def group_firsts(keys: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """For each row, the position of the first row with the same key (itself when it is first).

    Rows where ``valid`` is False are never grouped (their own position is returned).
    """
    n = len(keys)
    first = np.arange(n, dtype=np.int64)
    rows = first if valid is None else np.flatnonzero(valid)
    if len(rows) == 0:
        return first
    _, start, inverse = np.unique(keys[rows], return_index=True, return_inverse=True)
    first[rows] = rows[start[inverse.reshape(-1)]]
    return first


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, personal data redacted, shortened to ``limit`` characters for a report.

    >>> preview("Mail   jane.doe@gmail.com\\nfor the file", 30)
    'Mail [EMAIL] for the file'
    """
    from .pii import redact

    line = " ".join(redact(text)[0].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def largest_groups(first: np.ndarray, data: CheckData, fields: list[str], top: int = TOP_GROUPS,
                   extra: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ``top`` biggest groups (ties: earliest first) with their member indices and a preview.

    ``first`` maps each row to its group's first row; the preview is the first member's
    ``fields`` joined with " | "; ``extra`` adds keys to a group, by its first row.
    """
    grouped = np.flatnonzero(first != np.arange(len(first)))
    if len(grouped) == 0:
        return []
    roots, sizes = np.unique(first[grouped], return_counts=True)
    sizes = sizes + 1  # the first member itself
    order = np.lexsort((roots, -sizes))[:top]
    out = []
    for root, size in zip(roots[order].tolist(), sizes[order].tolist()):
        members = np.flatnonzero(first == root)[:MEMBERS_SHOWN]
        text = " | ".join(t for t in (data.fields[f][root].as_py() for f in fields) if t)
        group = {"size": int(size), "first": int(data.index[root]),
                 "indices": [int(i) for i in data.index[members]], "text": preview(text)}
        group.update((extra or {}).get(root, {}))
        out.append(group)
    return out


@register("exact_duplicates", options=ExactDuplicateOptions,
          description="the same example (or the same prompt) again, ignoring case and whitespace")
def check_exact_duplicates(data: CheckData, opts: ExactDuplicateOptions) -> CheckResult:
    n = len(data)
    example_fields = list(data.fields)
    prompt_fields = [] if data.kind is Kind.TEXT else data.prompt_fields
    # key column -> the column that leaves a row out of its groups (an empty prompt is no prompt)
    keys = {"example": None, **({"prompt": "prompt_empty"} if prompt_fields else {})}
    names = sorted(set(example_fields) | set(prompt_fields))
    shuffle = getattr(data, "shuffle", None)  # an engine that groups on its own cluster (Ray)
    if shuffle is not None:
        firsts = shuffle.group_firsts(_hash_batch, names, keys, desc="exact duplicates",
                                      example=example_fields, prompt=prompt_fields)
    else:
        parts = data.map(_hash_batch, names, desc="exact duplicates", example=example_fields, prompt=prompt_fields)
        firsts = {key: group_firsts(np.concatenate([p[key] for p in parts]),
                                    None if skip is None else ~np.concatenate([p[skip] for p in parts]))
                  for key, skip in keys.items()}
        del parts
    positions = np.arange(n, dtype=np.int64)
    example_first = firsts["example"]
    is_dup = example_first != positions

    flag_prompt = (data.kind is Kind.SFT) if opts.flag_same_prompt is None else bool(opts.flag_same_prompt)
    flag_prompt = flag_prompt and bool(prompt_fields)
    flag = is_dup.copy()
    stats: dict[str, Any] = {
        "rows": n,
        "duplicates": int(is_dup.sum()),
        "groups": len(np.unique(example_first[is_dup])),
        "largest_groups": largest_groups(example_first, data, example_fields),
        "prompt_checked": bool(prompt_fields),
        "same_prompt": 0,
        "same_prompt_different_reply": 0,
        "prompt_groups": 0,
        "largest_prompt_groups": [],
        "flag_same_prompt": flag_prompt,
    }
    if prompt_fields:
        prompt_first = firsts["prompt"]
        same_prompt = prompt_first != positions
        prompt_only = same_prompt & ~is_dup
        stats.update(same_prompt=int(same_prompt.sum()), same_prompt_different_reply=int(prompt_only.sum()),
                     prompt_groups=len(np.unique(prompt_first[same_prompt])),
                     largest_prompt_groups=_prompt_groups(prompt_first, example_first, data))
        if flag_prompt:
            flag |= prompt_only
    # the reasons as columns, written out when read (a few bytes per flagged record, not a string)
    rows = np.flatnonzero(flag)
    index = np.asarray(data.index)
    other = example_first[rows] if not prompt_fields else np.where(is_dup[rows], example_first[rows],
                                                                    firsts["prompt"][rows])
    reasons = FormattedReasons(index[rows], REASONS, (index[other],), kinds=(~is_dup[rows]).astype(np.uint8))
    stats["flagged"] = len(reasons)
    stats["share_flagged"] = round(len(reasons) / n, 6) if n else 0.0
    return CheckResult("exact_duplicates", flagged=reasons.keys_array, reasons=reasons, stats=stats,
                       versions={"xxhash": xxhash.VERSION, "pyarrow": pa.__version__})


def _prompt_groups(prompt_first: np.ndarray, example_first: np.ndarray, data: CheckData) -> list[dict[str, Any]]:
    """The largest prompt groups, each with how many distinct examples (replies) it holds."""
    grouped = np.flatnonzero(prompt_first != np.arange(len(prompt_first)))
    members = np.concatenate([np.unique(prompt_first[grouped]), grouped])
    distinct: dict[int, dict[str, Any]] = {}
    if len(members):
        pairs = np.unique(np.stack([prompt_first[members], example_first[members]]), axis=1)
        roots, counts = np.unique(pairs[0], return_counts=True)
        distinct = {int(r): {"distinct_examples": int(c)} for r, c in zip(roots, counts)}
    return largest_groups(prompt_first, data, data.prompt_fields, extra=distinct)
