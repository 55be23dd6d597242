"""Endpoints about accounts and whole repos: whoami, YAML validation, create/delete/settings, repo info."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import yaml

from .errors import HubError
from .model import REPO_TYPES, Blob, Commit, Repo, parse_card_data
from .protocol import (
    API_REPO,
    INVALID_CREDENTIALS,
    Context,
    Request,
    Response,
    Router,
    find_commit,
    find_repo,
    json_response,
    repo_url,
    require_write,
)

router = Router()

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
SPACE_SDKS = ("gradio", "docker", "static", "streamlit")


@router.route("GET", "/api/agent-harnesses")
def agent_harnesses(context: Context, request: Request) -> Response:
    """Answer the user-agent probe the client sends once at start-up with an empty registry."""
    return json_response({"standardEnvVars": [], "harnesses": {}})


@router.route("GET", "/api/whoami-v2")
def whoami(context: Context, request: Request) -> Response:
    """Describe the token's user (`HfApi.whoami`); 401 without a valid token."""
    identity = request.identity
    if identity is None:
        raise HubError(401, INVALID_CREDENTIALS)
    return json_response(
        {
            "type": "user",
            "id": identity.name,
            "name": identity.name,
            "fullname": identity.name.title(),
            "email": f"{identity.name}@example.com",
            "emailVerified": True,
            "isPro": False,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test token", "role": identity.role}},
        }
    )


@router.route("POST", "/api/validate-yaml")
def validate_yaml(context: Context, request: Request) -> Response:
    """Check the YAML front matter of a README before a commit adds it; 400 with `errors` if it is invalid."""
    content = request.json().get("content", "")
    try:
        parse_card_data(content.encode())
    except yaml.YAMLError as exc:
        return json_response({"errors": [{"message": f"Invalid YAML: {exc}"}], "warnings": []}, status=400)
    return json_response({"errors": [], "warnings": []})


@router.route("POST", "/api/repos/create")
def create_repo(context: Context, request: Request) -> Response:
    """Create a repo with an initial commit; 409 (with `url`, which `exist_ok=True` reads) if it exists."""
    body = request.json()
    repo_type = body.get("type") or "model"
    name = body.get("name") or ""
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type '{repo_type}'")
    if not _NAME_RE.match(name) or "--" in name or ".." in name:
        raise HubError(400, f"Invalid repo name '{name}'")
    identity = request.identity
    namespace = body.get("organization") or (identity.name if identity else "")
    require_write(request, namespace)
    repo_id = f"{namespace}/{name}"
    sdk = body.get("sdk")
    if repo_type == "space" and sdk not in SPACE_SDKS:
        raise HubError(400, f"Invalid or missing 'sdk' for a Space: {sdk!r}; expected one of {SPACE_SDKS}")
    private = body.get("visibility", "private" if body.get("private") else "public") != "public"
    existing = context.store.get(repo_type, repo_id)
    if existing is not None:
        url = repo_url(request.base_url, existing)
        raise HubError(409, f"You already created this {repo_type} repo", body={"url": url})
    repo = context.store.create_repo(repo_type, repo_id, private=private, author=namespace, space_sdk=sdk)
    if repo.space is not None:
        _apply_space_options(repo, body)
    return json_response({"url": repo_url(request.base_url, repo), "name": repo_id, "id": repo_id})


def _apply_space_options(repo: Repo, body: dict[str, Any]) -> None:
    """Store the optional Space settings `create_repo` can send: hardware, sleep time, secrets, variables."""
    space = repo.space
    assert space is not None
    if body.get("hardware"):
        space.hardware = space.requested_hardware = body["hardware"]
    if body.get("sleepTimeSeconds") is not None:
        space.sleep_time = int(body["sleepTimeSeconds"])
    for target, items in ((space.secrets, body.get("secrets")), (space.variables, body.get("variables"))):
        for item in items or []:
            target[item["key"]] = {"value": item.get("value", ""), "description": item.get("description")}


