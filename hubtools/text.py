"""Text helpers shared by checks, generation and judging: one tokeniser, one stopword list.

* :func:`words`: the words of a text, case-folded, punctuation dropped (:data:`TOKEN_RE`: runs
  of letters/digits; every Chinese/Japanese character is a word of its own). The
  ``near_duplicates`` check shingles with it (its vectorised shingling is tested against
  :func:`word_shingles`), the instruction generator drops near-copies with it, and the
  heuristic judge and the gold cross-check count words with it.
* :data:`STOPWORDS` and :func:`content_words`: the words that carry content (3+ characters,
  not a stopword), what :func:`groundedness` compares.
* :func:`normalise`: a text as its words joined by spaces (how prompts are matched).
* :data:`NUMBER_RE`: a number as a claim (``42``, ``3.5``, ``42,000``; not part of a word).

This module sits in the lowest layer: it imports nothing from hubtools.
"""

from __future__ import annotations

from collections.abc import Iterable

import regex

__all__ = ["NUMBER_RE", "STOPWORDS", "TOKEN_RE", "content_words", "groundedness", "jaccard", "normalise",
           "word_shingles", "words"]

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
#: A word: one Chinese/Japanese character, or a run of other word characters (letters, digits,
#: marks, underscore). Punctuation and symbols separate words and are dropped.
TOKEN_RE = regex.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
#: A number in running text: digits with ``.``/``,`` groups, not glued to a word.
NUMBER_RE = regex.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
#: Function words that say nothing about what a text is about (English).
STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been being
this that these those it its it's i you he she we they them his her their our your my me us do does did
not no so than then there here what which who whom whose when where why how all any each some such can
could should would will shall may might must have has had about into over under also just only very
more most other same own too out up down off again further once both few nor while after before between
many often because through one two""".split())


def words(text: str) -> list[str]:
    """The words of ``text`` (case-folded, punctuation dropped).

    >>> words("Hello, World! 你好")
    ['hello', 'world', '你', '好']
    """
    return TOKEN_RE.findall(text.casefold())


def content_words(tokens: Iterable[str]) -> list[str]:
    """The words of ``tokens`` that carry content: 3+ characters and not in :data:`STOPWORDS`.

    >>> content_words(words("The Loire is a river."))
    ['loire', 'river']
    """
    return [w for w in tokens if len(w) > 2 and w not in STOPWORDS]


def normalise(text: str) -> str:
    """``text`` as its words joined by single spaces: equal for texts that differ in case and punctuation only.

    >>> normalise("What is  the capital of France?")
    'what is the capital of france'
    """
    return " ".join(words(text))


def groundedness(reply: str, source: str, prompt: str = "", *, ndigits: int | None = 4) -> float | None:
    """Share of the reply's content words found in ``source`` or ``prompt``; ``None`` when it has none.

    Rounded to ``ndigits`` (``None``: not rounded).

    >>> groundedness("The Loire flows west.", "The Loire is a river that flows west to the sea.")
    1.0
    """
    found = content_words(words(reply))
    if not found:
        return None
    known = set(words(source)) | set(words(prompt))
    share = sum(w in known for w in found) / len(found)
    return share if ndigits is None else round(share, ndigits)


def word_shingles(text: str, n: int = 3) -> set[str]:
    """The set of ``n``-word shingles of ``text``; a text shorter than ``n`` words is one shingle.

    >>> sorted(word_shingles("The cat sat on the mat", 3))
    ['cat sat on', 'on the mat', 'sat on the', 'the cat sat']
    """
    tokens = words(text)
    if len(tokens) < n:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b| (0.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
