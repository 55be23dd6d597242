"""Ingest raw content into chunks: .txt, .md, .html (text only), .pdf, .jsonl with a text field,
or a directory of them; chunk by characters or tokens with overlap, keeping document and chunk ids.

Each chunk is a canonical ``text`` record whose ``hubtools_extra`` holds ``doc_id`` (the file's
path relative to the input, plus ``#line`` for JSON Lines), ``chunk_id`` (``doc_id:k``),
``chunk_index``, and ``start``/``end`` character offsets into the document's text.

Example:
    >>> result = ingest("docs/", size=1500, overlap=150)  # doctest: +SKIP
    >>> result.summary["documents"], result.summary["chunks"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
from datasets import Dataset

from ..errors import DatasetFileNotFound, HubtoolsError, InputUnusableError
from ..load import canonical_dataset
from ..records import Kind, dump_extra

__all__ = ["SUPPORTED", "Document", "IngestResult", "chunk_text", "html_to_text", "ingest", "read_documents"]

logger = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")
_BLOCK_TAGS = frozenset("p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer "
                        "blockquote pre hr dd dt figcaption".split())
_SKIP_TAGS = frozenset({"script", "style", "noscript", "head", "template", "svg"})


@dataclass
class Document:
    """One document's text and where it came from."""

    doc_id: str
    text: str
    source: str


