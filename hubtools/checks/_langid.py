"""Fast language identification that keeps langdetect's answers where it matters.

langdetect reads every character in Python (about 600 texts/s per core). The ``language`` check
decides most texts with whole-batch work instead, in two tiers, and sends only the doubtful rest
to langdetect's model itself; the per-character loops are compiled (numba,
:mod:`hubtools.checks._langid_kernels`) and run over the batch's UTF-8 buffer and offsets, each
held by the tests to a numpy reference or to langdetect:

1. **Script.** The UTF-8 bytes of a batch are decoded in one pass and every character is classed
   by Unicode script. A text written in a script that belongs to one langdetect language is
   decided by it: Hangul -> ko, Greek -> el, Thai -> th, Hebrew -> he, Georgian -> ka,
   Armenian -> hy, the Indic scripts with one language each, and Han -> zh (ja with kana). Chinese/Japanese/Korean are decided this
   way even beside Latin words (names, code), when the CJK characters are at least a quarter
   of the Latin letters: on such texts, and on some plainly Chinese ones, langdetect answers
   ``ko``, ``no``, ``vi``, ``sw``...: noise that would flag good records.
2. **langdetect's own model, without the dice.** langdetect scores a text by drawing random
   character 1-3-grams and multiplying their per-language probabilities from its profiles,
   until one language passes 0.99999. Here the same n-grams (same character normalisation,
   word boundaries and all-caps rule) are read from a prefix of every text and their
   log-probabilities summed (:func:`nb_scores`; the same float32 sums, in the same order, as the
   sparse matrix product of :func:`_nb_scores_numpy`): the naive-Bayes answer langdetect's
   sampling converges to. It decides when the winner leads the runner-up by ``NB_MARGIN`` nats
   (a likelihood ratio of e^6, about 400:1). It reads in two stages: the first ``NB_FIRST``
   (150) characters of every text, which decide a text that long or shorter as before, and a
   longer one when the lead there is ``NB_FIRST_MARGIN`` (20 nats) and no letter outside ASCII
   follows up to ``NB_PREFIX``; the rest (about 1.5% of the bench's replies) is read again to
   ``NB_PREFIX``. Measured against reading ``NB_PREFIX`` characters of every text
   (``tests/test_check_language_speed.py``): 7 of the 27,674 texts of the shared corpus that
   reach this tier are decided differently (texts that change language after their start, such
   as an Italian cookie notice before English text), plain langdetect siding with the old
   answer on 6 and the new on 1; 3 of the bench's 3,000 records change, 2 toward langdetect.
3. **langdetect** (seeded, so deterministic) for everything else: close calls, texts with no
   known n-gram. Its answer counts when its probability is at least ``LANGDETECT_MIN_PROB``;
   below that the text is ``und``. Its sampling runs compiled, from the seeded random stream
   made once, and stops once no language can reach that probability
   (:func:`langdetect_sure_many`): the same answers, bit for bit, about 100x sooner than
   langdetect itself. Which close calls langdetect is sure of cannot be told
   from the n-gram lead: on the bench's close calls, even a lead under 0.5 nats ends sure 4% of
   the time, so all of them go to it.

Tiers 2 and 3 read langdetect's profile files themselves (:class:`_Profiles`: the same floats
as its ``DetectorFactory``, in one array, without its 0.4 s of Python lists in every worker).

What is read is natural language only: fenced and inline code, whole lines of unfenced code or
shell commands (:data:`_CODE_LINE`), URLs and e-mail addresses are dropped first (by RE2, on the
texts a compiled pass finds a sign of them in). Texts with
fewer than ``min_chars`` letters left are ``und`` (undetermined), unless their script settles
the language (tier 1 with at least :data:`SHORT_SCRIPT_LETTERS` letters: "谢谢" is zh, "ok" is
und); a Chinese, Japanese or Korean character counts as :data:`CJK_LETTERS` letters. Georgian,
Armenian, Khmer, Lao, Sinhala and Odia, which langdetect has no profile for, are named by script
alone (:data:`SCRIPT_ONLY_LANGUAGES`). Codes are langdetect's, except that ``zh-cn``/``zh-tw`` are both
``zh``. ``tests/test_check_language.py`` measures the agreement with plain langdetect on the
corpus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from langdetect import DetectorFactory, detect, detect_langs
from langdetect import detector_factory as _factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import LangDetectException
from langdetect.utils.ngram import NGram

from . import _langid_kernels as _kernels

__all__ = [
    "KNOWN_LANGUAGES",
    "LANGDETECT_LANGUAGES",
    "LANGUAGES",
    "METHODS",
    "SCRIPT_ONLY_LANGUAGES",
    "UND",
    "clean_text",
    "codes",
    "detect_texts",
    "langdetect_one",
    "langdetect_sure_many",
    "nb_scores",
    "normalise_code",
    "script_counts",
]

# Deterministic langdetect wherever this module is imported (worker processes included).
DetectorFactory.seed = 0

UND = "und"
#: langdetect's languages (its profile names), with zh-cn/zh-tw as one "zh"
LANGDETECT_LANGUAGES = (
    "af ar bg bn ca cs cy da de el en es et fa fi fr gu he hi hr hu id it ja kn ko lt lv mk ml mr "
    "ne nl no pa pl pt ro ru sk sl so sq sv sw ta te th tl tr uk ur vi zh").split()
#: languages langdetect has no profile for, decided by their script alone (Georgian, Armenian,
#: Khmer, Lao, Sinhala, Odia)
SCRIPT_ONLY_LANGUAGES = ("ka", "hy", "km", "lo", "si", "or")
#: every language the check can name: langdetect's and the script-only ones
KNOWN_LANGUAGES = (*LANGDETECT_LANGUAGES, *SCRIPT_ONLY_LANGUAGES)
#: code -> small int, as the batch results carry them (index 0 is "und")
LANGUAGES = (UND, *KNOWN_LANGUAGES)
_CODE = {code: i for i, code in enumerate(LANGUAGES)}
#: how each text was decided ("too_short": under min_chars letters and no script settles it,
#: "langdetect_unsure": langdetect's best language had less than LANGDETECT_MIN_PROB; both count
#: as und; "short_script": under min_chars letters, decided by its script)
METHODS = ("too_short", "script", "ngram_model", "langdetect", "langdetect_unsure", "short_script")
M_SHORT, M_SCRIPT, M_NGRAM, M_LANGDETECT, M_UNSURE, M_SHORT_SCRIPT = range(6)

#: characters of each text the n-gram tier reads (langdetect itself reads up to 10,000)
NB_PREFIX = 500
#: log-likelihood lead (nats) the n-gram tier needs to decide without langdetect
NB_MARGIN = 6.0
#: characters the n-gram tier reads first; a longer text decided there needs NB_FIRST_MARGIN
#: (see :func:`decide_by_ngrams`; the figures are in the module docstring)
NB_FIRST = 150
NB_FIRST_MARGIN = 20.0
#: below this probability langdetect's answer is ``und`` (its guesses on short or mixed texts,
#: e.g. "Write an email to persuade your manager..." -> fr 0.71, are what floods reports)
LANGDETECT_MIN_PROB = 0.9
#: letters one Han, kana or Hangul character counts for in the ``min_chars`` rule: counted as one,
#: 20% of the plainly Chinese alpaca_zh_demo records ("用一句话结束故事。") were too short to judge
CJK_LETTERS = 3
#: a text under ``min_chars`` is decided by its script (:func:`decide_by_script`) when it has at
#: least this many letters of that script (a Han, kana or Hangul character counting CJK_LETTERS):
#: "好的" (6) and "ขอบคุณ" (6) are decided, a lone "π" or "是" is not
SHORT_SCRIPT_LETTERS = 4


def normalise_code(code: str) -> str:
    """``zh-cn``/``zh-tw``/``ZH`` -> ``zh``; other codes lower-cased."""
    code = code.strip().lower()
    return "zh" if code.startswith("zh") else code


def codes(values: Sequence[int] | np.ndarray) -> list[str]:
    """Language indices (as :func:`detect_texts` returns them) back to codes."""
    return [LANGUAGES[int(v)] for v in values]


# --------------------------------------------------------------------------- cleaning

#: what langdetect should not read: fenced and inline code, URLs, e-mail addresses (RE2 syntax)
_NOISE = (r"```[\s\S]*?(?:```|$)|`[^`\n]*`|https?://\S+|www\.\S+"
          r"|[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}\.[-_.0-9A-Za-z]{1,255}")


#: Lines that are source code or shell commands, not natural language: they start with a keyword
#: or statement of a common language (Python, C/Java/JS, Go, Rust, PHP, SQL, HTML) or a shell
#: command with an option or a path, end like code (``;`` ``{`` ``}`` ``):`` ``f(x)`` ``]``), are
#: an assignment, or call a method / a snake_case or camelCase function. Unfenced code is what
#: made 10% of a real code-instruction file (codealpaca) read as da/ro/ca/fr: its identifiers and
#: keywords are n-grams of no language in particular. Prose lines that merely mention code
#: ("Use the len() function to ...") are kept.
_CODE_KEYWORDS = (
    r"def\s+\w+\s*\(|class\s+\w+\s*[:({<]|import\s+[\w.*{]|from\s+[\w.]+\s+import\b|"
    r"(?:return|yield|raise|break|continue|pass)\s*;?$|elif\b|else\s*:|try\s*:|except\b[^\n]*:|finally\s*:|"
    r"(?:for|while|if|switch|catch)\s*\(|for\s+[\w, ]+\s+in\s+[^\n]*:|(?:if|while|with)\s+[^\n]*[=<>%()\[\]][^\n]*:$|"
    r"(?:const|let|var|val|auto)\s+[\w$]+\s*[=:;]|function\s+[\w$]*\s*\(|fn\s+\w+\s*[(<]|func\s+[\w(]|"
    r"package\s+[\w.]+\s*;?$|#include\b|#define\b|using\s+[\w.:]+;|struct\s+\w+\s*\{?$|"
    r"(?:int|float|double|char|bool|boolean|unsigned|String)(?:\s*\[\])?\s+\**\w+\s*[=;(\[,)]|"
    r"(?:SELECT|FROM|WHERE|GROUP\s+BY|ORDER\s+BY|HAVING|INSERT\s+INTO|VALUES|UPDATE|SET|DELETE\s+FROM|"
    r"CREATE\s+(?:TABLE|INDEX|VIEW|DATABASE)|ALTER\s+TABLE|DROP\s+TABLE|(?:INNER|LEFT|RIGHT|OUTER|FULL)?\s*JOIN|LIMIT|UNION)\b|"
    r"<\?php|</?[A-Za-z][\w-]*(?:\s[^>\n]*)?/?>|//|/\*|\*/|"
    r"(?:\$\s+)?(?:sudo\s+)?(?:pip3?|npm|npx|yarn|git|cd|ls|du|df|grep|egrep|echo|curl|wget|mkdir|rmdir|rm|cp|mv|chmod|"
    r"chown|cat|docker|kubectl|apt|apt-get|brew|python3?|node|javac?|gcc|g\+\+|make|tar|ssh|scp|find|awk|sed|head|tail|"
    r"sort|uniq|wc|touch|export|source|conda|ps|kill|top|ping|systemctl|service)\b"
    r"[^\n]*?(?:\s-{1,2}[A-Za-z]|\s[~./$][\w/.-]*|\s\||\s>|\s\w+\.\w+\b)")
_CODE_LINE = (r"(?m)^(?:[ \t]*(?:" + _CODE_KEYWORDS + r")[^\n]*|[ \t]+(?:return|yield|raise|throw|await)\b[^\n]*"
              r"|[^\n]*(?:[;{}]|\)\s*:|\w\([^\n]*\)|\]|=>|->)[ \t]*"          # ends like code
              r"|[ \t]*[A-Za-z_$][\w$.]*(?:\[[^\]\n]*\])*\s*(?:[-+*/%&|^]|\*\*|//|<<|>>)?=\s*[^\n=]+"   # assignment
              r"|[^\n]*(?:\b\w+\.\w+\(|\b[a-z]+_\w+\(|\b[a-z]+[A-Z]\w*\()[^\n]*"   # calls
              r")$")


#: the lower-case words a line :data:`_CODE_LINE` removes can start with (past spaces and tabs;
#: "func" stands for "function" too, "rm" for "rmdir"...): the texts where no line starts with one
#: of them, nor shows another sign of code (:func:`_langid_kernels.maybe_code`), are not scanned
#: by the regular expressions. A keyword added to :data:`_CODE_LINE` belongs here too (the tests
#: check a line for each of them).
_CODE_STARTS = (  # noqa: SIM905 - one word list, as LANGDETECT_LANGUAGES
    "def class import from return yield raise break continue pass elif else try except finally for while if "
    "switch catch with const let var val auto func fn package using struct int float double char bool unsigned "
    "sudo pip npm npx yarn git cd ls du df grep egrep echo curl wget mkdir rm cp mv chmod chown cat docker "
    "kubectl apt brew python node java gcc g++ make tar ssh scp find awk sed head tail sort uniq wc touch "
    "export source conda ps kill top ping systemctl service throw await").split()


@cache
def _code_starts() -> tuple[np.ndarray, np.ndarray]:
    """:data:`_CODE_STARTS` as a padded byte matrix and the length of each word."""
    width = max(map(len, _CODE_STARTS))
    words = np.zeros((len(_CODE_STARTS), width), dtype=np.uint8)
    for k, word in enumerate(_CODE_STARTS):
        words[k, :len(word)] = np.frombuffer(word.encode(), dtype=np.uint8)
    return words, np.array([len(w) for w in _CODE_STARTS], dtype=np.int64)


def _replace_where_found(arr: pa.Array, pattern: str, replacement: str, *, whole_lines: bool = False) -> pa.Array:
    """``pc.replace_substring_regex`` run only on the texts the pattern is found in, the same
    array sooner: finding is RE2's DFA alone, replacing needs its far slower submatch engine
    (0.3 ms for an 800-character text and :data:`_CODE_LINE`).

    ``whole_lines``: every match of the pattern is whole lines (``(?m)^...$``, never empty), so
    in a text of one line a match is the whole text and the replacement is ``replacement``."""
    found = pc.fill_null(pc.match_substring_regex(arr, pattern=pattern), False)
    if not pc.any(found).as_py():
        return arr
    texts = arr.filter(found)
    if whole_lines:
        one_line = pc.equal(pc.count_substring(texts, "\n"), 0).to_numpy(zero_copy_only=False)
        out = np.full(len(texts), replacement, dtype=object)
        lines = np.flatnonzero(~one_line)
        if len(lines):
            out[lines] = pc.replace_substring_regex(texts.take(pa.array(lines)), pattern=pattern,
                                                    replacement=replacement).to_numpy(zero_copy_only=False)
        replaced = pa.array(out, type=arr.type)
    else:
        replaced = pc.replace_substring_regex(texts, pattern=pattern, replacement=replacement)
    return pc.replace_with_mask(arr, found, replaced)


def clean_text(arr: pa.Array) -> pa.Array:
    """Drop code (fenced, inline, and whole lines of unfenced code or shell commands), URLs and
    e-mail addresses: two Arrow RE2 passes, on the texts where a compiled pass over the bytes
    finds a sign of them (:func:`_langid_kernels.maybe_code`; ~10% of the bench's texts)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets, data = _utf8(arr)
    maybe = _kernels.maybe_code(offsets, data, *_code_starts())
    if arr.null_count:
        maybe &= ~np.asarray(arr.is_null())
    if not maybe.any():
        return arr
    found = pa.array(maybe)
    texts = _replace_where_found(arr.filter(found), _NOISE, " ")
    return pc.replace_with_mask(arr, found, _replace_where_found(texts, _CODE_LINE, "", whole_lines=True))


# --------------------------------------------------------------------------- UTF-8 in numpy


def _utf8(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The value offsets (rebased to 0) and UTF-8 bytes of a string array, zero-copy."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == pa.large_string():
        arr = arr.cast(pa.string())
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = (np.frombuffer(data_buf, dtype=np.uint8, count=end)[start:] if data_buf is not None
            else np.frombuffer(b"", dtype=np.uint8))  # read-only as the other: one kernel signature
    return offsets - start, data


def _decode(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Code points (int32) of the characters whose lead bytes are at ``pos``."""
    cp = data[pos].astype(np.int32)
    multi = np.flatnonzero(cp >= 0xC0)
    if len(multi):
        at, b0 = pos[multi], cp[multi]
        last = len(data) - 1
        b1, b2, b3 = ((data[np.minimum(at + k, last)] & 0x3F).astype(np.int32) for k in (1, 2, 3))
        cp[multi] = np.where(b0 < 0xE0, ((b0 & 0x1F) << 6) | b1,
                             np.where(b0 < 0xF0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                                      ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3))
    return cp


def _row_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values[offsets[i]:offsets[i+1]]`` per row (empty rows -> 0)."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    if nonempty.any():
        out[nonempty] = np.add.reduceat(values, offsets[:-1][nonempty], dtype=np.int64)
    return out


# --------------------------------------------------------------------------- tier 1: scripts

(S_NONE, S_LATIN, S_HAN, S_HIRAGANA, S_KATAKANA, S_HANGUL, S_CYRILLIC, S_GREEK, S_ARABIC,
 S_HEBREW, S_DEVANAGARI, S_BENGALI, S_GURMUKHI, S_GUJARATI, S_TAMIL, S_TELUGU, S_KANNADA,
 S_MALAYALAM, S_THAI, S_OTHER, S_GEORGIAN, S_ARMENIAN, S_KHMER, S_LAO, S_SINHALA, S_ORIYA) = range(26)
N_SCRIPTS = 26

_RANGES = [  # (first, last, class); later entries win
    (0x0041, 0x005A, S_LATIN), (0x0061, 0x007A, S_LATIN), (0x00C0, 0x024F, S_LATIN),
    (0x00D7, 0x00D7, S_NONE), (0x00F7, 0x00F7, S_NONE), (0x1E00, 0x1EFF, S_LATIN),
    (0x0250, 0x02AF, S_LATIN), (0xFF21, 0xFF3A, S_LATIN), (0xFF41, 0xFF5A, S_LATIN),
    (0x0370, 0x03FF, S_GREEK), (0x1F00, 0x1FFF, S_GREEK),
    (0x0400, 0x052F, S_CYRILLIC), (0x1C80, 0x1C8F, S_CYRILLIC),
    (0x0530, 0x058F, S_ARMENIAN), (0xFB13, 0xFB17, S_ARMENIAN), (0x10A0, 0x10FF, S_GEORGIAN),
    (0x1C90, 0x1CBF, S_GEORGIAN), (0x2D00, 0x2D2F, S_GEORGIAN), (0x1200, 0x139F, S_OTHER),
    (0x0590, 0x05FF, S_HEBREW), (0xFB1D, 0xFB4F, S_HEBREW),
    (0x0600, 0x06FF, S_ARABIC), (0x0750, 0x077F, S_ARABIC), (0x08A0, 0x08FF, S_ARABIC),
    (0xFB50, 0xFDFF, S_ARABIC), (0xFE70, 0xFEFF, S_ARABIC),
    (0x0900, 0x097F, S_DEVANAGARI), (0x0980, 0x09FF, S_BENGALI), (0x0A00, 0x0A7F, S_GURMUKHI),
    (0x0A80, 0x0AFF, S_GUJARATI), (0x0B00, 0x0B7F, S_ORIYA), (0x0B80, 0x0BFF, S_TAMIL),
    (0x0C00, 0x0C7F, S_TELUGU), (0x0C80, 0x0CFF, S_KANNADA), (0x0D00, 0x0D7F, S_MALAYALAM),
    (0x0D80, 0x0DFF, S_SINHALA), (0x0E00, 0x0E7F, S_THAI), (0x0E80, 0x0EFF, S_LAO), (0x0F00, 0x0FFF, S_OTHER),
    (0x1000, 0x109F, S_OTHER), (0x1780, 0x17FF, S_KHMER), (0x19E0, 0x19FF, S_KHMER),
    (0x1100, 0x11FF, S_HANGUL), (0x3130, 0x318F, S_HANGUL), (0xAC00, 0xD7AF, S_HANGUL),
    (0x3040, 0x309F, S_HIRAGANA), (0x30A0, 0x30FF, S_KATAKANA), (0x31F0, 0x31FF, S_KATAKANA),
    (0xFF66, 0xFF9D, S_KATAKANA),
    (0x3005, 0x3005, S_HAN), (0x3400, 0x4DBF, S_HAN), (0x4E00, 0x9FFF, S_HAN),
    (0xF900, 0xFAFF, S_HAN), (0x20000, 0x3134F, S_HAN),
    (0x30FB, 0x30FC, S_NONE),  # katakana middle dot and prolonged sound mark
]
#: single-language scripts -> the language (langdetect's answer for a text in that script alone)
_SCRIPT_LANGUAGE = {S_HANGUL: "ko", S_GREEK: "el", S_HEBREW: "he", S_THAI: "th", S_BENGALI: "bn",
                    S_GURMUKHI: "pa", S_GUJARATI: "gu", S_TAMIL: "ta", S_TELUGU: "te",
                    S_KANNADA: "kn", S_MALAYALAM: "ml", S_GEORGIAN: "ka", S_ARMENIAN: "hy",
                    S_KHMER: "km", S_LAO: "lo", S_SINHALA: "si", S_ORIYA: "or"}
_SCRIPT_TABLE: np.ndarray | None = None


def _script_table() -> np.ndarray:
    global _SCRIPT_TABLE
    if _SCRIPT_TABLE is None:
        table = np.zeros(0x110000, dtype=np.uint8)
        for first, last, cls in _RANGES:
            table[first:last + 1] = cls
        _SCRIPT_TABLE = table
    return _SCRIPT_TABLE


def script_counts(arr: pa.Array) -> np.ndarray:
    """Characters per script class, shape ``(len(arr), N_SCRIPTS)`` (one compiled pass over the
    bytes; :func:`_script_counts_numpy` is the reference the tests hold it to)."""
    offsets, data = _utf8(arr)
    return _kernels.script_counts(offsets, data, _script_table(), N_SCRIPTS, S_LATIN, S_NONE)


def _script_counts_numpy(arr: pa.Array) -> np.ndarray:
    """:func:`script_counts` with numpy only: ASCII is classed byte-wise; only the lead bytes of
    multi-byte characters are decoded."""
    n = len(arr)
    offsets, data = _utf8(arr)
    counts = np.zeros((n, N_SCRIPTS), dtype=np.int64)
    if n == 0 or len(data) == 0:
        return counts
    ascii_letter = (((data | 0x20) - 97).astype(np.uint8) < 26).view(np.uint8)
    counts[:, S_LATIN] = _row_sums(ascii_letter, offsets)
    pos = np.flatnonzero(data >= 0xC0)
    if len(pos):
        cls = _script_table()[np.minimum(_decode(data, pos), 0x10FFFF)]
        keep = cls != S_NONE
        rows = np.searchsorted(offsets[1:], pos[keep], side="right")
        counts += np.bincount(rows * N_SCRIPTS + cls[keep], minlength=n * N_SCRIPTS).reshape(n, N_SCRIPTS)
    return counts


def decide_by_script(counts: np.ndarray) -> np.ndarray:
    """Per row, a language index decided by script alone, or -1.

    * A text langdetect would read without its Latin letters (fewer than half of the rest) is
      decided when 95% of the rest is one single-language script.
    * CJK: when 95% of the non-Latin letters are Han/kana/Hangul and they number at least a
      quarter of the Latin letters: Han with no hiragana, no Hangul and under 10% katakana
      (names) -> zh; kana (hiragana: the particles every Japanese sentence has; katakana: loan
      words, which Chinese does not write in kana) making 10% of the Han and kana -> ja;
      Hangul -> ko.
    """
    latin = counts[:, S_LATIN]
    other = counts[:, S_LATIN + 1:].sum(axis=1)
    out = np.full(len(counts), -1, dtype=np.int16)
    non_latin = (latin * 2 < other) & (other > 0)
    for script, lang in _SCRIPT_LANGUAGE.items():
        out[non_latin & (counts[:, script] >= 0.95 * other)] = _CODE[lang]
    han, hangul = counts[:, S_HAN], counts[:, S_HANGUL]
    hiragana, katakana = counts[:, S_HIRAGANA], counts[:, S_KATAKANA]
    han_kana = han + hiragana + katakana
    cjk = han_kana + hangul
    is_cjk = (other > 0) & (cjk >= 0.95 * other) & (cjk * 4 >= latin)
    out[is_cjk & (hangul == 0) & (hiragana == 0) & (katakana < 0.1 * han_kana)] = _CODE["zh"]
    out[is_cjk & (hangul == 0) & (hiragana + katakana >= 0.1 * han_kana)] = _CODE["ja"]
    out[is_cjk & (hangul >= 0.95 * cjk)] = _CODE["ko"]
    return out


# --------------------------------------------------------------------------- tier 2: n-grams


class _Profiles:
    """langdetect's language profiles read from its JSON files as ``DetectorFactory.load_profile``
    reads them (the same files in the same order, each probability the same float64 division
    ``count / n_words[len - 1]``), into one array instead of a Python list per n-gram: about
    0.1 s instead of the 0.4 s langdetect's loader spends in every (spawned) worker. It also
    stands in for the factory a langdetect ``Detector`` is made from."""

    def __init__(self) -> None:
        directory = _factory.PROFILES_DIRECTORY
        self.langlist: list[str] = []
        words: list[str] = []
        counts: list[int] = []
        per_lang: list[int] = []
        n_words: list[list[int]] = []
        for name in os.listdir(directory):
            file = os.path.join(directory, name)
            if name.startswith(".") or not os.path.isfile(file):
                continue
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
            self.langlist.append(data["name"])
            words += data["freq"]
            counts += data["freq"].values()
            per_lang.append(len(data["freq"]))
            n_words.append(list(data["n_words"]))
        #: every n-gram, in langdetect's map order, and its row
        self.grams = list(dict.fromkeys(words))
        self.row = {gram: i for i, gram in enumerate(self.grams)}
        #: the probability of each n-gram (row) in each language (column), langdetect's floats
        self.probs = np.zeros((len(self.grams), len(self.langlist)))
        rows = np.fromiter(map(self.row.__getitem__, words), dtype=np.int64, count=len(words))
        length = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        lang = np.repeat(np.arange(len(self.langlist)), per_lang)
        ok = (length >= 1) & (length <= 3)
        total = np.array([w[:3] for w in n_words], dtype=np.float64)
        self.probs[rows[ok], lang[ok]] = (np.array(counts, dtype=np.float64)[ok]
                                          / total[lang[ok], length[ok] - 1])
        self.word_lang_prob_map = self.row  # what a Detector reads: membership only, here

    @property
    def seed(self) -> int | None:
        return DetectorFactory.seed


@cache
def _profiles() -> _Profiles:
    return _Profiles()


class _Model:
    """langdetect's profiles as arrays: n-gram keys, log-probabilities, character tables."""

    #: compact ids for space and ASCII letters, so pure-ASCII n-grams are found by indexing
    ASCII = 53

    def __init__(self) -> None:
        profiles = _profiles()
        grams = profiles.grams
        # every n-gram's code points (1 to 3, right-aligned after NULs), packed as _key packs them
        chars = np.frombuffer("".join(g.rjust(3, "\0") for g in grams).encode("utf-32-le"),
                              dtype="<u4").reshape(-1, 3).astype(np.int64)
        keys = (chars[:, 0] << 42) | (chars[:, 1] << 21) | chars[:, 2]
        order = np.argsort(keys)
        self.keys = keys[order]
        #: the profile row (langdetect's order, :class:`_Profiles`) of each key
        self.profile_rows = order
        # langdetect multiplies by (alpha / BASE_FREQ + p) with alpha = 0.5, BASE_FREQ = 10000
        smoothed = profiles.probs + 0.5 / 10000
        logp = np.log(smoothed, out=smoothed).astype(np.float32)[order]
        #: the same, padded with zeros to 64 columns: the compiled scoring adds whole rows in four
        #: 16-float vector steps, no scalar remainder (~20% sooner); ``logp`` is a view of it
        self.logp64 = np.zeros((len(logp), 64), dtype=np.float32)
        self.logp64[:, :logp.shape[1]] = logp
        self.logp = self.logp64[:, :logp.shape[1]]
        self.languages = np.array([_CODE.get(normalise_code(lang), 0) for lang in profiles.langlist],
                                  dtype=np.int16)
        self.norm = _normalise_table()
        self.upper = np.array([chr(c).isupper() for c in self.norm], dtype=bool)
        # direct lookup for n-grams of space + ASCII letters
        compact = np.full(0x10000, -1, dtype=np.int64)
        compact[0x20] = 0
        compact[0x41:0x5B] = np.arange(1, 27)
        compact[0x61:0x7B] = np.arange(27, 53)
        self.compact = compact
        self.compact32 = compact.astype(np.int32)
        a = self.ASCII
        self.direct = np.full(a + a * a + a * a * a + 1, -1, dtype=np.int32)  # last: "none"
        chars = chars[order]
        ids = np.where(chars < 0x10000, compact[np.minimum(chars, 0xFFFF)], -1)
        size = (chars != 0).sum(axis=1)
        ascii_only = ((ids >= 0) | (chars == 0)).all(axis=1)
        index = np.select([size == 1, size == 2],  # _compact_index of the ids, by size
                          [ids[:, 2], a + ids[:, 1] * a + ids[:, 2]],
                          a + a * a + (ids[:, 0] * a + ids[:, 1]) * a + ids[:, 2])
        self.direct[index[ascii_only]] = np.flatnonzero(ascii_only)


def _normalise_table(reference: bool = False) -> np.ndarray:
    """``ord(NGram.normalize(chr(c)))`` for every code point of the Basic Multilingual Plane (a
    surrogate: that of a space). ``NGram.normalize`` changes characters of a dozen Unicode blocks
    only: it is called on those (two of them, the CJK ideographs and the Hangul syllables, are
    filled from its own map and constant), ~0.3 s sooner than on all 65,536 characters in every
    worker. ``reference=True`` calls it on every character (what the tests compare it to)."""
    from langdetect.utils import unicode_block as ub

    norm = np.arange(0x10000, dtype=np.int32)
    if reference:
        bmp = [chr(c) if not 0xD800 <= c < 0xE000 else " " for c in range(0x10000)]
        return np.array([ord(NGram.normalize(ch)) for ch in bmp], dtype=np.int32)
    changed = {ub.UNICODE_BASIC_LATIN, ub.UNICODE_LATIN_1_SUPPLEMENT, ub.UNICODE_LATIN_EXTENDED_B,
               ub.UNICODE_GENERAL_PUNCTUATION, ub.UNICODE_ARABIC, ub.UNICODE_LATIN_EXTENDED_ADDITIONAL,
               ub.UNICODE_HIRAGANA, ub.UNICODE_KATAKANA, ub.UNICODE_BOPOMOFO, ub.UNICODE_BOPOMOFO_EXTENDED}
    for name, start, end in ub._unicode_blocks:
        if name in changed and start < 0x10000:
            norm[start:end + 1] = [ord(NGram.normalize(chr(c))) for c in range(start, end + 1)]
        elif name == ub.UNICODE_HANGUL_SYLLABLES:
            norm[start:end + 1] = 0xAC00
        elif name == ub.UNICODE_CJK_UNIFIED_IDEOGRAPHS:
            for ch, to in NGram.CJK_MAP.items():
                if start <= ord(ch) <= end:
                    norm[ord(ch)] = ord(to)
    norm[0xD800:0xE000] = 0x20
    return norm


def _key(gram: str) -> int:
    """An n-gram's code points packed 21 bits each (what :class:`_Model` computes for all at once)."""
    key = 0
    for ch in gram:
        key = (key << 21) | ord(ch)
    return key


def _compact_index(ids: list[int], a: int) -> int:
    """The ASCII table's slot of an n-gram's compact ids (what :class:`_Model` computes for all at once)."""
    if len(ids) == 1:
        return ids[0]
    if len(ids) == 2:
        return a + ids[0] * a + ids[1]
    return a + a * a + (ids[0] * a + ids[1]) * a + ids[2]


@cache
def _model() -> _Model:
    return _Model()


def _streams(arr: pa.Array, model: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """langdetect's view of each text, all rows in one array: normalised characters, a space
    before each text, runs of spaces collapsed, Latin letters dropped from texts that are
    mostly non-Latin (langdetect's ``cleaning_text``). Returns (chars, row ids, row starts)."""
    n = len(arr)
    offsets, data = _utf8(arr)
    byte_rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(offsets))
    if len(data) and int(data.max()) >= 0x80:
        lead = np.flatnonzero((data & 0xC0) != 0x80)
        cp, rows = _decode(data, lead), byte_rows[lead]
        # cleaning_text: 'A' <= ch <= 'z' is Latin; >= U+0300 outside Latin Extended Additional is not
        is_latin = (cp >= 0x41) & (cp <= 0x7A)
        non_latin = (cp >= 0x300) & ((cp < 0x1E00) | (cp > 0x1EFF))
        drop = np.bincount(rows[is_latin], minlength=n) * 2 < np.bincount(rows[non_latin], minlength=n)
        if drop.any():
            keep = ~(is_latin & drop[rows])
            cp, rows = cp[keep], rows[keep]
    else:
        cp, rows = data.astype(np.int32), byte_rows
    chars = model.norm[np.minimum(cp, 0xFFFF)]
    wide = cp >= 0x10000
    if wide.any():
        chars[wide] = cp[wide]
    # one leading space per row, then collapse runs of spaces
    lens = np.bincount(rows, minlength=n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lens[:-1] + 1, out=starts[1:])
    stream = np.full(int(lens.sum()) + n, 0x20, dtype=np.int32)
    stream[np.arange(len(chars)) + rows + 1] = chars
    row_of = np.repeat(np.arange(n, dtype=np.int32), lens + 1)
    is_start = np.zeros(len(stream), dtype=bool)
    is_start[starts] = True
    space = stream == 0x20
    keep = ~(space & np.concatenate(([False], space[:-1])) & ~is_start)
    return stream[keep], row_of[keep], is_start[keep]


def _nb_rows(offsets: np.ndarray, data: np.ndarray, rows: np.ndarray, prefix: int,
             scan_end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_langid_kernels.nb_scores` of the texts ``rows`` of a batch's UTF-8 buffer."""
    model = _model()
    return _kernels.nb_scores(offsets, data, rows.astype(np.int64), prefix, scan_end, model.norm, model.upper,
                              model.compact32, model.ASCII, model.direct, model.keys, model.logp64,
                              model.logp.shape[1],
                              _script_table(), S_NONE)


def nb_scores(arr: pa.Array, prefix: int = NB_PREFIX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Naive-Bayes log-likelihoods of every text under each langdetect profile.

    Returns (scores ``(n, profiles)``, matched n-grams per text ``(n,)``, language index of each
    profile column). Reads the first ``prefix`` characters of each text, in one compiled pass
    (:func:`_nb_scores_numpy` is the whole-array reference the tests hold it to, float for float).
    """
    offsets, data = _utf8(arr)
    scores, matched, *_ = _nb_rows(offsets, data, np.arange(len(arr)), prefix, prefix)
    return scores, matched, _model().languages


def _nb_scores_numpy(arr: pa.Array, direct: bool = True,
                     prefix: int = NB_PREFIX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nb_scores` with numpy and scipy only, one whole-array step per rule (the reference).
    ``direct=False`` finds every n-gram by its packed code points, none by the ASCII table."""
    from scipy import sparse

    model = _model()
    n = len(arr)
    stream, row_of, is_start = _streams(pc.utf8_slice_codeunits(arr, 0, prefix), model)
    m = len(stream)
    space = stream == 0x20
    upper = model.upper[np.minimum(stream, 0xFFFF)] & (stream < 0x10000)
    # langdetect skips the n-grams ending on the 2nd+ letter of an all-caps word
    skip = is_start.copy()
    skip[1:] |= upper[1:] & upper[:-1]
    index = np.arange(m, dtype=np.int32)
    last_space = np.maximum.accumulate(np.where(space, index, -1))
    word_len = np.empty(m, dtype=np.int32)  # characters since the last space before i
    word_len[0] = 0
    word_len[1:] = index[1:] - last_space[:-1]
    compact = model.compact32[np.minimum(stream, 0xFFFF)]
    compact[stream >= 0x10000] = -1
    a = model.ASCII
    scores = np.zeros((n, model.logp.shape[1]), dtype=np.float32)
    matched = np.zeros(n, dtype=np.int64)
    # the n-gram ending at each position, grown by one character per size, as compact ids in
    # base a (pure ASCII n-grams, looked up directly); the others (a character outside space and
    # ASCII letters) are packed code points, made only where needed and found by binary search
    value = compact.copy()
    ascii_ok = (compact >= 0) & direct
    not_skip = ~skip
    none = len(model.direct) - 1  # the table's last entry is -1
    for size in (1, 2, 3):
        if size > 1:
            value[1:] = value[:-1] * a + compact[1:]
            ascii_ok[1:] &= ascii_ok[:-1].copy()
        # where langdetect reads an n-gram of this size
        valid = not_skip & (word_len >= size - 1) if size > 1 else not_skip & ~space
        valid[:size - 1] = False
        # every position's pure-ASCII n-gram by the table (see _compact_index), -1 elsewhere
        ids_at = model.direct[np.where(ascii_ok, value + sum(a ** k for k in range(1, size)), none)]
        other = np.flatnonzero(valid & ~ascii_ok)  # the others by their packed code points
        if len(other):
            k = stream[other].astype(np.int64)
            for back in range(1, size):
                k |= stream[other - back].astype(np.int64) << (21 * back)
            j = np.minimum(np.searchsorted(model.keys, k), len(model.keys) - 1)
            ids_at[other] = np.where(model.keys[j] == k, j, -1)
        pos = np.flatnonzero(valid & (ids_at >= 0))
        ids, rows = ids_at[pos], row_of[pos]
        counts = np.bincount(rows, minlength=n)
        matched += counts
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=indptr[1:])
        matrix = sparse.csr_matrix((np.ones(len(ids), dtype=np.float32), ids, indptr),
                                   shape=(n, len(model.keys)))
        scores += matrix @ model.logp
    return scores, matched, model.languages


#: rows :func:`_nb_scores_numpy` scores at once: its per-character temporaries (about 60 bytes
#: per character of the NB_PREFIX prefixes) stay some 60 MB instead of 600 MB for a whole batch
NB_ROWS = 2048


def decide_by_ngrams(arr: pa.Array, *, two_stage: bool = True, rows: np.ndarray | None = None) -> np.ndarray:
    """Per row (of ``rows``, default all), the n-gram model's language index when it leads by
    ``NB_MARGIN`` nats, else -1.

    Two stages: every text is scored on its first :data:`NB_FIRST` characters; a text no longer
    than that is decided as the one-stage reading would (its n-grams are the same); a longer one
    is decided there when its winner leads by :data:`NB_FIRST_MARGIN` and nothing but ASCII
    letters follow up to :data:`NB_PREFIX` (a passage in another language after an English task
    statement); the rest is scored again on :data:`NB_PREFIX` characters. ``two_stage=False``
    reads :data:`NB_PREFIX` characters of every text (the reference the tests measure it against).
    """
    offsets, data = _utf8(arr)
    rows = np.arange(len(arr), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), -1, dtype=np.int16)
    if len(rows) == 0:
        return out
    languages = _model().languages
    if not two_stage:
        _, matched, first, lead, _ = _nb_rows(offsets, data, rows, NB_PREFIX, NB_PREFIX)
        ok = (matched > 0) & (lead >= NB_MARGIN)
        out[ok] = languages[first[ok]]
        return out
    _, matched, first, lead, flags = _nb_rows(offsets, data, rows, NB_FIRST, NB_PREFIX)
    whole = (flags & 1) == 0  # no longer than NB_FIRST characters
    ok = (matched > 0) & (lead >= np.where(whole, NB_MARGIN, NB_FIRST_MARGIN))
    ok &= whole | ((flags & 2) == 0)  # a longer one: no letter outside ASCII up to NB_PREFIX
    out[ok] = languages[first[ok]]
    rest = np.flatnonzero(~whole & ~ok)
    if len(rest):
        out[rest] = decide_by_ngrams(arr, two_stage=False, rows=rows[rest])
    return out


# --------------------------------------------------------------------------- the pipeline


def langdetect_one(text: str) -> str:
    """langdetect's answer (seeded), normalised; ``und`` when it finds no features."""
    try:
        return normalise_code(detect(text))
    except LangDetectException:
        return UND


def _langdetect_sure_reference(text: str) -> int:
    """langdetect's language index when its probability reaches LANGDETECT_MIN_PROB, else 0
    (langdetect itself: what :func:`_langdetect_sure` must answer, and the test's reference)."""
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return 0
    return _CODE.get(normalise_code(best.lang), 0) if best.prob >= LANGDETECT_MIN_PROB else 0


class _Stream:
    """The 32-bit words a seeded langdetect detector's ``random.Random`` produces, as one numpy
    array (grown on demand). Every detector reseeds with the same seed before its trials, so
    every text reads the same words; ``Random.getrandbits(32 * k)`` is k consecutive outputs,
    the first in the lowest bits."""

    def __init__(self, seed: int | None) -> None:
        import random

        self._rng = random.Random(seed)
        self.words = np.zeros(0, dtype=np.uint32)

    def upto(self, end: int) -> np.ndarray:
        if end > len(self.words):
            more = max(end - len(self.words), len(self.words), 1 << 16)
            fresh = np.frombuffer(self._rng.getrandbits(32 * more).to_bytes(4 * more, "little"), dtype="<u4")
            self.words = np.concatenate([self.words, fresh.astype(np.uint32)])
        return self.words


_STREAMS: dict[int | None, _Stream] = {}


def _langdetect_sure(text: str) -> int:
    """The answer of :func:`_langdetect_sure_reference` for one text (see :func:`langdetect_sure_many`)."""
    return int(langdetect_sure_many([text])[0])


_TRANSLATE: dict[int, str] | None = None


def _extract_ngrams(text: str, table: dict[str, list[float]]) -> list[str]:
    """langdetect's ``Detector._extract_ngrams`` of a prepared text, the same list, ~4x sooner.

    langdetect normalises each character with a method call and a binary search of Unicode
    blocks; here the whole text is normalised by one ``str.translate`` with the same mapping
    (taken from ``NGram.normalize`` for every BMP character), and the n-gram buffer's rules
    (reset at a space, at most 3 characters, nothing read inside an all-caps word) run inline.
    A text with a character outside the BMP (or a lone surrogate) goes to langdetect's own."""
    global _TRANSLATE
    if text and max(text) > "\ud7ff" and any(0xD800 <= ord(ch) <= 0xDFFF or ord(ch) > 0xFFFF for ch in text):
        detector = Detector(_profiles())
        detector.text = text
        return detector._extract_ngrams()
    if _TRANSLATE is None:
        norm = _model().norm
        changed = np.flatnonzero(norm != np.arange(len(norm)))
        _TRANSLATE = {int(c): chr(int(norm[c])) for c in changed if not 0xD800 <= c < 0xE000}
    out: list[str] = []
    # langdetect's buffer is ``first + second + ch``: up to two characters before this one,
    # " " alone after a space ("" = none)
    first, second, last, capital = "", "", " ", False
    for ch in text.translate(_TRANSLATE):
        if last == " ":
            capital = False
            if ch == " ":
                continue
            first, second = "", " "
        else:
            first, second = second, last
        if ch.isupper():
            if last.isupper():
                capital = True
        else:
            capital = False
        last = ch
        if capital:
            continue
        if ch != " " and ch in table:
            out.append(ch)
        pair = second + ch
        if pair in table:
            out.append(pair)
        if first and first + pair in table:
            out.append(first + pair)
    return out


def _langdetect_rows(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The n-grams langdetect draws from for each text, as profile rows (one array) and the count
    per text: its detector prepares the text (``append``, ``cleaning_text``) and
    :func:`_langid_kernels.langdetect_ngrams` lists them (:func:`_extract_ngrams` for a text with
    a character outside the Basic Multilingual Plane)."""
    detector = Detector(_profiles())
    prepared = []
    for text in texts:
        detector.text = ""
        detector.append(text)
        detector.cleaning_text()
        prepared.append(detector.text)
    model = _model()
    offsets, data = _utf8(pa.array(prepared, pa.string()))
    found, sizes, done = _kernels.langdetect_ngrams(offsets, data, model.norm, model.upper, model.compact32,
                                                    model.ASCII, model.direct, model.keys)
    rows = model.profile_rows[found]
    if not done.all():
        table = _profiles().row
        parts = np.split(rows, np.cumsum(sizes)[:-1])
        for t in np.flatnonzero(~done):
            parts[t] = np.array([table[g] for g in _extract_ngrams(prepared[t], table)], dtype=np.int64)
            sizes[t] = len(parts[t])
        rows = np.concatenate(parts)
    return rows, sizes


def langdetect_sure_many(texts: Sequence[str]) -> np.ndarray:
    """:func:`_langdetect_sure_reference` of every text, bit for bit, as language indices.

    langdetect's own detector prepares each text (``append``, ``cleaning_text``), its n-grams
    are listed in one compiled pass (:func:`_langdetect_rows`) and the trials run compiled
    (:func:`_langid_kernels.langdetect_trials`), text after text:

    * **the random draws come from one array.** Each detector reseeds its ``random.Random``
      with the same seed, so every text reads the same stream of 32-bit words: it is made once
      (:class:`_Stream`) and each text reads it from its start. ``Random.choice`` of n n-grams
      is a word shifted to n's bit length, redrawn while it is >= n; ``Random.gauss`` (one per
      trial; every other trial uses the value cached by the one before) is computed from its
      words with the same C library functions as CPython's ``math``.
    * **the same arithmetic.** The 55 language probabilities are multiplied by one n-gram's
      factors per draw and normalised after the first draw and every 5th (the sum added left
      to right, as Python's ``sum`` does in 3.11): the same IEEE operations in the same order.
    * **hopeless texts stop early.** Each trial adds at most 1/7 to a language, so once no
      language can reach ``LANGDETECT_MIN_PROB`` the text is undetermined whatever the rest of
      its trials would say (on close calls most texts stop after two or three trials).
    """
    out = np.zeros(len(texts), dtype=np.int16)
    if not len(texts):
        return out
    factory = _profiles()
    rows, sizes = _langdetect_rows(texts)
    if not len(rows):
        return out
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    detector = Detector(factory)
    languages = np.array([_CODE.get(normalise_code(lang), 0) for lang in factory.langlist], dtype=np.int16)
    stream = _STREAMS.get(detector.seed) or _STREAMS.setdefault(detector.seed, _Stream(detector.seed))
    todo = np.arange(len(texts))
    length = 1 << 16
    while len(todo):
        sub = np.zeros(len(todo) + 1, dtype=np.int64)
        np.cumsum(sizes[todo], out=sub[1:])
        picked = rows[np.concatenate([np.arange(starts[t], starts[t + 1]) for t in todo])] if len(todo) < len(texts) else rows
        found = _kernels.langdetect_trials(
            picked, sub, factory.probs, stream.upto(length), detector.n_trial, detector.alpha,
            detector.ALPHA_WIDTH, detector.BASE_FREQ, detector.CONV_THRESHOLD, detector.ITERATION_LIMIT,
            LANGDETECT_MIN_PROB)
        sure = found >= 0
        out[todo[sure]] = languages[found[sure]]
        todo, length = todo[found == -2], length * 4  # the stream ran out: read a longer one
    return out


def detect_texts(arr: pa.Array, *, min_chars: int, fast: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect the language of every text of a string array.

    Returns three arrays: the language as an index into :data:`LANGUAGES` (0 = und), how it
    was decided (index into :data:`METHODS`), and the letters the ``min_chars`` rule counted.
    ``fast=False`` sends every long-enough text to langdetect (the reference the fast tiers are
    measured against).
    """
    cleaned = clean_text(arr)
    counts = script_counts(cleaned)
    cjk = counts[:, [S_HAN, S_HIRAGANA, S_KATAKANA, S_HANGUL]].sum(axis=1)
    letters = counts[:, S_LATIN:].sum(axis=1) + (CJK_LETTERS - 1) * cjk
    n = len(arr)
    lang = np.zeros(n, dtype=np.int16)
    method = np.full(n, M_SHORT, dtype=np.int8)
    todo = letters >= max(min_chars, 1)
    by_script = decide_by_script(counts)
    # a short text whose script settles its language (Chinese, Korean, Thai, Greek, ...) is decided
    short = ~todo & (by_script >= 0) & (letters - counts[:, S_LATIN] >= SHORT_SCRIPT_LETTERS)
    lang[short], method[short] = by_script[short], M_SHORT_SCRIPT
    if fast:
        decided = todo & (by_script >= 0)
        lang[decided], method[decided] = by_script[decided], M_SCRIPT
        rest = np.flatnonzero(todo & ~decided)
        if len(rest):
            by_ngrams = decide_by_ngrams(cleaned, rows=rest)
            won = by_ngrams >= 0
            lang[rest[won]], method[rest[won]] = by_ngrams[won], M_NGRAM
        todo &= method == M_SHORT
    rest = np.flatnonzero(todo)
    if len(rest):
        if fast:
            found = langdetect_sure_many(cleaned.take(pa.array(rest)).to_pylist())
        else:
            found = np.array([_CODE.get(langdetect_one(t), 0) for t in cleaned.take(pa.array(rest)).to_pylist()],
                             dtype=np.int16)
        lang[rest] = found
        method[rest] = np.where(found > 0, M_LANGDETECT, M_UNSURE)
    return lang, method, letters
