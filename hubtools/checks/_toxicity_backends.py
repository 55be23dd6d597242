"""The toxicity check's scorers: the offline model, detoxify and any transformers classifier.

All behind :class:`ToxicityBackend` (``score(texts) -> list[float]`` plus a name and version for
the report); :func:`load_backend` builds one by name. What each scores and why ``offline`` is
the default: :mod:`hubtools.checks.toxicity`.
"""

from __future__ import annotations

import logging
import os
import urllib.error
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BackendError, UnknownCheckError
from .base import BATCH_SIZE

__all__ = ["BACKENDS", "DEFAULT_THRESHOLDS", "MODEL_BATCH_SIZE", "DetoxifyBackend", "OfflineBackend",
           "ToxicityBackend", "TransformersBackend", "load_backend"]

logger = logging.getLogger(__name__)

#: The backend names the ``backend`` option accepts.
BACKENDS = ("offline", "detoxify", "transformers")

#: Threshold used when the ``threshold`` option is not given (see the module docstring for 0.6).
DEFAULT_THRESHOLDS = {"offline": 0.6, "detoxify": 0.5, "transformers": 0.5}

#: Texts per forward pass of the model backends.
MODEL_BATCH_SIZE = 32


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


#: ASCII bytes -> what the tokenizer reads: a word character (``[A-Za-z0-9_]``) lower-cased,
#: anything else a space
_ASCII_WORD = np.full(256, 0x20, dtype=np.uint8)
for _c in b"0123456789_abcdefghijklmnopqrstuvwxyz":
    _ASCII_WORD[_c] = _c
_ASCII_WORD[0x41:0x5B] = np.arange(0x61, 0x7B, dtype=np.uint8)


def _known_tokens(values: pa.Array, vocabulary: pa.Array, fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(row, vocabulary column) of every token of ``values`` that is in the vocabulary.

    Tokens are the runs of word characters (``\\w``: letters, digits, ``_``) of the lower-cased
    text. ASCII rows (most replies) are tokenized on their bytes: one table lookup turns each
    byte into its lower case or a space, then a plain whitespace split; on ASCII the word
    characters are exactly ``[A-Za-z0-9_]``, so the tokens are the same as the regex split's,
    which the other rows take (Unicode letters, ``İ``/``Σ`` case rules); ``fast=False`` sends
    every row through the regex split (the reference the tests compare with)."""
    is_ascii = pc.fill_null(pc.string_is_ascii(values), False).to_numpy(zero_copy_only=False) & fast
    parts = []
    for wanted in (True, False):
        where = np.flatnonzero(is_ascii == wanted)
        if not len(where):
            continue
        subset = values if len(where) == len(values) else values.take(pa.array(where))
        if wanted:
            if isinstance(subset, pa.ChunkedArray):
                subset = subset.combine_chunks()
            subset = pa.concat_arrays([subset.cast(pa.string())])  # offsets from 0, its own buffers
            _, offsets, data = subset.buffers()
            size = int(np.frombuffer(offsets, np.int32, len(subset) + 1)[-1]) if len(subset) else 0
            words = _ASCII_WORD[np.frombuffer(data, np.uint8, size)] if data is not None and size else b""
            subset = pa.StringArray.from_buffers(len(subset), offsets, pa.py_buffer(words), subset.buffers()[0])
            tokens = pc.ascii_split_whitespace(subset)
        else:
            tokens = pc.split_pattern_regex(_lower(subset), _NON_WORD)
        column = pc.index_in(pc.list_flatten(tokens), value_set=vocabulary)
        known = pc.is_valid(column)
        rows = pc.filter(pc.list_parent_indices(tokens), known).to_numpy(zero_copy_only=False)
        parts.append((where[rows], pc.filter(column, known).to_numpy(zero_copy_only=False)))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _tfidf_arrow(values: pa.Array, vectorizer: Any, vocabulary: pa.Array, fast: bool = True):
    """``vectorizer.transform`` done with Arrow kernels: lower-case, split on non-word runs, look
    the tokens up in the vocabulary, count, weight by idf, l2-normalise (2-4x faster than sklearn's loop)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    rows, cols = _known_tokens(values, vocabulary, fast)
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(values), len(vocabulary)))
    counts.data *= vectorizer.idf_[counts.indices]
    return normalize(counts, norm="l2", copy=False)


@lru_cache(maxsize=1)
def _linear_model() -> Any:
    """The model as arrays for the compiled scorer (:mod:`._toxicity_kernel`), read from the
    cache or off the sklearn objects; None when the vectorizer or the classifier is not the
    expected kind (then sklearn scores)."""
    from ._toxicity_kernel import from_sklearn, linear_model

    def build() -> Any:
        vectorizer, model, vocabulary = _profanity_model()
        return None if vocabulary is None else from_sklearn(vocabulary.to_pylist(), vectorizer, model)

    return linear_model(build)


def _compiled_scores(values: pa.Array, linear: Any) -> np.ndarray:
    """The offline model's probabilities for ``values`` by the compiled kernel: ASCII rows
    tokenised in it, the others by the Arrow regex split (Unicode words and case rules)."""
    from ._toxicity_kernel import decisions, probabilities

    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return probabilities(decisions(values, linear, lambda subset: _known_tokens(subset, linear.words, fast=False)),
                         linear)


@dataclass
class OfflineBackend:
    """alt-profanity-check's bundled linear model (TF-IDF + calibrated linear SVM): offline, CPU.

    Scores word-level offensive language (profanity, slurs, insults); it does not see implicit
    harm such as politely worded dangerous advice. Scoring runs in one compiled kernel with the
    model's own vocabulary, idf weights and coefficients (:mod:`._toxicity_kernel`: the same
    scores as ``predict_prob`` to the last bit, about 150k replies of 700 characters per second
    and core); a model of another kind falls back to the Arrow TF-IDF + sklearn.
    Holds no model itself, so it pickles cheaply for worker processes, each of which reads the
    model's arrays once (from the cache, without sklearn).
    """

    batch_size: int = BATCH_SIZE
    name: str = "offline"
    model: str = "alt-profanity-check (bundled TF-IDF + calibrated linear SVM)"
    parallel: bool = True

    def score(self, texts: list[str] | pa.Array) -> list[float]:
        values = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        linear = _linear_model()
        out: list[float] = []
        for start in range(0, len(values), self.batch_size):
            part = values.slice(start, self.batch_size)
            if linear is not None:
                out.extend(_compiled_scores(part, linear).tolist())
                continue
            vectorizer, model, vocabulary = _profanity_model()
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
