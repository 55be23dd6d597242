"""A stage's outputs are one set: a full disk (a real ENOSPC, on a small tmpfs) or an error
half-way leaves the previous complete set as it was, and the CLI says so in one line."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubtools.io import STAGING_PREFIX, output_set

ROOT = Path(__file__).resolve().parents[1]
FREE_KB = 12  # what the disk has left when the second run starts


def _records(tag: str, n: int) -> list[dict]:
    return [{"instruction": f"{tag} question {i}: explain topic {i} " + "in detail " * 5,
             "input": "", "output": f"{tag} answer {i}: " + f"the topic {i} is about this. " * 30} for i in range(n)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _namespaces() -> bool:
    """Whether this process may mount a tmpfs of its own (a user and mount namespace)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


_CLI = [sys.executable, "-m", "hubtools.cli"]
_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HUBTOOLS_VERBOSITY": "error"}


def run_until_disk_full(tmp_path: Path, first: list[str], second: list[str]) -> subprocess.CompletedProcess:
    """Run ``first`` into OUT, fill the disk up to ``FREE_KB``, run ``second`` into OUT.

    OUT is on a 4 MB tmpfs of this test's own (a real ENOSPC); where mounting is not allowed,
    the second run gets a file size limit of ``FREE_KB`` instead (EFBIG, the same failure path).
    Returns the second run; ``tmp_path/before`` and ``tmp_path/after`` are copies of OUT.
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    fill = ("dd if=/dev/zero of=\"$DISK/fill\" bs=4k 2>/dev/null || true; "
            f"truncate -s -{FREE_KB}k \"$DISK/fill\"")
    if _namespaces():
        script = ("set -e; mount -t tmpfs -o size=4m tmpfs \"$DISK\"; "
                  f"{' '.join(_quote(first))} --out \"$DISK/out\" >/dev/null; "
                  "cp -a \"$DISK/out\" \"$KEEP/before\"; "
                  f"{fill}; set +e; {' '.join(_quote(second))} --out \"$DISK/out\" "
                  ">\"$KEEP/stdout\" 2>\"$KEEP/stderr\"; echo $? >\"$KEEP/rc\"; cp -a \"$DISK/out\" \"$KEEP/after\"")
        done = subprocess.run(["unshare", "-Urm", "sh", "-c", script], env={**_ENV, "DISK": str(disk),
                              "KEEP": str(tmp_path)}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return subprocess.CompletedProcess(second, int((tmp_path / "rc").read_text()),
                                           (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text())
    subprocess.run([*first, "--out", str(out)], env=_ENV, check=True, capture_output=True, timeout=120)
    shutil.copytree(out, tmp_path / "before")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FREE_KB * 1024, FREE_KB * 1024))

    result = subprocess.run([*second, "--out", str(out)], env=_ENV, capture_output=True, text=True, timeout=120,
                            preexec_fn=limit)
    shutil.copytree(out, tmp_path / "after")
    return result


def _quote(args: list[str]) -> list[str]:
    import shlex

    return [shlex.quote(str(a)) for a in args]


def _assert_disk_full_refused(result: subprocess.CompletedProcess, tmp_path: Path) -> dict[str, bytes]:
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("note: ")]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # one line, no traceback
    assert "No space left on device" in lines[0] or "File too large" in lines[0]
    assert "Free some space (or choose another --out) and run the same command again" in lines[0]
    before, after = _snapshot(tmp_path / "before"), _snapshot(tmp_path / "after")
    assert after == before  # the previous complete set, byte for byte, and no staging folder left
    assert not any(STAGING_PREFIX in name for name in after)
    return after


def test_validate_on_a_full_disk_keeps_the_previous_valid_quarantine_and_summary(tmp_path):
    old = _jsonl(tmp_path / "old.jsonl", [*_records("old", 6), {"instruction": ""}])
    new = _jsonl(tmp_path / "new.jsonl", _records("new", 40))
    result = run_until_disk_full(tmp_path, [*_CLI, "validate", str(old)], [*_CLI, "validate", str(new)])
    files = _assert_disk_full_refused(result, tmp_path)
    summary = json.loads(files["summary.json"])
    assert (summary["valid"], summary["quarantined"]) == (6, 1)  # the summary still describes its siblings
    assert len(files["valid.jsonl"].splitlines()) == 6 and len(files["quarantine.jsonl"].splitlines()) == 1


def test_check_on_a_full_disk_keeps_the_previous_report_json_and_plots(tmp_path):
    old = _jsonl(tmp_path / "old.jsonl", _records("old", 12))
    new = _jsonl(tmp_path / "new.jsonl", _records("new", 30))
    checks = ["--checks", "length_outliers,exact_duplicates"]  # the report, its JSON and a plot, quickly
    result = run_until_disk_full(tmp_path, [*_CLI, "check", str(old), *checks], [*_CLI, "check", str(new), *checks])
    files = _assert_disk_full_refused(result, tmp_path)
    assert json.loads(files["quality.json"])["dataset"]["total"] == 12
    assert "plots/lengths.png" in files and "12" in files["dataset_quality_report.md"].decode()


def _judged(path: Path, prompts: int) -> Path:
    """Two candidates per prompt, scored by the offline judge (in this process): input for `rank`."""
    from hubtools.judge import HeuristicJudge, judge_file

    rows = [{"instruction": f"question {i}: explain topic {i}", "input": "",
             "output": "Short." if j else f"A long and detailed answer about topic {i}. " * 5}
            for i in range(prompts) for j in range(2)]
    judge_file(_jsonl(path, rows), path.parent / f"{path.stem}.judged", HeuristicJudge())
    return path.parent / f"{path.stem}.judged" / "judged.jsonl"


def test_rank_on_a_full_disk_keeps_the_previous_pairs_and_summary(tmp_path):
    """A generation stage's set (write_stage: judge, rank): the pairs and their summary."""
    old, new = _judged(tmp_path / "old.jsonl", 4), _judged(tmp_path / "new.jsonl", 300)
    options = ["--min-margin", "0.001", "--score", "overall_lc"]
    result = run_until_disk_full(tmp_path, [*_CLI, "rank", str(old), *options], [*_CLI, "rank", str(new), *options])
    files = _assert_disk_full_refused(result, tmp_path)
    assert json.loads(files["summary.json"])["pairs"] == 4 == len(files["pairs.jsonl"].splitlines())


