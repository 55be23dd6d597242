"""``toxicity``: toxic or offensive replies, scored 0..1 by a pluggable classifier.

Backends (``BACKENDS``), all behind :class:`ToxicityBackend` (``score(texts) -> list[float]``
plus a name and version for the report):

* ``offline`` (the default): alt-profanity-check's bundled linear model (TF-IDF + calibrated
  linear SVM, its TF-IDF step run on Arrow kernels: about 25k Alpaca-length replies per second
  and core, so a million take some 40 s of CPU). It is the default because it needs no
  download, no token and no GPU. Its limit: it scores word-level offensive language (swearing,
  slurs, insults), not implicit harm; a polite reply explaining how to hurt someone scores low,
  and short texts with a charged word ("black", "kill") can score high. The default threshold
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
import os
import urllib.error
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BackendError, UnknownCheckError
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

#: The backend names the ``backend`` option accepts.
BACKENDS = ("offline", "detoxify", "transformers")

#: Threshold used when the ``threshold`` option is not given (see the module docstring for 0.6).
DEFAULT_THRESHOLDS = {"offline": 0.6, "detoxify": 0.5, "transformers": 0.5}

#: Texts per forward pass of the model backends.
MODEL_BATCH_SIZE = 32

_BINS = 10
_SHORT = 120  # characters of a reply kept in ``stats["top"]``


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(exc).__name__


# --------------------------------------------------------------------------- backends


class ToxicityBackend(Protocol):
    """What the check needs from a classifier."""

    #: one of ``BACKENDS``
    name: str
    #: what model scores (a path, a Hub id, or a description of a bundled model)
    model: str
    #: texts per scoring call
    batch_size: int
    #: whether :meth:`score` may run in worker processes (the backend must pickle cheaply)
    parallel: bool

    def score(self, texts: list[str]) -> list[float]:
        """One toxicity score in 0..1 per text."""
        ...

    def versions(self) -> dict[str, str]:
        """Library versions for the report."""
        ...


#: The complement of Python's ``\w`` in RE2: the vectorizer's tokens (``\b\w\w+\b``) are the
#: runs between its matches (one-letter runs are never in the vocabulary).
_NON_WORD = r"[^\p{L}\p{N}_]+"


@lru_cache(maxsize=1)
def _profanity_model() -> tuple[Any, Any, pa.Array | None]:
    """alt-profanity-check's vectorizer and classifier, and its vocabulary as an Arrow array in
    column order when the Arrow tokenizer below reproduces the vectorizer exactly (else None)."""
    from profanity_check import profanity_check

    vectorizer, model = profanity_check.vectorizer, profanity_check.model
    params = vectorizer.get_params()
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    same = (type(vectorizer).__name__ == "TfidfVectorizer" and params["analyzer"] == "word"
            and params["input"] == "content" and params["lowercase"] and params["ngram_range"] == (1, 1)
            and params["token_pattern"] == r"(?u)\b\w\w+\b" and params["preprocessor"] is None
            and params["tokenizer"] is None and params["strip_accents"] is None and not params["binary"]
            and params["use_idf"] and not params["sublinear_tf"] and params["norm"] == "l2"
            and [vectorizer.vocabulary_[w] for w in words] == list(range(len(words)))
            and not set(words) & set(vectorizer.get_stop_words() or ()))
    if not same:
        logger.info("alt-profanity-check's vectorizer has unexpected settings: using its own transform")
    return vectorizer, model, pa.array(words, pa.string()) if same else None


def _lower(values: pa.Array) -> pa.Array:
    """``str.lower`` of each value: Arrow's simple case mapping, with Python's own for the rows
    where the two differ (``İ`` lower-cases to two characters, a word-final ``Σ`` to ``ς``)."""
    lower = pc.utf8_lower(values)
    special = pc.fill_null(pc.match_substring_regex(values, "[İΣ]"), False)
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    if not len(rows):
        return lower
    fixed = pa.array([(values[int(i)].as_py() or "").lower() for i in rows], pa.string())
    return pc.replace_with_mask(lower, special, fixed)


def _tfidf_arrow(values: pa.Array, vectorizer: Any, vocabulary: pa.Array):
    """``vectorizer.transform`` done with Arrow kernels: lower-case, split on non-word runs, look
    the tokens up in the vocabulary, count, weight by idf, l2-normalise (2-4x faster than sklearn's loop)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    tokens = pc.split_pattern_regex(_lower(values), _NON_WORD)
    column = pc.index_in(pc.list_flatten(tokens), value_set=vocabulary)
    known = pc.is_valid(column)
    rows = pc.filter(pc.list_parent_indices(tokens), known).to_numpy(zero_copy_only=False)
    cols = pc.filter(column, known).to_numpy(zero_copy_only=False)
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(values), len(vocabulary)))
    counts.data *= vectorizer.idf_[counts.indices]
    return normalize(counts, norm="l2", copy=False)


