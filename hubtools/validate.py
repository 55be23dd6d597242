"""Validation rules for canonical records: every problem as an :class:`~hubtools.errors.Issue`.

:func:`check_record` collects every issue of one record (it never stops at the first).
Reading files, detecting formats and validating in one streaming pass is :func:`hubtools.load`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import ErrorCode, Issue
from .records import Kind

__all__ = ["QuarantineRow", "ValidationConfig", "check_record"]

_ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class ValidationConfig:
    """Validation settings.

    Args:
        max_chars: longest text allowed in one field (a message content or a text).
        prompt_only: sft records may end on a user turn (evaluation questions).
        answers_only: sft records may have no user turn (model answers without questions).
    """

    max_chars: int = 1_000_000
    prompt_only: bool = False
    answers_only: bool = False


#: A quarantine row keeps the first RAW_PREFIX characters of a record that is ``too_long`` or
#: longer than RAW_MAX once written, with its size in bytes and its sha256 (a 1 GB field must not
#: make a 1 GB quarantine file).
RAW_PREFIX = 2_000
RAW_MAX = 100_000


def _text(raw: bytes | str) -> tuple[str, bytes]:
    """(text safe to write as JSON, the bytes it stands for): bytes that are not UTF-8 and lone
    surrogates are shown as backslash escapes."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="backslashreplace"), raw
    try:
        return raw, raw.encode("utf-8")
    except UnicodeEncodeError:
        try:
            data = raw.encode("utf-8", errors="surrogateescape")  # bytes decoded with surrogateescape
        except UnicodeEncodeError:
            data = raw.encode("utf-8", errors="surrogatepass")  # a lone surrogate escape such as \ud800
            return raw.encode("utf-8", errors="backslashreplace").decode("utf-8"), data
        return data.decode("utf-8", errors="backslashreplace"), data


def bounded_raw(raw: Any, *, cap: bool = False) -> tuple[Any, int | None, str | None]:
    """(raw as a quarantine row keeps it, its size in bytes, its sha256) - size and hash only when
    it was cut to RAW_PREFIX characters (always when ``cap``, else when over RAW_MAX)."""
    if isinstance(raw, (bytes, str)):
        text, data = _text(raw)
    else:
        try:
            data = orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):  # surrogates, or a value JSON cannot hold
            text, data = _text(json.dumps(raw, ensure_ascii=False, default=str))
        else:
            if not cap and len(data) <= RAW_MAX:
                return raw, None, None
            text = data.decode("utf-8")
    if not cap and len(data) <= RAW_MAX:
        return text, None, None
    return text[:RAW_PREFIX], len(data), hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class QuarantineRow:
    """A record kept out of the data, with why: written to ``quarantine.jsonl``.

    ``raw`` is the record as read; a long one is cut to its first characters, and then
    ``raw_bytes`` and ``raw_sha256`` say how long it was and which it was.
    """

    index: int
    code: str
    reason: str
    raw: Any
    hint: str | None = None
    file: str | None = None
    raw_bytes: int | None = None
    raw_sha256: str | None = None

    @classmethod
    def from_issues(cls, issues: list[Issue], raw: Any, *, file: str | None = None) -> QuarantineRow:
        first = issues[0]
        reason = "; ".join(i.message for i in issues)
        raw, size, digest = bounded_raw(raw, cap=any(i.code is ErrorCode.TOO_LONG for i in issues))
        return cls(first.index if first.index is not None else -1, first.code.slug, reason, raw,
                   first.hint, file, size, digest)

    def to_dict(self) -> dict[str, Any]:
        out = {"index": self.index, "code": self.code, "reason": self.reason, "raw": self.raw}
        if self.raw_sha256:
            out["raw_bytes"] = self.raw_bytes
            out["raw_sha256"] = self.raw_sha256
        if self.hint:
            out["hint"] = self.hint
        if self.file:
            out["file"] = self.file
        return out


def _text_issues(text: Any, where: str, index: int, config: ValidationConfig,
                 *, allow_empty: bool = False) -> list[Issue]:
    if not isinstance(text, str):
        return [Issue(ErrorCode.WRONG_TYPE, f"{where} is {type(text).__name__}, not text", index)]
    if len(text) > config.max_chars:
        return [Issue(ErrorCode.TOO_LONG, f"{where} has {len(text):,} characters, over the "
                      f"limit of {config.max_chars:,}", index, "raise --max-chars, or split the text")]
    if not allow_empty and not text.strip():
        return [Issue(ErrorCode.EMPTY_TEXT, f"{where} is empty", index, "fill it in or drop the record")]
    return []


