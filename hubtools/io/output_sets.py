"""A stage's files written as one set: they reach their folder together or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["STAGING_PREFIX", "output_set"]


#: Prefix of the staging folders :func:`output_set` makes inside an output directory.
STAGING_PREFIX = ".hubtools-staging-"


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders left by killed writers (their pid is gone) so they do not pile up."""
    import shutil

    if os.name == "nt":  # os.kill(pid, 0) would end the process there
        return
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(folder.name[len(STAGING_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def output_set(out_dir: str | os.PathLike, *, replaces: Iterable[str] = (),
               last: Iterable[str] = ("summary.json",)) -> Iterator[Path]:
    """Write a stage's files as one set: they reach ``out_dir`` together or not at all.

    The block writes its files into the folder this yields (a hidden staging folder inside
    ``out_dir``, so on the same file system; directory readers skip hidden folders). If the
    block fails (a full disk, an error, Ctrl-C) the staging folder is removed and ``out_dir``
    keeps its previous complete set. If it succeeds, each file is fsync-ed and renamed into
    place, the names in ``last`` (the summary that describes the others) after the rest; then
    files matching a ``replaces`` glob that the new set does not have (a quarantine from an
    earlier run, a plot with no data this time) are removed. Renames need no space, so a full
    disk cannot stop the set half-way; only a kill during those few renames could.

    Sets nest: a writer that makes its own set can be given a staging folder.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> with output_set(out) as stage:
        ...     _ = (stage / "data.jsonl").write_text("{}\\n")
        ...     _ = (stage / "summary.json").write_text("{}")
        >>> sorted(p.name for p in out.iterdir())
        ['data.jsonl', 'summary.json']
    """
    import secrets
    import shutil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    stage = out / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    try:
        yield stage
        files = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
        late = set(last)
        files.sort(key=lambda rel: rel.as_posix() in late)  # stable: the summary goes in last
        for rel in files:
            with open(stage / rel, "rb") as fh:
                os.fsync(fh.fileno())
        for rel in files:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, out / rel)
        new = {rel.as_posix() for rel in files}
        for pattern in replaces:
            for old in out.glob(pattern):
                if old.is_file() and old.relative_to(out).as_posix() not in new:
                    old.unlink()
        for folder in {(out / rel).parent for rel in files} | {out}:
            _fsync_dir(folder)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