@dataclass
class OfflineBackend:
    """alt-profanity-check's bundled linear model (TF-IDF + calibrated linear SVM): offline, CPU.

    Scores word-level offensive language (profanity, slurs, insults); it does not see implicit
    harm such as politely worded dangerous advice. The TF-IDF step runs on Arrow kernels with the
    model's own vocabulary and idf weights (the same scores as ``predict_prob``, 2-4x faster:
    about 25k replies of 700 characters per second and core, 60k of 230).
    Holds no model itself, so it pickles cheaply for worker processes, each of which loads the
    model once.
    """

    batch_size: int = BATCH_SIZE
    name: str = "offline"
    model: str = "alt-profanity-check (bundled TF-IDF + calibrated linear SVM)"
    parallel: bool = True

    def score(self, texts: list[str] | pa.Array) -> list[float]:
        vectorizer, model, vocabulary = _profanity_model()
        values = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
        out: list[float] = []
        for start in range(0, len(values), self.batch_size):
            part = values.slice(start, self.batch_size)
            features = (_tfidf_arrow(part, vectorizer, vocabulary) if vocabulary is not None
                        else vectorizer.transform(part.to_pylist()))
            out.extend(model.predict_proba(features)[:, 1].tolist())
        return out

    def versions(self) -> dict[str, str]:
        return {"alt-profanity-check": _version("alt-profanity-check"), "scikit-learn": _version("scikit-learn")}