def _message_issues(messages: Any, field: str, index: int, config: ValidationConfig) -> list[Issue]:
    if not messages:
        return [Issue(ErrorCode.MISSING_FIELD, f"{field} has no messages", index)]
    issues: list[Issue] = []
    for i, msg in enumerate(messages):
        where = f"{field}[{i}]"
        role = msg.get("role")
        if role not in _ROLES:
            issues.append(Issue(ErrorCode.UNKNOWN_ROLE, f"{where} has role {role!r}", index,
                                "use system, user, assistant or tool"))
        if role == "system" and i > 0:
            issues.append(Issue(ErrorCode.ROLE_ORDER, f"{where} is a system turn after the start",
                                index, "put the system prompt first"))
        # an empty system turn says "no system prompt" (orca-agentinstruct starts every record
        # with one); an empty user or assistant turn is a hole in the conversation
        issues += _text_issues(msg.get("content"), where, index, config,
                               allow_empty=bool(msg.get("tool_calls")) or (role == "system" and i == 0))
    return issues


def _sft_order(messages: list[dict], index: int, config: ValidationConfig) -> list[Issue]:
    roles = [m["role"] for m in messages if m["role"] != "system"]
    if not roles:
        return [Issue(ErrorCode.ROLE_ORDER, "the conversation has only a system turn", index)]
    issues = []
    if "user" not in roles and not config.answers_only:
        issues.append(Issue(ErrorCode.ROLE_ORDER, "the conversation has no user turn", index,
                            "start with a user turn"))
    elif roles[0] not in ("user",) and not config.answers_only:
        issues.append(Issue(ErrorCode.ROLE_ORDER, f"the conversation starts with a {roles[0]} turn",
                            index, "start with a user turn (after an optional system turn)"))
    last = roles[-1]
    if last != "assistant" and not (config.prompt_only and last == "user"):
        issues.append(Issue(ErrorCode.ROLE_ORDER, f"the conversation ends with a {last} turn, "
                            "not an assistant reply", index, "end with the reply to learn"))
    for prev, msg in zip(messages, messages[1:]):
        if msg["role"] == "tool" and not (prev["role"] == "tool" or prev.get("tool_calls")):
            issues.append(Issue(ErrorCode.ROLE_ORDER, "a tool result does not follow a tool call",
                                index, "put the assistant's tool call before its result"))
            break
    return issues


def _prompt_order(messages: list[dict], index: int) -> list[Issue]:
    """A prompt-only record: user first (after an optional system turn), a user turn last."""
    roles = [m["role"] for m in messages if m["role"] != "system"]
    if not roles:
        return [Issue(ErrorCode.NO_PROMPT, "the prompt has only a system turn", index,
                      "add the user turn to answer")]
    if roles[0] != "user":
        return [Issue(ErrorCode.ROLE_ORDER, f"the prompt starts with a {roles[0]} turn", index,
                      "start with a user turn (after an optional system turn)")]
    if roles[-1] != "user":
        return [Issue(ErrorCode.ROLE_ORDER, f"the prompt ends with a {roles[-1]} turn, not a user turn",
                      index, "a prompt-only record ends on the user turn to answer")]
    return []


def _reply_issues(reply: list[dict], side: str, index: int) -> list[Issue]:
    if reply and reply[0]["role"] != "assistant":
        return [Issue(ErrorCode.ROLE_ORDER, f"{side} starts with a {reply[0]['role']} turn, "
                      "not an assistant reply", index)]
    return []


def check_record(record: dict[str, Any], kind: Kind | str, config: ValidationConfig | None = None) -> list[Issue]:
    """Return every issue of one canonical record (empty when it is valid)."""
    config = config or ValidationConfig()
    kind = Kind(kind)
    index = record.get("hubtools_index")
    if kind is Kind.TEXT:
        return _text_issues(record.get("text"), "text", index, config)
    if kind is Kind.SFT:
        issues = _message_issues(record.get("messages"), "messages", index, config)
        return issues or _sft_order(record["messages"], index, config)
    if kind is Kind.PROMPT:
        issues = _message_issues(record.get("prompt"), "prompt", index, config)
        return issues or _prompt_order(record["prompt"], index)
    if kind is Kind.UNPAIRED:
        issues = _message_issues(record.get("prompt"), "prompt", index, config)
        issues += _message_issues(record.get("completion"), "completion", index, config)
        if not isinstance(record.get("label"), bool):
            issues.append(Issue(ErrorCode.WRONG_TYPE, "label is not true or false", index))
        if not issues and not any(m["role"] == "user" for m in record["prompt"]):
            issues.append(Issue(ErrorCode.NO_PROMPT, "the prompt has no user turn", index))
        return issues or _reply_issues(record["completion"], "completion", index)
    # preference
    prompt = record.get("prompt")
    issues = []
    if not prompt or not any(m["role"] == "user" for m in prompt):
        issues.append(Issue(ErrorCode.NO_PROMPT, "the pair has no user prompt", index,
                            "give both replies the prompt they answer"))
    else:
        issues += _message_issues(prompt, "prompt", index, config)
    for side in ("chosen", "rejected"):
        issues += _message_issues(record.get(side), side, index, config)
    if issues:
        return issues
    issues = _reply_issues(record["chosen"], "chosen", index) + _reply_issues(record["rejected"], "rejected", index)
    if [m["content"].strip() for m in record["chosen"]] == [m["content"].strip() for m in record["rejected"]]:
        issues.append(Issue(ErrorCode.SAME_REPLIES, "chosen and rejected are the same reply", index,
                            "a pair must contrast two different replies"))
    return issues
