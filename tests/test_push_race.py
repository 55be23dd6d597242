"""Two pushes that create the same new repo on the local Hub: the second never silently replaces
the first's files; it fails with a clear one-line error, and run again it publishes on top."""

from __future__ import annotations

import json

from pathlib import Path

import yaml

from hubtools.checks import run_checks
from hubtools.publish.report import write_report
from tests.fixtures.hub import run_client_json

from .test_push import run_cli, run_cli_parallel, snippet, write_jsonl

TRAIN = "data/train-00000-of-00001.parquet"
TEST = "data/test-00000-of-00001.parquet"


def pairs(tag: str, n: int) -> list[dict]:
    return [{"prompt": f"{tag} question {i}: what is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}.",
             "rejected": f"It is {2 * i + 1}, I think."} for i in range(n)]


def quality(data: Path) -> Path:
    """A quality.json for ``data`` from one quick check, so each push does not run the default scan."""
    folder = data.with_suffix(".quality")
    write_report(run_checks(data, checks="length_outliers"), folder, plots=False)
    return folder / "quality.json"


def card_splits(readme: bytes) -> set[str]:
    front = readme.decode().split("---")[1]
    return {f["split"] for c in yaml.safe_load(front)["configs"] for f in c["data_files"]}


# The other push lands at the worst moment: `Racing` is the real huggingface_hub client, which
# runs push A just before push B's request reaches the Hub.
RACE = """
from huggingface_hub import HfApi
from hubtools.errors import HubError
from hubtools.publish.hub import push

class Racing(HfApi):
    def create_repo(self, *args, **kwargs):
        if P["at"] == "create":
            push(P["a"], P["repo"], split="train", quality=P["qa"])
        return super().create_repo(*args, **kwargs)

    def create_commit(self, *args, **kwargs):
        if P["at"] == "commit":
            push(P["a"], P["repo"], split="train", quality=P["qa"])
        return super().create_commit(*args, **kwargs)

try:
    push(P["b"], P["repo"], split="test", quality=P["qb"], api=Racing())
    print(json.dumps({"ok": True}))
except HubError as exc:
    print(json.dumps({"ok": False, "error": str(exc)}))
"""


def _race(hub_env, hub_repo_id, tmp_path, at: str) -> dict:
    a = write_jsonl(tmp_path / "a.jsonl", pairs("first", 3))
    b = write_jsonl(tmp_path / "b.jsonl", pairs("second", 2))
    return run_client_json(snippet(RACE, a=str(a), b=str(b), qa=str(quality(a)), qb=str(quality(b)), repo=hub_repo_id,
                                   at=at), hub_env)


def test_a_push_that_finds_the_repo_created_meanwhile_fails_and_keeps_the_first(hub_server, hub_env, hub_repo_id,
                                                                                 tmp_path):
    outcome = _race(hub_env, hub_repo_id, tmp_path, "create")
    assert outcome == {"ok": False, "error": f"{hub_repo_id} was created by someone else while this push was being "
                                             "prepared; nothing was committed. run the same command again to "
                                             "publish on top of it"}
    files = hub_server.files(hub_repo_id)
    assert TRAIN in files and TEST not in files and card_splits(files["README.md"]) == {"train"}
    assert [c["title"] for c in hub_server.commits(hub_repo_id)][1:] == ["initial commit"]  # only A's commit

    again = run_cli(hub_env, "push", tmp_path / "b.jsonl", hub_repo_id, "--split", "test", "--quality",
                    tmp_path / "b.quality" / "quality.json")
    assert again.returncode == 0, again.stderr
    files = hub_server.files(hub_repo_id)
    assert {TRAIN, TEST} <= set(files) and card_splits(files["README.md"]) == {"train", "test"}


def test_a_push_whose_new_repo_got_a_commit_meanwhile_fails_and_keeps_it(hub_server, hub_env, hub_repo_id, tmp_path):
    outcome = _race(hub_env, hub_repo_id, tmp_path, "commit")
    assert not outcome["ok"] and outcome["error"].startswith(f"{hub_repo_id} changed while pushing (someone else "
                                                             "committed); nothing was committed")
    files = hub_server.files(hub_repo_id)
    assert TRAIN in files and TEST not in files and card_splits(files["README.md"]) == {"train"}


def test_two_pushes_creating_one_repo_at_once_lose_nothing(hub_server, hub_env, hub_repo_id, tmp_path):
    data = {split: write_jsonl(tmp_path / f"{split}.jsonl", pairs(split, 2 + i))
            for i, split in enumerate(("train", "test"))}
    results = run_cli_parallel({split: (hub_env, ["push", path, hub_repo_id, "--split", split,
                                                  "--quality", quality(path)]) for split, path in data.items()})
    published = {split for split, r in results.items() if r.returncode == 0}
    assert published, {s: r.stderr for s, r in results.items()}
    for split, result in results.items():
        if result.returncode:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and "nothing was committed" in lines[0], lines
    files = hub_server.files(hub_repo_id)
    shards = {path.split("/")[1].split("-")[0] for path in files if path.startswith("data/")}
    assert shards == published and card_splits(files["README.md"]) == published  # each success is all there
    report = json.loads(files["quality.json"])
    assert report["dataset"]["total"] in {2 + i for i, s in enumerate(("train", "test")) if s in published}
