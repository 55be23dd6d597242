"""The diversity and categories checks' figures over the whole dataset on Ray: mergeable partials.

:class:`RayAggregate` is what the two checks find as ``data.aggregate`` on the Ray engine's
view (:class:`~hubtools.checks.engines.ray.RayCheckData`); the local view has none. Each Ray
task runs the checks' own batch functions over its block and returns one small partial; the
driver joins the partials (a few at a time, in whatever order they come) with the checks' own
merge functions, so it never holds a per-record result of these checks:

* **categories**: per block, the count of each category, its first ``examples`` positions and
  the positions outside the intended list (:func:`~hubtools.checks.categories.count_partial`);
* **diversity**: one pass; each task makes its block's openings, opening words and template
  keys and returns every distinct value with its count and first position
  (:func:`~hubtools.checks.diversity.first_counts`, joined by ``merge_first_counts`` into the
  order of first occurrence the local engine sees, so ties and the entropy's summation order are
  the same), and the block's sampled prompts' distinct words and bigrams (sets, joined by union;
  the sample positions are drawn on the driver as locally); then, only if some template is
  over-used, the features are made again and kept in the object store for two more passes: the
  count of each such template per block and, from those offsets, the members beyond ``keep``.

Each pass checks that its blocks cover every row exactly once. What the driver holds: the
joined distinct values (openings, opening words, template keys: as many as the dataset has
distinct ones) and the flagged positions.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import HubtoolsError
from .. import categories as cat
from .. import diversity as div
from ..base import BATCH_SIZE
from .ray import POS

if TYPE_CHECKING:
    from .ray import RayCheckData

__all__ = ["RayAggregate"]

#: partials joined on the driver at a time
_FOLD = 16


# --------------------------------------------------------------------------- block functions (Ray tasks)


def _call(table: pa.Table, fn: Callable[..., Any], kwargs: dict[str, Any]) -> pa.Table:
    """``fn(positions, batch)`` over a block (or several Ray handed over as one), rows in
    position order; one pickled partial and the contiguous position ranges it covers."""
    pos = table.column(POS).to_numpy()
    if len(pos) and (np.diff(pos) < 0).any():
        order = np.argsort(pos, kind="stable")
        table, pos = table.take(pa.array(order)), pos[order]
    batch = {name: table.column(name).combine_chunks() for name in table.column_names if name != POS}
    cuts = np.flatnonzero(np.diff(pos) != 1) + 1
    starts = pos[np.r_[0, cuts]] if len(pos) else np.zeros(0, np.int64)
    rows = np.diff(np.r_[0, cuts, len(pos)]) if len(pos) else np.zeros(0, np.int64)
    results = [pickle.dumps(fn(pos, batch, **kwargs), protocol=5)] + [b""] * (len(starts) - 1) if len(pos) else []
    return pa.table({"start": pa.array(starts, pa.int64()), "rows": pa.array(rows, pa.int64()),
                     "result": pa.array(results, pa.large_binary())})


def _category_partial(pos: np.ndarray, batch: dict[str, pa.Array], *, name: str, examples: int,
                      allowed: list[int] | None) -> dict:
    return cat.count_partial(cat._codes(batch, name), pos, examples, allowed)


def _feature_rows(table: pa.Table, *, name: str, words: int) -> pa.Table:
    """Each row's opening, opening word and template key (diversity's own batch function)."""
    out = div._features({name: table.column(name).combine_chunks()}, name, words)
    return pa.table({POS: table.column(POS), **out})


def _diversity_partial(pos: np.ndarray, batch: dict[str, pa.Array], *, name: str, words: int,
                       rows: np.ndarray | None, chars: int) -> dict:
    """One pass over a block: its features' first counts, and the sample's distinct words."""
    features = div._features({name: batch[name]}, name, words)
    out: dict = {k: div.first_counts(features[k], pos) for k in ("opening", "word", "template")}
    out["sample"] = _sample_partial(pos, batch, name=name, rows=rows, chars=chars)
    return out


def _merge_diversity(parts: list[dict]) -> dict:
    out = {k: div.merge_first_counts([p[k] for p in parts]) for k in ("opening", "word", "template")}
    out["sample"] = _merge_sample([p["sample"] for p in parts])
    return out


def _sample_partial(pos: np.ndarray, batch: dict[str, pa.Array], *, name: str, rows: np.ndarray | None,
                    chars: int) -> dict:
    """The sampled rows' distinct words and bigrams (``"a b"``: words hold no white space) and counts."""
    arr = batch[name]
    if rows is not None:
        arr = arr.filter(pa.array(np.isin(pos, rows)))
    parents, flat = div.word_tokens(pc.utf8_slice_codeunits(arr, 0, chars))
    same = np.flatnonzero(parents[1:] == parents[:-1])
    pairs = pc.binary_join_element_wise(flat.take(pa.array(same)), flat.take(pa.array(same + 1)), " ")
    return {"words": pc.unique(flat), "pairs": pc.unique(pairs), "tokens": len(flat), "bigrams": len(pairs)}


