"""Merging a freshly rendered card or guidelines into the one a person may have edited.

Re-rendering keeps what a person wrote:

* **metadata** (the YAML front matter): keys hubtools does not compute are kept; for ``license``,
  ``language``, ``pretty_name`` and ``task_categories`` a value already in the card wins over the
  computed default, and only an explicit setting replaces it; ``tags`` are merged; ``configs`` and
  ``size_categories`` are facts about the data and always updated.
* **sections**: each generated section sits between ``<!-- hubtools:begin NAME sha=... -->`` and
  ``<!-- hubtools:end NAME -->``. The ``sha`` is a hash of the generated text: a section whose
  text still matches it is regenerated; a section a person edited is kept as it is. Text outside
  the markers is always kept. To get a generated section back, delete it with its markers; to
  silence one, empty it but keep its markers.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

__all__ = ["dump_front_matter", "merge_metadata", "merge_sections", "size_category", "split_front_matter"]

#: metadata keys a person may set; a value already in the card wins unless given explicitly
SUGGESTED_KEYS = ("license", "language", "pretty_name", "task_categories")
#: metadata keys that are facts about the data: always recomputed
OWNED_KEYS = ("size_categories", "configs")
_KEY_ORDER = ("license", "language", "task_categories", "size_categories", "pretty_name", "tags", "configs")

_SECTION = re.compile(
    r"<!-- hubtools:begin (?P<name>[\w-]+)(?: sha=(?P<sha>[0-9a-f]+))? -->\n?(?P<body>.*?)\n?"
    r"<!-- hubtools:end (?P=name) -->", re.S)
_FRONT = re.compile(r"\A\s*---[ \t]*\r?\n(?P<yaml>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)



# --------------------------------------------------------------------------- sections


def _sha(body: str) -> str:
    return hashlib.sha256(body.strip().encode()).hexdigest()[:12]


def _stamp(text: str) -> str:
    """Write the hash of each generated section's text into its begin marker."""
    def repl(m: re.Match) -> str:
        body = m.group("body").strip("\n")
        name = m.group("name")
        return f"<!-- hubtools:begin {name} sha={_sha(body)} -->\n{body}\n<!-- hubtools:end {name} -->"
    return _SECTION.sub(repl, text)


def merge_sections(new: str, old: str | None) -> tuple[str, list[str]]:
    """Merge freshly generated Markdown into an existing document; return it and the kept sections.

    See the module docstring for the rules. ``new`` must come stamped (every section with a sha).
    """
    if not old or not old.strip():
        return new, []
    fresh = {m.group("name"): m.group(0) for m in _SECTION.finditer(new)}
    order = list(fresh)
    if not _SECTION.search(old):
        return old.rstrip("\n") + "\n\n" + new.lstrip("\n"), []
    kept: list[str] = []
    present: list[str] = []

    def repl(m: re.Match) -> str:
        name, sha, body = m.group("name"), m.group("sha"), m.group("body").strip("\n")
        present.append(name)
        if name not in fresh:
            return m.group(0)
        if sha is not None and sha != _sha(body):
            kept.append(name)
            return m.group(0)
        return fresh[name]

    text = _SECTION.sub(repl, old)
    for i, name in enumerate(order):
        if name in present:
            continue
        before = [n for n in order[:i] if n in present]
        if before:
            end = list(re.finditer(rf"<!-- hubtools:end {re.escape(before[-1])} -->", text))[-1].end()
            text = text[:end] + "\n\n" + fresh[name] + text[end:]
        else:
            text = fresh[name] + "\n\n" + text.lstrip("\n")
        present.append(name)
    return text, kept


# --------------------------------------------------------------------------- metadata


def split_front_matter(text: str | None) -> tuple[dict[str, Any], str]:
    """Split a card into its YAML metadata (a dict, empty if none) and its Markdown body."""
    if not text:
        return {}, ""
    m = _FRONT.match(text)
    if m is None:
        return {}, text
    data = yaml.safe_load(m.group("yaml")) or {}
    return (data if isinstance(data, dict) else {}), text[m.end():]


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` records."""
    if n < 1_000:
        return "n<1K"
    bounds = [(10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"), (10**7, "1M<n<10M"),
              (10**8, "10M<n<100M"), (10**9, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "n>1B")


def merge_metadata(ours: dict[str, Any], existing: dict[str, Any] | None,
                   explicit: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Merge computed metadata into a card's existing metadata (rules in the module docstring).

    ``ours["configs"]`` replaces only the data files of the splits it names in the default
    config; other splits and other configs stay. A ``dataset_info`` describing the default
    config is dropped: it would describe files this push replaces.
    """
    existing = dict(existing or {})
    out = dict(existing)
    for key in SUGGESTED_KEYS:
        if key in ours and (key in explicit or existing.get(key) in (None, "", [])):
            out[key] = ours[key]
    out["tags"] = list(dict.fromkeys([*(existing.get("tags") or []), *(ours.get("tags") or [])]))
    if "size_categories" in ours:
        out["size_categories"] = ours["size_categories"]
    if "configs" in ours:
        out["configs"] = _merge_configs(ours["configs"], existing.get("configs"))
    info = out.get("dataset_info")
    if isinstance(info, dict) and info.get("config_name", "default") == "default":
        out.pop("dataset_info")
    elif isinstance(info, list):
        kept = [i for i in info if isinstance(i, dict) and i.get("config_name", "default") != "default"]
        if kept:
            out["dataset_info"] = kept
        else:
            out.pop("dataset_info")
    ordered = {k: out[k] for k in _KEY_ORDER if out.get(k) not in (None, [])}
    ordered.update({k: v for k, v in out.items() if k not in ordered and v is not None})
    return ordered


def _merge_configs(ours: list[dict], existing: Any) -> list[dict]:
    configs = [dict(c) for c in existing] if isinstance(existing, list) else []
    for new in ours:
        name = new.get("config_name", "default")
        old = next((c for c in configs if c.get("config_name", "default") == name), None)
        if old is None:
            configs.append(new)
            continue
        files = old.get("data_files")
        entries = [dict(e) for e in files] if isinstance(files, list) and all(isinstance(e, dict) for e in files) else []
        for entry in new["data_files"]:
            found = next((e for e in entries if e.get("split") == entry["split"]), None)
            if found is None:
                entries.append(dict(entry))
            else:
                found["path"] = entry["path"]
        old["data_files"] = entries
    return configs


def dump_front_matter(metadata: dict[str, Any]) -> str:
    """The ``---`` YAML block of a card, checked by ``huggingface_hub.DatasetCardData``."""
    from huggingface_hub import DatasetCardData

    DatasetCardData(**metadata)  # raises on values the Hub's card model rejects
    text = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return f"---\n{text}---\n"
