"""The offline toxicity model's second opinion on the replies it flags.

The bag-of-words model reads names ("Moby Dick"), code (``du -sh``) and words with an innocent
sense ("roast a pig") as offensive; :func:`second_opinion` scores the flagged few again with
those masked and keeps the lower score. Why and how it was measured: :mod:`hubtools.checks.toxicity`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._toxicity_backends import OfflineBackend, _known_tokens, _linear_model, _profanity_model, _tfidf_arrow

__all__ = ["AMBIGUOUS", "second_opinion"]

#: Capitalised names, which the bag-of-words model reads as words: "Moby Dick", "Dick Cheney",
#: "Philip K. Dick" (runs of two or more), and one capitalised word inside a sentence ("met Dick").
_NAME_RUNS = r"\b[A-Z][a-z]+(?:\s+(?:[A-Z]\.\s+)?[A-Z][a-z]+)+\b"
_NAME_INSIDE = r"([a-z0-9,;]\s+)[A-Z][a-z]+\b"
#: Words with a common innocent sense that the model scores as offensive on their own ("roast a
#: pig", "suck up light", "you can't fool me", "destroy the artifact"): a reply flagged only
#: because of one of them is scored again without it. Read off the replies the model flags on the
#: HH harmless and alpaca_eval files (tests/data/toxicity_labels.json). Profanity, slurs, insults
#: ("dumb", "sucks"), sex and violence ("kill", "die") are not here: "Police are dicks", "Nancy
#: Pelosi sucks" and "You are incompetent and should die" stay flagged.
AMBIGUOUS = frozenset("""
fool fooled foolish pig pigs roast spit suck smell smells jerk ugly disgusting hell damn black white
prostitute excrement feces bloody screw balls weed crack racist homophobic hatred bigotry destroy
corrupt fake
""".split())


def _masked(values: pa.Array) -> pa.Array:
    """What the second opinion scores: code, shell commands, URLs dropped (``du -sh`` is not
    "sh"), capitalised names replaced by "name" (``Moby Dick`` is not "dick")."""
    from ._langid import clean_text

    values = clean_text(values)
    values = pc.replace_substring_regex(values, _NAME_RUNS, "name")
    return pc.replace_substring_regex(values, _NAME_INSIDE, r"\1name")


def _top_words(values: pa.Array) -> list[str | None]:
    """The word contributing most to each text's score (TF-IDF weight x the calibrated SVMs'
    mean coefficient), or None when no word pushes towards toxic."""
    linear = _linear_model()
    if linear is None:
        return _top_words_sklearn(values)
    coef = linear.coef.mean(axis=0)
    rows, cols = _known_tokens(values, linear.words)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    bounds = np.searchsorted(rows, np.arange(len(values) + 1))
    words = linear.words
    out: list[str | None] = []
    for i in range(len(values)):
        columns, counts = np.unique(cols[bounds[i]:bounds[i + 1]], return_counts=True)
        weights = counts * linear.idf[columns]
        total = 0.0
        for w in weights.tolist():  # summed in column order, as sklearn's l2 normalisation does
            total += w * w
        if total == 0.0:
            out.append(None)
            continue
        contrib = weights / math.sqrt(total) * coef[columns]
        out.append(str(words[int(columns[int(np.argmax(contrib))])]) if contrib.max() > 0 else None)
    return out


def _top_words_sklearn(values: pa.Array) -> list[str | None]:
    """:func:`_top_words` with the vectorizer's own features (a model of an unexpected kind)."""
    vectorizer, model, vocabulary = _profanity_model()
    coef = np.mean([c.estimator.coef_.ravel() for c in model.calibrated_classifiers_], axis=0)
    features = (_tfidf_arrow(values, vectorizer, vocabulary) if vocabulary is not None
                else vectorizer.transform(values.to_pylist()))
    contrib = features.multiply(coef).tocsr()
    words = vectorizer.get_feature_names_out()
    out: list[str | None] = []
    for i in range(contrib.shape[0]):
        row = contrib.getrow(i)
        if row.nnz == 0 or row.data.max() <= 0:
            out.append(None)
            continue
        out.append(str(words[row.indices[int(np.argmax(row.data))]]))
    return out


def second_opinion(texts: pa.Array, scores: np.ndarray, threshold: float,
                   backend: OfflineBackend | None = None) -> np.ndarray:
    """The offline model's scores, re-checked where they reach ``threshold``: the lower of the
    score and (1) the score of the text with code and capitalised names masked, and (2) when the
    word that weighs most is in :data:`AMBIGUOUS`, the score without that word and its
    inflections (then once more for the next such word). Only the flagged few are re-scored."""
    scores = np.asarray(scores, np.float64).copy()
    over = np.flatnonzero(scores >= threshold)
    if not len(over):
        return scores
    backend = backend or OfflineBackend()
    masked = _masked(texts.take(pa.array(over)))
    again = np.asarray(backend.score(masked), np.float64)
    current = masked
    for _ in range(2):  # the heaviest ambiguous word, then the next one if the text still flags
        tops = _top_words(current)
        rows = [j for j, w in enumerate(tops) if w in AMBIGUOUS and again[j] >= threshold]
        if not rows:
            break
        texts_now = current.to_pylist()
        for j in rows:  # the word and its inflections ("destroy", "destroying")
            texts_now[j] = re.sub(rf"(?i)\b{re.escape(tops[j])}\w*", " ", texts_now[j] or "")
        current = pa.array(texts_now, pa.string())
        without = np.asarray(backend.score(current.take(pa.array(rows))), np.float64)
        again[rows] = np.minimum(again[rows], without)
    scores[over] = np.minimum(scores[over], again)
    return scores
