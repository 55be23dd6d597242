"""The local engine: batches in this process, or in ``num_proc`` spawned worker processes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from ..base import CheckData, CheckResult, make_pool, release_memory
from ..shared_view import SharedView, share

__all__ = ["LocalEngine"]

#: records of the canonical table per chunk of a view built on disk
VIEW_CHUNK = 65_536

logger = logging.getLogger(__name__)


class LocalEngine:
    """Today's path: :meth:`CheckData.map` over a process pool (``num_proc > 1``) or in process."""

    name = "local"

    def __init__(self) -> None:
        self.num_proc = 1
        self.checks: dict[str, dict[str, Any]] = {}
        self._shared: SharedView | None = None

    @contextmanager
    def session(self, data: CheckData, *, num_proc: int = 1) -> Iterator[CheckData]:
        """The view the checks run on, with a worker pool for the length of the block; with a
        pool, the view's fields move into a file the workers map (:mod:`..shared_view`)."""
        self.num_proc = num_proc
        pool = make_pool(num_proc)
        data.pool = pool
        shared = data.shared  # a view built on disk by view(): already shared
        if pool is not None and len(data) and shared is None:
            try:
                shared = share(data.fields)
            except OSError as exc:  # no room for the file: batches are shipped to the workers instead
                logger.warning("the text view could not be shared with the workers (%s); sending batches instead", exc)
            else:
                data.fields, data.shared = dict(shared.arrays), shared
                release_memory()  # the heap copy of the view
        self._shared = shared
        try:
            yield data
        finally:
            self._shared = None
            data.pool = None
            data.shared = None
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if shared is not None:
                shared.close()

    def view(self, dataset: Any, kind: Any = None, *, num_proc: int = 1, **kwargs: Any) -> CheckData:
        """The text view of a canonical dataset: in this process's memory; or, when worker
        processes will read it (``num_proc`` > 1), built chunk by chunk into files on disk that
        this process and the workers map (:func:`..disk_view.build_view`): never a second copy
        of the text in memory beside the dataset's, and pages the kernel may drop and read again."""
        from ..base import kind_of_dataset
        from ..disk_view import build_view, run_folder

        if num_proc <= 1 or len(dataset) == 0:
            return CheckData.from_dataset(dataset, kind, num_proc=num_proc, **kwargs)
        table = dataset.data.table if hasattr(dataset.data, "table") else dataset.data
        kind = kind_of_dataset(table, kind)
        folder = run_folder()
        try:
            index, fields = build_view((pa.Table.from_batches([b]) for b in table.to_batches(VIEW_CHUNK)),
                                       kind, folder, keep=True)
        except BaseException:
            SharedView(folder).close()
            raise
        return CheckData(kind=kind, index=index, fields=fields, dataset=dataset, num_proc=num_proc,
                         shared=SharedView(folder, dict(fields)), **kwargs)

    def load(self, source: Any, *, format: str | None = None, progress: bool = False) -> Any:
        """The input read, converted and validated in this process (:func:`hubtools.load`)."""
        from ...load import load

        return load(source, format=format, progress=progress)

    def begin(self, name: str) -> None:
        """A check starts (the local engine keeps no per-step record)."""

    def end(self, name: str, result: CheckResult, records: int, seconds: float) -> None:
        if self._shared is not None:  # the pages of the view this check read: back to the kernel
            self._shared.drop_pages()
        self.checks[name] = {"records_in": records, "flagged": result.count, "seconds": round(seconds, 3)}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "num_proc": self.num_proc, "checks": self.checks}
