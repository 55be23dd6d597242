"""The one exception type of the local Hub: an HTTP error the client must be able to map."""

from __future__ import annotations


class HubError(Exception):
    """Raised anywhere in the server to answer with an error status, headers and a JSON body.

    `code` becomes the `X-Error-Code` header (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, ...),
    which is what `huggingface_hub.utils.hf_raise_for_status` uses to pick the exception class.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.body = dict(body or {})

    def response_headers(self) -> dict[str, str]:
        """Return the headers to send with this error (`X-Error-Code` and `X-Error-Message` included)."""
        headers = {"X-Error-Message": self.message, **self.headers}
        if self.code is not None:
            headers["X-Error-Code"] = self.code
        return headers

    def response_body(self) -> dict:
        """Return the JSON body to send with this error."""
        return {"error": self.message, **self.body}


def repo_not_found(repo_id: str, *, authenticated: bool) -> HubError:
    """Build the error for a missing repo, or a private one the caller cannot see (401 without a token)."""
    return HubError(
        404 if authenticated else 401,
        f"Repository not found: {repo_id}",
        code="RepoNotFound",
    )


def revision_not_found(revision: str) -> HubError:
    """Build the error for a branch, tag, commit or PR ref that does not exist."""
    return HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")


def entry_not_found(path: str, commit_id: str) -> HubError:
    """Build the error for a missing file; `X-Repo-Commit` lets the client cache the miss."""
    return HubError(
        404,
        f"Entry not found: {path}",
        code="EntryNotFound",
        headers={"X-Repo-Commit": commit_id},
    )