def test_filter_on_a_full_disk_keeps_the_previous_kept_removed_and_summary(tmp_path):
    old = _jsonl(tmp_path / "data.jsonl", [*_records("old", 6), *_records("old", 2)])  # 2 exact duplicates
    new = tmp_path / "new" / "data.jsonl"  # the same name: the kept file is data.jsonl both times
    new.parent.mkdir()
    _jsonl(new, _records("new", 40))
    drop = ["--drop", "exact_duplicates"]
    result = run_until_disk_full(tmp_path, [*_CLI, "filter", str(old), *drop], [*_CLI, "filter", str(new), *drop])
    files = _assert_disk_full_refused(result, tmp_path)
    summary = json.loads(files["filter_summary.json"])
    assert (summary["read"], summary["kept"], summary["removed"]) == (8, 6, 2)
    assert len(files["data.jsonl"].splitlines()) == 6 and len(files["removed.jsonl"].splitlines()) == 2


def test_a_set_arrives_whole_or_not_at_all_and_drops_what_the_new_set_no_longer_has(tmp_path):
    with output_set(tmp_path, replaces=["quarantine.jsonl", "plots/*.png"]) as stage:
        (stage / "plots").mkdir()
        for name, text in (("data.jsonl", "1\n"), ("quarantine.jsonl", "q\n"), ("plots/a.png", "a"),
                           ("summary.json", "{}")):
            (stage / name).write_text(text)
    first = _snapshot(tmp_path)
    assert set(first) == {"data.jsonl", "quarantine.jsonl", "plots/a.png", "summary.json"}

    with pytest.raises(RuntimeError), output_set(tmp_path, replaces=["quarantine.jsonl"]) as stage:
        (stage / "data.jsonl").write_text("2\n")
        raise RuntimeError("the stage failed before its summary")
    assert _snapshot(tmp_path) == first  # nothing of the failed set, no staging folder

    with output_set(tmp_path, replaces=["quarantine.jsonl", "plots/*.png"]) as stage:
        (stage / "data.jsonl").write_text("3\n")
        (stage / "summary.json").write_text('{"n": 3}')
    assert _snapshot(tmp_path) == {"data.jsonl": b"3\n", "summary.json": b'{"n": 3}'}


def test_a_staging_folder_left_by_a_killed_writer_is_cleared(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f"{STAGING_PREFIX}{dead.pid}-abcd"
    left.mkdir()
    (left / "valid.jsonl").write_text("half\n")
    with output_set(tmp_path) as stage:
        (stage / "summary.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