@dataclass
class IngestResult:
    """The chunks (a ``text`` dataset) and what was read, skipped and why."""

    dataset: Dataset
    summary: dict[str, Any] = field(default_factory=dict)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _tidy(text: str) -> str:
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """The visible text of an HTML page (no scripts, styles or tags), one block a line.

    >>> html_to_text("<p>Hello <b>world</b></p><script>x()</script><p>Bye</p>")
    'Hello world\\n\\nBye'
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _tidy("".join(parser.parts))


def _markdown_to_text(md: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", md)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.M)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    return _tidy(text)


def _pdf_to_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        return _tidy("\n\n".join(page.extract_text() or "" for page in reader.pages))
    except (PdfReadError, ValueError, OSError) as exc:
        raise InputUnusableError(f"{path.name}: not a readable PDF ({exc})",
                                 hint="check that the file is complete and not encrypted") from None


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")


def read_documents(path: str | os.PathLike, *, text_field: str = "text",
                   skipped: list[dict[str, Any]] | None = None) -> Iterator[Document]:
    """Yield the documents in a file or directory (sorted, hidden files skipped).

    Unsupported files in a directory and JSON lines without ``text_field`` are skipped and
    appended to ``skipped`` with the reason.

    Raises:
        DatasetFileNotFound: the path does not exist.
        InputUnusableError: a single file of an unsupported type.
    """
    root = Path(path)
    if not root.exists():
        raise DatasetFileNotFound(f"{root}: no such file or directory", hint="check the path")
    skipped = skipped if skipped is not None else []
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        base = root
    else:
        if root.suffix.lower() not in SUPPORTED:
            raise InputUnusableError(f"{root.name}: cannot ingest this file type",
                                     hint=f"use one of {', '.join(SUPPORTED)}, or a directory of them")
        files, base = [root], root.parent
    for file in files:
        rel = file.relative_to(base).as_posix()
        suffix = file.suffix.lower()
        if suffix not in SUPPORTED:
            skipped.append({"source": rel, "reason": f"unsupported file type {suffix or '(none)'}"})
            continue
        if suffix == ".jsonl":
            yield from _jsonl_documents(file, rel, text_field, skipped)
            continue
        if suffix == ".pdf":
            text = _pdf_to_text(file)
        elif suffix in (".html", ".htm"):
            text = html_to_text(_read_text(file))
        elif suffix in (".md", ".markdown"):
            text = _markdown_to_text(_read_text(file))
        else:
            text = _tidy(_read_text(file))
        if text:
            yield Document(rel, text, rel)
        else:
            skipped.append({"source": rel, "reason": "no text"})


def _jsonl_documents(file: Path, rel: str, text_field: str, skipped: list[dict[str, Any]]) -> Iterator[Document]:
    with open(file, "rb") as fh:
        for number, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                skipped.append({"source": f"{rel}#{number}", "reason": "not valid JSON"})
                continue
            text = value.get(text_field) if isinstance(value, dict) else None
            if not isinstance(text, str) or not text.strip():
                skipped.append({"source": f"{rel}#{number}", "reason": f"no {text_field!r} text"})
                continue
            yield Document(f"{rel}#{number}", _tidy(text), rel)


def _boundary(text: str, start: int, end: int) -> int:
    """Move ``end`` back to a paragraph, sentence or word break in the last 30% of the window."""
    if end >= len(text):
        return len(text)
    floor = start + int((end - start) * 0.7)
    for pattern in (r"\n\s*\n", r"(?<=[.!?])\s", r"\s"):
        breaks = [m.end() for m in re.finditer(pattern, text[floor:end])]
        if breaks:
            return floor + breaks[-1]
    return end


def chunk_text(text: str, *, size: int = 1500, overlap: int = 150, unit: str = "chars",
               tokenize: Callable[[str], list[tuple[int, int]]] | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the chunks of ``text``.

    Args:
        size: chunk length in ``unit`` (characters, or tokens).
        overlap: how much consecutive chunks share, in the same unit (< size).
        unit: ``"chars"`` (ends moved back to a paragraph, sentence or word break when one is
            near) or ``"tokens"``.
        tokenize: for tokens, a function giving each token's character span; default: words
            and punctuation marks.

    >>> chunk_text("one two three four five", size=3, overlap=1, unit="tokens")
    [(0, 13), (8, 23)]
    """
    if size <= 0 or not 0 <= overlap < size:
        raise HubtoolsError(f"chunk size {size} and overlap {overlap} do not fit",
                            hint="use a size > 0 and 0 <= overlap < size")
    if unit == "tokens":
        spans = (tokenize or _word_spans)(text)
        out = []
        step = size - overlap
        for i in range(0, max(1, len(spans)), step):
            window = spans[i:i + size]
            if not window:
                break
            out.append((window[0][0], window[-1][1]))
            if i + size >= len(spans):
                break
        return out
    if unit != "chars":
        raise HubtoolsError(f"unknown chunk unit {unit!r}", hint="use chars or tokens")
    out, start = [], 0
    while start < len(text):
        end = _boundary(text, start, start + size)
        out.append((start, end))
        if end >= len(text):
            break
        nxt = max(end - overlap, start + 1)
        while 0 < nxt < end and not text[nxt - 1].isspace():  # start on a word
            nxt += 1
        start = nxt if nxt < end else end
        while start < len(text) and text[start].isspace():
            start += 1
    return out


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def tokenizer_spans(name_or_path: str) -> Callable[[str], list[tuple[int, int]]]:
    """Token spans from a ``transformers`` tokenizer (a local folder or a cached Hub id)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)

    def spans(text: str) -> list[tuple[int, int]]:
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        return [tuple(o) for o in enc["offset_mapping"] if o[1] > o[0]]

    return spans


def ingest(path: str | os.PathLike, *, size: int = 1500, overlap: int = 150, unit: str = "chars",
           tokenizer: str | None = None, text_field: str = "text", min_chars: int = 1) -> IngestResult:
    """Read every document under ``path`` and cut it into overlapping chunks (see :func:`chunk_text`).

    Raises:
        InputUnusableError: nothing with text was found.
    """
    skipped: list[dict[str, Any]] = []
    tokenize = tokenizer_spans(tokenizer) if tokenizer else None
    rows: list[dict[str, Any]] = []
    by_type: Counter = Counter()
    documents = 0
    for doc in read_documents(path, text_field=text_field, skipped=skipped):
        documents += 1
        by_type[Path(doc.source).suffix.lower()] += 1
        for k, (start, end) in enumerate(chunk_text(doc.text, size=size, overlap=overlap, unit=unit,
                                                    tokenize=tokenize)):
            chunk = doc.text[start:end].strip()
            if len(chunk) < min_chars:
                continue
            extra = {"doc_id": doc.doc_id, "chunk_id": f"{doc.doc_id}:{k}", "chunk_index": k,
                     "source": doc.source, "start": start, "end": end}
            rows.append({"hubtools_index": len(rows), "text": chunk, "hubtools_extra": dump_extra(extra)})
    if not rows:
        raise InputUnusableError(f"{path}: no text to ingest",
                                 hint=f"give {', '.join(SUPPORTED)} files with text in them")
    summary = {"source": os.fspath(path), "documents": documents, "chunks": len(rows),
               "by_type": dict(by_type), "chunking": {"unit": unit, "size": size, "overlap": overlap,
                                                      "tokenizer": tokenizer},
               "skipped": skipped}
    logger.info("ingested %d documents into %d chunks (%d skipped)", documents, len(rows), len(skipped))
    return IngestResult(canonical_dataset(rows, Kind.TEXT), summary)
