"""What every contender of ``bench/bench_peers.py`` measures about itself, the same way in the
project's virtualenv and in the peers' (standard library only).

:class:`Sampler` walks the process tree (the process, its workers, their workers) every 0.2 s:

* memory: the peak of the summed PSS (proportional set size, /proc/<pid>/smaps_rollup) of the
  tree. PSS splits a page shared by several processes between them, so forked workers (datatrove's
  forkserver children, data-juicer's and ``datasets``' fork pools) are counted without counting
  the parent's copy-on-write pages again, and spawned ones (hubtools') are counted whole. (The
  RSS sum of ``bench_checks._TreeSampler`` skips a child whose command line is its parent's, to
  step over a spawn between fork and exec: it would skip every forked worker.)
* CPU: user + system time of every process seen in the tree (/proc/<pid>/stat, last reading),
  or the process's own ``getrusage`` count with its waited-for children when that is larger.
  Both are lower bounds: a worker's last 0.2 s, or a worker that lives less, escapes the samples.
"""

from __future__ import annotations

import os
import resource
import threading

_TICK = os.sysconf("SC_CLK_TCK")


def _rusage_cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def tree(root: int, keep=None) -> list[int]:
    """``root`` and every descendant process of it (only the children ``keep(parent, child)``
    accepts, and theirs, when ``keep`` is given)."""
    pids, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        try:
            kids = [int(k) for t in os.listdir(f"/proc/{pid}/task")
                    for k in open(f"/proc/{pid}/task/{t}/children").read().split()]
        except OSError:
            kids = []
        if keep is not None:
            kids = [k for k in kids if keep(pid, k)]
        pids += kids
        frontier += kids
    return pids


def pss_kb(pid: int) -> int:
    """The PSS of a process in kB (its RSS where smaps_rollup cannot be read; 0 once gone)."""
    for name, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(name) as fh:
                return next((int(line.split()[1]) for line in fh if line.startswith(key)), 0)
        except OSError:
            continue
    return 0


def ticks(pid: int) -> tuple[int, int] | None:
    """(start time, user + system CPU ticks) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return int(fields[19]), int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


class Sampler:
    """``with Sampler() as s: ...`` then ``s.peak_mb`` and ``s.cpu_seconds`` of the block."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peak_mb = 0.0
        self.interval = interval
        self._seen: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        pids = tree(me)
        self.peak_mb = max(self.peak_mb, sum(pss_kb(p) for p in pids) / 1024)
        for pid in pids:
            got = ticks(pid) if pid != me else None
            if got:
                self._seen[(pid, got[0])] = got[1]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._start_all, self._start_own = _rusage_cpu(), _own_cpu()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        sampled = _own_cpu() - self._start_own + sum(self._seen.values()) / _TICK
        self.cpu_seconds = max(_rusage_cpu() - self._start_all, sampled)
