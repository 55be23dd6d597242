"""Endpoints for discussions / pull requests and for Space settings (secrets, variables, runtime)."""

from __future__ import annotations

from typing import Any

from .errors import HubError
from .model import Discussion, Repo, SpaceState, now_iso
from .protocol import (
    API_REPO,
    Context,
    Identity,
    Request,
    Response,
    Router,
    find_repo,
    json_response,
    require_write,
)
from .store import comment_event, new_event

router = Router()

DISCUSSIONS_PAGE_SIZE = 50
_DISCUSSION = f"/api/{API_REPO}/discussions/(?P<num>\\d+)"
_SPACE = "/api/(?P<type>spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"


# --- discussions and pull requests --------------------------------------------------------------


def discussion_payload(repo: Repo, discussion: Discussion, *, details: bool) -> dict[str, Any]:
    """Return a discussion as the list (`details=False`) or detail endpoint shows it."""
    data: dict[str, Any] = {
        "num": discussion.num,
        "title": discussion.title,
        "status": discussion.status,
        "isPullRequest": discussion.is_pull_request,
        "createdAt": discussion.created_at,
        "author": {"name": discussion.author, "type": "user"},
        "repo": {"name": repo.repo_id, "type": repo.repo_type},
        "pinned": False,
        "numComments": sum(1 for event in discussion.events if event["type"] == "comment"),
    }
    if details:
        data["events"] = discussion.events
        if discussion.is_pull_request:
            changes: dict[str, Any] = {"base": f"refs/heads/{discussion.target_branch}"}
            if discussion.merge_commit:
                changes["mergeCommitId"] = discussion.merge_commit
            data["changes"] = changes
            data["filesWithConflicts"] = []
    return data


def _writer(request: Request) -> Identity:
    """Return the caller if it holds a write token (any namespace may open or comment on discussions)."""
    if request.identity is None:
        raise HubError(401, "You must be authenticated with a token to perform this action")
    return require_write(request, request.identity.name)


def _find_discussion(context: Context, request: Request) -> tuple[Repo, Discussion]:
    repo = find_repo(context, request)
    discussion = repo.discussion(int(request.groups["num"]))
    if discussion is None:
        raise HubError(404, f"Discussion #{request.groups['num']} not found")
    return repo, discussion


@router.route("GET", f"/api/{API_REPO}/discussions")
def list_discussions(context: Context, request: Request) -> Response:
    """List discussions, filtered by `type`, `status` and `author`, 50 per page `p` (`get_repo_discussions`)."""
    repo = find_repo(context, request)
    kind, status, author = request.arg("type", "all"), request.arg("status", "all"), request.arg("author")
    selected = [
        d
        for d in reversed(repo.discussions)
        if (kind == "all" or d.is_pull_request == (kind == "pull_request"))
        and (status == "all" or d.status == status)
        and (author is None or d.author == author)
    ]
    start = int(request.arg("p") or 0) * DISCUSSIONS_PAGE_SIZE
    page = selected[start : start + DISCUSSIONS_PAGE_SIZE]
    return json_response(
        {
            "discussions": [discussion_payload(repo, d, details=False) for d in page],
            "count": len(selected),
            "start": start,
            "numClosedDiscussions": sum(1 for d in repo.discussions if d.status == "closed"),
        }
    )


@router.route("POST", f"/api/{API_REPO}/discussions")
def create_discussion(context: Context, request: Request) -> Response:
    """Open a discussion, or a draft PR whose `refs/pr/N` starts at main.

    Used by `create_discussion` and `create_pull_request`.
    """
    repo = find_repo(context, request)
    identity = _writer(request)
    body = request.json()
    title = (body.get("title") or "").strip()
    if len(title) < 3:
        raise HubError(400, "The title must be at least 3 characters long")
    pull_request = bool(body.get("pullRequest"))
    discussion = context.store.open_discussion(
        repo,
        title,
        body.get("description") or "",
        identity.name,
        pull_request=pull_request,
        status="draft" if pull_request else "open",
    )
    return json_response({"num": discussion.num, "pullRequest": pull_request})


@router.route("GET", _DISCUSSION)
def discussion_details(context: Context, request: Request) -> Response:
    """Return a discussion with its events and, for PRs, `changes.base` (`get_discussion_details`)."""
    repo, discussion = _find_discussion(context, request)
    return json_response(discussion_payload(repo, discussion, details=True))


@router.route("POST", f"{_DISCUSSION}/comment")
def comment(context: Context, request: Request) -> Response:
    """Add a comment (`comment_discussion`)."""
    _, discussion = _find_discussion(context, request)
    identity = _writer(request)
    event = comment_event(identity.name, request.json().get("comment") or "")
    discussion.events.append(event)
    return json_response({"newMessage": event})


@router.route("POST", f"{_DISCUSSION}/status")
def change_status(context: Context, request: Request) -> Response:
    """Open or close a discussion (`change_discussion_status`); only its author or the repo owner may."""
    repo, discussion = _find_discussion(context, request)
    identity = _writer(request)
    if identity.name not in (discussion.author, repo.namespace):
        raise HubError(403, "Only the author or the repo owner can change the status")
    body = request.json()
    status = body.get("status")
    if status not in ("open", "closed"):
        raise HubError(400, "status must be 'open' or 'closed'")
    if body.get("comment"):
        discussion.events.append(comment_event(identity.name, body["comment"]))
    discussion.status = status
    event = new_event("status-change", identity.name, {"status": status})
    discussion.events.append(event)
    return json_response({"newStatus": event})


