"""LLaMA-Factory v1 data: ``messages`` whose ``content`` is a list of parts ``{"type", "value"}``
(read as ``sft``), and the v1 preference shape ``chosen_messages`` / ``rejected_messages``
(read as ``preference``).

Parts map onto the canonical message so checks read the text:

* ``text`` parts are joined into the content (in order, with nothing between them);
* ``image_url`` / ``video_url`` / ``audio_url`` become ``<image>`` / ``<video>`` / ``<audio>``
  tokens at their place in the text, and their values the record's ``images`` / ``videos`` /
  ``audios`` lists: LLaMA-Factory's v0 multimodal layout, so v1 -> openai gives a file v0 reads;
* ``tool_call`` parts (one call each) become the message's ``tool_calls``; a ``tools`` part the
  record's ``tools`` (written back into the first message);
* ``reasoning`` is kept as the message field ``reasoning``, ``loss_weight`` and any other
  message key as fields of their own (both written back, and kept by openai and sharegpt).

A text that holds a literal ``<image>``/``<video>``/``<audio>`` token, and part types other than
these, are quarantined with the reason (they could not be written back as they were).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ErrorCode
from ..records import Kind, message
from .base import (
    _FIELDS,
    CONTENT_KEY,
    LEGACY_CALL,
    ROLE_ALIASES,
    Format,
    fail,
    json_dumps,
    tool_calls_from_canonical,
    tool_calls_to_canonical,
)
from .preference import _split_prompt

__all__ = ["LlamaFactoryV1", "LlamaFactoryV1Preference", "MEDIA_COLUMNS"]

#: part type -> (token in the text, record column of the values)
_MEDIA = {"image_url": ("<image>", "images"), "video_url": ("<video>", "videos"),
          "audio_url": ("<audio>", "audios")}
#: the media columns of LLaMA-Factory (v0 and, through the tokens, v1)
MEDIA_COLUMNS = tuple(column for _, column in _MEDIA.values())
_TOKEN = re.compile(r"<(image|video|audio)>")
_PART_TYPES = ("text", "reasoning", "tool_call", "tools", *_MEDIA)


def _is_v1(messages: Any) -> bool:
    return (isinstance(messages, list) and bool(messages) and isinstance(messages[0], dict)
            and isinstance(messages[0].get("content"), list)
            and all(isinstance(p, dict) and "value" in p for p in messages[0]["content"]))


def _parse(value: Any, field: str, found: dict[str, Any]) -> list[dict]:
    """Canonical messages of a v1 message list; media lists and ``tools`` go into ``found``."""
    if not isinstance(value, list):
        raise fail(ErrorCode.WRONG_TYPE, f"{field!r} is not a list of messages")
    out = []
    for i, msg in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), list):
            raise fail(ErrorCode.WRONG_TYPE, f"{where} has no content list of {{type, value}} parts")
        role = ROLE_ALIASES.get(msg.get("role")) if isinstance(msg.get("role"), str) else None
        if role is None:
            raise fail(ErrorCode.UNKNOWN_ROLE, f"{where} has role {msg.get('role')!r}",
                       "use system, user, assistant or tool")
        text: list[str] = []
        calls: list[dict] = []
        fields = {k: v for k, v in msg.items() if k not in ("role", "content")}
        for j, part in enumerate(msg["content"]):
            kind = part.get("type") if isinstance(part, dict) else None
            value = part.get("value") if isinstance(part, dict) else None
            if not isinstance(value, str):
                raise fail(ErrorCode.WRONG_TYPE, f"{where}.content[{j}] is not a {{type, value}} part with a text value")
            if kind == "text":
                if _TOKEN.search(value):
                    raise fail(ErrorCode.WRONG_TYPE, f"{where} text holds a literal {_TOKEN.search(value)[0]} token",
                               "media go in image_url/video_url/audio_url parts")
                text.append(value)
            elif kind in _MEDIA:
                token, column = _MEDIA[kind]
                text.append(token)
                found.setdefault(column, []).append(value)
            elif kind in ("tool_call", "tool_calls"):
                calls += json.loads(tool_calls_to_canonical(value))
            elif kind == "reasoning":
                fields["reasoning"] = fields.get("reasoning", "") + value
            elif kind == "tools":
                found["tools"] = value
            else:
                raise fail(ErrorCode.WRONG_TYPE, f"{where}.content[{j}] has part type {kind!r}, which is not read",
                           f"use one of {', '.join(_PART_TYPES)}")
        out.append(message(role, "".join(text), tool_calls=json_dumps(calls) if calls else None))
        if fields:
            out[-1][_FIELDS] = fields
    return out


def _dump(messages: list[dict], media: dict[str, list], tools: str | None, target: str) -> list[dict]:
    """v1 messages of canonical ones; consumes ``media`` as their tokens come."""
    out = []
    for i, msg in enumerate(messages):
        fields = {k: v for k, v in (msg.get(_FIELDS) or {}).items() if k not in (CONTENT_KEY, LEGACY_CALL)}
        parts: list[dict] = []
        if tools and i == 0:
            parts.append({"type": "tools", "value": tools})
        if "reasoning" in fields:
            parts.append({"type": "reasoning", "value": fields.pop("reasoning")})
        pieces = _TOKEN.split(msg["content"] or "")
        for k, piece in enumerate(pieces):
            if k % 2 == 0:
                if piece:
                    parts.append({"type": "text", "value": piece})
                continue
            column = f"{piece}s"
            if not media.get(column):
                raise fail(ErrorCode.CANNOT_CONVERT, f"more <{piece}> tokens than {column}",
                           f"give the record one {column} entry per <{piece}> token")
            parts.append({"type": f"{piece}_url", "value": media[column].pop(0)})
        if msg.get("tool_calls"):
            calls = json.loads(tool_calls_from_canonical(msg["tool_calls"]))  # {name, arguments} each
            parts += [{"type": "tool_call", "value": json_dumps(call)} for call in
                      (calls if isinstance(calls, list) else [calls])]
        if not parts:
            parts.append({"type": "text", "value": ""})
        out.append({"role": msg["role"], "content": parts, **fields})
    left = {column: len(values) for column, values in media.items() if values}
    if left:
        column, n = next(iter(left.items()))
        raise fail(ErrorCode.CANNOT_CONVERT, f"{target}: {n} {column} with no token in the text",
                   f"put one <{column[:-1]}> token in the text per entry of {column!r}")
    return out


def _media(extra: dict) -> dict[str, list]:
    return {column: list(extra.pop(column)) for column in MEDIA_COLUMNS if isinstance(extra.get(column), list)}


class LlamaFactoryV1(Format):
    name = "llamafactory_v1"
    kind = Kind.SFT
    description = "LLaMA-Factory v1: messages whose content is a list of {type, value} parts, loss_weight"
    required = frozenset({"messages"})
    hints = frozenset()
    owned = frozenset({"messages"})
    message_fields = True

    def accepts(self, record: dict) -> bool:
        return _is_v1(record["messages"])

    def to_canonical(self, record: dict) -> dict[str, Any]:
        found: dict[str, Any] = {}
        messages = _parse(record["messages"], "messages", found)
        out: dict[str, Any] = {"messages": messages, "tools": found.pop("tools", None)}
        if found:
            out["_extra"] = found
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {"messages": _dump(record["messages"], _media(extra), record.get("tools"), self.name)}


class LlamaFactoryV1Preference(Format):
    name = "llamafactory_v1_preference"
    kind = Kind.PREFERENCE
    description = "LLaMA-Factory v1 preference: chosen_messages / rejected_messages of {type, value} parts"
    required = frozenset({"chosen_messages", "rejected_messages"})
    hints = frozenset({"chosen_messages", "rejected_messages"})
    owned = frozenset({"chosen_messages", "rejected_messages"})
    message_fields = True

    def to_canonical(self, record: dict) -> dict[str, Any]:
        found: dict[str, Any] = {}
        found_rejected: dict[str, Any] = {}
        chosen = _parse(record["chosen_messages"], "chosen_messages", found)
        rejected = _parse(record["rejected_messages"], "rejected_messages", found_rejected)
        if found != found_rejected:
            raise fail(ErrorCode.UNPAIRED_TRANSCRIPT, "chosen_messages and rejected_messages hold different "
                       "media or tools", "both sides answer the same prompt with the same media")
        prompt, chosen, rejected = _split_prompt(chosen, rejected)
        out: dict[str, Any] = {"prompt": prompt, "chosen": chosen, "rejected": rejected,
                               "score_chosen": None, "score_rejected": None, "tools": found.pop("tools", None)}
        if found:
            out["_extra"] = found
        return out

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        media = _media(extra)
        return {f"{side}_messages": _dump(record["prompt"] + record[side], {c: list(v) for c, v in media.items()},
                                          record.get("tools"), self.name)
                for side in ("chosen", "rejected")}
