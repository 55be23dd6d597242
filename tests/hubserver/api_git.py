"""Endpoints that read or move git refs: tree, paths-info, refs, commits, branches, tags and resolve."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from typing import Any
from urllib.parse import unquote, urlencode

from .errors import HubError, entry_not_found
from .model import Blob, Commit, Repo
from .protocol import (
    API_REPO,
    WEB_REPO,
    Context,
    Request,
    Response,
    Router,
    find_commit,
    find_repo,
    json_response,
    split_revision,
)

router = Router()


# --- tree entries -------------------------------------------------------------------------------


def _last_commit(repo: Repo, commit: Commit, path: str, *, is_dir: bool) -> dict[str, str]:
    last = repo.last_commit_for(commit.id, path, is_dir=is_dir)
    return {"id": last.id, "title": last.title, "date": last.date}


def file_entry(repo: Repo, commit: Commit, path: str, blob: Blob, *, expand: bool) -> dict[str, Any]:
    """Return a tree entry for a file; `lfs.oid` is the sha256 (repo-info siblings call it `sha256`)."""
    entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
    if blob.lfs:
        entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
    if expand:
        entry["lastCommit"] = _last_commit(repo, commit, path, is_dir=False)
    return entry


def dir_entry(repo: Repo, commit: Commit, path: str, *, expand: bool) -> dict[str, Any]:
    """Return a tree entry for a folder; its oid hashes the (path, blob id) pairs below it."""
    prefix = path + "/"
    listing = "".join(f"{p} {b.oid}\n" for p, b in sorted(commit.files.items()) if p.startswith(prefix))
    entry: dict[str, Any] = {
        "type": "directory",
        "oid": hashlib.sha1(listing.encode()).hexdigest(),
        "size": 0,
        "path": path,
    }
    if expand:
        entry["lastCommit"] = _last_commit(repo, commit, path, is_dir=True)
    return entry


def directories(commit: Commit) -> set[str]:
    """Return every folder that holds at least one file of the commit."""
    found: set[str] = set()
    for path in commit.files:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def list_tree(repo: Repo, commit: Commit, path: str, *, recursive: bool, expand: bool) -> list[dict[str, Any]]:
    """Return the entries below folder `path` (direct children unless `recursive`), folders first."""
    path = path.strip("/")
    folders = directories(commit)
    if path and path not in folders:
        raise entry_not_found(path, commit.id)
    prefix = f"{path}/" if path else ""

    def wanted(candidate: str) -> bool:
        return candidate.startswith(prefix) and (recursive or "/" not in candidate[len(prefix) :])

    entries = [dir_entry(repo, commit, d, expand=expand) for d in sorted(folders) if wanted(d)]
    entries += [
        file_entry(repo, commit, p, blob, expand=expand) for p, blob in sorted(commit.files.items()) if wanted(p)
    ]
    return entries


def paginate(request: Request, items: list[Any], page_size: int) -> Response:
    """Return one page of `items` with a GitHub-style `Link: <next>; rel="next"` when more remain."""
    start = int(request.arg("cursor") or 0)
    headers = {}
    if start + page_size < len(items):
        query = {k: v for k, v in request.query.items() if k != "cursor"}
        query["cursor"] = [str(start + page_size)]
        headers["Link"] = f'<{request.base_url}{request.path}?{urlencode(query, doseq=True)}>; rel="next"'
    return json_response(items[start : start + page_size], headers=headers)


@router.route("GET", f"/api/{API_REPO}/tree/(?P<rest>.+)")
def tree(context: Context, request: Request) -> Response:
    """List a folder at a revision (`list_repo_tree`, `list_repo_files`, `HfFileSystem.ls`)."""
    repo = find_repo(context, request)
    revision, path = split_revision(request.groups["rest"])
    commit = find_commit(repo, revision)
    expand = request.flag("expand")
    entries = list_tree(repo, commit, path, recursive=request.flag("recursive"), expand=expand)
    return paginate(request, entries, context.expanded_tree_page_size if expand else context.tree_page_size)


@router.route("POST", f"/api/{API_REPO}/paths-info/(?P<rev>.+)")
def paths_info(context: Context, request: Request) -> Response:
    """Describe the given paths (form body `paths=a&paths=b&expand=...`); missing paths are left out."""
    repo = find_repo(context, request)
    commit = find_commit(repo, unquote(request.groups["rev"]))
    form = request.form()
    expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
    folders = directories(commit)
    entries = []
    for path in (p.strip("/") for p in form.get("paths", [])):
        if path in commit.files:
            entries.append(file_entry(repo, commit, path, commit.files[path], expand=expand))
        elif path in folders:
            entries.append(dir_entry(repo, commit, path, expand=expand))
    return json_response(entries)


# --- refs and history ---------------------------------------------------------------------------


@router.route("GET", f"/api/{API_REPO}/refs")
def refs(context: Context, request: Request) -> Response:
    """List branches, tags and (with `include_prs=1`) pull request refs (`list_repo_refs`)."""
    repo = find_repo(context, request)
    data: dict[str, Any] = {
        "branches": [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": cid} for name, cid in repo.branches.items()
        ],
        "converts": [],
        "tags": [{"name": name, "ref": f"refs/tags/{name}", "targetCommit": cid} for name, cid in repo.tags.items()],
    }
    if request.flag("include_prs"):
        data["pullRequests"] = [
            {"name": f"refs/pr/{num}", "ref": f"refs/pr/{num}", "targetCommit": cid}
            for num, cid in sorted(repo.pr_refs.items())
        ]
    return json_response(data)


def commit_payload(commit: Commit, *, formatted: bool) -> dict[str, Any]:
    """Return a commit as `/commits/{rev}` lists it."""
    data: dict[str, Any] = {
        "id": commit.id,
        "title": commit.title,
        "message": commit.message,
        "date": commit.date,
        "authors": [{"user": commit.author}],
    }
    if formatted:
        data["formatted"] = {"title": f"<p>{commit.title}</p>", "message": f"<p>{commit.message}</p>"}
    return data


@router.route("GET", f"/api/{API_REPO}/commits/(?P<rev>.+)")
def commits(context: Context, request: Request) -> Response:
    """List the history of a revision, newest first (`list_repo_commits`)."""
    repo = find_repo(context, request)
    commit = find_commit(repo, unquote(request.groups["rev"]))
    formatted = "formatted" in request.query.get("expand[]", [])
    items = [commit_payload(c, formatted=formatted) for c in repo.history(commit.id)]
    return paginate(request, items, context.commits_page_size)


@router.route("POST", f"/api/{API_REPO}/branch/(?P<ref>.+)")
def create_branch(context: Context, request: Request) -> Response:
    """Create a branch at `startingPoint` (default: main); 409 if it exists (`create_branch`)."""
    repo = find_repo(context, request, write=True)
    starting_point = request.json().get("startingPoint") or "main"
    context.store.create_ref(repo, "branch", unquote(request.groups["ref"]), starting_point)
    return json_response({})


@router.route("DELETE", f"/api/{API_REPO}/branch/(?P<ref>.+)")
def delete_branch(context: Context, request: Request) -> Response:
    """Delete a branch (`delete_branch`)."""
    repo = find_repo(context, request, write=True)
    context.store.delete_ref(repo, "branch", unquote(request.groups["ref"]))
    return json_response({})


@router.route("POST", f"/api/{API_REPO}/tag/(?P<ref>.+)")
def create_tag(context: Context, request: Request) -> Response:
    """Tag the revision in the path with JSON `tag`; 409 if the tag exists (`create_tag`)."""
    repo = find_repo(context, request, write=True)
    tag = request.json().get("tag")
    if not tag:
        raise HubError(400, "Missing 'tag'")
    context.store.create_ref(repo, "tag", tag, unquote(request.groups["ref"]))
    return json_response({})


@router.route("DELETE", f"/api/{API_REPO}/tag/(?P<ref>.+)")
def delete_tag(context: Context, request: Request) -> Response:
    """Delete a tag (`delete_tag`)."""
    repo = find_repo(context, request, write=True)
    context.store.delete_ref(repo, "tag", unquote(request.groups["ref"]))
    return json_response({})


# --- file download ------------------------------------------------------------------------------


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive (start, end) of a single `bytes=a-b` range, None to send everything; 416 if outside."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return start, end


@router.route("GET", f"/{WEB_REPO}/resolve/(?P<rest>.+)")
def resolve(context: Context, request: Request) -> Response:
    """Serve a file (HEAD for metadata, GET with optional Range) as `hf_hub_download` expects."""
    repo = find_repo(context, request)
    revision, path = split_revision(request.groups["rest"])
    commit = find_commit(repo, revision)
    blob = commit.files.get(path)
    if blob is None:
        raise entry_not_found(path, commit.id)
    headers = {
        "X-Repo-Commit": commit.id,
        "ETag": f'"{blob.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream",
        "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
    }
    if blob.lfs:
        headers["X-Linked-Etag"] = f'"{blob.sha256}"'
        headers["X-Linked-Size"] = str(blob.size)
    span = byte_range(request.headers.get("range"), blob.size)
    if span is None:
        return Response(200, blob.data, headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    return Response(206, blob.data[start : end + 1], headers)