@router.route("POST", f"{_DISCUSSION}/title")
def rename(context: Context, request: Request) -> Response:
    """Rename a discussion (`rename_discussion`)."""
    _, discussion = _find_discussion(context, request)
    identity = _writer(request)
    new_title = request.json().get("title") or ""
    event = new_event("title-change", identity.name, {"from": discussion.title, "to": new_title})
    discussion.title = new_title
    discussion.events.append(event)
    return json_response({"newTitle": event})


@router.route("POST", f"{_DISCUSSION}/merge")
def merge(context: Context, request: Request) -> Response:
    """Squash-merge a PR into its target branch (`merge_pull_request`); repo owner only."""
    repo, discussion = _find_discussion(context, request)
    identity = require_write(request, repo.namespace)
    if request.json().get("comment"):
        discussion.events.append(comment_event(identity.name, request.json()["comment"]))
    merged = context.store.merge(repo, discussion, identity.name)
    return json_response({"mergeCommitId": merged.id})


# --- Spaces -------------------------------------------------------------------------------------


def _space(context: Context, request: Request, *, write: bool) -> SpaceState:
    repo = find_repo(context, request, write=write)
    assert repo.space is not None
    return repo.space


def _variables_payload(space: SpaceState) -> dict[str, Any]:
    return {
        key: {"value": item["value"], "description": item.get("description"), "updatedAt": item.get("updatedAt")}
        for key, item in space.variables.items()
    }


def _upsert(target: dict[str, dict[str, Any]], body: dict[str, Any]) -> None:
    """Store `{key, value, description}` from a request body; 400 without a key."""
    key = body.get("key")
    if not key:
        raise HubError(400, "Missing 'key'")
    target[key] = {"value": body.get("value", ""), "description": body.get("description"), "updatedAt": now_iso()}


@router.route("GET", f"{_SPACE}/secrets")
def get_secrets(context: Context, request: Request) -> Response:
    """List secret keys with description and date, never values (`get_space_secrets`)."""
    space = _space(context, request, write=True)
    return json_response(
        {k: {"description": v.get("description"), "updatedAt": v.get("updatedAt")} for k, v in space.secrets.items()}
    )


@router.route("POST", f"{_SPACE}/secrets")
def add_secret(context: Context, request: Request) -> Response:
    """Create or update a secret (`add_space_secret`)."""
    _upsert(_space(context, request, write=True).secrets, request.json())
    return json_response({})


@router.route("DELETE", f"{_SPACE}/secrets")
def delete_secret(context: Context, request: Request) -> Response:
    """Delete a secret by JSON `key` (`delete_space_secret`)."""
    _space(context, request, write=True).secrets.pop(request.json().get("key"), None)
    return json_response({})


@router.route("GET", f"{_SPACE}/variables")
def get_variables(context: Context, request: Request) -> Response:
    """Return all variables with values (`get_space_variables`)."""
    return json_response(_variables_payload(_space(context, request, write=True)))


@router.route("POST", f"{_SPACE}/variables")
def add_variable(context: Context, request: Request) -> Response:
    """Create or update a variable and return the whole map (`add_space_variable`)."""
    space = _space(context, request, write=True)
    _upsert(space.variables, request.json())
    return json_response(_variables_payload(space))


@router.route("DELETE", f"{_SPACE}/variables")
def delete_variable(context: Context, request: Request) -> Response:
    """Delete a variable by JSON `key` and return the remaining map (`delete_space_variable`)."""
    space = _space(context, request, write=True)
    space.variables.pop(request.json().get("key"), None)
    return json_response(_variables_payload(space))


@router.route("GET", f"{_SPACE}/runtime")
def runtime(context: Context, request: Request) -> Response:
    """Return stage, hardware and sleep time (`get_space_runtime`)."""
    return json_response(_space(context, request, write=False).runtime())


@router.route("POST", f"{_SPACE}/hardware")
def request_hardware(context: Context, request: Request) -> Response:
    """Switch hardware at once (`request_space_hardware`); `sleepTimeSeconds` is optional."""
    space = _space(context, request, write=True)
    body = request.json()
    if not body.get("flavor"):
        raise HubError(400, "Missing 'flavor'")
    space.hardware = space.requested_hardware = body["flavor"]
    if body.get("sleepTimeSeconds") is not None:
        space.sleep_time = int(body["sleepTimeSeconds"])
    return json_response(space.runtime())


@router.route("POST", f"{_SPACE}/sleeptime")
def set_sleep_time(context: Context, request: Request) -> Response:
    """Set the sleep time in seconds (`set_space_sleep_time`)."""
    space = _space(context, request, write=True)
    space.sleep_time = int(request.json().get("seconds"))
    return json_response(space.runtime())


@router.route("POST", f"{_SPACE}/(?P<action>pause|restart)")
def pause_or_restart(context: Context, request: Request) -> Response:
    """Pause a Space or start it again (`pause_space`, `restart_space`)."""
    space = _space(context, request, write=True)
    space.stage = "PAUSED" if request.groups["action"] == "pause" else "RUNNING"
    return json_response(space.runtime())
