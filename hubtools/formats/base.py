"""What every wire format provides, and the message helpers they share."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..errors import ConversionError, ErrorCode
from ..records import Kind, message

__all__ = [
    "MESSAGE_FIELDS",
    "Format",
    "attach_message_fields",
    "data_fields",
    "dump_messages",
    "fail",
    "json_dumps",
    "only_roles",
    "optional_str",
    "parse_messages",
    "pop_message_fields",
    "require_str",
    "split_turns",
    "tool_calls_from_canonical",
    "tool_calls_to_canonical",
    "user_content",
]


class Format:
    """A wire format: how to recognise it and convert one record to and from canonical.

    Subclasses set the class attributes and implement :meth:`to_canonical` and
    :meth:`from_canonical`. ``required`` keys must all be present for a record to match;
    ``hints`` are keys that make a record *look like* this format even when incomplete;
    ``owned`` are the keys the format consumes (the rest are kept as extras).
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    description: ClassVar[str]
    required: ClassVar[frozenset[str]]
    hints: ClassVar[frozenset[str]] = frozenset()
    owned: ClassVar[frozenset[str]]
    #: prompt-only data (evaluation questions): an sft record may end on a user turn.
    prompt_only: ClassVar[bool] = False
    #: answers without their questions: an sft record may have no user turn.
    answers_only: ClassVar[bool] = False
    #: whether the format can be written (every readable format can, unless noted).
    writable: ClassVar[bool] = True
    #: whether a record may be a bare JSON string (read as ``{"text": ...}``), not an object.
    scalar: ClassVar[bool] = False
    #: whether written messages can carry fields beyond the canonical ones (``weight``, ...).
    message_fields: ClassVar[bool] = False
    #: records are message trees, read whole into several conversations each (``formats.expand``).
    expands: ClassVar[bool] = False
    #: fields whose ``NaN`` (pandas' empty cell, in this format's real exports) is read as a missing
    #: value (``formats.nan_as_missing``); a NaN anywhere else stays ``invalid_json``.
    nan_as_missing: ClassVar[frozenset[str]] = frozenset()

    def matches(self, record: dict) -> bool:
        """Whether the record has every required key (and passes :meth:`accepts`)."""
        return self.required <= record.keys() and self.accepts(record)

    def accepts(self, record: dict) -> bool:
        """Extra discrimination beyond keys; override where two formats share keys."""
        return True

    def looks_like(self, record: dict) -> bool:
        """Whether the record has any of this format's hint keys."""
        return bool(self.hints & record.keys())

    def to_canonical(self, record: dict) -> dict[str, Any]:
        raise NotImplementedError

    def from_canonical(self, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<format {self.name} ({self.kind.value})>"


def fail(code: ErrorCode, message: str, hint: str | None = None) -> ConversionError:
    """Return (for ``raise``) the error a format gives for a record it cannot handle."""
    return ConversionError(code, message, hint=hint)


def require_str(record: dict, key: str, *, where: str = "") -> str:
    """Return ``record[key]`` as text, or raise a missing-field or wrong-type error."""
    value = record.get(key)
    if value is None:
        raise fail(ErrorCode.MISSING_FIELD, f"{where}{key!r} is missing or null",
                   f"give every record a {key!r} text")
    if not isinstance(value, str):
        raise fail(ErrorCode.WRONG_TYPE, f"{where}{key!r} is {type(value).__name__}, not text",
                   f"make {key!r} a string")
    return value


def optional_str(record: dict, key: str) -> str | None:
    """Return ``record[key]`` when it is text, None when absent/null; raise on other types."""
    if record.get(key) is None:
        return None
    return require_str(record, key)


def json_dumps(value: Any) -> str:
    """The one JSON spelling used for structured values stored as text (tools, arguments)."""
    return json.dumps(value, ensure_ascii=False)


# ---- roles --------------------------------------------------------------------------------

#: Role names seen in real files, mapped to canonical roles.
ROLE_ALIASES = {
    "system": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
    "tool": "tool", "observation": "tool", "function": "tool", "ipython": "tool",
    "function_call": "assistant",  # a tool call turn; see tool_calls_to_canonical
}
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}


