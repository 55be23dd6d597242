"""Where records come from: a file, a directory or a Hub dataset id (:class:`Source`), and one
record as read (:class:`RawItem`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetFileNotFound, InputUnusableError, Issue
from ..hub_ids import DATASET_URI

__all__ = ["CONTAINERS", "RawItem", "Source", "container_for_path", "container_of", "open_source"]

#: File containers hubtools reads and writes, by the extension that selects them.
CONTAINERS = ("jsonl", "json", "csv", "parquet", "txt")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".parquet": "parquet", ".txt": "txt"}


@dataclass(slots=True)
class RawItem:
    """One record as read: its index, the parsed value, or the issue that kept it from parsing.

    ``raw`` is what a person would recognise as the record: the line for line-based files,
    the parsed value otherwise. ``lossy`` marks text decoded with replaced bytes.
    """

    index: int
    value: Any = None
    raw: Any = None
    issue: Issue | None = None
    lossy: bool = False
    file: str | None = None

    def raw_for_report(self) -> Any:
        """The raw record for a quarantine row (bytes as read: the row decodes and caps them)."""
        return self.raw if self.raw is not None else self.value


@dataclass(frozen=True)
class Source:
    """Where records come from: a file, a directory or a Hub dataset id."""

    location: str
    container: str  # one of CONTAINERS, "dir" or "hub"
    compressed: bool = False
    split: str | None = None
    #: a Hub dataset's reader identity: None uses HF_TOKEN or the saved login, False no token, a str that token
    token: str | bool | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return Path(self.location).name if self.container != "hub" else self.location


def container_of(path: Path) -> tuple[str | None, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    return (_EXTENSIONS.get(suffixes[-1]) if suffixes else None), compressed


def open_source(location: str | os.PathLike | Source, *, split: str | None = None) -> Source:
    """Resolve a path or Hub dataset id into a :class:`Source` (a :class:`Source` is returned as it is).

    Raises:
        DatasetFileNotFound: the path does not exist and is not a Hub id.
        InputUnusableError: the file has an extension hubtools does not read, or a ``split``
            was given for something that is not a Hub id.
    """
    if isinstance(location, Source):
        return location
    text = os.fspath(location)
    path = Path(text)
    if split is not None and (path.exists() or not DATASET_URI.match(text)):
        raise InputUnusableError(f"{text}: a split applies to Hub dataset ids only",
                                 hint="drop --split for files and directories")
    if path.is_dir():
        return Source(text, "dir")
    if path.exists():
        container, compressed = container_of(path)
        if container is None:
            raise InputUnusableError(
                f"{path.name}: unknown file type",
                hint=f"use one of {', '.join('.' + c for c in CONTAINERS)} (optionally .gz)",
            )
        return Source(text, container, compressed)
    if DATASET_URI.match(text):
        return Source(text.removeprefix("hf://datasets/"), "hub", split=split)
    raise DatasetFileNotFound(
        f"{text}: no such file or directory",
        hint="check the path, or give a Hub dataset id such as 'user/name'",
    )


def container_for_path(path: str | os.PathLike) -> tuple[str, bool]:
    """Return the container and compression that ``path``'s extension selects."""
    container, compressed = container_of(Path(path))
    if container is None:
        raise InputUnusableError(
            f"{Path(path).name}: unknown output type",
            hint=f"end the name with one of {', '.join('.' + c for c in CONTAINERS)}",
        )
    return container, compressed
