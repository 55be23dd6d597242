"""``hubtools push`` against the local Hub, with the real ``huggingface_hub`` and ``datasets`` clients
in fresh interpreters: what loads back, what the card says, one commit per push, pull requests,
files other people added, and failures that leave nothing half-published and never show the token."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hubtools.errors import HubRepoError
from hubtools.publish.hub import _owned, parse_repo_id
from tests.fixtures.hub import (
    OTHER_USER_TOKEN,
    PROJECT_ROOT,
    READ_TOKEN,
    WRITE_TOKEN,
    run_client,
    run_client_json,
)

from .conftest import CORPUS

DPO = CORPUS / "llama_factory" / "dpo_en_demo.json"
SHARD = "data/train-00000-of-00001.parquet"
WRONG_TOKEN = "hf_wrongTokenThatLooksReal123"
TOKENS = (WRITE_TOKEN, READ_TOKEN, OTHER_USER_TOKEN, WRONG_TOKEN)


def snippet(body: str, **params: Any) -> str:
    return f"import json\nP = json.loads({json.dumps(params)!r})\n" + body


def cli_command(*args: Any) -> str:
    return snippet("import sys\nfrom hubtools.cli import main\nsys.argv = ['hubtools', *P['args']]\nmain()\n",
                   args=[str(a) for a in args])


def run_cli(env: dict[str, str], *args: Any) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter (the clients read HF_* at import)."""
    return run_client(cli_command(*args), env)