def _merge_sample(parts: list[dict]) -> dict:
    union = {k: pc.unique(pa.chunked_array([p[k] for p in parts]).combine_chunks())
             for k in ("words", "pairs")}
    return {**union, "tokens": sum(p["tokens"] for p in parts), "bigrams": sum(p["bigrams"] for p in parts)}


def _over_rows(pos: np.ndarray, template: pa.Array, over: pa.Array, starts: np.ndarray, offsets: np.ndarray | None):
    """Rows of over-used templates: position, template (index into ``over``), range (index into
    ``starts``) and global rank (with ``offsets``: members of the template before each range)."""
    which = np.asarray(pc.fill_null(pc.index_in(template, value_set=over), -1).to_numpy(), np.int64)
    hit = which >= 0
    pos, which = pos[hit], which[hit]
    where = np.searchsorted(starts, pos, side="right") - 1
    groups, code = np.unique(where * len(over) + which, return_inverse=True)
    _, rank, _ = div.group_ranks(code.reshape(-1), len(groups))
    if offsets is not None:
        rank = rank + offsets[where, which]
    return pos, which, where, rank


def _over_counts(pos: np.ndarray, batch: dict[str, pa.Array], *, over: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Members of each over-used template in each contiguous range of the block: (the ranges'
    first positions, ranges x templates)."""
    starts = pos[np.r_[0, np.flatnonzero(np.diff(pos) != 1) + 1]] if len(pos) else np.zeros(0, np.int64)
    _, which, where, _ = _over_rows(pos, batch["template"], over, starts, None)
    counts = np.zeros((len(starts), len(over)), np.int64)
    np.add.at(counts, (where, which), 1)
    return starts, counts


def _merge_over_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The ranges' counts of every block, ranges in position order."""
    starts = np.concatenate([p[0] for p in parts])
    order = np.argsort(starts, kind="stable")
    return starts[order], np.concatenate([p[1] for p in parts])[order]


def _over_flags(pos: np.ndarray, batch: dict[str, pa.Array], *, over: pa.Array, starts: np.ndarray,
                offsets: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Members of over-used templates whose rank among the template's members is ``keep`` or more."""
    pos, which, _, rank = _over_rows(pos, batch["template"], over, starts, offsets)
    flag = rank >= keep
    return pos[flag], which[flag]


# --------------------------------------------------------------------------- driver


class RayAggregate:
    """The categories' and diversity's figures from partials made by Ray tasks."""

    def __init__(self, view: RayCheckData) -> None:
        self.view, self.engine = view, view.engine

    def _reduce(self, ds: Any, fn: Callable[..., Any], merge: Callable[[list], Any], desc: str, **kwargs: Any) -> Any:
        """``fn`` over every block of ``ds`` on Ray, the partials joined by ``merge`` as they come;
        the blocks must cover every row exactly once."""
        import ray

        started = time.perf_counter()
        out = ds.map_batches(_call, fn_kwargs={"fn": fn, "kwargs": kwargs}, batch_size=None,
                             batch_format="pyarrow", zero_copy_batch=True, **self.engine.task_args())
        starts, rows, pending, calls = [], [], [], 0
        for ref in out.to_arrow_refs():
            table = ray.get(ref)
            starts.append(table.column("start").to_numpy())
            rows.append(table.column("rows").to_numpy())
            pending += [pickle.loads(b) for b in table.column("result").to_pylist() if b]
            calls += 1
            if len(pending) >= _FOLD:
                pending = [merge(pending)]
        starts, rows = np.concatenate(starts or [np.zeros(0, np.int64)]), np.concatenate(rows or [np.zeros(0, np.int64)])
        order = np.argsort(starts, kind="stable")
        starts, rows = starts[order], rows[order]
        n = len(self.view)
        if not (len(starts) and starts[0] == 0 and np.array_equal(starts[1:], (starts + rows)[:-1])
                and int(rows.sum()) == n):
            raise HubtoolsError(f"the Ray engine got {int(rows.sum())} rows in {len(starts)} ranges back for {n} rows",
                                hint="a block was lost or repeated: please report this with the Ray version")
        self.engine.step("ray tasks", calls, time.perf_counter() - started, desc)
        return merge(pending), starts

    def categories(self, name: str, examples: int, allowed: list[int] | None) -> dict:
        """:func:`~hubtools.checks.categories.merge_counts` of every block's partial."""
        ds = self.engine.dataset(self.view, BATCH_SIZE).select_columns([POS, name])
        merged, _ = self._reduce(ds, _category_partial, lambda parts: cat.merge_counts(parts, examples),
                                 "categories: counts per block", name=name, examples=examples, allowed=allowed)
        return merged

    def diversity(self, name: str, words: int, rows: np.ndarray | None, chars: int, cap: int, keep: int):
        """distinct-n of the sample, the openings' and opening words' counts, the template keys
        (values, counts with empty prompts at 0, first positions) and the flagged rows."""
        ds = self.engine.dataset(self.view, BATCH_SIZE).select_columns([POS, name])
        # one pass: each block's features are counted where they are made (and not kept), and
        # the block's sampled prompts give their distinct words and bigrams
        merged, _ = self._reduce(ds, _diversity_partial, _merge_diversity,
                                 "diversity: features, counts and the sample's distinct words per block",
                                 name=name, words=words, rows=rows, chars=chars)
        sample = merged["sample"]
        tokens, bigrams = sample["tokens"], sample["bigrams"]
        distinct = {"distinct_1": round(len(sample["words"]) / tokens, 4) if tokens else 0.0,
                    "distinct_2": round(len(sample["pairs"]) / bigrams, 4) if bigrams and tokens else 0.0,
                    "tokens": int(tokens), "bigrams": int(bigrams)}
        keys, counts, first = merged["template"]
        counts = counts.copy()
        counts[np.asarray(pc.equal(keys, "").to_numpy(zero_copy_only=False), dtype=bool)] = 0  # empty prompts
        over_codes = np.flatnonzero(counts > cap)
        flag_pos, flag_codes = np.zeros(0, np.int64), np.zeros(0, np.int64)
        if over_codes.size:
            # rare: the features again, kept this time, so both passes see the same blocks
            started = time.perf_counter()
            features = ds.map_batches(_feature_rows, fn_kwargs={"name": name, "words": words}, batch_size=None,
                                      batch_format="pyarrow", zero_copy_batch=True,
                                      **self.engine.task_args()).materialize()
            self.engine.step("ray tasks", features.num_blocks(), time.perf_counter() - started, "diversity: features")
            over = keys.take(pa.array(over_codes))
            (starts, per_range), _ = self._reduce(features, _over_counts, _merge_over_counts,
                                                  "diversity: over-used templates per block", over=over)
            offsets = np.cumsum(per_range, axis=0) - per_range
            flags, _ = self._reduce(features, _over_flags, _concat_flags, "diversity: members beyond the cap",
                                    over=over, starts=starts, offsets=offsets, keep=keep)
            order = np.argsort(flags[0], kind="stable")
            flag_pos, flag_codes = flags[0][order], over_codes[flags[1][order]]
        return distinct, merged["opening"], merged["word"], (keys, counts, first), (flag_pos, flag_codes)


def _concat_flags(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
