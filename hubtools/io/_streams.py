"""A file's bytes: decompressed (gzip, bounded, a broken stream kept up to its last whole line),
refused past a size limit, and split into lines."""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Iterator
from typing import IO

from ..errors import ErrorCode, InputTooLargeError, InputUnusableError, Issue
from ._issues import refuse_binary
from .sources import RawItem, Source

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20
_GZIP_READ = 1 << 14  # compressed bytes a step: a corrupt stream loses at most what one step inflates


class _Gunzip(io.RawIOBase):
    """The decompressed bytes of a gzip file, at most ``limit`` of them.

    A corrupt or cut-short stream ends at the last whole line read before the damage; ``cut``
    then says what went wrong and ``tail`` holds the partial line after it. Several gzip members
    one after the other read as one stream, as ``gzip`` reads them.
    """

    def __init__(self, path: str, name: str, limit: int | None):
        self._file = open(path, "rb")  # noqa: SIM115 (closed with this reader)
        self._name, self._limit = name, limit
        self._inflate = zlib.decompressobj(wbits=31)
        self._pending: list[bytes] = []  # decompressed, after the last newline: held back until whole
        self._ready = memoryview(b"")
        self._total = 0
        self._eof = False
        self.cut: str | None = None
        self.tail = b""
        if self._file.read(2) != b"\x1f\x8b":
            self._file.close()
            raise InputUnusableError(f"{name}: not a gzip file, though its name ends in .gz",
                                     hint="rename it without .gz, or compress it with gzip")
        self._file.seek(0)

    def readable(self) -> bool:
        return True

    def _inflated(self) -> bytes:
        """The next piece of decompressed bytes (b"" at the end of the stream)."""
        while True:
            if self._inflate.eof:
                data = self._inflate.unused_data or self._file.read(_GZIP_READ)
                if not data:
                    return b""
                if not data.startswith(b"\x1f\x8b"):
                    while data:  # zero padding after the last member is allowed, as gzip allows it
                        if data.strip(b"\x00"):
                            raise EOFError("bytes that are not gzip follow the compressed data")
                        data = self._file.read(CHUNK)
                    return b""
                self._inflate = zlib.decompressobj(wbits=31)  # the next member
            else:
                data = self._inflate.unconsumed_tail or self._file.read(_GZIP_READ)
                if not data:
                    out = self._inflate.decompress(b"", CHUNK)
                    if out:
                        return out
                    raise EOFError("the gzip file ends before its end marker")
            out = self._inflate.decompress(data, CHUNK)
            if out:
                return out

    def readinto(self, buffer) -> int:
        while not self._ready and not self._eof:
            try:
                out = self._inflated()
            except (EOFError, zlib.error) as exc:
                self.cut = f"the gzip stream is {'cut short' if isinstance(exc, EOFError) else 'corrupt'} " \
                           f"after {self._total:,} bytes ({exc})"
                self.tail, self._pending, self._eof = b"".join(self._pending), [], True
                break
            if not out:
                self._ready, self._pending, self._eof = memoryview(b"".join(self._pending)), [], True
                break
            self._total += len(out)
            if self._limit is not None and self._total > self._limit:
                raise InputTooLargeError(
                    f"{self._name}: over {self._limit / 1024 / 1024:,.0f} MB once decompressed",
                    hint="the limit applies to the decompressed data (HUBTOOLS_MAX_UPLOAD_MB); "
                         "use the hubtools command line for bigger files")
            cut = out.rfind(b"\n") + 1
            if cut:  # joined once a line is whole: a 1 GB line costs one copy, not a thousand
                self._ready = memoryview(b"".join([*self._pending, out[:cut]]))
                self._pending = [out[cut:]]
            else:
                self._pending.append(out)
        n = min(len(buffer), len(self._ready))
        buffer[:n] = self._ready[:n]
        self._ready = self._ready[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_binary(source: Source, limit: int | None = None) -> IO[bytes]:
    """The file's bytes (decompressed for .gz), refused past ``limit`` bytes."""
    if source.compressed:
        return io.BufferedReader(_Gunzip(source.location, source.name, limit), CHUNK)
    fh = open(source.location, "rb")  # noqa: SIM115 (the caller closes it)
    if limit is not None and os.fstat(fh.fileno()).st_size > limit:
        fh.close()
        raise InputTooLargeError(f"{source.name}: over {limit / 1024 / 1024:,.0f} MB",
                                 hint="use the hubtools command line for bigger files")
    return fh


def stream_cut(fh: IO[bytes]) -> tuple[str, bytes] | None:
    """(what went wrong, the partial line after the last whole one) when a gzip stream broke off."""
    raw = getattr(fh, "raw", None)
    return (raw.cut, raw.tail) if isinstance(raw, _Gunzip) and raw.cut else None


def cut_item(index: int, cut: tuple[str, bytes]) -> RawItem:
    reason, tail = cut
    return RawItem(index, None, tail, Issue(
        ErrorCode.TRUNCATED, f"{reason}: this record and whatever followed it are lost", index,
        "the file was probably truncated while copying; restore the full file"))


class Cut:
    """The end of a gzip stream that broke off: what went wrong and the partial last line."""

    def __init__(self, cut: tuple[str, bytes]):
        self.cut = cut


def iter_lines(source: Source, limit: int | None) -> Iterator[bytes | Cut]:
    """The file's lines, without BOM, checked for binary content; a :class:`Cut` last when a
    gzip stream broke off."""
    with open_binary(source, limit) as fh:
        first = True
        for line in fh:
            if first:
                refuse_binary(line, source)
                line = line.removeprefix(BOM)
                first = False
            yield line
        cut = stream_cut(fh)
        if cut:
            yield Cut(cut)
