"""A local stand-in for the Hugging Face Hub that the real `huggingface_hub` and `datasets` clients talk to.

Point a client at it with `HF_ENDPOINT=<server.url>` (plus `HF_TOKEN`, and `HF_HUB_DISABLE_XET=1`
because only the LFS transfer is implemented), set before the client is imported. The protocol it
speaks is described in `docs/HUB_PROTOCOL.md`.

>>> server = HubServer().start()
>>> server.repo_exists("user/demo")
False
>>> server.stop()
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import api_community, api_git, api_oauth, api_repos, api_upload
from .errors import HubError
from .model import Repo
from .protocol import Context, Handler, Request, Response, identify, json_response
from .store import HubStore

logger = logging.getLogger(__name__)

DEFAULT_TOKENS: dict[str, tuple[str, str]] = {"hf_testtoken_write": ("user", "write")}
ROUTES = [
    *api_repos.router.routes,
    *api_git.router.routes,
    *api_upload.router.routes,
    *api_community.router.routes,
    *api_oauth.router.routes,
]


def route(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    """Return the handler and path groups for a request; HEAD is served by the GET handler."""
    method = "GET" if method == "HEAD" else method
    for candidate, pattern, handler in ROUTES:
        match = pattern.match(path)
        if candidate == method and match:
            return handler, {k: v for k, v in match.groupdict().items() if v is not None}
    return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer


class _Handler(BaseHTTPRequestHandler):
    """Reads each request fully, dispatches it, and always answers with a `Content-Length`."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        """Read the body, whether sent with `Content-Length` or `Transfer-Encoding: chunked`."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"method": self.command, "path": self.path, "headers": headers, "body": body}
        if self.server.hub.take_fault(self.command, self.path):
            # a network failure: the request arrived, the connection drops, no answer, no state change
            entry["status"] = None
            self.server.hub.record(entry)
            self.close_connection = True
            return
        response = self.server.hub.handle(self.command, self.path, headers, body)
        entry["status"] = response.status
        self.server.hub.record(entry)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class HubServer:
    """The local Hub: start it, point clients at `url`, then inspect what they did.

    Args:
        tokens: valid tokens mapped to (username, role), role being `"write"` or `"read"`.
        host, port: where to listen; port 0 picks a free port.

    Lower `server.context.tree_page_size` (and `expanded_tree_page_size`, `commits_page_size`) to make
    the clients follow `Link` pagination with a handful of entries.
    """

    def __init__(
        self, tokens: dict[str, tuple[str, str]] | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.context = Context(store=HubStore(), tokens=dict(tokens if tokens is not None else DEFAULT_TOKENS),
                               oauth=api_oauth.OAuthState())
        self.host = host
        self.port = port
        self.url = ""
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> HubServer:
        """Bind, serve in a daemon thread and return self."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.hub = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=httpd.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        logger.info("local Hub listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling -----------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Turn one HTTP request into a response; errors become JSON bodies with `X-Error-*` headers."""
        base_url = f"http://{headers['host']}" if "host" in headers else self.url
        request = Request(method=method, target=target, headers=headers, body=body, base_url=base_url)
        try:
            found = route(method, request.path)
            if found is None:
                logger.warning("no route for %s %s", method, target)
                raise HubError(404, f"Not Found: {method} {request.path}")
            handler, request.groups = found
            request.identity = identify(self.context, headers)
            with self.context.store.lock:  # one request at a time sees and changes the state
                return handler(self.context, request)
        except HubError as error:
            return json_response(error.response_body(), error.status, error.response_headers())
        except Exception as exc:  # a bug in the server: report it to the client and the log
            logger.exception("error while serving %s %s", method, target)
            return json_response({"error": f"Internal error: {exc!r}"}, 500)

    def drop_connections(self, method: str, path_regex: str, *, times: int = 1) -> None:
        """Simulate a network failure: the next `times` requests matching `method` and `path_regex`
        (searched in the path with its query) get their connection closed with no response."""
        with self._log_lock:
            self._faults.append({"method": method.upper(), "pattern": re.compile(path_regex), "left": times})

    def take_fault(self, method: str, target: str) -> bool:
        """Return True (and use up one occurrence) if a planned failure matches this request."""
        with self._log_lock:
            for fault in self._faults:
                if fault["left"] > 0 and fault["method"] == method and fault["pattern"].search(target):
                    fault["left"] -= 1
                    return True
        return False

    def record(self, entry: dict[str, Any]) -> None:
        """Append one request to the log `request_log` returns."""
        with self._log_lock:
            self._log.append(entry)

    # --- introspection for tests ----------------------------------------------------------------

    def _repo(self, repo_id: str, repo_type: str) -> Repo:
        repo = self.context.store.get(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id!r}")
        return repo

    def _commit_id(self, repo: Repo, revision: str) -> str:
        commit_id = repo.resolve(revision)
        if commit_id is None:
            raise KeyError(f"no revision {revision!r} in {repo.repo_id}")
        return commit_id

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """Return every file of a repo at a revision (KeyError if the repo or revision is missing)."""
        with self.context.store.lock:
            repo = self._repo(repo_id, repo_type)
            commit = repo.commits[self._commit_id(repo, revision)]
            return {path: blob.data for path, blob in commit.files.items()}

    def lfs_files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> set[str]:
        """Return the paths stored through LFS at a revision."""
        with self.context.store.lock:
            repo = self._repo(repo_id, repo_type)
            commit = repo.commits[self._commit_id(repo, revision)]
            return {path for path, blob in commit.files.items() if blob.lfs}

    def commits(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> list[dict[str, str]]:
        """Return the history of a revision, newest first, as `{"id", "title", "message"}`."""
        with self.context.store.lock:
            repo = self._repo(repo_id, repo_type)
            return [
                {"id": c.id, "title": c.title, "message": c.message}
                for c in repo.history(self._commit_id(repo, revision))
            ]

    def pull_requests(self, repo_id: str, repo_type: str = "dataset") -> list[dict[str, Any]]:
        """Return the pull requests of a repo as `{"num", "ref", "title", "status"}`."""
        with self.context.store.lock:
            repo = self._repo(repo_id, repo_type)
            return [
                {"num": d.num, "ref": d.ref, "title": d.title, "status": d.status}
                for d in repo.discussions
                if d.is_pull_request
            ]

    def space_secrets(self, repo_id: str) -> dict[str, str]:
        """Return the secrets of a Space with their values (the API never returns them)."""
        with self.context.store.lock:
            space = self._repo(repo_id, "space").space
            assert space is not None
            return {key: item["value"] for key, item in space.secrets.items()}

    def space_variables(self, repo_id: str) -> dict[str, str]:
        """Return the variables of a Space."""
        with self.context.store.lock:
            space = self._repo(repo_id, "space").space
            assert space is not None
            return {key: item["value"] for key, item in space.variables.items()}

    def space_runtime(self, repo_id: str) -> dict[str, Any]:
        """Return the runtime object of a Space (stage, hardware, sleep time)."""
        with self.context.store.lock:
            space = self._repo(repo_id, "space").space
            assert space is not None
            return space.runtime()

    def register_oauth_app(self, client_id: str, secret: str) -> None:
        """Accept "Sign in with Hugging Face" for this client (a Space's OAUTH_CLIENT_ID/SECRET)."""
        self.context.oauth.clients[client_id] = secret

    def repo_exists(self, repo_id: str, repo_type: str = "dataset") -> bool:
        """Return True if the repo exists."""
        return self.context.store.get(repo_type, repo_id) is not None

    def request_log(self) -> list[dict[str, Any]]:
        """Return a copy of every request so far: `method`, `path` (with query), `headers`, `body`, `status`.

        Header names are lower-cased, so `"authorization" in entry["headers"]` is a reliable check.
        """
        with self._log_lock:
            return copy.deepcopy(self._log)
