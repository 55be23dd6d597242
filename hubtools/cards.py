"""Dataset cards and annotation guidelines, rendered from the Jinja templates in ``cards/``.

A card is built from the same objects the CLI prints as JSON: the :class:`~hubtools.load.LoadResult`
(what the data is), the quality result (what the checks found) and :class:`CardSettings` (what the
publisher says: license, name, provenance). Re-rendering keeps what a person wrote:

* **metadata**: keys hubtools does not compute are kept; for ``license``, ``language``,
  ``pretty_name`` and ``task_categories`` a value already in the card wins over the computed
  default, and only an explicit setting replaces it; ``tags`` are merged; ``configs`` and
  ``size_categories`` are facts about the data and always updated.
* **sections**: each generated section sits between ``<!-- hubtools:begin NAME sha=... -->`` and
  ``<!-- hubtools:end NAME -->``. The ``sha`` is a hash of the generated text: a section whose
  text still matches it is regenerated; a section a person edited is kept as it is. Text outside
  the markers is always kept. To get a generated section back, delete it with its markers; to
  silence one, empty it but keep its markers.

>>> from hubtools.cards import write_cards  # doctest: +SKIP
>>> write_cards("data.jsonl", "card/").files  # doctest: +SKIP
{'README.md': PosixPath('card/README.md'), 'annotation_guidelines.md': ...}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ._version import __version__
from .records import EXTRA, INDEX, Kind
from .templates import render

if TYPE_CHECKING:
    from .checks import QualityResult
    from .load import LoadResult

__all__ = [
    "CardResult",
    "CardSettings",
    "Rendered",
    "card_context",
    "merge_metadata",
    "merge_sections",
    "render_card",
    "render_guidelines",
    "split_front_matter",
    "write_cards",
]

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class CardSettings:
    """What the publisher says about the dataset; None means "keep what the card has, else default".

    ``provenance`` is a dict (e.g. the ``summary.json`` of a generation or ranking run) with any
    of: ``sources``, ``models``, ``judge``, ``strategy``, ``min_margin``, ``synthetic``/``human``
    counts, ``agreement`` (from review), ``notes``.
    """

    repo_id: str | None = None
    split: str = "train"
    license: str | None = None
    pretty_name: str | None = None
    language: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    provenance: dict[str, Any] | None = None
    #: wire format of the published files (None: the input's own format)
    format: str | None = None

    def explicit(self) -> set[str]:
        """The metadata keys set on purpose, which replace what a card already has."""
        return {k for k in ("license", "pretty_name", "language") if getattr(self, k)}


_KINDS = {
    Kind.SFT: ("supervised fine-tuning conversations", "SFTTrainer", "SFTConfig", ("openai", "text"), "openai",
               "sharegpt"),
    Kind.PREFERENCE: ("preference pairs (a prompt with a chosen and a rejected reply)", "DPOTrainer", "DPOConfig",
                      ("trl", "dpo"), "trl", "sharegpt_preference"),
    Kind.UNPAIRED: ("unpaired preference records (a prompt and one reply labelled good or bad)", "KTOTrainer", "KTOConfig",
                    ("trl_unpaired",), "trl_unpaired", "kto"),
    Kind.TEXT: ("texts", "SFTTrainer", "SFTConfig", ("text",), "text", "text"),
    Kind.PROMPT: ("prompts with no reply yet (prompt-only: what generation and online training start from)",
                  "GRPOTrainer", "GRPOConfig", ("prompt",), "prompt", "alpaca_prompt"),
}

_COLUMN_DOCS = {
    "conversations": "the conversation so far, as turns of `from` (human, gpt, system, ...) and `value`",
    "messages": "the conversation, as messages of `role` and `content`",
    "prompt": "the prompt",
    "chosen": "the preferred reply",
    "rejected": "the reply judged worse",
    "completion": "the reply that is labelled",
    "label": "true if the reply is desirable, false if not",
    "instruction": "the task given to the model",
    "input": "optional context for the instruction",
    "output": "the reply",
    "system": "optional system prompt",
    "history": "earlier turns as [query, reply] pairs",
    "tools": "tool definitions (JSON text)",
    "text": "the text",
    "score_chosen": "score of the chosen reply",
    "score_rejected": "score of the rejected reply",
    "question": "the question",
    "output_1": "first candidate reply",
    "output_2": "second candidate reply",
    "preference": "which output was preferred (1 or 2)",
    "generator": "the model that wrote the output",
}

_CANONICAL_DOCS = {
    "messages": ("list of messages", "the whole conversation; roles `system`, `user`, `assistant`, `tool`"),
    "prompt": ("list of messages", "what the model is given: user (and system) turns"),
    "chosen": ("list of messages", "the better assistant reply"),
    "rejected": ("list of messages", "the worse assistant reply to the same prompt"),
    "completion": ("list of messages", "the assistant reply being labelled"),
    "label": ("boolean", "true if the reply is one to learn from, false if it is one to avoid"),
    "score_chosen": ("number, optional", "judge or rater score of the chosen reply"),
    "score_rejected": ("number, optional", "judge or rater score of the rejected reply"),
    "tools": ("JSON text, optional", "tool definitions the assistant may call"),
    "text": ("string", "the text itself"),
}


def default_format(kind: Kind | str) -> str:
    """The wire format a dataset of ``kind`` is published in unless told otherwise (TRL's shapes)."""
    return _KINDS[Kind(kind)][4]


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list of {_type_name(t.value_type)}"
    if pa.types.is_struct(t):
        return "{" + ", ".join(f"{f.name}: {_type_name(f.type)}" for f in t) + "}"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)