def tool_calls_to_canonical(value: Any) -> str:
    """Turn a ShareGPT ``function_call`` value (JSON text of one call or a list) into tool_calls."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise fail(ErrorCode.BAD_TOOL_CALL, f"function_call is not JSON ({exc.msg})",
                       'write it as {"name": ..., "arguments": {...}}') from None
    calls = value if isinstance(value, list) else [value]
    out = []
    for call in calls:
        if not isinstance(call, dict) or "name" not in call:
            raise fail(ErrorCode.BAD_TOOL_CALL, "function_call has no 'name'",
                       'write it as {"name": ..., "arguments": {...}}')
        arguments = call.get("arguments", {})
        out.append({"type": "function", "function": {
            "name": call["name"],
            "arguments": arguments if isinstance(arguments, str) else json_dumps(arguments),
        }})
    return json_dumps(out)


def tool_calls_from_canonical(tool_calls: str) -> str:
    """Inverse of :func:`tool_calls_to_canonical`: the ShareGPT ``function_call`` value."""
    calls = []
    for call in json.loads(tool_calls):
        function = call.get("function", call)
        arguments = function.get("arguments", "{}")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            pass
        calls.append({"name": function["name"], "arguments": arguments})
    return json_dumps(calls[0] if len(calls) == 1 else calls)


def _content(value: Any, where: str, extra: dict) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
        return "\n".join(p.get("text") or "" for p in value)
    if isinstance(value, list):
        raise fail(ErrorCode.WRONG_TYPE, f"{where} has non-text content parts",
                   "images, audio and other media are not supported yet")
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), str):
        # the reply stored as an object, e.g. arena-hard's {"answer": ...}: read its one text,
        # remember the key so writing the same style gives the object back
        (key, text), = value.items()
        extra[CONTENT_KEY] = key
        return text
    raise fail(ErrorCode.WRONG_TYPE, f"{where} content is {type(value).__name__}, not text",
               "make every message content a string")


#: Record extra that holds per-message wire fields: ``{column: [fields or None per message]}``.
MESSAGE_FIELDS = "hubtools_message_fields"
#: Where a parsed message carries its wire fields until :func:`pop_message_fields` collects them.
_FIELDS = "_fields"
#: Markers among a message's fields (how the wire spelled it), not data: a content object's key
#: and the legacy OpenAI ``function_call``.
CONTENT_KEY = "hubtools_content_key"
LEGACY_CALL = "hubtools_function_call"
_MESSAGE_COLUMNS = ("messages", "prompt", "chosen", "rejected", "completion")
_KNOWN = {"openai": frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call"}),
          "sharegpt": frozenset({"from", "value", "name", "tool_calls", "tool_call_id"})}


def pop_message_fields(record: dict[str, Any]) -> dict[str, list] | None:
    """Take the wire fields off the messages of a canonical record: ``{column: [fields|None]}``."""
    out = {}
    for column in _MESSAGE_COLUMNS:
        messages = record.get(column)
        if not isinstance(messages, list):
            continue
        fields = [m.pop(_FIELDS, None) if isinstance(m, dict) else None for m in messages]
        if any(fields):
            out[column] = fields
    return out or None


def attach_message_fields(record: dict[str, Any], fields: dict[str, list]) -> dict[str, Any]:
    """A copy of ``record`` whose messages carry ``fields`` again, for :func:`dump_messages`."""
    out = dict(record)
    for column, per_message in fields.items():
        messages = out.get(column)
        if isinstance(messages, list):
            out[column] = [{**m, _FIELDS: f} if f else m
                           for m, f in zip(messages, [*per_message, *[None] * len(messages)])]
    return out


def data_fields(fields: dict[str, list]) -> list[str]:
    """The names of the per-message wire fields in ``fields`` (markers left out)."""
    names = {k for per_message in fields.values() for f in per_message if f for k in f}
    return sorted(k for k in names if not k.startswith("hubtools_"))


def parse_messages(value: Any, *, field: str) -> tuple[list[dict], str]:
    """Parse a message list in either key style; return canonical messages and the style.

    Accepts ``[{"role", "content", ...}]`` (OpenAI style, with the legacy ``function_call``)
    and ``[{"from", "value"}]`` (ShareGPT style), with the role names of :data:`ROLE_ALIASES`.
    Any other key of a message (``weight``, ``loss_weight``, ...) rides along with it and is
    written back by :func:`dump_messages`.
    """
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise fail(ErrorCode.WRONG_TYPE, f"{field!r} is {type(value).__name__}, not a list of messages",
                   f"make {field!r} a list of {{'role': ..., 'content': ...}}")
    out: list[dict] = []
    style = "openai"
    for i, msg in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict):
            raise fail(ErrorCode.WRONG_TYPE, f"{where} is {type(msg).__name__}, not a message object",
                       "use {'role': ..., 'content': ...}")
        if msg.get("from") is not None or (msg.get("role") is None and "value" in msg):
            style = "sharegpt"
            role_raw, content_raw = msg.get("from"), msg.get("value")
            known = _KNOWN["sharegpt"]
        else:
            role_raw, content_raw = msg.get("role"), msg.get("content")
            known = _KNOWN["openai"]
        if role_raw is None:
            raise fail(ErrorCode.MISSING_ROLE, f"{where} has no role",
                       "use {'role': ..., 'content': ...} or {'from': ..., 'value': ...}")
        role = ROLE_ALIASES.get(role_raw) if isinstance(role_raw, str) else None
        if role is None:
            raise fail(ErrorCode.UNKNOWN_ROLE, f"{where} has unknown role {role_raw!r}",
                       f"use one of {', '.join(sorted(ROLE_ALIASES))}")
        if role_raw == "function_call":
            out.append(message("assistant", "", tool_calls=tool_calls_to_canonical(content_raw)))
            continue
        extra = {k: v for k, v in msg.items() if k not in known}
        tool_calls = msg.get("tool_calls")
        if msg.get("function_call") is not None and not tool_calls:
            tool_calls = tool_calls_to_canonical(msg["function_call"])
            extra[LEGACY_CALL] = True
        if content_raw is None and tool_calls:
            content = ""
        elif content_raw is None:
            raise fail(ErrorCode.MISSING_FIELD, f"{where} has no content",
                       "give every message a text content")
        else:
            content = _content(content_raw, where, extra)
        if tool_calls is not None and not isinstance(tool_calls, str):
            tool_calls = json_dumps(tool_calls)
        out.append(message(role, content, name=msg.get("name"), tool_calls=tool_calls or None,
                           tool_call_id=msg.get("tool_call_id")))
        if extra:
            out[-1][_FIELDS] = extra
    return out, style


def text_or_messages(record: dict, key: str, role: str) -> list[dict]:
    """``record[key]`` as canonical messages: a text is one ``role`` turn, a list is parsed."""
    value = record[key]
    if isinstance(value, str):
        return [message(role, value)]
    return parse_messages(value, field=key)[0]


def dump_messages(messages: list[dict], style: str) -> list[dict]:
    """Write canonical messages in a key style ("openai" or "sharegpt"), with their wire fields.

    Raises:
        ConversionError: a ShareGPT turn cannot hold both a text and tool calls (CANNOT_CONVERT).
    """
    out = []
    for msg in messages:
        fields = dict(msg.get(_FIELDS) or {})
        content_key, legacy = fields.pop(CONTENT_KEY, None), fields.pop(LEGACY_CALL, None)
        if style == "sharegpt":
            if msg.get("tool_calls"):
                if msg["content"].strip():
                    raise fail(ErrorCode.CANNOT_CONVERT, "sharegpt cannot hold a reply with both a text "
                               "and tool calls (a function_call turn has no text)",
                               "convert to openai instead")
                item = {"from": "function_call", "value": tool_calls_from_canonical(msg["tool_calls"])}
            else:
                item = {"from": SHAREGPT_ROLES[msg["role"]], "value": msg["content"]}
        else:
            item = {"role": msg["role"], "content": msg["content"]}
            if content_key is not None:
                item["content"] = {content_key: msg["content"]}
            if msg.get("tool_calls") and legacy:
                calls = [call.get("function", call) for call in json.loads(msg["tool_calls"])]
                item["function_call"] = calls[0] if len(calls) == 1 else calls
                item["content"] = msg["content"] or None
            elif msg.get("tool_calls"):
                item["tool_calls"] = json.loads(msg["tool_calls"])
                if not msg["content"]:
                    item["content"] = None
        for key in ("name", "tool_call_id"):
            if msg.get(key) is not None:
                item[key] = msg[key]
        for key, value in fields.items():
            item.setdefault(key, value)
        out.append(item)
    return out


def split_turns(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """Split a leading system message off; return (system text or None, the rest)."""
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def only_roles(messages: list[dict], roles: set[str], target: str) -> None:
    """Raise CANNOT_CONVERT unless every message has one of ``roles`` and no tool calls."""
    for msg in messages:
        if msg["role"] not in roles or msg.get("tool_calls"):
            what = "tool calls" if msg.get("tool_calls") else f"a {msg['role']!r} turn"
            raise fail(ErrorCode.CANNOT_CONVERT, f"{target} cannot hold {what}",
                       "convert to openai or sharegpt instead")


def user_content(instruction: str, input_text: str | None) -> str:
    """Join an Alpaca-style instruction and input the way LLaMA-Factory does (one newline)."""
    return f"{instruction}\n{input_text}" if input_text else instruction