@router.route("DELETE", "/api/repos/delete")
def delete_repo(context: Context, request: Request) -> Response:
    """Delete a repo (`delete_repo`); 404 `RepoNotFound` if it does not exist."""
    body = request.json()
    identity = request.identity
    namespace = body.get("organization") or (identity.name if identity else "")
    repo_id = f"{namespace}/{body.get('name')}"
    require_write(request, namespace)
    if not context.store.delete_repo(body.get("type") or "model", repo_id):
        raise HubError(404, f"Repository not found: {repo_id}", code="RepoNotFound")
    return json_response({})


@router.route("PUT", f"/api/{API_REPO}/settings")
def update_settings(context: Context, request: Request) -> Response:
    """Change visibility (`private` or `visibility`) and gating (`update_repo_settings`)."""
    repo = find_repo(context, request, write=True)
    body = request.json()
    if "private" in body:
        repo.private = bool(body["private"])
    if "visibility" in body:
        repo.private = body["visibility"] != "public"
    if "gated" in body:
        repo.gated = body["gated"]
    return json_response({"private": repo.private, "gated": repo.gated})


def repo_info_payload(repo: Repo, commit: Commit, *, with_siblings: bool = True) -> dict[str, Any]:
    """Return the repo info object: `sha`, `private`, `cardData`, `siblings`, and `sdk`/`runtime` for Spaces."""
    info: dict[str, Any] = {
        "_id": repo.repo_id,
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": commit.id,
        "private": repo.private,
        "gated": repo.gated,
        "disabled": False,
        "createdAt": repo.created_at,
        "lastModified": commit.date,
        "tags": [],
        "downloads": 0,
        "likes": 0,
        "usedStorage": sum(blob.size for blob in commit.files.values()),
    }
    if repo.repo_type == "model":
        info["modelId"] = repo.repo_id
    readme = commit.files.get("README.md")
    card = _safe_card_data(readme.data) if readme else None
    if card is not None:
        info["cardData"] = card
    if with_siblings:
        info["siblings"] = [_sibling(path, blob) for path, blob in sorted(commit.files.items())]
    if repo.space is not None:
        info["sdk"] = repo.space.sdk
        info["runtime"] = repo.space.runtime()
        info["subdomain"] = repo.repo_id.replace("/", "-").lower()
    return info


def _safe_card_data(readme: bytes) -> dict[str, Any] | None:
    try:
        return parse_card_data(readme)
    except yaml.YAMLError:
        return None


def _sibling(path: str, blob: Blob) -> dict[str, Any]:
    sibling: dict[str, Any] = {"rfilename": path, "size": blob.size, "blobId": blob.oid}
    if blob.lfs:
        sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
    return sibling


@router.route("GET", f"/api/{API_REPO}")
def repo_info(context: Context, request: Request) -> Response:
    """Return info about the head of `main` (`repo_info`, `dataset_info`, `model_info`, `space_info`)."""
    repo = find_repo(context, request)
    return json_response(repo_info_payload(repo, find_commit(repo, "main")))


@router.route("GET", f"/api/{API_REPO}/revision/(?P<rev>.+)")
def repo_info_at_revision(context: Context, request: Request) -> Response:
    """Return info about a repo at a revision (`repo_info(revision=...)`, used by `datasets`)."""
    repo = find_repo(context, request)
    return json_response(repo_info_payload(repo, find_commit(repo, unquote(request.groups["rev"]))))


@router.route("GET", "/api/(?P<kinds>models|datasets|spaces)")
def list_repos(context: Context, request: Request) -> Response:
    """List the repos of a type the caller can see, filtered by `author` and `search` (`list_datasets` ...)."""
    repo_type = request.groups["kinds"].removesuffix("s")
    author, search = request.arg("author"), request.arg("search")
    identity = request.identity
    with context.store.lock:
        repos = [r for (kind, _), r in sorted(context.store.repos.items()) if kind == repo_type]
    visible = [
        r
        for r in repos
        if (not r.private or (identity is not None and identity.name == r.namespace))
        and (author is None or r.namespace == author)
        and (search is None or search.lower() in r.repo_id.lower())
    ]
    return json_response([repo_info_payload(r, r.commits[r.branches["main"]], with_siblings=False) for r in visible])