def _by_length(texts: list[str], batch_size: int):
    """Positions of ``texts`` in batches of similar length (less padding for a transformer)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _torch_hub_file(url: str) -> str:
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _network_error(model: str, exc: BaseException | None = None) -> BackendError:
    why = f"the download failed ({_first_line(exc)})" if exc is not None else "HF_HUB_OFFLINE is set"
    return BackendError(f"detoxify model {model!r} must be downloaded and needs network, but {why}",
                        reason="unreachable", hint="pass a local checkpoint path with --toxicity-model PATH, "
                                                   "or run once with network access so it is cached")


class DetoxifyBackend:
    """The real ``detoxify.Detoxify``; score = its ``toxicity`` output.

    ``model`` is a checkpoint file or a detoxify model type. A checkpoint is what detoxify's
    ``load_checkpoint`` reads: ``torch.save({"config": ..., "state_dict": ...})`` where
    ``config["arch"]["args"]`` has ``model_type`` (passed to ``from_pretrained`` for the
    transformers config and tokenizer: a local folder, or a Hub name that is in the local
    cache when offline), ``model_name`` (a transformers class such as
    ``BertForSequenceClassification``), ``tokenizer_name`` (e.g. ``BertTokenizer``) and
    ``num_classes``; ``config["dataset"]["args"]["classes"]`` names the outputs, one of them
    ``toxic`` or ``toxicity``. ``state_dict`` holds that class's weights.

    Raises:
        BackendError: the model needs a download with no network, or the checkpoint cannot be
            loaded.
    """

    name = "detoxify"
    parallel = False

    def __init__(self, model: str | None = None, *, batch_size: int = MODEL_BATCH_SIZE):
        from detoxify import Detoxify
        from detoxify.detoxify import MODEL_URLS
        from huggingface_hub.constants import is_offline_mode

        self.model = model or "original"
        self.batch_size = batch_size
        path = os.path.expanduser(self.model)
        if os.path.isfile(path):
            kwargs: dict[str, Any] = {"checkpoint": path}
        elif self.model in MODEL_URLS:
            if is_offline_mode() and not os.path.isfile(_torch_hub_file(MODEL_URLS[self.model])):
                raise _network_error(self.model)
            kwargs = {"model_type": self.model}
        else:
            raise BackendError(f"detoxify: {self.model!r} is neither a checkpoint file nor a detoxify model type",
                               reason="model_not_found",
                               hint=f"pass a .ckpt path or one of: {', '.join(MODEL_URLS)}")
        logger.info("loading detoxify %s", self.model)
        try:
            self.detector = Detoxify(device="cpu", **kwargs)
        except (urllib.error.URLError, ConnectionError) as exc:
            raise _network_error(self.model, exc) from None
        except OSError as exc:
            raise BackendError(f"detoxify: cannot load {self.model!r}: {_first_line(exc)}", reason="model_not_found",
                               hint="the checkpoint's config.arch.args.model_type must be a local folder with "
                                    "config.json and tokenizer files, or a Hub model already in the cache") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackendError(f"detoxify: {self.model!r} is not a detoxify checkpoint: {_first_line(exc)}",
                               reason="malformed", hint="it needs 'config' (arch.args, dataset.args.classes) and "
                                                        "'state_dict', as detoxify's load_checkpoint reads") from None
        if "toxicity" not in self.detector.class_names:
            raise BackendError(f"detoxify: {self.model!r} has no toxicity output "
                               f"(classes: {', '.join(self.detector.class_names)})", reason="malformed",
                               hint="name one class 'toxic' or 'toxicity' in config.dataset.args.classes")

    def score(self, texts: list[str]) -> list[float]:
        out = [0.0] * len(texts)
        for positions in _by_length(texts, self.batch_size):
            values = self.detector.predict([texts[i] for i in positions])["toxicity"]
            for i, value in zip(positions, np.atleast_1d(values).tolist()):
                out[i] = float(value)
        return out

    def versions(self) -> dict[str, str]:
        return {"detoxify": _version("detoxify"), "torch": _version("torch"), "transformers": _version("transformers")}


#: Label names taken as "toxic" when the ``label`` option is not given (lower case, "_" as "-").
_TOXIC_EXACT = ("toxic", "toxicity")
_TOXIC_WORDS = ("toxic", "offensive", "hate", "abusive", "abuse", "insult", "obscene", "profan", "harmful")
_NEGATED = ("non", "not", "no-", "no ", "neutral", "normal", "clean", "safe", "benign")


def _toxic_labels(labels: list[str], wanted: str | None, model: str) -> list[str]:
    """The labels whose probability is the toxicity score (several are summed)."""
    if wanted is not None:
        if wanted not in labels:
            raise UnknownCheckError(f"toxicity: model {model!r} has no label {wanted!r}",
                                    hint=f"choose from: {', '.join(labels)}")
        return [wanted]
    norm = {label: label.lower().replace("_", "-").strip() for label in labels}
    exact = [label for label, n in norm.items() if n in _TOXIC_EXACT]
    if exact:
        return exact[:1]
    found = [label for label, n in norm.items()
             if any(w in n for w in _TOXIC_WORDS) and not n.startswith(_NEGATED)]
    if found:
        return found
    if len(labels) == 1 or (len(labels) == 2 and "LABEL_1" in labels):
        return [labels[-1]]
    raise UnknownCheckError(f"toxicity: cannot tell which label of {model!r} means toxic ({', '.join(labels)})",
                            hint="name it with the label option, e.g. options={'toxicity': {'label': '...'}}")


class TransformersBackend:
    """Any text-classification model through ``transformers.pipeline(..., top_k=None)``.

    The score is the probability of the toxic label (``label``, or the one the label names give
    away); when several labels are toxic-like (``hate`` and ``offensive``) their probabilities
    are summed for a softmax model and the largest is taken for a multi-label one.

    Raises:
        BackendError: the model cannot be loaded (not found, or not cached when offline).
        UnknownCheckError: ``label`` is not one of the model's labels, or none looks toxic.
    """

    name = "transformers"
    parallel = False

    def __init__(self, model: str, *, label: str | None = None, batch_size: int = MODEL_BATCH_SIZE):
        from transformers import pipeline

        self.model = model
        self.batch_size = batch_size
        logger.info("loading text-classification model %s", model)
        try:
            self.pipe = pipeline("text-classification", model=model, top_k=None)
        except (OSError, ValueError) as exc:
            raise BackendError(f"transformers: cannot load {model!r}: {_first_line(exc)}", reason="model_not_found",
                               hint="pass a local model folder or a Hub model id; offline, it must be in the "
                                    "Hugging Face cache") from None
        config = self.pipe.model.config
        labels = [config.id2label[i] for i in sorted(config.id2label)]
        self.labels = _toxic_labels(labels, label, model)
        self._multi_label = config.problem_type == "multi_label_classification" or config.num_labels == 1

    def score(self, texts: list[str]) -> list[float]:
        out = [0.0] * len(texts)
        combine = max if self._multi_label else sum
        for positions in _by_length(texts, self.batch_size):
            rows = self.pipe([texts[i] for i in positions], batch_size=self.batch_size, truncation=True)
            for i, row in zip(positions, rows):
                probs = {item["label"]: item["score"] for item in row}
                out[i] = float(min(1.0, combine(probs[label] for label in self.labels)))
        return out

    def versions(self) -> dict[str, str]:
        return {"transformers": _version("transformers"), "torch": _version("torch")}


def load_backend(name: str = "offline", *, model: str | None = None, label: str | None = None,
                 batch_size: int | None = None) -> ToxicityBackend:
    """The backend called ``name``, loaded and ready to score.

    Example:
        >>> backend = load_backend("offline")
        >>> [round(s) for s in backend.score(["Have a lovely day!", "You are a stupid idiot."])]
        [0, 1]

    Raises:
        UnknownCheckError: an unknown backend name, or options it does not take.
        BackendError: a model that cannot be loaded.
    """
    if name == "offline":
        if model:
            raise UnknownCheckError("toxicity: the offline backend has its model bundled and takes no model",
                                    hint="use backend detoxify or transformers to score with a model")
        return OfflineBackend(batch_size=batch_size or BATCH_SIZE)
    if name == "detoxify":
        return DetoxifyBackend(model, batch_size=batch_size or MODEL_BATCH_SIZE)
    if name == "transformers":
        if not model:
            raise UnknownCheckError("toxicity: the transformers backend needs a model",
                                    hint="pass --toxicity-model with a Hub id or a local model folder")
        return TransformersBackend(model, label=label, batch_size=batch_size or MODEL_BATCH_SIZE)
    raise UnknownCheckError(f"toxicity: unknown backend {name!r}", hint=f"choose from: {', '.join(BACKENDS)}")


# --------------------------------------------------------------------------- scoring


def _score_batch(batch: dict[str, pa.Array], backend: ToxicityBackend) -> dict[str, np.ndarray]:
    """Scores of one batch per field; empty replies score 0 without reaching the model."""
    out = {}
    for name, values in batch.items():
        scores = np.zeros(len(values), np.float64)
        filled = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0).to_numpy(zero_copy_only=False)
        positions = np.flatnonzero(filled)
        if len(positions):
            texts = pc.take(values, pa.array(positions))
            if not isinstance(backend, OfflineBackend):  # it reads Arrow; the models want str
                texts = texts.to_pylist()
            scores[positions] = np.clip(np.asarray(backend.score(texts), np.float64), 0.0, 1.0)
        out[name] = scores
    return out


def score_fields(data: CheckData | Any, backend: ToxicityBackend, names: list[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """Toxicity score of every row, per field (default: the reply fields), in row order.

    Batched through :meth:`CheckData.map`: in worker processes for a parallel backend.

    Example:
        >>> scores = score_fields(sft([("Hi", "Hello!")]), load_backend())  # doctest: +SKIP
        >>> scores["response"].shape  # doctest: +SKIP
        (1,)
    """
    data = CheckData.of(data)
    names = list(names or data.response_fields)
    chunk = backend.batch_size if backend.parallel else min(BATCH_SIZE, 32 * backend.batch_size)
    batches = data.map(_score_batch, names, desc="toxicity", batch_size=chunk, parallel=backend.parallel,
                       backend=backend)
    return {n: np.concatenate([b[n] for b in batches]) if batches else np.zeros(0, np.float64) for n in names}


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


@register("toxicity", description="toxic or offensive language in the replies", options=ToxicityOptions)
def check_toxicity(data: CheckData, opts: ToxicityOptions) -> CheckResult:
    """Flag taught replies scoring at least the threshold; counts, histogram and top scores per field."""
    backend = load_backend(opts.backend, model=opts.model, label=opts.label, batch_size=opts.batch_size)
    threshold = opts.resolved_threshold()
    names = data.response_fields
    logger.info("toxicity: %s backend (%s), threshold %s, fields %s", backend.name, backend.model, threshold, names)
    scores = score_fields(data, backend, names)
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
