"""The card context: everything the card and guidelines templates use, from the loaded data,
the quality result and :class:`CardSettings` (what the publisher says: license, name, provenance).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._version import __version__
from ..records import EXTRA, INDEX, Kind
from ..shapes import SHAPES
from .quality import category_definitions, quality_summary

if TYPE_CHECKING:
    from ..checks import QualityResult
    from ..load import LoadResult

__all__ = ["CardSettings", "card_context", "default_format", "provenance_summary", "wire_sample"]


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


#: how each kind is trained on: TRL trainer and config, the wire formats TRL reads as they are,
#: the format published by default, LLaMA-Factory's format (what a kind *is*: ``shapes.SHAPES``)
_TRAINING = {
    Kind.SFT: ("SFTTrainer", "SFTConfig", ("openai", "text"), "openai", "sharegpt"),
    Kind.PREFERENCE: ("DPOTrainer", "DPOConfig", ("trl", "dpo"), "trl", "sharegpt_preference"),
    Kind.UNPAIRED: ("KTOTrainer", "KTOConfig", ("trl_unpaired",), "trl_unpaired", "kto"),
    Kind.TEXT: ("SFTTrainer", "SFTConfig", ("text",), "text", "text"),
    Kind.PROMPT: ("GRPOTrainer", "GRPOConfig", ("prompt",), "prompt", "alpaca_prompt"),
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
    return _TRAINING[Kind(kind)][3]


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

    from ..convert import write

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
    table = dataset.data.table
    for column in SHAPES[kind].message_columns:
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
    from ..convert import llama_factory_entry

    kind = Kind(ctx["kind"])
    trainer, config, ready, target, lf_format = _TRAINING[kind]
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
    from ..checks.base import CheckData
    from ..formats import get_format

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
        "kind_description": SHAPES[kind].description,
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
    from ..checks.base import CheckData

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
