"""Read records from files, directories and Hub datasets; write files atomically.

- :mod:`.sources`: where records come from (:class:`Source`, :func:`open_source`) and one record
  as read (:class:`RawItem`).
- :mod:`.readers`: :func:`iter_raw`, one reader per container (JSON Lines, JSON, text here; CSV,
  Parquet and Hub datasets in ``_tables``; JSON-array recovery in ``_json_array``; the bytes,
  gzip included, in ``_streams``; the issues a reader records in ``_issues``).
- :mod:`.writers`: :func:`atomic_write`, :func:`write_records`, :func:`write_jsonl`.
- :mod:`.output_sets`: :func:`output_set`, a stage's files as one set.
"""

from __future__ import annotations

from .output_sets import STAGING_PREFIX, output_set
from .readers import iter_raw
from .sources import CONTAINERS, RawItem, Source, container_for_path, open_source
from .writers import atomic_write, union_keys, write_jsonl, write_records

__all__ = [
    "CONTAINERS",
    "STAGING_PREFIX",
    "RawItem",
    "Source",
    "atomic_write",
    "container_for_path",
    "iter_raw",
    "open_source",
    "output_set",
    "union_keys",
    "write_jsonl",
    "write_records",
]