def run_cli_parallel(cases: dict[str, tuple[dict[str, str], list[Any]]]) -> dict[str, subprocess.CompletedProcess]:
    """Run several CLI invocations at once (they are independent), return their results by name."""
    import os

    procs = {}
    for name, (env, args) in cases.items():
        full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        full.update(env)
        full["PYTHONPATH"] = str(PROJECT_ROOT)
        procs[name] = subprocess.Popen([sys.executable, "-c", cli_command(*args)], env=full, cwd=PROJECT_ROOT,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


def assert_no_token(*texts: str | bytes) -> None:
    for text in texts:
        blob = text.encode() if isinstance(text, str) else text
        for token in TOKENS:
            assert token.encode() not in blob, "a token leaked"


def parquet_rows(data: bytes) -> list[dict]:
    return pq.read_table(io.BytesIO(data)).to_pylist()


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def pairs(tag: str, n: int) -> list[dict]:
    return [{"prompt": f"{tag} question {i}: what is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}.",
             "rejected": f"It is {2 * i + 1}, I think."} for i in range(n)]


def test_chain_validate_check_card_push_loads_back_unchanged(hub_server, hub_env, hub_repo_id, tmp_path):
    checks, card = tmp_path / "checks", tmp_path / "card"
    steps = [["validate", DPO, "--out", tmp_path / "valid"],
             ["check", DPO, "--out", checks],
             ["card", DPO, "--quality", checks / "quality.json", "--out", card, "--repo-id", hub_repo_id,
              "--license", "apache-2.0"],
             ["push", DPO, hub_repo_id, "--quality", checks / "quality.json", "--license", "apache-2.0"]]
    results = [run_cli(hub_env, *step) for step in steps]
    for step, result in zip(steps, results):
        assert result.returncode == 0, f"{step[0]} failed:\n{result.stderr[-3000:]}"
        assert_no_token(result.stdout, result.stderr)

    commits = hub_server.commits(hub_repo_id)
    assert [c["title"] for c in commits][1:] == ["initial commit"]  # everything in one commit
    assert results[-1].stdout.strip().splitlines()[-1] == f"{hub_server.url}/datasets/{hub_repo_id}/commit/{commits[0]['id']}"
    files = hub_server.files(hub_repo_id)
    assert {"README.md", "annotation_guidelines.md", "dataset_quality_report.md", "quality.json",
            "category_distribution.json", SHARD} <= set(files)
    assert SHARD in hub_server.lfs_files(hub_repo_id)
    assert not any(p.startswith("quarantine/") for p in files)
    # `hubtools card` previews exactly what `hubtools push` publishes
    assert files["README.md"].decode() == (card / "README.md").read_text()
    assert files["annotation_guidelines.md"].decode() == (card / "annotation_guidelines.md").read_text()
    assert json.loads(files["quality.json"]) == json.loads((checks / "quality.json").read_text())
    assert_no_token(*files.values(), *(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()))

    out = run_client_json(snippet("""
from datasets import load_dataset
from huggingface_hub import DatasetCard
loaded = load_dataset(P["repo"])
card = DatasetCard.load(P["repo"], repo_type="dataset")
print(json.dumps({"splits": list(loaded), "rows": loaded["train"].to_list(), "card": card.data.to_dict()}))
""", repo=hub_repo_id), hub_env)
    assert out["splits"] == ["train"]
    assert out["rows"] == json.loads(DPO.read_text())  # the records loaded back unchanged
    data = out["card"]
    assert (data["license"], data["size_categories"], data["task_categories"]) == ("apache-2.0", ["n<1K"],
                                                                                  ["text-generation"])
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    for entry in hub_server.request_log():  # the token travels in the Authorization header only
        assert_no_token(entry["path"], entry["body"])


def test_repush_replaces_owned_files_keeps_others(hub_server, hub_env, hub_repo_id, tmp_path):
    v1 = write_jsonl(tmp_path / "v1.jsonl", [*pairs("first", 4), '{"prompt": "broken'])
    v2 = write_jsonl(tmp_path / "v2.jsonl", pairs("second", 3))
    test = write_jsonl(tmp_path / "test.jsonl", pairs("test", 2))
    out = run_client_json(snippet("""
import hubtools
from huggingface_hub import HfApi
api, repo = HfApi(), P["repo"]
first = hubtools.push(P["v1"], repo, include_quarantine=True, private=True)
card = api.hf_hub_download(repo, "README.md", repo_type="dataset")
text = open(card).read()
text = text.replace("Not intended as an evaluation benchmark", "We also evaluate on it")
text = text.replace("tags:\\n", "annotations_creators:\\n- expert-generated\\ntags:\\n") + "\\n## Citation\\n\\nCite us.\\n"
api.upload_file(path_or_fileobj=text.encode(), path_in_repo="README.md", repo_id=repo, repo_type="dataset",
                commit_message="Edit the card by hand")
api.upload_file(path_or_fileobj=b"mine", path_in_repo="notes/extra.md", repo_id=repo, repo_type="dataset",
                commit_message="Add notes")
second = hubtools.push(P["v2"], repo)
third = hubtools.push(P["test"], repo, split="test")
from datasets import load_dataset
loaded = load_dataset(repo)
print(json.dumps({"results": [r.to_dict() for r in (first, second, third)],
                  "loaded": {k: v.to_list() for k, v in loaded.items()}}))
""", repo=hub_repo_id, v1=str(v1), v2=str(v2), test=str(test)), hub_env)
    first, second, third = out["results"]
    assert (first["records"], first["quarantined"], first["created"]) == (4, 1, True)
    assert "quarantine/train.jsonl" in first["added"]
    assert second["deleted"] == ["quarantine/train.jsonl"]  # stale: v2 was pushed without it
    assert second["kept_sections"] == {"README.md": ["uses"]}
    assert out["loaded"] == {"train": pairs("second", 3), "test": pairs("test", 2)}

    files = hub_server.files(hub_repo_id)
    assert files["notes/extra.md"] == b"mine"  # another person's file is kept
    assert "quarantine/train.jsonl" not in files
    readme = files["README.md"].decode()
    assert "We also evaluate on it" in readme and readme.rstrip().endswith("Cite us.")
    assert "- expert-generated" in readme
    assert "  - split: train\n    path: data/train-*\n  - split: test\n    path: data/test-*" in readme
    assert json.loads(files["quality.json"])["dataset"]["total"] == 2
    titles = [c["title"] for c in hub_server.commits(hub_repo_id)]
    assert len(titles) == 6 and titles[2:4] == ["Add notes", "Edit the card by hand"]  # one commit per push
    assert [titles[i].split(" (")[0] for i in (0, 1, 4)] == ["Publish test: 2 records", "Publish train: 3 records",
                                                            "Publish train: 4 records"]
    assert third["deleted"] == [] and "data/test-00000-of-00001.parquet" in third["added"]
    assert hub_server.context.store.get("dataset", hub_repo_id).private is True


def test_pr_push_leaves_main_unchanged(hub_server, hub_env, hub_repo_id, tmp_path):
    v1 = write_jsonl(tmp_path / "v1.jsonl", pairs("first", 3))
    v2 = write_jsonl(tmp_path / "v2.jsonl", pairs("second", 5))
    out = run_client_json(snippet("""
import hubtools
from hubtools.checks import run_checks
from hubtools.load import load
q1 = run_checks(load(P["v1"]), checks=["schema"]).to_dict()
q2 = run_checks(load(P["v2"]), checks=["schema"]).to_dict()
main = hubtools.push(P["v1"], P["repo"], quality=q1)
again = hubtools.push(P["v1"], P["repo"], quality=q1)
pr = hubtools.push(P["v2"], P["repo"], quality=q2, create_pr=True, message="Propose v2")
print(json.dumps([r.to_dict() for r in (main, again, pr)]))
""", repo=hub_repo_id, v1=str(v1), v2=str(v2)), hub_env)
    main, again, pr = out
    assert again["changed"] is False and again["commit_id"] == main["commit_id"]
    assert pr["pr_url"] == f"{hub_server.url}/datasets/{hub_repo_id}/discussions/1"
    assert parquet_rows(hub_server.files(hub_repo_id)[SHARD]) == pairs("first", 3)
    assert [c["title"] for c in hub_server.commits(hub_repo_id)][0].startswith("Publish train: 3 records")
    proposed = hub_server.files(hub_repo_id, revision="refs/pr/1")
    assert parquet_rows(proposed[SHARD]) == pairs("second", 5)
    assert hub_server.commits(hub_repo_id, revision="refs/pr/1")[0]["title"] == "Propose v2"
    assert hub_server.pull_requests(hub_repo_id) == [{"num": 1, "ref": "refs/pr/1", "title": "Propose v2",
                                                      "status": "open"}]


def test_failures_are_one_line_errors_without_commit(hub_server, hub_env, hub_repo_id, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", pairs("x", 3))
    quality = tmp_path / "q.json"
    quality.write_text(json.dumps({"dataset": {"total": 3, "valid": 3}, "checks": {}}))
    space, dropped = f"{hub_repo_id}-space", f"{hub_repo_id}-drop"
    hub_server.context.store.create_repo("space", space, private=False, author="user", space_sdk="gradio")
    hub_server.drop_connections("POST", f"/api/datasets/{dropped}/commit/", times=1)
    no_token = {k: v for k, v in hub_env.items() if k != "HF_TOKEN"}
    push = ["push", data, hub_repo_id, "--quality", quality]
    cases = {
        "no_token": (no_token, push),
        "wrong_token": (hub_env, [*push, "--token", WRONG_TOKEN]),
        "read_only": ({**hub_env, "HF_TOKEN": READ_TOKEN}, push),
        "no_rights": ({**hub_env, "HF_TOKEN": OTHER_USER_TOKEN}, push),
        "is_a_space": (hub_env, ["push", data, space, "--quality", quality]),
        "dropped": (hub_env, ["push", data, dropped, "--quality", quality]),
        "bad_quality": (hub_env, ["push", DPO, hub_repo_id, "--quality", quality]),
    }
    results = run_cli_parallel(cases)
    expected = {
        "no_token": "error: no Hugging Face token. set HF_TOKEN, run `hf auth login`, or pass --token",
        "wrong_token": "error: the Hub rejected the token",
        "read_only": "error: this Hugging Face token can only read",
        "no_rights": "error: no write access to",
        "is_a_space": f"error: {space} is a space repo, not a dataset. give another name, or write "
                      f"'datasets/{space}'",
        "dropped": "error: network failure while committing; nothing was committed. check that",
        "bad_quality": f"error: {quality} describes 3 records (3 valid), the data has 300 (300 valid)",
    }
    for name, result in results.items():
        assert result.returncode == 1, f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected[name]), f"{name}: {result.stderr}"
        assert result.stdout == ""
        assert_no_token(result.stdout, result.stderr)
    assert not hub_server.repo_exists(hub_repo_id)
    assert not hub_server.repo_exists(space, "dataset")
    assert [c["title"] for c in hub_server.commits(dropped)] == ["initial commit"]  # created, never half-filled

    # the fix is to run the command again; this time the upload has a blip, which the client retries
    hub_server.drop_connections("PUT", "/lfs-storage/", times=1)
    fresh = write_jsonl(tmp_path / "fresh.jsonl", pairs("y", 3))  # content the server does not have yet
    again = run_cli(hub_env, "push", fresh, dropped, "--quality", quality)
    assert again.returncode == 0, again.stderr
    assert len(hub_server.commits(dropped)) == 2
    assert parquet_rows(hub_server.files(dropped)[SHARD]) == pairs("y", 3)
    puts = [e for e in hub_server.request_log() if e["method"] == "PUT" and e["path"].startswith("/lfs-storage/")]
    assert any(e["status"] is None for e in puts) and puts[-1]["status"] == 200


def test_dry_run_uploads_nothing(hub_server, hub_env, hub_repo_id, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [*pairs("x", 2), "not json"])
    result = run_cli(hub_env, "push", data, hub_repo_id, "--dry-run", "--include-quarantine", "--split", "dev",
                     "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["created"] is True
    assert {"README.md", "data/dev-00000-of-00001.parquet", "quarantine/dev.jsonl"} <= set(plan["added"])
    staged = Path(plan["staging_dir"])
    assert parquet_rows((staged / "data/dev-00000-of-00001.parquet").read_bytes()) == pairs("x", 2)
    rows = [json.loads(line) for line in (staged / "quarantine/dev.jsonl").read_text().splitlines()]
    assert [(r["index"], r["raw"]) for r in rows] == [(2, "not json")]
    assert not hub_server.repo_exists(hub_repo_id)
    assert_no_token(result.stdout, result.stderr, *(p.read_bytes() for p in staged.rglob("*") if p.is_file()))


def test_card_and_push_stage_the_same_files(hub_server, hub_env, hub_repo_id, tmp_path):
    """One staging function: `hubtools card` writes the very files `hubtools push` uploads besides its data."""
    data = write_jsonl(tmp_path / "d.jsonl", pairs("x", 4))
    checks, card = tmp_path / "checks", tmp_path / "card"
    steps = [["check", data, "--out", checks],
             ["card", data, "--quality", checks / "quality.json", "--out", card, "--repo-id", hub_repo_id],
             ["push", data, hub_repo_id, "--quality", checks / "quality.json", "--dry-run", "--json"]]
    results = [run_cli(hub_env, *step) for step in steps]
    for step, result in zip(steps, results):
        assert result.returncode == 0, f"{step[0]} failed:\n{result.stderr[-3000:]}"
    plan = json.loads(results[-1].stdout)
    staged = Path(plan["staging_dir"])
    published = {p for p in plan["added"] if not p.startswith("data/")}
    carded = {p.relative_to(card).as_posix() for p in card.rglob("*") if p.is_file()}
    assert published == carded
    assert {"README.md", "annotation_guidelines.md", "dataset_quality_report.md", "quality.json",
            "category_distribution.json"} <= carded and any(p.startswith("plots/") for p in carded)
    for name in sorted(p for p in carded if not p.startswith("plots/")):
        assert (staged / name).read_text() == (card / name).read_text(), name
    assert not hub_server.repo_exists(hub_repo_id)


@pytest.mark.parametrize(("given", "expected"), [
    ("me/data", ("me/data", False)),
    ("datasets/me/data", ("me/data", True)),
    ("https://huggingface.co/datasets/me/data/", ("me/data", True)),
    ("hf://datasets/me/data", ("me/data", True)),
])
def test_parse_repo_id_accepts_ids_prefixes_and_urls(given, expected):
    assert parse_repo_id(given) == expected


@pytest.mark.parametrize("given", ["spaces/me/app", "https://huggingface.co/spaces/me/app", "models/me/m", "me",
                                   "me/da--ta", "a/b/c"])
def test_parse_repo_id_refuses_other_types_and_malformed_ids(given):
    with pytest.raises(HubRepoError):
        parse_repo_id(given)


def test_push_owns_only_its_own_files():
    owned = ["data/train-00000-of-00002.parquet", "quarantine/train.jsonl", "plots/lengths.png", "quality.json"]
    others = ["data/test-00000-of-00001.parquet", "data/train-extra.parquet", "notes.md", "plots/mine.svg",
              "quarantine/test.jsonl", ".gitattributes", "README.md"]
    assert [p for p in owned + others if _owned(p, "train")] == owned
