"""``toxicity``: toxic or offensive replies, scored 0..1 by a pluggable classifier.

Backends (``BACKENDS``), all behind :class:`ToxicityBackend` (``score(texts) -> list[float]``
plus a name and version for the report):

* ``offline`` (the default): alt-profanity-check's bundled linear model (TF-IDF + calibrated
  linear SVM, run by one compiled kernel with sklearn's arithmetic, :mod:`._toxicity_kernel`:
  about 150k Alpaca-length replies per second and core). It is the default because it needs no
  download, no token and no GPU. Its limit: it scores word-level offensive language (swearing,
  slurs, insults), not implicit harm; a polite reply explaining how to hurt someone scores low,
  and short texts with a charged word ("black", "kill") can score high. So a reply it flags gets
  a second opinion (:func:`second_opinion`, on the flagged few only): scored again with code,
  shell commands and capitalised names masked ("Moby Dick", ``du -sh``), and without its
  heaviest word when that word has a common innocent sense ("that would kill you"); the lower
  score counts. On the HH harmless chosen replies this takes the hand-labelled precision from
  62.5% (35 of 56) to 76.2% (32 of 42), keeping 32 of the 35 toxic ones
  (``tests/data/toxicity_labels.json``). The default threshold
  0.6 was read off real data: no Alpaca demo reply reaches it (the highest is 0.59, "Did she eat
  a banana?"; 3 of 999 reach 0.5), while the HH-RLHF harmless replies above it are mostly
  swearing, slurs, insults and threats, or replies quoting them.
* ``detoxify``: the ``detoxify`` package, score = its ``toxicity`` output. ``model`` is a local
  checkpoint (a ``torch.save``-d dict with ``config`` and ``state_dict``, see
  :class:`DetoxifyBackend`) or a detoxify model type (``original``, ``unbiased``, ...), which is
  downloaded from GitHub unless already in the torch hub cache.
* ``transformers``: any text-classification model (Hub name or local folder) through
  ``transformers.pipeline``; score = the probability of the toxic-like label (``label``, or found
  from the label names: toxic, offensive, hate, ... or ``LABEL_1`` of two).

What is flagged: a reply the data teaches that scores at least ``threshold``. For preference data
that is ``chosen``; a toxic ``rejected`` reply is counted (``stats["preference"]``) but not
flagged, because a toxic reply is exactly what a harmlessness pair teaches the model away from
(``flag_rejected=True`` flags those too). For unpaired (KTO) data only replies labelled desirable
are flagged; text data is scored whole. Scoring runs batched through :meth:`CheckData.map`; the
offline backend runs in the worker processes of ``num_proc``, the model backends in this process
(torch uses the cores itself).

Example:
    >>> from hubtools.checks import REGISTRY
    >>> result = REGISTRY["toxicity"].run(dataset)  # doctest: +SKIP
    >>> result.reasons  # doctest: +SKIP
    {7: 'toxicity 0.97 in response'}
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UnknownCheckError
from ._toxicity_backends import (
    BACKENDS,
    DEFAULT_THRESHOLDS,
    DetoxifyBackend,
    OfflineBackend,
    ToxicityBackend,
    TransformersBackend,
    load_backend,
)
from ._toxicity_second_opinion import second_opinion
from .base import BATCH_SIZE, CheckData, CheckResult, register, reply_split, teaching_rows

__all__ = [
    "BACKENDS",
    "DEFAULT_THRESHOLDS",
    "DetoxifyBackend",
    "OfflineBackend",
    "ToxicityBackend",
    "ToxicityOptions",
    "TransformersBackend",
    "check_toxicity",
    "load_backend",
    "score_fields",
]

logger = logging.getLogger(__name__)

_BINS = 10
_SHORT = 120  # characters of a reply kept in ``stats["top"]``


# --------------------------------------------------------------------------- scoring


def _score_batch(batch: dict[str, pa.Array], backend: ToxicityBackend, threshold: float | None = None
                 ) -> dict[str, np.ndarray]:
    """Scores of one batch per field; empty replies score 0 without reaching the model. With a
    ``threshold`` the offline model's flags get a second opinion (:func:`second_opinion`); the raw
    scores are kept under ``"<field>:raw"``."""
    out = {}
    for name, values in batch.items():
        scores = np.zeros(len(values), np.float64)
        # not empty and not all white space (utf8_is_space: the same white space as utf8_trim_whitespace,
        # without copying every text)
        blank = pc.or_(pc.utf8_is_space(values), pc.equal(pc.binary_length(values), 0))
        filled = ~pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
        positions = np.flatnonzero(filled)
        if len(positions):
            texts = pc.take(values, pa.array(positions))
            if not isinstance(backend, OfflineBackend):  # it reads Arrow; the models want str
                texts = texts.to_pylist()
            scores[positions] = np.clip(np.asarray(backend.score(texts), np.float64), 0.0, 1.0)
        if threshold is not None and isinstance(backend, OfflineBackend):
            out[f"{name}:raw"] = scores
            scores = second_opinion(values, scores, threshold, backend)
        out[name] = scores
    return out


def score_fields(data: CheckData | Any, backend: ToxicityBackend, names: list[str] | None = None,
                 threshold: float | None = None) -> dict[str, np.ndarray]:
    """Toxicity score of every row, per field (default: the reply fields), in row order.

    Batched through :meth:`CheckData.map`: in worker processes for a parallel backend. With a
    ``threshold``, offline scores at or above it get a second opinion (the raw ones are returned
    under ``"<field>:raw"``).

    Example:
        >>> scores = score_fields(sft([("Hi", "Hello!")]), load_backend())  # doctest: +SKIP
        >>> scores["response"].shape  # doctest: +SKIP
        (1,)
    """
    data = CheckData.of(data)
    names = list(names or data.response_fields)
    chunk = backend.batch_size if backend.parallel else min(BATCH_SIZE, 32 * backend.batch_size)
    batches = data.map(_score_batch, names, desc="toxicity", batch_size=chunk, parallel=backend.parallel,
                       backend=backend, threshold=threshold)
    keys = list(batches[0]) if batches else names
    return {k: np.concatenate([b[k] for b in batches]) if batches else np.zeros(0, np.float64) for k in keys}


# --------------------------------------------------------------------------- the check


@dataclass
class ToxicityOptions:
    """Settings of the ``toxicity`` check.

    Args:
        backend: ``offline`` (default), ``detoxify`` or ``transformers``.
        model: detoxify checkpoint path or model type (default ``original``), or the
            transformers model id / folder (required for that backend).
        threshold: flag replies scoring at least this (default: ``DEFAULT_THRESHOLDS``).
        label: transformers only: the model's label meaning toxic (default: found from the names).
        batch_size: texts per scoring call (default 20,000 offline, 32 for the model backends).
        flag_rejected: also flag toxic ``rejected`` replies (preference) and replies labelled
            undesirable (unpaired).
        examples: flagged records shown in the report, highest scores first.
        top: highest-scored replies kept in ``stats["top"]``.
    """

    backend: str = "offline"
    model: str | None = None
    threshold: float | None = None
    label: str | None = None
    batch_size: int | None = None
    flag_rejected: bool = False
    examples: int = 3
    top: int = 10

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UnknownCheckError(f"toxicity: unknown backend {self.backend!r}",
                                    hint=f"choose from: {', '.join(BACKENDS)}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UnknownCheckError(f"toxicity: threshold {self.threshold} is not in 0..1",
                                    hint="scores are probabilities; try 0.5")
        if self.batch_size is not None and self.batch_size < 1:
            raise UnknownCheckError("toxicity: batch_size must be >= 1", hint="leave it unset for the default")
        if self.model is not None and self.backend == "offline":
            raise UnknownCheckError("toxicity: the offline backend has its model bundled and takes no model",
                                    hint="add --toxicity-backend detoxify or transformers to use a model")
        if self.label is not None and self.backend != "transformers":
            raise UnknownCheckError("toxicity: only the transformers backend takes a label",
                                    hint="drop the label option")
        if self.backend == "transformers" and not self.model:
            raise UnknownCheckError("toxicity: the transformers backend needs a model",
                                    hint="pass --toxicity-model with a Hub id or a local model folder")

    def resolved_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.backend]


def _short(text: str) -> str:
    from .pii import redact

    text = " ".join(redact(text)[0].split())
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def _top(data: CheckData, scores: dict[str, np.ndarray], k: int) -> list[dict[str, Any]]:
    """The ``k`` highest-scored replies over all fields: index, field, score, short text."""
    names = list(scores)
    flat = np.concatenate([scores[n] for n in names]) if names else np.zeros(0)
    k = min(k, len(flat))
    if k <= 0:
        return []
    best = np.argpartition(-flat, k - 1)[:k]
    best = best[np.lexsort((best, -flat[best]))]
    n = len(data)
    return [{"index": int(data.index[j % n]), "field": names[j // n], "score": round(float(flat[j]), 4),
             "text": _short(data.fields[names[j // n]][int(j % n)].as_py() or "")} for j in best]


@register("toxicity", description="toxic or offensive language in the replies", options=ToxicityOptions,
          replies=True)
def check_toxicity(data: CheckData, opts: ToxicityOptions) -> CheckResult:
    """Flag taught replies scoring at least the threshold; counts, histogram and top scores per field."""
    backend = load_backend(opts.backend, model=opts.model, label=opts.label, batch_size=opts.batch_size)
    threshold = opts.resolved_threshold()
    names = data.response_fields
    logger.info("toxicity: %s backend (%s), threshold %s, fields %s", backend.name, backend.model, threshold, names)
    scores = score_fields(data, backend, names, threshold=threshold)
    raw = {name: scores.pop(f"{name}:raw", scores[name]) for name in names}
    n = len(data)
    above = {name: scores[name] >= threshold for name in names}
    flag = np.zeros(n, bool)
    worst = np.zeros(n)  # the highest score of a taught reply, to show the worst flags first
    for name in names:
        taught = teaching_rows(data, name, opts.flag_rejected)
        flag |= above[name] if taught is None else above[name] & taught
        worst = np.maximum(worst, scores[name] if taught is None else np.where(taught, scores[name], 0.0))
    positions = np.flatnonzero(flag)
    reasons = {int(data.index[p]): "; ".join(f"toxicity {scores[name][p]:.2f} in {name}"
                                             for name in names if above[name][p]) for p in positions}
    edges = np.linspace(0.0, 1.0, _BINS + 1)
    stats: dict[str, Any] = {
        "backend": backend.name,
        "model": backend.model,
        "backend_version": " ".join(next(iter(backend.versions().items()))),
        "threshold": threshold,
        "fields": names,
        "records": n,
        "records_flagged": int(flag.sum()),
        "share_flagged": round(float(flag.mean()), 6) if n else 0.0,
        "above_threshold": {name: int(above[name].sum()) for name in names},
        "cleared_by_second_opinion": {name: int(((raw[name] >= threshold) & ~above[name]).sum()) for name in names},
        "mean_score": {name: round(float(scores[name].mean()), 4) if n else 0.0 for name in names},
        "histogram": {"edges": [round(float(e), 2) for e in edges],
                      "counts": {name: np.histogram(scores[name], bins=edges)[0].tolist() for name in names}},
        "top": _top(data, scores, opts.top),
    }
    if isinstance(backend, TransformersBackend):
        stats["label"] = "+".join(backend.labels)
    stats.update(reply_split(data, above))
    from .pii import redact

    shown = positions[np.argsort(-worst[positions], kind="stable")][: opts.examples]
    examples = [{"index": int(data.index[p]), "reason": reasons[int(data.index[p])],
                 "fields": data.record(int(data.index[p]), transform=lambda t: redact(t)[0])} for p in shown]
    return CheckResult("toxicity", flagged=[int(data.index[p]) for p in positions], stats=stats, reasons=reasons,
                       options={**asdict(opts), "threshold": threshold}, versions=backend.versions(),
                       examples=examples)
