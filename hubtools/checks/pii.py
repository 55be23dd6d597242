"""``pii``: personal data and secrets in every text field, and :func:`redact` to mask them.

Types (``TYPES``) and what counts as one:

* ``email``;
* ``phone``: international (``+44 20 7946 0958``), US/NANP (``(415) 555-2671``, ``415-555-2671``)
  and European national numbers with a trunk 0 (``020 7946 0958``, ``01 23 45 67 89``); plain
  digit runs, dates, versions and prices are not phones;
* ``credit_card``: 13-19 digits (plain or in 4-digit groups) with a card-network prefix and a
  valid Luhn checksum;
* ``iban``: the country's length and a valid mod-97 checksum;
* ``ssn``: US social security numbers, without the never-issued areas/groups/serials;
* ``ip_address``: IPv4 (octets 0-255) and IPv6; only public addresses unless ``private_ips``
  (``192.168.0.1`` or ``127.0.0.1`` identify nobody);
* ``secret``: Hugging Face, OpenAI-style ``sk-``, Stripe, AWS, GitHub, Slack and Google keys,
  JWTs, ``Bearer`` tokens and PEM private keys (obvious placeholders such as ``hf_xxxx…`` and
  AWS's documented ``…EXAMPLE`` keys are not secrets).

Speed: per batch, one RE2 pass (``pyarrow.compute.match_substring_regex``) over each field
finds the rows that could hold anything; per-type RE2 masks on those rows pick which exact
``regex`` patterns and validators run. Clean rows never reach Python.

Example:
    >>> redact("Mail jane.doe@gmail.com or call +44 20 7946 0958.")
    ('Mail [EMAIL] or call [PHONE].', {'email': 1, 'phone': 1})
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from ..errors import UnknownCheckError
from .base import BATCH_SIZE, CheckData, CheckResult, register

__all__ = ["PLACEHOLDERS", "TYPES", "PiiOptions", "check_pii", "find_pii", "redact", "redact_array"]

#: The PII types, in the order reasons and stats list them.
TYPES = ("email", "phone", "credit_card", "iban", "ssn", "ip_address", "secret")

#: What :func:`redact` puts in place of each type.
PLACEHOLDERS = {t: f"[{t.upper()}]" for t in TYPES}

_SNIPPET = 60  # characters shown on each side of a redacted match in the report


# --------------------------------------------------------------------------- validators


def _digits(value: str) -> str:
    return "".join(ch for ch in value if "0" <= ch <= "9")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card_network(d: str) -> bool:
    """A known issuer prefix with a length that issuer uses."""
    n, p2, p3, p4 = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":
        return n in (13, 16, 19)                        # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16                                  # Mastercard
    if p2 in (34, 37):
        return n == 15                                  # American Express
    if p2 in (36, 38, 39) or 300 <= p3 <= 305:
        return 14 <= n <= 19                            # Diners Club
    if 3528 <= p4 <= 3589 or d[0] == "6":
        return 16 <= n <= 19                            # JCB, Discover, UnionPay, Maestro 6x
    return (p2 == 50 or 56 <= p2 <= 58) and 12 <= n <= 19  # Maestro


_CARD_CONTEXT = regex.compile(r"(?i)\b(?:card|visa|master ?card|amex|american express|discover|credit|debit|cc|cvv"
                              r"|expir\w*|payment|billing|pay)\b")


def _card(value: str, m: regex.Match) -> bool:
    d = _digits(value)
    if not (13 <= len(d) <= 19 and _card_network(d) and _luhn(d)):
        return False
    # a bare digit run is a card only next to a word about cards: arithmetic results pass Luhn 1 in 10
    return len(d) != len(value) or bool(_CARD_CONTEXT.search(m.string, max(0, m.start() - 40), m.start()))


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def _iban(value: str, m: regex.Match) -> bool:
    s = value.replace(" ", "")
    if _IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


_SSN_CONTEXT = regex.compile(r"(?i)\b(?:ssn|social security)\b")


def _ssn(value: str, m: regex.Match) -> bool:
    area, group, serial = int(m["a"]), int(m["g"]), int(m["n"])
    if area in (0, 666) or area >= 900 or group == 0 or serial == 0:
        return False
    if value.replace(m["s"], "") in ("078051120", "219099999"):  # famous published specimens
        return False
    # "123 45 6789" with spaces only next to a mention of an SSN
    return m["s"] == "-" or bool(_SSN_CONTEXT.search(m.string, max(0, m.start() - 40), m.start()))


def _phone(low: int, high: int) -> Callable[[str, regex.Match], bool]:
    def check(value: str, m: regex.Match) -> bool:
        if not low <= len(_digits(value)) <= high:
            return False
        # "+960397912423686" under a line of digits is a sum, not a phone
        before = m.string[max(0, m.start() - 4):m.start()].rstrip()
        return not before or not (before[-1].isdigit() or before[-1] in "=+-*/×")
    return check


_VERSION_BEFORE = regex.compile(r"(?i)\b(?:version|ver\.?|release|build|firmware)\s*[:=]?\s*$")


def _ip(value: str, m: regex.Match, private_ips: bool) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if address.version == 4:
        if _VERSION_BEFORE.search(m.string, max(0, m.start() - 16), m.start()):
            return False
    elif sum(1 for part in value.split(":") if part) < 3:
        return False
    return private_ips or address.is_global


def _random(value: str, m: regex.Match) -> bool:
    """Looks generated: enough distinct characters (not ``hf_xxxxxxxx…``)."""
    return len(set(value)) >= 10


def _random_digit(value: str, m: regex.Match) -> bool:
    """Looks generated and has a digit (so ``sk-learn-is-a-long-word-list`` is not a key)."""
    return _random(value, m) and any("0" <= ch <= "9" for ch in value)


def _not_example(value: str, m: regex.Match) -> bool:
    return "EXAMPLE" not in value


_URL_USERINFO = regex.compile(r"://[^\s/@]*$")
_PLACEHOLDER_WORDS = {"password", "passwd", "pass", "pwd", "secret", "token", "changeme", "xxx", "xxxx", "****"}


def _email(value: str, m: regex.Match) -> bool:
    if value.rsplit(".", 1)[-1].lower() in {"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js"}:
        return False
    return not _URL_USERINFO.search(m.string, max(0, m.start() - 100), m.start())  # ftp://user:pw@host


def _url_password(value: str, m: regex.Match) -> bool:
    return value.lower() not in _PLACEHOLDER_WORDS and value[0] not in "<[{$%*"


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class _Detector:
    type: str
    kind: str
    pattern: regex.Pattern
    check: Callable[..., bool] | None
    rank: int  # lower wins when two matches overlap


_LB = r"(?<![\w.,/+-]|[0-9][ ./-])"  # no number, decimal, path or sign right before
_LA = r"(?![\w]|[.,/-][0-9])"  # and none right after
_HEX = "[0-9A-Fa-f]"

# (type, kind, exact pattern (group "v" is the span to redact, else the whole match), validator)
_SPECS: list[tuple[str, str, str, Callable[..., bool] | None]] = [
    ("secret", "private_key", (r"(?s)-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END[ A-Z0-9]*"
     r"PRIVATE KEY(?: BLOCK)?-----|(?:(?:\\n|\s)*[A-Za-z0-9+/=]{16,})*)"), None),
    ("secret", "hf_token", r"(?<![\w-])hf_[A-Za-z0-9]{30,40}(?![\w-])", _random),
    ("secret", "sk_api_key", r"(?<![\w-])sk-[A-Za-z0-9_-]{20,250}(?![\w-])", _random_digit),
    ("secret", "stripe_key", r"(?<![\w])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,99}(?![\w])", _random),
    ("secret", "aws_access_key_id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
     _not_example),
    ("secret", "aws_secret_key", (r"(?i:aws_?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?"
     r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"), _not_example),
    ("secret", "github_token", r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})(?![\w])",
     _random),
    ("secret", "slack_token", r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,250}(?![\w-])", _random_digit),
    ("secret", "google_api_key", r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])", None),
    ("secret", "url_password", r"(?i)\b[a-z][a-z0-9+.-]{1,15}://[^\s:/@]{1,64}:(?P<v>[^\s:/@]{3,128})@[A-Za-z0-9]",
     _url_password),
    ("secret", "jwt", r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?![\w-])", None),
    ("secret", "bearer_token", r"(?<![\w])(?i:bearer)[ \t]+(?P<v>[A-Za-z0-9._~+/-]{20,500}=*)(?![\w.~+/=-])",
     _random_digit),
    ("email", "email", (r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@"
     r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"), _email),
    ("iban", "iban", r"(?<![\w])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w])", _iban),
    ("credit_card", "card", _LB + r"(?:[0-9]{13,19}|[0-9]{4}(?P<s>[ -])[0-9]{4,6}(?P=s)[0-9]{4,5}"
     r"(?:(?P=s)[0-9]{1,4}(?:(?P=s)[0-9]{1,3})?)?)" + _LA, _card),
    ("ssn", "ssn", r"(?<![\w-])(?P<a>[0-9]{3})(?P<s>[- ])(?P<g>[0-9]{2})(?P=s)(?P<n>[0-9]{4})(?![\w]|-[0-9])", _ssn),
    ("ip_address", "ipv4", r"(?<![\w.:])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])", _ip),
    ("ip_address", "ipv6", rf"(?<![\w:.])(?:{_HEX}{{1,4}}|:)(?::{_HEX}{{0,4}}){{2,7}}+(?![\w:]|\.{_HEX})", _ip),
    ("phone", "international", (r"(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5}+)){1,7}+"
     r"(?![0-9]|[.-][0-9])"), _phone(8, 15)),
    ("phone", "us", (r"(?<![\w.+/-])(?:1[ .-]?)?(?:\([2-9][0-9]{2}\)[ .-]?|[2-9][0-9]{2}(?P<s>[ .-]))"
     r"[2-9][0-9]{2}(?(s)(?P=s)|[ .-])[0-9]{4}(?![\w]|[.-][0-9])"), None),
    ("phone", "national", _LB + r"0[1-9][0-9]{0,3}(?P<s>[ ./-])[0-9]{2,8}(?:(?P=s)[0-9]{2,8}){0,4}" + _LA,
     _phone(9, 12)),
]
_RANK = {"secret": 0, "email": 1, "iban": 2, "credit_card": 3, "ssn": 4, "ip_address": 5, "phone": 6}
_DETECTORS = [_Detector(t, k, regex.compile(p), c, _RANK[t]) for t, k, p, c in _SPECS]

# RE2 prefilters (pyarrow.compute): a superset of each type's exact matches, no look-arounds.
_PREFILTER = {
    "email": r"[A-Za-z0-9_%+-]@[A-Za-z0-9-]+\.[A-Za-z]",
    "phone": r"(?:^|[^\w+])\+[1-9]|\([2-9][0-9]{2}\) ?[2-9]|[2-9][0-9]{2}[ .-][2-9][0-9]{2}[ .-][0-9]{4}"
             r"|(?:^|[^0-9.,/+-])0[1-9][0-9]{0,3}[ ./-][0-9]{2}",
    "credit_card": r"[0-9]{13}|[0-9]{4}[ -][0-9]{4,6}[ -][0-9]{4}",
    "iban": r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
    "ssn": r"[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}",
    "ip_address": r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f:]:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    "secret": r"hf_[A-Za-z0-9]{30}|sk-[A-Za-z0-9_-]{20}|(?:sk|rk)_(?:live|test)_|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
              r"|(?i:aws_?secret)|gh[pousr]_[A-Za-z0-9]{36}|github_pat_|xox[abposr]-|AIza[0-9A-Za-z_-]{35}"
              r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ|PRIVATE KEY|://[^\s:/@]+:[^\s:/@]+@|(?i:bearer)[ \t]+[A-Za-z0-9._~+/-]{20}",
}


def _types(types: Iterable[str] | str | None) -> tuple[str, ...]:
    """Validate PII type names (None: all); returns them in ``TYPES`` order."""
    if types is None:
        return TYPES
    if isinstance(types, str):
        types = [t.strip() for t in types.split(",") if t.strip()]
    chosen = set(types)
    unknown = sorted(chosen - set(TYPES))
    if unknown:
        raise UnknownCheckError(f"unknown PII type(s): {', '.join(unknown)}", hint=f"choose from: {', '.join(TYPES)}")
    return tuple(t for t in TYPES if t in chosen)


@lru_cache(maxsize=64)
def _union(types: tuple[str, ...]) -> str:
    return "|".join(f"(?:{_PREFILTER[t]})" for t in types)


# --------------------------------------------------------------------------- finding


def find_pii(text: str, types: Iterable[str] | None = None, *,
             private_ips: bool = False) -> list[tuple[int, int, str, str]]:
    """Every PII match in ``text`` as ``(start, end, type, kind)``, sorted, never overlapping.

    Where two matches overlap the stronger type wins (secret > email > iban > credit_card > ssn >
    ip_address > phone), then the longer match.

    Example:
        >>> find_pii("card 4111 1111 1111 1111")
        [(5, 24, 'credit_card', 'card')]
    """
    return _find(text, _types(types), private_ips)


def _find(text: str, types: tuple[str, ...], private_ips: bool) -> list[tuple[int, int, str, str]]:
    spans = []
    for det in _DETECTORS:
        if det.type not in types:
            continue
        for m in det.pattern.finditer(text):
            start, end = m.span("v") if "v" in det.pattern.groupindex else m.span()
            value = text[start:end]
            if det.check is _ip:
                ok = _ip(value, m, private_ips)
            else:
                ok = det.check is None or det.check(value, m)
            if ok:
                spans.append((det.rank, start - end, start, end, det.type, det.kind))
    if len(spans) > 1:
        spans.sort()
        kept: list[tuple] = []
        for span in spans:
            if all(span[3] <= k[2] or span[2] >= k[3] for k in kept):
                kept.append(span)
        spans = kept
    return sorted((s[2], s[3], s[4], s[5]) for s in spans)


def _apply(text: str, spans: list[tuple[int, int, str, str]]) -> str:
    out, last = [], 0
    for start, end, kind, _ in spans:
        out += [text[last:start], PLACEHOLDERS[kind]]
        last = end
    out.append(text[last:])
    return "".join(out)


def redact(text: str, types: Iterable[str] | None = None, *,
           private_ips: bool = False) -> tuple[str, dict[str, int]]:
    """Replace each PII match with its typed placeholder (``[EMAIL]``, ``[SECRET]``, ...).

    Returns the new text and the number of replacements per type. Idempotent: placeholders are
    never detected again, and the text around each match is left as it was.

    Example:
        >>> redact("token: hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567")
        ('token: [SECRET]', {'secret': 1})
    """
    spans = _find(text, _types(types), private_ips)
    return _apply(text, spans), dict(Counter(s[2] for s in spans))


def _candidates(values: pa.Array, types: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows that may hold PII (RE2 prefilter), and per type which of those rows to scan."""
    mask = pc.fill_null(pc.match_substring_regex(values, _union(types)), False)
    rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if len(types) == 1 or not len(rows):
        return rows, {t: np.ones(len(rows), bool) for t in types}
    sub = values.take(pa.array(rows))
    return rows, {t: pc.fill_null(pc.match_substring_regex(sub, _PREFILTER[t]), False).to_numpy(zero_copy_only=False)
                  for t in types}


