"""The checkable claims of a reply (numbers, dates, citations) that its support does not hold.

The gold cross-check flags a synthetic reply with them (:mod:`hubtools.judge.crossval`).
"""

from __future__ import annotations

import re

import regex

from ..text import NUMBER_RE

__all__ = ["claims"]

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
#: a bare four-digit number is a year only where the words around it say so ("in 1921", "the
#: 1990s", "1914-1918", "44 BC"); "1500 calories" or "2000 words" are numbers
_YEAR = r"(?:1[1-9]|20)\d{2}"
_YEAR_BEFORE = (r"(?:in|since|from|until|till|year|years|around|circa|c\.|ca\.|during|before|after|"
                r"early|late|mid|spring|summer|autumn|fall|winter|between|founded|born|died|built|"
                r"published|released)")
_DATE = regex.compile(
    rf"\b(?:{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}\.?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}"
    r"|\d{1,2}(?:st|nd|rd|th)\s+century"
    rf"|{_YEAR}\s*[-–]\s*(?:{_YEAR}|\d{{2}})(?!\d)"  # 1914-1918, 1914–18
    rf"|(?:1[0-9]|20)\d0s|'\d0s"  # decades
    r"|\d{1,4}\s?(?:BC|BCE|AD|CE)(?![\w])|AD\s?\d{1,4}"
    rf"|(?<=\b{_YEAR_BEFORE}\s+(?:the\s+)?(?:year\s+)?){_YEAR}(?![\d,.]\d))\b", regex.I)
_CITATION = re.compile(
    r"(?:(?<=[^\W\d_][.,;:)\"'”] )|(?<=[^\W\d_] )|(?<=[.,;:]))\[\d{1,3}(?:\s*[,–-]\s*\d{1,3}){0,5}\]"  # text [3], [1, 2].
    r"|\([A-Z][\w'-]+(?:\s+et al\.?|\s+(?:and|&)\s+[A-Z][\w'-]+)?,?\s+(?:1[5-9]|20)\d{2}[a-z]?\)"  # (Smith, 2019)
    r"|\bet al\.|\bdoi:\s*[^\s)\]]+|\bhttps?://[^\s)\]\"'>`]+"
    r"|\b(?:[Aa]ccording to|[Aa]s reported (?:by|in)|[Pp]ublished in)\s+(?:a|an|the)\s+(?:\d{4}\s+)?"
    r"(?:study|report|survey|paper|article|journal|review)\b")
#: fenced and inline code: numbers in code are not claims about the world
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.M)


def _norm_number(text: str) -> str:
    return text.replace(",", "").rstrip("0").rstrip(".") if "." in text else text.replace(",", "")


def claims(reply: str, *support: str | None) -> dict[str, list[str]]:
    """The checkable claims in ``reply`` that none of ``support`` holds: numbers, dates and citations.

    List markers ("1. ") and code (fenced or inline) are skipped; a number inside a date counts
    as the date.

    >>> claims("Founded on March 3, 1921 by 42 people, see [2].", "It has 42 members.")
    {'numbers': [], 'dates': ['March 3, 1921'], 'citations': ['[2]']}
    """
    known = " ".join(s for s in support if s)
    known_lower = known.lower()
    known_numbers = {_norm_number(n) for n in NUMBER_RE.findall(known)}
    text = _LIST_MARKER.sub(" ", _CODE.sub(" ", reply))
    citations = [m.group(0) for m in _CITATION.finditer(text) if m.group(0).lower() not in known_lower]
    text = _CITATION.sub(" ", text)
    dates = []
    for m in _DATE.finditer(text):
        numbers = {_norm_number(n) for n in NUMBER_RE.findall(m.group(0))}
        # supported when the support has the date, or every number in it ("the 1990s" has none)
        if m.group(0).lower() not in known_lower and (not numbers or not numbers <= known_numbers):
            dates.append(m.group(0))
    text = _DATE.sub(" ", text)
    numbers = [n for n in NUMBER_RE.findall(text) if _norm_number(n) not in known_numbers]
    return {"numbers": list(dict.fromkeys(numbers)), "dates": list(dict.fromkeys(dates)),
            "citations": list(dict.fromkeys(citations))}