def _shorten(value: Any, limit: int = 400) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, list):
        return [_shorten(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v, limit) for k, v in value.items()}
    return value


def wire_sample(dataset, kind: Kind, format: str, n: int = 50) -> tuple[list[dict], pa.Schema]:
    """The first ``n`` records in ``format`` as the Parquet files hold them, and their schema."""
    import pyarrow.parquet as pq

    from .convert import write

    with tempfile.TemporaryDirectory(prefix="hubtools-card-") as tmp:
        path = Path(tmp) / "sample.parquet"
        write(dataset.select(range(min(n, len(dataset)))), path, format=format, kind=kind)
        table = pq.read_table(path)
    return table.to_pylist(), table.schema


def _field_stats(data) -> list[dict[str, Any]]:
    """Length in characters of each text view field: min, median, 95th percentile, max."""
    import numpy as np

    out = []
    for name, arr in data.fields.items():
        if len(arr) == 0:
            continue
        chars = pc.utf8_length(arr).to_numpy(zero_copy_only=False)
        words = pc.list_value_length(pc.utf8_split_whitespace(arr)).to_numpy(zero_copy_only=False)
        out.append({"field": name, "min": int(chars.min()), "median": int(np.median(chars)),
                    "p95": int(np.percentile(chars, 95)), "max": int(chars.max()),
                    "median_words": int(np.median(words)), "empty": int((chars == 0).sum())})
    return out


def _roles(dataset, kind: Kind) -> dict[str, int]:
    counts: Counter[str] = Counter()
    if kind is Kind.TEXT:
        return {}
    table = dataset.data.table
    for column in ("messages", "prompt", "chosen", "rejected", "completion"):
        if column in table.column_names:
            roles = pc.struct_field(pc.list_flatten(table.column(column).combine_chunks()), "role")
            for item in pc.value_counts(roles).to_pylist():
                counts[item["values"] or "?"] += item["counts"]
    return dict(counts.most_common())


_PROVENANCE_KEYS = {
    "synthetic": ("synthetic",),
    "models": ("model", "generator", "generated_by", "generation_model"),
    "judge": ("judge", "judge_model"),
    "strategy": ("strategy", "pair_strategy"),
    "sources": ("source", "source_document", "source_doc", "document", "dataset"),
}