def _scan(values: pa.Array, types: tuple[str, ...], private_ips: bool):
    """Yield ``(row, text, spans)`` for the rows of ``values`` that hold PII."""
    rows, gates = _candidates(values, types)
    for j, row in enumerate(rows):
        todo = tuple(t for t in types if gates[t][j])
        if not todo:
            continue
        text = values[int(row)].as_py()
        spans = _find(text, todo, private_ips)
        if spans:
            yield int(row), text, spans


def redact_array(values: pa.Array | pa.ChunkedArray, types: Iterable[str] | None = None, *,
                 private_ips: bool = False) -> tuple[pa.Array, dict[str, int]]:
    """:func:`redact` over an Arrow string array (nulls stay null); returns it and counts per type.

    Only the rows the RE2 prefilter passes reach Python, so clean data costs about as much as
    one ``match_substring_regex``.

    Example:
        >>> arr, counts = redact_array(pa.array(["hi", "mail a.b@c.org"]))
        >>> arr.to_pylist(), counts
        (['hi', 'mail [EMAIL]'], {'email': 1})
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    counts: Counter[str] = Counter()
    rows, texts = [], []
    for row, text, spans in _scan(values, _types(types), private_ips):
        rows.append(row)
        texts.append(_apply(text, spans))
        counts.update(s[2] for s in spans)
    if not rows:
        return values, {}
    mask = np.zeros(len(values), bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), pa.array(texts, values.type)), dict(counts)


# --------------------------------------------------------------------------- the check


@dataclass
class PiiOptions:
    """Settings of the ``pii`` check.

    Args:
        types: PII types to look for (default: all of ``TYPES``).
        fields: text fields to scan (default: every field, prompts and replies).
        private_ips: also flag private, loopback and reserved IP addresses.
        examples: redacted examples kept per type for the report.
    """

    types: list[str] | None = None
    fields: list[str] | None = None
    private_ips: bool = False
    examples: int = 3

    def __post_init__(self) -> None:
        _types(self.types)


def _snippet(text: str, kind: str) -> str:
    """The text around the first ``kind`` match, with every PII type redacted."""
    red = _apply(text, _find(text, TYPES, True))
    at = max(red.find(PLACEHOLDERS[kind]), 0)
    start, end = max(0, at - _SNIPPET), at + len(PLACEHOLDERS[kind]) + _SNIPPET
    snippet = " ".join(red[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(red) else "")


def _scan_batch(batch: dict[str, pa.Array], types: tuple[str, ...], private_ips: bool,
                examples: int) -> list[tuple[int, str, dict[str, int], dict[str, int], dict[str, str]]]:
    """Per batch: ``(row, field, counts by type, counts by kind, snippets by type)`` per hit."""
    hits = []
    shown: Counter[str] = Counter()
    for name, values in batch.items():
        for row, text, spans in _scan(values, types, private_ips):
            by_type = Counter(s[2] for s in spans)
            snippets = {}
            for kind in by_type:
                if shown[kind] < examples:
                    shown[kind] += 1
                    snippets[kind] = _snippet(text, kind)
            hits.append((row, name, dict(by_type), dict(Counter(s[3] for s in spans if s[2] == "secret")), snippets))
    return hits


@register("pii", description="personal data and secrets: e-mails, phones, cards, IBANs, SSNs, IPs, API keys",
          options=PiiOptions)
def check_pii(data: CheckData, opts: PiiOptions) -> CheckResult:
    """Flag records holding PII in any scanned field; counts by type and field, redacted examples."""
    types = _types(opts.types)
    names = list(opts.fields or data.all_fields)
    missing = [n for n in names if n not in data.fields]
    if missing:
        raise UnknownCheckError(f"pii: no field(s) {', '.join(missing)} in {data.kind.value} data",
                                hint=f"choose from: {', '.join(data.fields)}")
    batches = data.map(_scan_batch, names, desc="pii", batch_size=BATCH_SIZE, types=types,
                       private_ips=opts.private_ips, examples=opts.examples)
    matches: Counter[str] = Counter()
    secret_kinds: Counter[str] = Counter()
    by_field = {n: {"records": 0, "matches_by_type": Counter()} for n in names}
    found: dict[int, set[str]] = {}
    examples: dict[str, list[dict]] = {t: [] for t in types}
    for b, hits in enumerate(batches):
        for row, name, by_type, kinds, snippets in hits:
            index = int(data.index[b * BATCH_SIZE + row])
            found.setdefault(index, set()).update(by_type)
            matches.update(by_type)
            secret_kinds.update(kinds)
            by_field[name]["records"] += 1
            by_field[name]["matches_by_type"].update(by_type)
            for kind, snippet in snippets.items():
                if len(examples[kind]) < opts.examples:
                    examples[kind].append({"index": index, "field": name, "snippet": snippet})
    records_by_type = Counter(t for kinds in found.values() for t in kinds)
    reasons = {i: "pii: " + ", ".join(t for t in types if t in kinds) for i, kinds in found.items()}
    n = len(data)
    stats = {
        "types": list(types),
        "fields": names,
        "records": n,
        "records_flagged": len(found),
        "share_flagged": round(len(found) / n, 6) if n else 0.0,
        "matches_by_type": {t: matches[t] for t in types},
        "records_by_type": {t: records_by_type[t] for t in types},
        "by_field": {k: {"records": v["records"], "matches_by_type": dict(v["matches_by_type"])}
                     for k, v in by_field.items()},
        "secret_kinds": dict(secret_kinds.most_common()),
        "examples": {t: ex for t, ex in examples.items() if ex},
    }
    report_examples = [{"index": e["index"], "reason": reasons[e["index"]], "fields": {e["field"]: e["snippet"]}}
                       for t in types for e in examples[t][:1]][: opts.examples]
    return CheckResult("pii", flagged=list(found), stats=stats, reasons=reasons, examples=report_examples,
                       versions={"regex": regex.__version__, "pyarrow": pa.__version__})
