"""Dataset cards and annotation guidelines, rendered from the Jinja templates in ``cards/``, and
the one staging function that both ``hubtools card`` and ``hubtools push`` use.

A card is built from the same objects the CLI prints as JSON: the :class:`~hubtools.load.LoadResult`
(what the data is), the quality result (what the checks found) and
:class:`~hubtools.publish.context.CardSettings` (what the publisher says). Re-rendering keeps
what a person wrote (see :mod:`hubtools.publish.merge`).

>>> from hubtools.publish.card import write_cards  # doctest: +SKIP
>>> write_cards("data.jsonl", "card/").files  # doctest: +SKIP
{'README.md': PosixPath('card/README.md'), 'annotation_guidelines.md': ...}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import CardSettings, card_context
from .merge import _stamp, dump_front_matter, merge_metadata, merge_sections, size_category, split_front_matter
from .quality import quality_for
from .templates import render

if TYPE_CHECKING:
    from ..checks import QualityResult

__all__ = ["CardResult", "Rendered", "Staged", "render_card", "render_guidelines", "stage", "write_cards",
           "write_text"]


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


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    from ..io import atomic_write

    with atomic_write(path) as fh:
        fh.write(text.encode("utf-8"))
    return path


@dataclass
class Staged:
    """What :func:`stage` wrote: repository path -> local file, and the rendered card and guidelines."""

    files: dict[str, Path]
    card: Rendered
    guidelines: Rendered

    @property
    def kept_sections(self) -> dict[str, list[str]]:
        """The hand-edited sections kept, by document (documents that kept none left out)."""
        return {name: r.kept_sections for name, r in (("README.md", self.card),
                                                       ("annotation_guidelines.md", self.guidelines))
                if r.kept_sections}


def stage(folder: Path, ctx: dict[str, Any], quality: QualityResult, settings: CardSettings, *,
          old_card: str | None = None, old_guide: str | None = None, report: bool = True) -> Staged:
    """Write what a publication carries into ``folder``: ``annotation_guidelines.md``, the quality
    report files (``dataset_quality_report.md``, ``quality.json``, ``category_distribution.json``,
    ``plots/*.png``) and, last, ``README.md``; the card and guidelines merged into ``old_card`` and
    ``old_guide`` (hand edits kept). ``write_cards`` stages into its output folder, ``push`` into
    the folder it uploads from.
    """
    card = render_card(ctx, old_card, explicit=settings.explicit(),
                       language=list(settings.language) if settings.language else None)
    guide = render_guidelines(ctx, old_guide)
    files = {"annotation_guidelines.md": write_text(folder / "annotation_guidelines.md", guide.text)}
    if report:
        from .report import write_report

        files.update(write_report(quality, folder))
    files["README.md"] = write_text(folder / "README.md", card.text)
    return Staged(files, card, guide)


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
        report: also write the quality report files (``hubtools.publish.report.write_report``).
        format: read ``source`` as this format instead of detecting it.

    Existing ``README.md`` / ``annotation_guidelines.md`` in ``out_dir`` are merged, not replaced.

    Raises:
        PublishError: the data has no valid record, or ``quality`` describes other data.
    """
    from ..errors import PublishError
    from ..load import LoadResult, load

    loaded = source if isinstance(source, LoadResult) else load(source, format=format, progress=progress)
    if loaded.valid == 0:
        raise PublishError(f"{loaded.source.name}: no valid record to describe",
                           hint="run `hubtools validate` to see why every record was quarantined")
    settings = settings or CardSettings()
    quality = quality_for(loaded, quality, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = card_context(loaded, quality, settings)
    old_card, old_guide = _read(out / "README.md"), _read(out / "annotation_guidelines.md")
    from ..io import output_set

    # one set: card, guidelines and report arrive together, or the previous ones stay as they were
    with output_set(out, replaces=["plots/*.png"] if report else (), last=("README.md",)) as folder:
        staged = stage(folder, ctx, quality, settings, old_card=old_card, old_guide=old_guide, report=report)
    files = {name: out / name for name in ("README.md", *(n for n in staged.files if n != "README.md"))}
    return CardResult(files, staged.kept_sections, staged.card.metadata, quality)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
