"""In-memory storage of the local Hub: repos, commits, refs, LFS objects and pull requests.

Every mutation happens under one lock, so concurrent clients see the same linear history a real
git server would give them.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
import threading
from dataclasses import dataclass
from html import escape

from .errors import HubError, entry_not_found, revision_not_found
from .model import Blob, Commit, Discussion, Repo, SpaceState, matches_any, now_iso

logger = logging.getLogger(__name__)

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
_LFS_EXTENSIONS = (
    "7z arrow bin bz2 ckpt ftz gz h5 joblib lz4 mds mlmodel model msgpack npy npz onnx ot parquet pb "
    "pickle pkl pt pth rar safetensors tar tflite tgz wasm xz zip zst "
    "mp3 ogg wav flac pcm sam raw jpg jpeg png webp gif mp4 webm avif"
).split()
DEFAULT_GITATTRIBUTES = (
    "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n" for ext in _LFS_EXTENSIONS)
    + "*.lfs.* filter=lfs diff=lfs merge=lfs -text\n"
    + "*.tar.* filter=lfs diff=lfs merge=lfs -text\n"
    + "saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n"
    + "*tfevents* filter=lfs diff=lfs merge=lfs -text\n"
).encode()


@dataclass(frozen=True)
class Operation:
    """One line of a commit payload: `file`, `lfsFile`, `deletedFile` or `deletedFolder`."""

    kind: str
    path: str
    content: bytes | None = None
    oid: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class CommitResult:
    """What a commit produced: the commit and, with `create_pr`, the pull request that holds it."""

    commit: Commit
    pull_request: Discussion | None = None


def new_event(kind: str, author: str, data: dict) -> dict:
    """Build a discussion event (`comment`, `commit`, `status-change`, `title-change`)."""
    return {
        "id": secrets.token_hex(12),
        "type": kind,
        "createdAt": now_iso(),
        "author": {"name": author, "type": "user"},
        "data": data,
    }


def comment_event(author: str, text: str) -> dict:
    """Build a `comment` event with the fields `huggingface_hub.community.deserialize_event` reads."""
    latest = {"raw": text, "html": f"<p>{escape(text)}</p>", "updatedAt": now_iso(), "author": {"name": author}}
    return new_event("comment", author, {"edited": False, "hidden": False, "latest": latest, "numEdits": 0})


class HubStore:
    """All repos of one server, keyed by (repo_type, repo_id), plus the LFS objects by sha256."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self._counter = itertools.count()

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        """Return the repo, or None if it does not exist."""
        with self.lock:
            return self.repos.get((repo_type, repo_id))

    def create_repo(
        self, repo_type: str, repo_id: str, *, private: bool, author: str, space_sdk: str | None = None
    ) -> Repo:
        """Create a repo whose `main` has one commit adding `.gitattributes`; 409 if it exists."""
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo")
            repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private)
            if repo_type == "space":
                repo.space = SpaceState(sdk=space_sdk or "gradio")
            initial_files = {".gitattributes": Blob(DEFAULT_GITATTRIBUTES)}
            first = self._store_commit(repo, None, initial_files, "initial commit", "", author)
            repo.branches["main"] = first.id
            self.repos[(repo_type, repo_id)] = repo
            logger.info("created %s repo %s", repo_type, repo_id)
            return repo

    def delete_repo(self, repo_type: str, repo_id: str) -> bool:
        """Delete a repo; return False if it did not exist."""
        with self.lock:
            return self.repos.pop((repo_type, repo_id), None) is not None

    def commit(
        self,
        repo: Repo,
        revision: str,
        operations: list[Operation],
        *,
        title: str,
        description: str,
        author: str,
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> CommitResult:
        """Apply `operations` on top of `revision` and move the ref (or open a PR with `create_pr`)."""
        with self.lock:
            base_id = repo.resolve(revision)
            if base_id is None:
                raise revision_not_found(revision)
            if parent_commit is not None and parent_commit != base_id:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            pr_num = _pr_number(revision)
            branch = revision.removeprefix("refs/heads/")
            if not create_pr and pr_num is None and branch not in repo.branches:
                raise HubError(400, f"Cannot commit to '{revision}': it is not a branch or a pull request")
            target_pr = repo.discussion(pr_num) if pr_num is not None else None
            if not create_pr and target_pr is not None and target_pr.status not in ("open", "draft"):
                raise HubError(403, f"Pull request #{pr_num} is {target_pr.status}: it cannot receive commits")
            files = dict(repo.commits[base_id].files)
            for operation in operations:
                self._apply(files, operation, base_id)
            commit = self._store_commit(repo, base_id, files, title, description, author)
            if create_pr:
                target = branch if branch in repo.branches else "main"
                pr = self.open_discussion(repo, title, description, author, pull_request=True, target_branch=target)
                repo.pr_refs[pr.num] = commit.id
                pr.events.append(new_event("commit", author, {"subject": title, "oid": commit.id}))
                return CommitResult(commit, pr)
            if pr_num is not None:
                repo.pr_refs[pr_num] = commit.id
                if target_pr is not None:
                    target_pr.events.append(new_event("commit", author, {"subject": title, "oid": commit.id}))
            else:
                repo.branches[branch] = commit.id
            return CommitResult(commit)

    def create_ref(self, repo: Repo, kind: str, name: str, starting_point: str) -> str:
        """Create branch or tag `name` at `starting_point`; 409 if it exists. Return the commit id."""
        with self.lock:
            refs = repo.branches if kind == "branch" else repo.tags
            if name in refs:
                raise HubError(409, f"Reference already exists: {name}")
            commit_id = repo.resolve(starting_point)
            if commit_id is None:
                raise revision_not_found(starting_point)
            refs[name] = commit_id
            return commit_id

    def delete_ref(self, repo: Repo, kind: str, name: str) -> None:
        """Delete branch or tag `name`; the default branch cannot be deleted."""
        with self.lock:
            refs = repo.branches if kind == "branch" else repo.tags
            if kind == "branch" and name == "main":
                raise HubError(403, "You cannot delete the default branch")
            if refs.pop(name, None) is None:
                raise revision_not_found(name)

    def open_discussion(
        self,
        repo: Repo,
        title: str,
        description: str,
        author: str,
        *,
        pull_request: bool,
        target_branch: str = "main",
        status: str = "open",
    ) -> Discussion:
        """Open a discussion; a PR also gets `refs/pr/N` pointing at the head of its target branch."""
        with self.lock:
            discussion = Discussion(
                num=len(repo.discussions) + 1,
                title=title,
                author=author,
                is_pull_request=pull_request,
                status=status,
                target_branch=target_branch,
            )
            discussion.events.append(comment_event(author, description))
            repo.discussions.append(discussion)
            if pull_request:
                repo.pr_refs[discussion.num] = repo.branches[target_branch]
            return discussion

    def merge(self, repo: Repo, discussion: Discussion, author: str) -> Commit:
        """Squash-merge an open PR into its target branch; 409 if a file changed on both sides."""
        with self.lock:
            if not discussion.is_pull_request or discussion.status not in ("open", "draft"):
                raise HubError(400, f"Discussion #{discussion.num} is not an open pull request")
            head = repo.commits[repo.pr_refs[discussion.num]]
            target = repo.commits[repo.branches[discussion.target_branch]]
            target_history = {c.id for c in repo.history(target.id)}
            base = next(c for c in repo.history(head.id) if c.id in target_history)
            changed = {p for p in set(base.files) | set(head.files) if base.files.get(p) != head.files.get(p)}
            conflicts = sorted(p for p in changed if target.files.get(p) != base.files.get(p))
            if conflicts:
                raise HubError(409, "Merge conflict", body={"filesWithConflicts": conflicts})
            files = dict(target.files)
            for path in changed:
                if path in head.files:
                    files[path] = head.files[path]
                else:
                    files.pop(path, None)
            commit = self._store_commit(repo, target.id, files, discussion.title, f"PR #{discussion.num}", author)
            repo.branches[discussion.target_branch] = commit.id
            discussion.status = "merged"
            discussion.merge_commit = commit.id
            discussion.events.append(new_event("status-change", author, {"status": "merged"}))
            return commit

    def upload_mode(self, commit: Commit, path: str, size: int, sample: bytes) -> str:
        """Return `lfs` for large or binary files and paths `.gitattributes` tracks with LFS, else `regular`."""
        if size >= LFS_SIZE_THRESHOLD or b"\0" in sample:
            return "lfs"
        attributes = commit.files.get(".gitattributes")
        patterns = [
            line.split()[0]
            for line in (attributes.data.decode(errors="replace").splitlines() if attributes else [])
            if "filter=lfs" in line and not line.lstrip().startswith("#")
        ]
        return "lfs" if matches_any(path, patterns) else "regular"

    @staticmethod
    def should_ignore(commit: Commit, path: str, gitignore: str | None) -> bool:
        """Return True if `path` matches the given `.gitignore` content, or the one in the commit."""
        if gitignore is None and ".gitignore" in commit.files:
            gitignore = commit.files[".gitignore"].data.decode(errors="replace")
        patterns = [
            line.strip()
            for line in (gitignore or "").splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "!"))
        ]
        return matches_any(path, patterns)

    def _apply(self, files: dict[str, Blob], operation: Operation, base_id: str) -> None:
        """Apply one commit operation to a file tree, in place."""
        if operation.kind == "file":
            files[operation.path] = Blob(operation.content or b"")
        elif operation.kind == "lfsFile":
            data = self.lfs_objects.get(operation.oid or "")
            if data is None:
                raise HubError(400, f"LFS object {operation.oid} for '{operation.path}' was never uploaded")
            if operation.size is not None and operation.size != len(data):
                raise HubError(400, f"LFS object {operation.oid} has size {len(data)}, not {operation.size}")
            files[operation.path] = Blob(data, lfs=True)
        elif operation.kind == "deletedFile":
            if files.pop(operation.path, None) is None:
                raise entry_not_found(operation.path, base_id)
        elif operation.kind == "deletedFolder":
            prefix = operation.path.rstrip("/") + "/"
            doomed = [p for p in files if p.startswith(prefix)]
            if not doomed:
                raise entry_not_found(operation.path, base_id)
            for path in doomed:
                del files[path]
        else:
            raise HubError(400, f"Unknown commit operation '{operation.kind}'")

    def _store_commit(
        self, repo: Repo, parent: str | None, files: dict[str, Blob], title: str, description: str, author: str
    ) -> Commit:
        """Create a commit object with a unique sha1 id and add it to the repo (refs are not moved)."""
        date = now_iso()
        tree = "".join(f"{path} {blob.oid}\n" for path, blob in sorted(files.items()))
        header = f"tree {hashlib.sha1(tree.encode()).hexdigest()}\nparent {parent}\nauthor {author} {date}\n"
        raw = f"{header}{next(self._counter)}\n\n{title}\n\n{description}".encode()
        commit = Commit(
            id=hashlib.sha1(raw).hexdigest(),
            parent=parent,
            title=title,
            description=description,
            author=author,
            date=date,
            files=dict(files),
        )
        repo.commits[commit.id] = commit
        return commit


def _pr_number(revision: str) -> int | None:
    """Return N for `refs/pr/N`, else None."""
    prefix = "refs/pr/"
    if revision.startswith(prefix) and revision[len(prefix) :].isdigit():
        return int(revision[len(prefix) :])
    return None
