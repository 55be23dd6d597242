"""Endpoints that write content: preupload, commit, and the Git LFS batch / upload / verify API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import unquote

from .errors import HubError
from .model import url_prefix
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
    repo_url,
)
from .store import Operation

router = Router()

LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@router.route("POST", f"/api/{API_REPO}/preupload/(?P<rev>.+)")
def preupload(context: Context, request: Request) -> Response:
    """Tell the client, per file, whether to send it inline (`regular`) or through LFS, and its remote oid."""
    repo = find_repo(context, request, write=True)
    commit = find_commit(repo, unquote(request.groups["rev"]))
    body = request.json()
    files = body.get("files")
    if not isinstance(files, list):
        raise HubError(400, "'files' must be a list")
    gitignore = body.get("gitIgnore")
    answer = []
    for item in files:
        path, size = item["path"], int(item["size"])
        sample = base64.b64decode(item.get("sample") or "")
        remote = commit.files.get(path)
        answer.append(
            {
                "path": path,
                "uploadMode": context.store.upload_mode(commit, path, size, sample),
                "shouldIgnore": context.store.should_ignore(commit, path, gitignore),
                "oid": remote.preupload_oid if remote else None,
            }
        )
    return json_response({"files": answer, "commitOid": commit.id})


def _check_path(path: Any) -> str:
    """Return a valid path in repo; 400 for empty, absolute or `..` paths."""
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _operation(key: str, value: dict[str, Any]) -> Operation:
    """Turn one ndjson line of a commit into an `Operation`."""
    path = _check_path(value.get("path"))
    if key == "file":
        content = value.get("content", "")
        try:
            data = base64.b64decode(content, validate=True) if value.get("encoding") == "base64" else content.encode()
        except binascii.Error as exc:
            raise HubError(400, f"Invalid base64 content for '{path}'") from exc
        return Operation("file", path, content=data)
    if key == "lfsFile":
        if value.get("algo", "sha256") != "sha256":
            raise HubError(400, f"Unsupported LFS hash algorithm {value.get('algo')!r}")
        return Operation("lfsFile", path, oid=value.get("oid"), size=value.get("size"))
    if key in ("deletedFile", "deletedFolder"):
        return Operation(key, path)
    raise HubError(400, f"Unknown commit line key {key!r}")


def parse_commit_payload(body: bytes) -> tuple[dict[str, Any], list[Operation]]:
    """Split an ndjson commit body into its header value and its operations."""
    header: dict[str, Any] | None = None
    operations: list[Operation] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise HubError(400, f"Invalid ndjson line in commit: {exc}") from exc
        if item.get("key") == "header":
            header = item.get("value") or {}
        else:
            operations.append(_operation(item.get("key"), item.get("value") or {}))
    if header is None or not header.get("summary"):
        raise HubError(400, "The commit needs a header line with a non-empty 'summary'")
    return header, operations


@router.route("POST", f"/api/{API_REPO}/commit/(?P<rev>.+)")
def commit(context: Context, request: Request) -> Response:
    """Create a commit from an ndjson body; `create_pr=1` puts it on a new `refs/pr/N` instead."""
    repo = find_repo(context, request, write=True)
    header, operations = parse_commit_payload(request.body)
    assert request.identity is not None
    result = context.store.commit(
        repo,
        unquote(request.groups["rev"]),
        operations,
        title=header["summary"],
        description=header.get("description") or "",
        author=request.identity.name,
        parent_commit=header.get("parentCommit"),
        create_pr=request.flag("create_pr"),
    )
    url = repo_url(request.base_url, repo)
    pr = result.pull_request
    return json_response(
        {
            "success": True,
            "commitUrl": f"{url}/commit/{result.commit.id}",
            "commitOid": result.commit.id,
            "pullRequestUrl": f"{url}/discussions/{pr.num}" if pr else None,
        }
    )


@router.route("GET", f"/api/{API_REPO}/xet-(?P<kind>read|write)-token/(?P<rev>.+)")
def xet_token(context: Context, request: Request) -> Response:
    """Refuse Xet: this server only speaks LFS, so clients must run with `HF_HUB_DISABLE_XET=1`."""
    raise HubError(501, "This local Hub does not support Xet storage; set HF_HUB_DISABLE_XET=1 before import")


def _batch_object(context: Context, request: Request, repo_path: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Answer one object of an LFS batch: no `actions` if stored, else a one-time upload URL and verify URL."""
    oid, size = obj.get("oid"), obj.get("size")
    if not (isinstance(oid, str) and _SHA256_RE.match(oid) and isinstance(size, int) and size >= 0):
        bad_size = size if isinstance(size, int) else 0
        return {"oid": str(oid), "size": bad_size, "error": {"code": 422, "message": "Invalid oid or size"}}
    with context.store.lock:
        stored = context.store.lfs_objects.get(oid)
        if stored is not None and len(stored) == size:
            return {"oid": oid, "size": size}
        ticket = secrets.token_urlsafe(24)
        context.lfs_tickets[ticket] = (oid, size)
    base = request.base_url
    return {
        "oid": oid,
        "size": size,
        "authenticated": True,
        "actions": {
            "upload": {"href": f"{base}/lfs-storage/{oid}?ticket={ticket}", "header": {}},
            "verify": {"href": f"{base}/{repo_path}.git/info/lfs/objects/verify", "header": {}},
        },
    }


@router.route("POST", f"/{WEB_REPO}\\.git/info/lfs/objects/batch")
def lfs_batch(context: Context, request: Request) -> Response:
    """Git LFS batch API (basic transfer): hand out pre-signed-style upload URLs for missing objects."""
    repo = find_repo(context, request, write=True)
    body = request.json()
    if body.get("operation") != "upload":
        raise HubError(400, "Only the LFS 'upload' operation is supported")
    repo_path = f"{url_prefix(repo.repo_type)}{repo.repo_id}"
    objects = [_batch_object(context, request, repo_path, obj) for obj in body.get("objects", [])]
    return json_response({"transfer": "basic", "objects": objects}, content_type=LFS_CONTENT_TYPE)


@router.route("PUT", "/lfs-storage/(?P<oid>[0-9a-f]{64})")
def lfs_store_object(context: Context, request: Request) -> Response:
    """Receive LFS content at the upload URL: no Authorization, the one-time `ticket` is the credential."""
    oid = request.groups["oid"]
    ticket = request.arg("ticket") or ""
    with context.store.lock:
        expected = context.lfs_tickets.get(ticket)
    if expected is None or expected[0] != oid:
        raise HubError(403, "Invalid or expired upload URL")
    data = request.body
    if len(data) != expected[1] or hashlib.sha256(data).hexdigest() != oid:
        raise HubError(400, f"Uploaded content does not match oid {oid} and size {expected[1]}")
    with context.store.lock:
        context.store.lfs_objects[oid] = data
        context.lfs_tickets.pop(ticket, None)
    return Response(200, b"", {"ETag": f'"{oid}"'})


@router.route("POST", f"/{WEB_REPO}\\.git/info/lfs/objects/verify")
def lfs_verify(context: Context, request: Request) -> Response:
    """Confirm an LFS object arrived with the announced size; 404 otherwise."""
    find_repo(context, request, write=True)
    body = request.json()
    data = context.store.lfs_objects.get(body.get("oid") or "")
    if data is None or len(data) != body.get("size"):
        raise HubError(404, f"LFS object {body.get('oid')} not found or has the wrong size")
    return json_response({"message": "Verified"}, content_type=LFS_CONTENT_TYPE)