def provenance_summary(dataset, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """What is known about how the records were made: from ``given`` and the records' extra fields.

    Returns ``sources``, ``models``, ``judge``, ``strategy`` (lists of names, most frequent
    first), ``synthetic``, ``human`` and ``unknown`` record counts, ``agreement`` and ``notes``.
    Unknown stays unknown: nothing is guessed.
    """
    given = dict(given or {})
    found: dict[str, Counter] = {k: Counter() for k in _PROVENANCE_KEYS}
    synthetic = human = 0
    n = len(dataset)
    if EXTRA in dataset.column_names:
        extras = dataset.data.table.column(EXTRA)
        for value in pc.drop_null(extras).to_pylist():
            extra = orjson.loads(value)
            for key, names in _PROVENANCE_KEYS.items():
                hit = next((extra[k] for k in names if extra.get(k) not in (None, "")), None)
                if hit is not None and key != "synthetic":
                    found[key][str(hit)] += 1
            flag = extra.get("synthetic")
            if flag is True or (flag is None and any(extra.get(k) for k in _PROVENANCE_KEYS["models"])):
                synthetic += 1
            elif flag is False:
                human += 1

    def names(key: str, *aliases: str) -> list[str]:
        for k in (key, *aliases):
            value = given.get(k)
            if value:
                return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        return [name for name, _ in found[key].most_common(10)]

    synthetic = int(given.get("synthetic", synthetic)) if not isinstance(given.get("synthetic"), bool) else synthetic
    human = int(given.get("human", human))
    return {
        "sources": names("sources", "source"),
        "models": names("models", "generation_models", "model"),
        "judge": names("judge", "judge_model"),
        "strategy": names("strategy", "pair_strategy"),
        "min_margin": given.get("min_margin"),
        "synthetic": synthetic,
        "human": human,
        "unknown": max(n - synthetic - human, 0),
        "agreement": given.get("agreement"),
        "notes": given.get("notes"),
        # a build's recipe and per-stage accounting (hubtools.pipeline), shown as they are
        "pipeline": given.get("pipeline"),
    }


def _get(stats: dict, *keys: str, default: Any = None) -> Any:
    return next((stats[k] for k in keys if isinstance(stats, dict) and stats.get(k) is not None), default)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _counts(mapping: Any) -> list[tuple[str, int]]:
    """``{name: n}`` or ``{name: {"count": n, ...}}`` -> [(name, n)], largest first."""
    if not isinstance(mapping, dict):
        return []
    out = []
    for name, value in mapping.items():
        count = value.get("count") if isinstance(value, dict) else value
        if isinstance(count, (int, float)) and not isinstance(count, bool):
            out.append((str(name), int(count)))
    return sorted(out, key=lambda item: -item[1])


def quality_summary(quality: dict[str, Any]) -> dict[str, Any]:
    """The figures the card shows, read from ``quality.json``; absent checks or keys give None."""
    try:
        from .checks import REGISTRY
    except ImportError:  # pragma: no cover - checks always ship with hubtools
        REGISTRY = {}
    ds = quality.get("dataset") or {}
    checks = quality.get("checks") or {}
    valid = ds.get("valid") or 0

    def stats(name: str) -> dict:
        return (checks.get(name) or {}).get("stats") or {}

    def count(name: str) -> int | None:
        check = checks.get(name)
        if not check or check.get("applicable") is False:
            return None
        return int(check.get("count", len(check.get("flagged") or [])))

    rows = []
    for name, check in checks.items():
        n = count(name)
        spec = REGISTRY.get(name)
        rows.append({"name": name, "description": spec.description if spec else "", "count": n,
                     "share": (n / valid) if n is not None and valid else None,
                     "applicable": check.get("applicable", True),
                     "note": (check.get("stats") or {}).get("skipped")})
    languages = _counts(_get(stats("language"), "distribution", "languages", "counts"))
    lang_total = sum(c for _, c in languages) or 1
    categories = stats("categories")
    cat_rows = _counts(_get(categories, "categories", "distribution", "counts"))
    cat_total = sum(c for _, c in cat_rows) or 1
    return {
        "total": ds.get("total"), "valid": ds.get("valid"), "quarantined": ds.get("quarantined"),
        "by_code": ds.get("by_code") or {},
        "checks": rows,
        "exact_duplicates": count("exact_duplicates"),
        "near_duplicates": count("near_duplicates"),
        "toxicity": count("toxicity"),
        "pii": count("pii"),
        "pii_by_type": [(k, n) for k, n in _counts(_get(stats("pii"), "records_by_type", "by_type", "matches_by_type"))
                        if n],
        "refusals": count("refusals"),
        "languages": [(name, c, c / lang_total) for name, c in languages],
        "categories": [(name, c, c / cat_total) for name, c in cat_rows],
        "missing_categories": list(_get(categories, "missing", default=[]) or []),
        "under_represented": list(_get(categories, "under_represented", default=[]) or []),
        "distinct_1": _number(_get(stats("diversity"), "distinct_1")),
        "distinct_2": _number(_get(stats("diversity"), "distinct_2")),
        "length_bias": _number(_get(_get(stats("preference"), "length_bias", default={}), "chosen_longer_share")),
        "agreement": quality.get("agreement") or (quality.get("review") or {}).get("agreement"),
    }


def category_definitions() -> list[tuple[str, str]]:
    """(name, definition) of the task categories the ``categories`` check uses, when it exists."""
    try:
        from .checks.categories import CATEGORIES
    except ImportError:
        return []
    items = CATEGORIES.items() if isinstance(CATEGORIES, dict) else enumerate(CATEGORIES)
    out = []
    for key, value in items:
        if isinstance(value, str):
            out.append((str(key), value))
            continue
        if isinstance(value, (tuple, list)) and len(value) >= 2:
            out.append((str(value[0]), str(value[1])))
            continue
        name = value.get("name") if isinstance(value, dict) else getattr(value, "name", key)
        desc = (value.get("definition") or value.get("description")) if isinstance(value, dict) else (
            getattr(value, "definition", None) or getattr(value, "description", ""))
        out.append((str(name), str(desc or "")))
    return out


def _limitations(ctx: dict[str, Any]) -> list[str]:
    q, prov = ctx["quality"], ctx["provenance"]
    out = []
    if ctx["quarantined"]:
        where = "published apart under `quarantine/`" if ctx["quarantine_published"] else "not published"
        out.append(f"{ctx['quarantined']:,} of {ctx['total']:,} input records failed validation and are "
                   f"{where}; they are not part of the data.")
    for key, label in (("exact_duplicates", "exact duplicates"), ("near_duplicates", "near duplicates"),
                       ("toxicity", "records flagged as toxic"), ("pii", "records with personal data or secrets"),
                       ("refusals", "canned refusals or AI disclaimers")):
        if q.get(key):
            out.append(f"{q[key]:,} {label} were flagged by the checks and are still in the data.")
    if q["missing_categories"]:
        out.append("Task categories with no examples: " + ", ".join(q["missing_categories"]) + ".")
    if len(q["languages"]) == 1:
        out.append(f"Monolingual ({q['languages'][0][0]}): expect weaker results in other languages.")
    if prov["synthetic"]:
        out.append(f"{prov['synthetic']:,} records are machine-generated; they inherit the errors and "
                   "biases of the models that wrote them.")
    if not prov["agreement"] and not q["agreement"]:
        out.append("No human review agreement was recorded for this version.")
    return out


def _loading(ctx: dict[str, Any]) -> dict[str, Any]:
    from .convert import llama_factory_entry

    kind = Kind(ctx["kind"])
    _, trainer, config, ready, target, lf_format = _KINDS[kind]
    entry = llama_factory_entry("x", ctx["format"], [c["name"] for c in ctx["columns"]])
    if entry is not None:
        entry.pop("file_name")
        entry = {"hf_hub_url": ctx["repo_id"], **entry}
    return {"trainer": trainer, "config": config, "trl_ready": ctx["format"] in ready, "trl_format": target,
            "lf_entry": json.dumps({ctx["slug"]: entry}, indent=2) if entry else None, "lf_format": lf_format}


def card_context(
    loaded: LoadResult,
    quality: QualityResult | dict[str, Any] | None,
    settings: CardSettings | None = None,
    *,
    schema: pa.Schema | None = None,
    example: dict[str, Any] | None = None,
    splits: dict[str, int | None] | None = None,
    files: dict[str, str] | None = None,
    quarantined: int | None = None,
    quarantine_published: bool = False,
) -> dict[str, Any]:
    """Everything the templates use, from the loaded data, the quality result and the settings.

    ``schema``/``example`` describe the published files (default: a sample written in the
    settings' format); ``splits`` maps split name to its record count (None if unknown);
    ``files`` maps the repository's files to what they are; ``quarantined`` counts every record
    kept out of the data (default: those validation quarantined).
    """
    from .checks.base import CheckData
    from .formats import get_format

    settings = settings or CardSettings()
    kind = loaded.kind
    fmt = get_format(settings.format or loaded.format)
    if schema is None or example is None:
        rows, schema = wire_sample(loaded.dataset, kind, fmt.name)
        example = rows[0] if rows else {}
    q = quality.to_dict() if hasattr(quality, "to_dict") else dict(quality or {})
    data = getattr(quality, "data", None)
    if data is None or len(data) != loaded.valid:
        data = CheckData.from_dataset(loaded.dataset, kind)
    repo_id = settings.repo_id or f"your-name/{_slug(Path(loaded.source.location).name)}"
    name = repo_id.split("/")[-1]
    ctx: dict[str, Any] = {
        "version": __version__,
        "repo_id": repo_id,
        "slug": _slug(name),
        "pretty_name": settings.pretty_name or name.replace("-", " ").replace("_", " ").strip().title(),
        "split": settings.split,
        "splits": splits or {settings.split: loaded.valid},
        "kind": kind.value,
        "kind_description": _KINDS[kind][0],
        "format": fmt.name,
        "format_description": fmt.description,
        "source_name": loaded.source.name,
        "source_format": loaded.format,
        "total": loaded.total,
        "valid": loaded.valid,
        "quarantined": loaded.quarantined if quarantined is None else quarantined,
        "by_code": loaded.by_code,
        "quarantine_published": quarantine_published,
        "columns": [{"name": f.name, "type": _type_name(f.type), "description": _COLUMN_DOCS.get(f.name, "")}
                    for f in schema],
        "canonical": [{"name": n, "type": _CANONICAL_DOCS[n][0], "description": _CANONICAL_DOCS[n][1]}
                      for n in loaded.dataset.column_names if n in _CANONICAL_DOCS],
        "example": json.dumps(_shorten({k: v for k, v in example.items() if v is not None}),
                              ensure_ascii=False, indent=2),
        "examples": _examples(loaded.dataset, kind),
        "lengths": _field_stats(data),
        "roles": _roles(loaded.dataset, kind),
        "provenance": provenance_summary(loaded.dataset, settings.provenance),
        "quality": quality_summary(q),
        "categories": category_definitions(),
        "files": files or {},
        "license": settings.license,
    }
    ctx["limitations"] = _limitations(ctx)
    ctx["load"] = _loading(ctx)
    return ctx


def _slug(name: str) -> str:
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".parquet", ".txt"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "dataset"


def _examples(dataset, kind: Kind, n: int = 3) -> list[dict[str, Any]]:
    """A few canonical records for the guidelines: first, median-length and longest."""
    if len(dataset) == 0:
        return []
    from .checks.base import CheckData

    data = CheckData.from_dataset(dataset, kind)
    lengths = pc.utf8_length(data.example_text()).to_numpy(zero_copy_only=False)
    order = lengths.argsort()
    picks = list(dict.fromkeys([0, int(order[len(order) // 2]), int(order[-1])]))[:n]
    out = []
    for pos in picks:
        row = dataset[pos]
        shown = {k: v for k, v in row.items() if k not in (INDEX, EXTRA) and v is not None}
        shown = {k: ([{kk: vv for kk, vv in m.items() if vv is not None} for m in v]
                     if isinstance(v, list) else v) for k, v in shown.items()}
        out.append({"index": row[INDEX], "record": json.dumps(_shorten(shown, 600), ensure_ascii=False, indent=2)})
    return out


# --------------------------------------------------------------------------- rendering


@dataclass
class Rendered:
    """A rendered document: its text, its metadata (cards only) and the hand-edited sections kept."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    kept_sections: list[str] = field(default_factory=list)


def card_metadata(ctx: dict[str, Any]) -> dict[str, Any]:
    """The metadata hubtools computes for a dataset card."""
    kind_tags = {"sft": ["sft"], "preference": ["dpo", "preference"], "unpaired": ["kto"], "text": [], "prompt": []}
    tags = ["hubtools", *kind_tags[ctx["kind"]], ctx["format"].replace("_", "-")]
    if ctx["provenance"]["synthetic"]:
        tags.append("synthetic")
    languages = [name for name, _, share in ctx["quality"]["languages"] if share >= 0.01 and len(name) <= 3]
    meta: dict[str, Any] = {
        "license": ctx["license"] or "unknown",
        "task_categories": ["text-generation"],
        "size_categories": [size_category(sum(n or 0 for n in ctx["splits"].values()))],
        "pretty_name": ctx["pretty_name"],
        "tags": tags,
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*"} for s in ctx["splits"]]}],
    }
    if languages:
        meta["language"] = languages
    return meta


def render_card(ctx: dict[str, Any], existing: str | None = None, *,
                explicit: set[str] | frozenset[str] = frozenset(), language: list[str] | None = None) -> Rendered:
    """Render ``README.md`` and merge it into ``existing`` (metadata and hand-edited sections kept)."""
    ours = card_metadata(ctx)
    if language:
        ours["language"] = list(language)
    old_meta, old_body = split_front_matter(existing)
    metadata = merge_metadata(ours, old_meta, explicit)
    body = _stamp(render("cards/README.md.j2", ctx))
    merged, kept = merge_sections(body, old_body)
    return Rendered(dump_front_matter(metadata) + "\n" + merged.lstrip("\n"), metadata, kept)


def render_guidelines(ctx: dict[str, Any], existing: str | None = None) -> Rendered:
    """Render ``annotation_guidelines.md`` and merge it into ``existing`` (hand edits kept)."""
    body = _stamp(render("cards/annotation_guidelines.md.j2", ctx))
    merged, kept = merge_sections(body, existing)
    return Rendered(merged, {}, kept)


# --------------------------------------------------------------------------- writing


@dataclass
class CardResult:
    """What ``write_cards`` wrote: file name -> path, and the hand-edited sections it kept."""

    files: dict[str, Path]
    kept_sections: dict[str, list[str]]
    metadata: dict[str, Any]
    quality: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"files": {k: str(v) for k, v in self.files.items()}, "kept_sections": self.kept_sections,
                "metadata": self.metadata}


def load_quality(path: str | os.PathLike) -> QualityResult:
    """Read a ``quality.json`` written by ``hubtools check``."""
    from .checks import QualityResult
    from .errors import PublishError

    try:
        return QualityResult.from_dict(orjson.loads(Path(path).read_bytes()))
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PublishError(f"{path}: cannot read the quality file ({exc.__class__.__name__})",
                           hint="give the quality.json that `hubtools check --out DIR` wrote") from None


def check_quality_matches(quality: QualityResult, loaded: LoadResult, path: Any) -> None:
    """Refuse a quality result computed on other data (its record counts differ)."""
    from .errors import PublishError

    ds = quality.dataset or {}
    if ds.get("total") is not None and (ds.get("total"), ds.get("valid")) != (loaded.total, loaded.valid):
        raise PublishError(f"{path} describes {ds.get('total')} records ({ds.get('valid')} valid), the data has "
                           f"{loaded.total} ({loaded.valid} valid)",
                           hint="run `hubtools check` on this data again, or leave out --quality")


def quality_for(loaded: LoadResult, quality: Any = None, *, progress: bool = False) -> QualityResult:
    """The quality result for ``loaded``: read from a path, taken as given, or computed now."""
    from .checks import QualityResult, run_checks

    if quality is None:
        return run_checks(loaded, progress=progress)
    if isinstance(quality, dict):
        quality = QualityResult.from_dict(quality)
    elif not isinstance(quality, QualityResult):
        path = quality
        quality = load_quality(path)
        check_quality_matches(quality, loaded, path)
    return quality


def write_report_files(quality: QualityResult, out_dir: Path) -> dict[str, Path]:
    """The quality report, ``quality.json`` and ``category_distribution.json`` (by ``hubtools.report``)."""
    from .report import write_report

    return dict(write_report(quality, out_dir))


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    from .io import atomic_write

    with atomic_write(path) as fh:
        fh.write(text.encode("utf-8"))
    return path


def write_cards(
    source: Any,
    out_dir: str | os.PathLike,
    *,
    quality: Any = None,
    settings: CardSettings | None = None,
    report: bool = True,
    format: str | None = None,
    progress: bool = False,
) -> CardResult:
    """Render README.md, annotation_guidelines.md and the quality report into ``out_dir``.

    Args:
        source: a path or Hub id (read with :func:`hubtools.load`) or a ``LoadResult``.
        quality: a ``quality.json`` path, a ``QualityResult`` or its dict; None runs the checks.
        report: also write the quality report files (``hubtools.report.write_report``).
        format: read ``source`` as this format instead of detecting it.

    Existing ``README.md`` / ``annotation_guidelines.md`` in ``out_dir`` are merged, not replaced.

    Raises:
        PublishError: the data has no valid record, or ``quality`` describes other data.
    """
    from .errors import PublishError
    from .load import LoadResult, load

    loaded = source if isinstance(source, LoadResult) else load(source, format=format, progress=progress)
    if loaded.valid == 0:
        raise PublishError(f"{loaded.source.name}: no valid record to describe",
                           hint="run `hubtools validate` to see why every record was quarantined")
    settings = settings or CardSettings()
    quality = quality_for(loaded, quality, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = card_context(loaded, quality, settings)
    card = render_card(ctx, _read(out / "README.md"), explicit=settings.explicit(),
                       language=list(settings.language) if settings.language else None)
    guide = render_guidelines(ctx, _read(out / "annotation_guidelines.md"))
    from .io import output_set

    # one set: card, guidelines and report arrive together, or the previous ones stay as they were
    with output_set(out, replaces=["plots/*.png"] if report else (), last=("README.md",)) as stage:
        write_text(stage / "annotation_guidelines.md", guide.text)
        made = write_report_files(quality, stage) if report else {}
        write_text(stage / "README.md", card.text)
    files = {name: out / name for name in ("README.md", "annotation_guidelines.md", *made)}
    kept = {name: r.kept_sections for name, r in (("README.md", card), ("annotation_guidelines.md", guide))
            if r.kept_sections}
    return CardResult(files, kept, card.metadata, quality)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
