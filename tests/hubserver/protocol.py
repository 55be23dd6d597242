"""HTTP plumbing shared by the endpoint modules: requests, responses, routing, auth and repo lookup."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from .errors import HubError, repo_not_found, revision_not_found
from .model import Commit, Repo, url_prefix
from .store import HubStore

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

# `{type}s/{namespace}/{name}` in `/api/...` paths, and the web form (`datasets/ns/name`, `ns/name`).
API_REPO = r"(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
WEB_REPO = r"(?:(?P<prefix>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)"


@dataclass(frozen=True)
class Identity:
    """The user a token belongs to and its role (`write` or `read`)."""

    name: str
    role: str


@dataclass
class Context:
    """Server-wide state every endpoint can reach."""

    store: HubStore
    tokens: dict[str, tuple[str, str]]
    lfs_tickets: dict[str, tuple[str, int]] = field(default_factory=dict)
    tree_page_size: int = 1000
    expanded_tree_page_size: int = 50
    commits_page_size: int = 50
    #: Sign in with Hugging Face (api_oauth.OAuthState): registered apps, pending codes, the key
    oauth: Any = None


@dataclass
class Request:
    """A parsed request; `identity` is None when no token was sent."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    identity: Identity | None = None
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.target.split("?", 1)[1], keep_blank_values=True) if "?" in self.target else {}

    def arg(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of query parameter `name`."""
        return self.query.get(name, [default])[0]

    def flag(self, name: str) -> bool:
        """Return True if query parameter `name` is `1` or `true`."""
        return (self.arg(name) or "").lower() in ("1", "true")

    def json(self) -> Any:
        """Return the body parsed as JSON (`{}` when empty); 400 if it is not JSON."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HubError(400, f"Request body is not valid JSON: {exc}") from exc

    def form(self) -> dict[str, list[str]]:
        """Return a form-encoded body (`a=1&a=2`) as lists of values."""
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def repo_key(self) -> tuple[str, str]:
        """Return (repo_type, repo_id) from the `type`/`prefix`, `ns` and `name` path groups."""
        kind = self.groups.get("type") or self.groups.get("prefix") or "models"
        return kind.removesuffix("s"), f"{self.groups['ns']}/{self.groups['name']}"


@dataclass
class Response:
    """What an endpoint returns; the server adds `Content-Length` and drops the body for HEAD."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> Response:
    """Return `data` serialized as JSON."""
    return Response(status, json.dumps(data).encode(), {"Content-Type": content_type, **(headers or {})})


Handler = Callable[[Context, Request], Response]


class Router:
    """A list of (method, path regex, handler); each endpoint module owns one."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register the decorated function for `method` on paths that fully match `pattern`."""

        def decorator(handler: Handler) -> Handler:
            self.routes.append((method, re.compile(f"^{pattern}$"), handler))
            return handler

        return decorator


def identify(context: Context, headers: dict[str, str]) -> Identity | None:
    """Return who the `Authorization: Bearer` token belongs to; 401 if the token is unknown."""
    auth = headers.get("authorization")
    if not auth or auth.lower().startswith("basic "):
        return None  # no token; Basic is an OAuth client's credentials (POST /oauth/token)
    token = auth.removeprefix("Bearer ").strip()
    if token not in context.tokens:
        raise HubError(401, INVALID_CREDENTIALS)
    name, role = context.tokens[token]
    return Identity(name, role)


def require_write(request: Request, namespace: str) -> Identity:
    """Return the caller if it may write under `namespace`: 401 without a token, 403 for read tokens or others."""
    identity = request.identity
    if identity is None:
        raise HubError(401, "You must be authenticated with a token to perform this action")
    if identity.role != "write":
        raise HubError(403, "You don't have write access: this token has the 'read' role")
    if identity.name != namespace:
        raise HubError(403, f"You don't have the rights to write to the '{namespace}' namespace")
    return identity


def find_repo(context: Context, request: Request, *, write: bool = False) -> Repo:
    """Return the repo named by the path; 404/401 `RepoNotFound` if missing or private to someone else."""
    repo_type, repo_id = request.repo_key()
    repo = context.store.get(repo_type, repo_id)
    identity = request.identity
    if repo is None or (repo.private and (identity is None or identity.name != repo.namespace)):
        raise repo_not_found(repo_id, authenticated=identity is not None)
    if write:
        require_write(request, repo.namespace)
    return repo


def find_commit(repo: Repo, revision: str) -> Commit:
    """Return the commit `revision` points to; 404 `RevisionNotFound` otherwise."""
    commit_id = repo.resolve(revision)
    if commit_id is None:
        raise revision_not_found(revision)
    return repo.commits[commit_id]


def split_revision(rest: str) -> tuple[str, str]:
    """Split `{rev}/{path}` from a URL: the revision is one encoded segment, or a bare `refs/xx/name`."""
    parts = rest.split("/")
    if unquote(parts[0]) == "refs" and len(parts) >= 3:
        return unquote("/".join(parts[:3])), unquote("/".join(parts[3:]))
    return unquote(parts[0]), unquote("/".join(parts[1:]))


def repo_url(base_url: str, repo: Repo) -> str:
    """Return the web URL of a repo, which the client parses back into type and id."""
    return f"{base_url}/{url_prefix(repo.repo_type)}{repo.repo_id}"
