"""OpenAssistant message trees, read as ``sft`` conversations.

* ``oasst``: the trees export (oasst1/oasst2 ``*.trees.jsonl``): ``message_tree_id``,
  ``tree_state`` and a ``prompt`` message whose ``replies`` nest;
* ``oasst_messages``: flat messages, one a record, linked by ``message_id``/``parent_id`` (the
  oasst1/oasst2 message tables) or ``user_message_id``/``parent_message_id`` (the backend's seed
  data). Read whole, then grouped into trees; a message whose parent is not in the input is
  quarantined. Written as ``oasst`` trees (one record cannot hold several messages).

A tree gives one conversation per path from its root to a leaf (``path="all"``), or the one
path that follows the best-ranked reply (lowest ``rank``) at every step (``path="best"``).
A path ends on the last assistant reply: prompter turns after it (follow-ups nobody answered)
are kept whole as the record's ``unanswered_replies`` and written back under that reply; paths
that end on the same reply give one conversation. A tree with no assistant reply is
quarantined. Every message field (``message_id``, ``rank``, ``lang``, ``labels``, ...) is kept
with its message; the tree's own fields are the record's extras. Each conversation has its own
index: its last message's in flat input; in nested input the tree record's for the first, the
next numbers after the input's last record for the others (so ``filter`` drops one, not its
siblings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import ConversionError, ErrorCode
from ..records import Kind, message
from .base import _FIELDS, Format, fail, require_str

__all__ = ["OASST", "OASSTMessages", "PATHS"]

#: how a tree becomes conversations
PATHS = ("all", "best")
_ROLES = {"prompter": "user", "assistant": "assistant"}
_WIRE_ROLES = {v: k for k, v in _ROLES.items()}
UNANSWERED = "unanswered_replies"


def _message(node: dict, where: str) -> dict:
    role = _ROLES.get(node.get("role"))
    if role is None:
        raise fail(ErrorCode.UNKNOWN_ROLE, f"{where} has role {node.get('role')!r}, not prompter or assistant")
    out = message(role, require_str(node, "text", where=f"{where}."))
    fields = {k: v for k, v in node.items() if k not in ("role", "text", "replies")}
    if fields:
        out[_FIELDS] = fields
    return out


def _replies(node: dict) -> list[dict]:
    replies = node.get("replies") or []
    if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
        raise fail(ErrorCode.WRONG_TYPE, "'replies' is not a list of messages")
    return replies


def _rank(node: dict) -> float:
    rank = node.get("rank")
    return rank if isinstance(rank, (int, float)) and not isinstance(rank, bool) else float("inf")


def _leaf_paths(root: dict, path: str) -> Iterator[list[dict]]:
    """Root-to-leaf node lists: every one, or the best-ranked one."""
    if path == "best":
        nodes = [root]
        while _replies(nodes[-1]):
            nodes.append(min(_replies(nodes[-1]), key=_rank))  # min keeps the first of equal ranks
        yield nodes
        return
    stack = [[root]]
    while stack:
        nodes = stack.pop()
        replies = _replies(nodes[-1])
        if not replies:
            yield nodes
        stack += [[*nodes, r] for r in reversed(replies)]


def conversations(root: dict, path: str) -> list[tuple[dict, dict[str, Any]]]:
    """(last message, canonical sft record) per conversation of one tree (``_extra`` holds the
    unanswered follow-ups).

    Raises:
        ConversionError: a message is malformed, or no path has an assistant reply.
    """
    if path not in PATHS:
        raise ValueError(f"path is {path!r}, not one of {PATHS}")
    ends: dict[int, tuple[list[dict], list[dict]]] = {}
    for nodes in _leaf_paths(root, path):
        last = max((i for i, n in enumerate(nodes) if n.get("role") == "assistant"), default=None)
        if last is None:
            continue
        kept, unanswered = ends.setdefault(id(nodes[last]), (nodes[: last + 1], []))
        if last + 1 < len(nodes) and all(n is not nodes[last + 1] for n in unanswered):
            unanswered.append(nodes[last + 1])
    if not ends:
        raise fail(ErrorCode.ROLE_ORDER, "the message tree has no assistant reply",
                   "a tree gives conversations once a prompt has an answer")
    out = []
    for kept, unanswered in ends.values():
        record: dict[str, Any] = {"messages": [_message(n, f"message {i}") for i, n in enumerate(kept)],
                                  "tools": None}
        if unanswered:
            record["_extra"] = {UNANSWERED: unanswered}
        out.append((kept[-1], record))
    return out


def _tree(messages: list[dict], extra: dict) -> dict:
    """A one-path nested tree of canonical messages (fields restored), follow-ups under the last."""
    node: dict[str, Any] = {}
    root = node
    for i, msg in enumerate(messages):
        role = _WIRE_ROLES.get(msg["role"])
        if role is None or msg.get("tool_calls"):
            raise fail(ErrorCode.CANNOT_CONVERT, f"oasst holds prompter and assistant turns, not {msg['role']!r} "
                       "turns or tool calls", "convert to openai or sharegpt instead")
        if i:
            child: dict[str, Any] = {}
            node["replies"] = [child]
            node = child
        node.update({**(msg.get(_FIELDS) or {}), "text": msg["content"], "role": role, "replies": []})
    unanswered = extra.pop(UNANSWERED, None)
    if isinstance(unanswered, list):
        node["replies"] = unanswered
    return root


class OASST(Format):
    name = "oasst"
    kind = Kind.SFT
    description = "OpenAssistant trees: a 'prompt' message with nested 'replies' (one conversation per path)"
    required = frozenset({"prompt"})
    hints = frozenset({"message_tree_id"})
    owned = frozenset({"prompt"})
    message_fields = True
    #: one record gives several canonical records: see :func:`hubtools.formats.expand`
    expands = True

    def accepts(self, record: dict) -> bool:
        prompt = record["prompt"]
        return isinstance(prompt, dict) and "text" in prompt and "role" in prompt

    def trees(self, items: list[tuple[int, dict]]) -> Iterator[tuple[int, dict, dict | ConversionError, dict]]:
        """(source index, the tree's own fields, its root message, {}) per tree: conversations
        come from the tree's record (:func:`hubtools.formats.expand` numbers them apart)."""
        for index, record in items:
            yield index, {k: v for k, v in record.items() if k not in self.owned}, record["prompt"], {}

    def to_canonical(self, record: dict) -> dict[str, Any]:
        return conversations(record["prompt"], "best")[0][1]

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        return {"prompt": _tree(record["messages"], extra)}


_ID_KEYS = (("message_id", "parent_id"), ("user_message_id", "parent_message_id"))


#: the tree fields of an error that concerns one message, not a whole tree
_MESSAGE = {"message": True}


def _ids(record: dict) -> tuple[str, str] | None:
    return next(((i, p) for i, p in _ID_KEYS if i in record and p in record), None)


class OASSTMessages(Format):
    name = "oasst_messages"
    kind = Kind.SFT
    description = "OpenAssistant flat messages: message_id/parent_id (or user_message_id/parent_message_id), role, text"
    required = frozenset({"text", "role"})
    hints = frozenset({"parent_id", "parent_message_id"})
    owned = frozenset()
    message_fields = True
    writable = False
    expands = True

    def accepts(self, record: dict) -> bool:
        return _ids(record) is not None and record["role"] in _ROLES

    def trees(self, items: list[tuple[int, dict]]) -> Iterator[tuple[int, dict, dict | ConversionError, dict]]:
        """(index of the root message, {}, the root with its replies nested, {id(message): its
        index}) per tree, so each conversation has the index of its last message; a message that
        cannot be placed in a tree comes with its error instead (and ``{"message": True}``)."""
        nodes: dict[Any, tuple[int, dict]] = {}
        parents: dict[int, Any] = {}
        for index, record in items:
            keys = _ids(record)
            if keys is None:
                yield index, _MESSAGE, fail(ErrorCode.MISSING_FIELD, "the message has no message_id/parent_id",
                                            "give every message its id and its parent's id (null for a prompt)"), {}
                continue
            id_key, parent_key = keys
            if record[id_key] in nodes:
                yield index, _MESSAGE, fail(ErrorCode.WRONG_TYPE, f"{id_key} {record[id_key]!r} is used twice"), {}
                continue
            nodes[record[id_key]] = (index, {**record, "replies": []})
            parents[index] = record[parent_key]
        roots = []
        for index, node in nodes.values():
            parent = parents[index]
            if parent is None:
                roots.append((index, node))
            elif parent in nodes:
                nodes[parent][1]["replies"].append(node)
        indices = {id(node): index for index, node in nodes.values()}
        reached: set[int] = set()
        for index, root in roots:
            stack = [root]
            while stack:
                node = stack.pop()
                reached.add(id(node))
                stack += node["replies"]
            yield index, {}, root, indices
        for index, node in nodes.values():
            if id(node) not in reached:
                yield index, _MESSAGE, fail(
                    ErrorCode.UNPAIRED_TRANSCRIPT,
                    f"the message's parent {parents[index]!r} is not in the input (or not linked to a prompt)",
                    "give the whole tree, from its prompt (parent null) down"), {}

    def to_canonical(self, record: dict) -> dict[str, Any]:
        raise fail(ErrorCode.CANNOT_CONVERT, "oasst_messages are read as whole trees")

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        raise fail(ErrorCode.CANNOT_CONVERT, "oasst_messages cannot be written one message a record",
                   "write oasst trees instead")
