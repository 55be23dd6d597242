"""`hubtools generate instructions` writes its outputs as one set: on a full disk the prompts and the
summary that describes them stay the previous run's, never new prompts beside an old summary."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CORPUS
from tests.fixtures.openai import OPENAI_TOKEN

from .test_output_sets import _CLI, _snapshot, run_until_disk_full

WIKI = CORPUS / "llama_factory" / "wiki_demo.txt"


def test_instructions_on_a_full_disk_keep_the_previous_prompts_and_summary(openai_server, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("Tides rise and fall twice a day because the Moon pulls on the oceans.\n")
    # the new run: a small document, and many files it skips, each named in summary.json, so the
    # summary (not the prompts) is what no longer fits: written first, the prompts would be new
    new = tmp_path / "new"
    new.mkdir()
    (new / "wiki.txt").write_text(WIKI.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    for i in range(400):
        (new / f"unsupported-attachment-number-{i:04d}.bin").write_bytes(b"\0")
    options = ["--chunk-size", "100000", "--per-chunk", "1"]
    result = run_until_disk_full(
        tmp_path, [*_CLI, "generate", "instructions", str(old), *options],
        [*_CLI, "generate", "instructions", str(new), *options, "--endpoint", openai_server.base_url,
         "--model", "stand-in-large", "--api-key", OPENAI_TOKEN])
    assert openai_server.completions(), "the second run reached the model before the disk was full"
    errors = [line for line in result.stderr.strip().splitlines() if not line.startswith("note: ")]
    assert result.returncode == 1 and len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "No space left on device" in errors[0] or "File too large" in errors[0]
    before, after = _snapshot(tmp_path / "before"), _snapshot(tmp_path / "after")
    kept = {name: data for name, data in after.items() if not name.startswith("checkpoint.")}
    assert kept == before  # the previous set byte for byte, no staging folder left
    summary = json.loads(kept["summary.json"])
    assert summary["generator"] == "template" and summary["written"] == len(kept["prompts.jsonl"].splitlines()) == 1
    assert "Tides" in kept["prompts.jsonl"].decode()


def test_instructions_in_another_container_replace_the_earlier_prompts(tmp_path):
    import subprocess

    from .test_output_sets import _ENV

    out = tmp_path / "out"
    (tmp_path / "doc.txt").write_text("Bees make honey from nectar they collect from flowers in spring.\n")
    for container in ("jsonl", "parquet"):
        subprocess.run([*_CLI, "generate", "instructions", str(tmp_path / "doc.txt"), "--out", str(out),
                        "--per-chunk", "1", "--container", container], env=_ENV, check=True, capture_output=True,
                       timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["prompts.parquet", "summary.json"]
    assert summary["files"]["prompts"] == str(out / "prompts.parquet")
