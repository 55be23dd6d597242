"""The git-like data model of the local Hub: blobs, commits, refs, discussions and Space state."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

import yaml

REPO_TYPES = ("model", "dataset", "space")
COMMIT_ID_RE = re.compile(r"^[0-9a-f]{40}$")
_YAML_BLOCK_RE = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")


def now_iso() -> str:
    """Return the current UTC time as the Hub writes it (`2026-01-01T00:00:00.000Z`)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha1(data: bytes) -> str:
    """Return the git object id of `data` stored as a blob."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def url_prefix(repo_type: str) -> str:
    """Return the web path prefix of a repo type: `""`, `"datasets/"` or `"spaces/"`."""
    return "" if repo_type == "model" else f"{repo_type}s/"


def parse_card_data(readme: bytes) -> dict[str, Any] | None:
    """Return the YAML front matter of a README as a dict, or None if there is none or it is not a mapping."""
    match = _YAML_BLOCK_RE.search(readme.decode("utf-8", errors="replace"))
    if match is None:
        return None
    data = yaml.safe_load(match.group(2))
    return data if isinstance(data, dict) else None


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a git-style glob: `*` stays within a folder, `**/` spans folders; no slash matches any basename."""
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = ""
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif body.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            char = body[i]
            out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{out}(?:/.*)?$")


def matches_any(path: str, patterns: list[str]) -> bool:
    """Return True if `path` matches one of the git-style `patterns` (gitattributes / gitignore lines)."""
    return any(glob_to_regex(pattern).match(path) for pattern in patterns)


@dataclass(frozen=True)
class Blob:
    """File content; `lfs` blobs are stored in git as a pointer and carry a sha256."""

    data: bytes
    lfs: bool = False

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def pointer(self) -> bytes:
        """The git-lfs pointer file that git would store for this blob."""
        return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            self.sha256.encode(),
            len(self.data),
        )

    @cached_property
    def oid(self) -> str:
        """The git blob id: of the pointer for LFS files, of the content otherwise."""
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        """The value the client uses as cache file name: sha256 for LFS files, git sha1 otherwise."""
        return self.sha256 if self.lfs else self.oid

    @property
    def preupload_oid(self) -> str:
        """The `oid` a preupload reply carries for this remote file (sha256 for LFS, git sha1 otherwise)."""
        return self.etag


@dataclass(frozen=True)
class Commit:
    """One commit: its parent, message, author, date and the full file tree."""

    id: str
    parent: str | None
    title: str
    description: str
    author: str
    date: str
    files: Mapping[str, Blob]

    @property
    def message(self) -> str:
        return f"{self.title}\n\n{self.description}" if self.description else self.title


@dataclass
class Discussion:
    """A discussion or pull request; a PR's changes live under `refs/pr/{num}`."""

    num: int
    title: str
    author: str
    is_pull_request: bool
    status: str = "open"
    target_branch: str = "main"
    created_at: str = field(default_factory=now_iso)
    events: list[dict[str, Any]] = field(default_factory=list)
    merge_commit: str | None = None

    @property
    def ref(self) -> str:
        return f"refs/pr/{self.num}"


@dataclass
class SpaceState:
    """Settings of a Space the Hub keeps outside git: SDK, hardware, sleep time, secrets and variables."""

    sdk: str
    hardware: str = "cpu-basic"
    requested_hardware: str | None = "cpu-basic"
    sleep_time: int | None = None
    stage: str = "RUNNING"
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def runtime(self) -> dict[str, Any]:
        """Return the runtime object the `/runtime`, `/hardware`, `/pause` ... endpoints answer with."""
        running = self.stage not in ("PAUSED", "SLEEPING", "STOPPED")
        return {
            "stage": self.stage,
            "hardware": {"current": self.hardware if running else None, "requested": self.requested_hardware},
            "gcTimeout": self.sleep_time,
            "storage": None,
            "replicas": {"current": 1 if running else 0, "requested": 1},
            "devMode": False,
            "sdk": self.sdk,
        }


@dataclass
class Repo:
    """A repository: commits by id, branches and tags by name, PR refs by number, discussions."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: str = field(default_factory=now_iso)
    gated: bool | str = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pr_refs: dict[int, str] = field(default_factory=dict)
    discussions: list[Discussion] = field(default_factory=list)
    space: SpaceState | None = None

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, revision: str) -> str | None:
        """Return the commit id a branch, tag, `refs/...` name, PR ref or (short) commit id points to."""
        if revision.startswith("refs/heads/"):
            return self.branches.get(revision.removeprefix("refs/heads/"))
        if revision.startswith("refs/tags/"):
            return self.tags.get(revision.removeprefix("refs/tags/"))
        if match := re.fullmatch(r"refs/pr/(\d+)", revision):
            return self.pr_refs.get(int(match.group(1)))
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            found = [cid for cid in self.commits if cid.startswith(revision)]
            return found[0] if len(found) == 1 else None
        return None

    def history(self, commit_id: str) -> Iterator[Commit]:
        """Yield the commits reachable from `commit_id`, newest first."""
        current: str | None = commit_id
        while current is not None:
            commit = self.commits[current]
            yield commit
            current = commit.parent

    def last_commit_for(self, commit_id: str, path: str, *, is_dir: bool) -> Commit:
        """Return the newest commit that changed `path` (a file, or anything under a folder)."""

        def snapshot(commit: Commit) -> list[tuple[str, str]]:
            if not is_dir:
                blob = commit.files.get(path)
                return [(path, blob.oid)] if blob else []
            prefix = path.rstrip("/") + "/"
            return sorted((p, b.oid) for p, b in commit.files.items() if p.startswith(prefix))

        result = self.commits[commit_id]
        for commit in self.history(commit_id):
            parent = self.commits[commit.parent] if commit.parent else None
            result = commit
            if parent is None or snapshot(parent) != snapshot(commit):
                break
        return result

    def discussion(self, num: int) -> Discussion | None:
        """Return discussion number `num` (1-based), or None."""
        return self.discussions[num - 1] if 0 < num <= len(self.discussions) else None
