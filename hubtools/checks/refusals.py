"""``refusals``: canned refusals and AI disclaimers in the replies.

Pattern families (``FAMILIES``, RE2 syntax, case-insensitive), each run as one vectorised
``pyarrow.compute.match_substring_regex`` over a batch of replies (no Python loop per record):

* ``ai_disclaimer``: "As an AI language model", "as a large language model", "I'm just an AI.";
* ``cannot_comply``: "I'm sorry, but I cannot", "I cannot fulfill this request", "I'm not able to
  provide", "I must decline";
* ``no_opinions``: "I don't have personal opinions / feelings / a physical body";
* ``knowledge_limits``: "my knowledge cutoff", "as of my last update", "I cannot browse the
  internet", "I don't have real-time information";
* ``policy``: "OpenAI's content policy", "against my programming / guidelines".

The patterns need the whole phrase, so "I'm sorry to hear that", "I cannot stress enough" or "As
an AI researcher, she..." are not refusals.

What is flagged: a refusal in a reply the data teaches. For preference data that is ``chosen``; a
refusal in ``rejected`` only is counted (``stats["preference"]``) but not flagged, because teaching
the model away from a refusal is often what the pair is for (``flag_rejected=True`` flags those
too). Likewise for unpaired (KTO) data only replies labelled desirable are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from ..errors import UnknownCheckError
from .base import CheckData, CheckResult, register, reply_split, teaching_rows

__all__ = ["FAMILIES", "RefusalOptions", "check_refusals"]

_CANT = r"(?:cannot|can['’]?t|can not|am unable to|am not able to|won['’]?t|will not)"
_DONT = r"(?:do not|don['’]?t)"
_IM = r"(?:i['’]m|i am)"

#: Built-in pattern families (RE2 syntax, matched case-insensitively).
FAMILIES: dict[str, str] = {
    "ai_disclaimer": (
        r"\bas an ai(?:,| language model\b| assistant\b| model\b| chatbot\b| system\b| i\b"
        r"| (?:developed|created|trained|designed|built|made|programmed) (?:by|to)\b)"
        r"|\bas an artificial intelligence\b|\bas a responsible ai\b"
        r"|\bas an? (?:responsible |helpful |ethical |friendly )?(?:ai |large |conversational )?language model\b"
        rf"|\b{_IM} (?:just |only |merely |simply )?(?:an ai(?: language model| assistant| model| chatbot| program)?"
        r"|a (?:large )?language model|an artificial intelligence)(?:[,.;!]| and\b| so\b| i\b| without\b"
        r"| (?:developed|created|trained|designed|built|made|programmed) by\b| that\b| who\b| with no\b)"
    ),
    "cannot_comply": (
        rf"\b{_IM} sorry,? but i {_CANT}\b|\bi apologi[sz]e,? but i {_CANT}\b"
        rf"|\bi {_CANT} (?:fulfill|comply with|assist with|help with|complete|process|honou?r|accommodate)"
        r" (?:this|that|your|such|the)\b"
        rf"|\bi {_CANT} (?:provide|generate|create|write|produce|engage in|support|condone|promote|encourage|share)"
        r" (?:content|information|instructions|assistance|advice|a response|an answer|answers|responses|any)\b"
        rf"|\b{_IM} (?:not able|unable) to (?:provide|help|assist|fulfill|comply|answer|generate|create|write"
        r"|complete|engage)\b|\bi must (?:respectfully |politely )?decline\b"
        rf"|\bi {_CANT} in good conscience\b|\bi (?:cannot|can['’]?t) and will not\b"
    ),
    "no_opinions": (
        rf"\bi {_DONT} have (?:any )?(?:personal |my own )?(?:opinions|feelings|emotions|beliefs|preferences"
        r"|personal experiences|desires|consciousness|a physical (?:body|form|presence)|a body|personal views)\b"
        rf"|\bi {_DONT} (?:have the (?:ability|capacity) to|possess the ability to) (?:feel|form (?:personal )?opinions"
        r"|have (?:personal )?opinions|experience emotions)\b"
    ),
    "knowledge_limits": (
        r"\bknowledge cut-?off\b|\bmy (?:training )?data (?:only )?(?:goes|extends) (?:up )?(?:to|until)\b"
        r"|\bas of my (?:last )?(?:knowledge |training )?(?:update|cutoff|cut-off)\b"
        rf"|\bi {_CANT} (?:browse|search|access|surf) the (?:internet|web)\b"
        rf"|\bi {_DONT} have (?:the ability to )?(?:browse|access|search) the (?:internet|web)\b"
        rf"|\bi {_DONT} have (?:access to )?(?:real-time|realtime|live|current) (?:information|data|access|internet)\b"
        rf"|\bi {_DONT} have (?:internet access|access to the internet)\b"
    ),
    "policy": (
        r"\bopenai['’]?s? (?:content|use|usage) polic(?:y|ies)\b"
        r"|\b(?:against|violates?|violation of) (?:my|openai['’]s) (?:programming|guidelines|content polic"
        r"|usage polic|ethical guidelines|policies|principles)"
        rf"|\bmy (?:programming|guidelines) (?:does not|doesn['’]?t|{_DONT}) (?:allow|permit)\b"
    ),
}

_SNIPPET = 80


@dataclass
class RefusalOptions:
    """Settings of the ``refusals`` check.

    Args:
        patterns: families to use instead of ``FAMILIES`` (name -> RE2 regex, case-insensitive).
        extra_patterns: families added to the built-in (or ``patterns``) ones.
        start_chars: scan only the first N characters of each reply (0: the whole reply).
        flag_rejected: also flag refusals in ``rejected`` replies (preference) and in replies
            labelled undesirable (unpaired).
        examples: examples kept per family for the report.
    """

    patterns: dict[str, str] | None = None
    extra_patterns: dict[str, str] | None = None
    start_chars: int = 0
    flag_rejected: bool = False
    examples: int = 3

    def __post_init__(self) -> None:
        for name, pattern in self.families().items():
            try:
                pc.match_substring_regex(pa.array([""]), pattern, ignore_case=True)
            except (pa.ArrowInvalid, TypeError) as exc:
                raise UnknownCheckError(f"refusals: pattern {name!r} is not a valid RE2 regex ({exc})",
                                        hint="use RE2 syntax: no look-arounds or back-references") from None
        if self.start_chars < 0:
            raise UnknownCheckError("refusals: start_chars must be >= 0", hint="use 0 to scan whole replies")

    def families(self) -> dict[str, str]:
        """The pattern families this run uses."""
        return {**(self.patterns if self.patterns is not None else FAMILIES), **(self.extra_patterns or {})}


def _match_batch(batch: dict[str, pa.Array], families: dict[str, str], start_chars: int,
                 together: bool = True) -> dict[str, np.ndarray]:
    """Per field, a (rows x families) boolean matrix: which family matched which reply
    (``together=False``: every family over every reply, the reference the tests compare with)."""
    out = {}
    for name, values in batch.items():
        if start_chars:
            values = pc.utf8_slice_codeunits(values, 0, start_chars)
        matrix = np.zeros((len(values), len(families)), bool)
        # one pass with every family as one alternation finds the few replies any family
        # matches (the same rows: a search for A|B matches where A or B does); each family then
        # reads only those
        rows = np.arange(len(values))
        if together and len(families) > 1:
            either = "|".join(f"(?:{p})" for p in families.values())
            try:
                hit = pc.match_substring_regex(values, either, ignore_case=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. too large for RE2 at once
                hit = None
            if hit is not None:
                rows = np.flatnonzero(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))
                values = values.take(pa.array(rows))
        if len(rows):
            for j, p in enumerate(families.values()):
                matrix[rows, j] = pc.fill_null(pc.match_substring_regex(values, p, ignore_case=True),
                                               False).to_numpy(zero_copy_only=False)
        out[name] = matrix
    return out


def _snippet(text: str, pattern: str) -> str:
    """The text around the first match of ``pattern``, PII-redacted (it goes into a report)."""
    from .pii import redact

    try:
        m = regex.search(pattern, text, flags=regex.IGNORECASE)
    except regex.error:  # an RE2 pattern Python cannot read: show the start of the reply
        m = None
    start = max(0, m.start() - _SNIPPET) if m else 0
    end = (m.end() if m else 0) + _SNIPPET
    snippet = " ".join(redact(text[start:end])[0].split())
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


@register("refusals", description="canned refusals and AI disclaimers in the replies", options=RefusalOptions,
          replies=True)
def check_refusals(data: CheckData, opts: RefusalOptions) -> CheckResult:
    """Flag taught replies holding a refusal or AI disclaimer; counts per family and field."""
    families = opts.families()
    names = data.response_fields
    batches = data.map(_match_batch, names, desc="refusals", families=families, start_chars=opts.start_chars)
    hits = {n: np.concatenate([b[n] for b in batches]) if batches else np.zeros((0, len(families)), bool)
            for n in names}
    family_names = list(families)
    n = len(data)
    any_hit = {name: m.any(axis=1) for name, m in hits.items()}
    flag = np.zeros(n, bool)
    for name in names:
        taught = teaching_rows(data, name, opts.flag_rejected)
        flag |= any_hit[name] if taught is None else any_hit[name] & taught
    reasons = {}
    for pos in np.flatnonzero(flag):
        parts = [f"{', '.join(f for f, h in zip(family_names, hits[name][pos]) if h)}"
                 + (f" ({name})" if len(names) > 1 else "") for name in names if any_hit[name][pos]]
        reasons[int(data.index[pos])] = "refusal: " + "; ".join(parts)

    examples: dict[str, list[dict]] = {}
    for j, family in enumerate(family_names):
        for name in names:
            for pos in np.flatnonzero(hits[name][:, j])[: opts.examples - len(examples.get(family, []))]:
                examples.setdefault(family, []).append({
                    "index": int(data.index[pos]), "field": name,
                    "snippet": _snippet(data.fields[name][int(pos)].as_py(), families[family])})
    any_field = np.any(np.stack([hits[name] for name in names]), axis=0) if n else np.zeros((0, len(families)), bool)
    stats = {
        "families": family_names,
        "fields": names,
        "start_chars": opts.start_chars,
        "records": n,
        "records_flagged": int(flag.sum()),
        "share_flagged": round(float(flag.mean()), 6) if n else 0.0,
        "by_family": {f: int(any_field[:, j].sum()) for j, f in enumerate(family_names)},
        "by_field": {name: {"records": int(any_hit[name].sum()),
                            "share": round(float(any_hit[name].mean()), 6) if n else 0.0,
                            "by_family": {f: int(hits[name][:, j].sum()) for j, f in enumerate(family_names)}}
                     for name in names},
        "examples": examples,
    }
    stats.update(reply_split(data, any_hit))
    report = [{"index": e["index"], "reason": reasons.get(e["index"], ""), "fields": {e["field"]: e["snippet"]}}
              for ex in examples.values() for e in ex[:1] if e["index"] in reasons][: opts.examples]
    return CheckResult("refusals", flagged=[int(data.index[p]) for p in np.flatnonzero(flag)], stats=stats,
                       reasons=reasons, examples=report, versions={"pyarrow": pa.__version__})
