"""``language``: records whose prompt or reply is not in the expected language(s).

Each field (by default the prompt and the reply or replies) is detected on its own, with
langdetect's model made fast (see :mod:`hubtools.checks._langid`: Unicode script for the
single-language scripts, langdetect's own n-gram profiles scored for a whole batch at once, and
langdetect itself, seeded, for the close calls). A record is flagged when a field with a
determined language is not among the expected ones ("language fr, expected en"; the field is
named when there are several). Source code and shell commands are not natural language and are
not read (a code reply is ``und``, not French). Texts under ``min_chars`` letters, and texts
langdetect is not sure about, are undetermined (``und``) and never flagged: short prompts such
as "Create a recipe for banana ice cream." are where plain langdetect guesses (``ro``) and
floods reports. A short text whose script settles its language is decided all the same (Han
without kana: zh; kana: ja; Hangul: ko; Thai, Hebrew, Greek, Georgian, Armenian, ...), so a
short Chinese reply in an English file is flagged.

The record's language, for the distribution, is that of its longest determined field. The
expected languages default to the most common record language.

Example:
    >>> from hubtools.checks import REGISTRY
    >>> result = REGISTRY["language"].run(dataset, LanguageOptions(languages=["en"]))  # doctest: +SKIP
    >>> result.reasons  # doctest: +SKIP
    {12: 'language fr (response), expected en'}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import UnknownCheckError
from . import _langid
from .base import CheckData, CheckResult, register

__all__ = ["LanguageOptions", "check_language", "detect_batch", "expected_languages"]


@dataclass
class LanguageOptions:
    """Settings of the ``language`` check.

    Args:
        languages: the expected languages (ISO 639-1 codes as langdetect names them, e.g.
            ``["en", "fr"]`` or ``"en,fr"``; ``zh`` for Chinese); None: the majority language.
        min_chars: texts with fewer letters than this (code, URLs and e-mail addresses not
            counted; a Chinese, Japanese or Korean character counts as three) are undetermined
            and never flagged, unless their script alone settles the language.
        fields: the fields to read (names of the data's fields, or ``prompt``/``response`` for
            the prompt or reply fields of any kind); None: prompt and replies.
    """

    languages: list[str] | str | None = None
    min_chars: int = 40
    fields: list[str] | str | None = None


def _as_list(value: list[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


def expected_languages(languages: list[str] | str | None) -> list[str] | None:
    """Normalise and validate expected language codes (None stays None).

    Raises:
        UnknownCheckError: a code langdetect does not know.
    """
    codes = _as_list(languages)
    if codes is None:
        return None
    codes = list(dict.fromkeys(_langid.normalise_code(c) for c in codes))
    unknown = [c for c in codes if c not in _langid.KNOWN_LANGUAGES]
    if unknown or not codes:
        raise UnknownCheckError(f"unknown language code(s) for the language check: {', '.join(unknown) or 'none given'}",
                                hint=f"use ISO 639-1 codes langdetect knows: {', '.join(_langid.KNOWN_LANGUAGES)}")
    return codes


def detect_batch(batch: dict[str, pa.Array], min_chars: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per field of one batch: (language index, method index, letters); runs in workers."""
    return {name: _langid.detect_texts(arr, min_chars=min_chars) for name, arr in batch.items()}


def _distribution(counts: Counter, total: int) -> dict[str, dict[str, Any]]:
    return {lang: {"count": n, "share": round(n / total, 6) if total else 0.0}
            for lang, n in counts.most_common()}


@register("language", description="prompts or replies not in the expected language(s) (langdetect, seeded)",
          options=LanguageOptions)
def check_language(data: CheckData, opts: LanguageOptions) -> CheckResult:
    """Detect each field's language; flag records with a field in an unexpected language."""
    if opts.min_chars < 0:
        raise UnknownCheckError("the language check's min_chars must be >= 0", hint="e.g. min_chars=40")
    expected = expected_languages(opts.languages)
    names = data.select_fields(opts.fields, ("prompt", "response"), "language")
    parts = data.map(detect_batch, names, desc="language", min_chars=int(opts.min_chars))
    n = len(data)
    lang = {name: np.concatenate([p[name][0] for p in parts]) if parts else np.zeros(0, np.int16)
            for name in names}
    method = {name: np.concatenate([p[name][1] for p in parts]) if parts else np.zeros(0, np.int8)
              for name in names}
    letters = {name: np.concatenate([p[name][2] for p in parts]) if parts else np.zeros(0, np.int64)
               for name in names}
    codes = np.array(_langid.LANGUAGES)

    # the record's language: its longest determined field
    if names and n:
        lang_matrix = np.stack([lang[name] for name in names], axis=1)
        weight = np.stack([np.where(lang[name] > 0, letters[name], -1) for name in names], axis=1)
        record_lang = lang_matrix[np.arange(n), np.argmax(weight, axis=1)]
    else:
        lang_matrix = np.zeros((n, 0), dtype=np.int16)
        record_lang = np.zeros(n, dtype=np.int16)
    determined = record_lang > 0
    counts = Counter(codes[record_lang[determined]].tolist())
    source = "option"
    if expected is None:
        source = "majority"
        expected = [counts.most_common(1)[0][0]] if counts else []

    # flag: any determined field in a language not expected
    allowed = np.zeros(len(codes), dtype=bool)
    allowed[0] = True  # und
    for code in expected:
        allowed[_langid.LANGUAGES.index(code)] = True
    wrong = ~allowed[lang_matrix] if expected else np.zeros_like(lang_matrix, dtype=bool)
    flag = wrong.any(axis=1)
    reasons: dict[int, str] = {}
    flagged_by: Counter = Counter()
    for pos in np.flatnonzero(flag):
        bad = [(codes[lang_matrix[pos, j]], name) for j, name in enumerate(names) if wrong[pos, j]]
        flagged_by.update({code for code, _ in bad})
        found = ", ".join(f"{code} ({name})" if len(names) > 1 else code for code, name in bad)
        reasons[int(data.index[pos])] = f"language {found}, expected {', '.join(expected)}"

    decided = sum((np.bincount(method[name], minlength=len(_langid.METHODS)) for name in names),
                  np.zeros(len(_langid.METHODS), dtype=np.int64))
    decided_by = {m: int(decided[i]) for i, m in enumerate(_langid.METHODS)}
    detected = sum(decided_by[m] for m in ("script", "ngram_model", "langdetect", "langdetect_unsure"))
    stats = {
        "records": n,
        "expected": expected,
        "expected_source": source,
        "fields": names,
        "min_chars": int(opts.min_chars),
        "distribution": _distribution(counts, int(determined.sum())),
        "undetermined": int((~determined).sum()),
        "flagged": int(flag.sum()),
        "flagged_by_language": dict(flagged_by.most_common()),
        "by_field": {name: dict(Counter(codes[lang[name]].tolist()).most_common()) for name in names},
        "decided_by": decided_by,
        "fast_path_share": round((decided_by["script"] + decided_by["ngram_model"]) / detected, 6) if detected else 0.0,
    }
    return CheckResult("language", flagged=[int(data.index[p]) for p in np.flatnonzero(flag)],
                       stats=stats, reasons=reasons, versions={"langdetect": version("langdetect")})
