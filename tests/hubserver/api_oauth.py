"""Sign in with Hugging Face: the OpenID Connect provider a Space with `hf_oauth: true` talks to.

A Space gets `OPENID_PROVIDER_URL`, `OAUTH_CLIENT_ID`, `OAUTH_CLIENT_SECRET` and `OAUTH_SCOPES`;
Gradio's login routes (authlib) then run the authorization-code flow against these endpoints:

* `GET /.well-known/openid-configuration`: the discovery document authlib reads first;
* `GET /oauth/authorize`: the consent page (here: a form with the user name to sign in as), and
  `POST /oauth/authorize`: "Authorize", a 302 back to `redirect_uri` with `code` and `state`;
* `POST /oauth/token`: the code for an access token (a Hub token of that user, so the app can
  act for them) and an RS256-signed `id_token` carrying `nonce`, `preferred_username`, `name`...;
* `GET /oauth/jwks`: the public key the `id_token` is checked with; `GET /oauth/userinfo`.

Only registered clients (`HubServer.register_oauth_app`) and their exact redirect URI's origin
are accepted; a code works once.
"""

from __future__ import annotations

import base64
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .errors import HubError
from .protocol import Context, Request, Response, Router, json_response

router = Router()

#: lifetime of an access token, as the Hub gives it (8 hours)
TOKEN_SECONDS = 8 * 3600
KEY_ID = "hub-oidc-1"


@dataclass
class OAuthState:
    """Registered apps, codes waiting to be exchanged, and the signing key (made on first use)."""

    clients: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _key: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self) -> Any:
        with self._lock:
            if self._key is None:
                from joserfc.jwk import RSAKey

                self._key = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"},
                                                private=True)
            return self._key


@router.route("GET", "/.well-known/openid-configuration")
def discovery(context: Context, request: Request) -> Response:
    base = request.base_url
    return json_response({
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "read-repos", "write-repos", "manage-repos",
                             "inference-api"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    })


@router.route("GET", "/oauth/jwks")
def jwks(context: Context, request: Request) -> Response:
    return json_response({"keys": [context.oauth.key().as_dict(private=False)]})


def _client_and_redirect(context: Context, client_id: str | None, redirect_uri: str | None) -> tuple[str, str]:
    if not client_id or client_id not in context.oauth.clients:
        raise HubError(400, "Unknown client_id")
    if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
        raise HubError(400, "Invalid redirect_uri")
    return client_id, redirect_uri


_PAGE = """<!doctype html>
<html><head><title>Sign in with Hugging Face</title></head>
<body>
<h1>Authorize {client}</h1>
<p>The app asks for: {scope}</p>
<form method="post" action="/oauth/authorize">
{hidden}
<label>Sign in as <input name="username" id="oauth-username" autocomplete="off"></label>
<button type="submit" id="oauth-authorize">Authorize</button>
</form>
</body></html>
"""


@router.route("GET", "/oauth/authorize")
def authorize_page(context: Context, request: Request) -> Response:
    """The consent page: a form that posts the request back with the user to sign in as."""
    client_id, _ = _client_and_redirect(context, request.arg("client_id"), request.arg("redirect_uri"))
    if request.arg("response_type") != "code":
        raise HubError(400, "Only response_type=code is supported")
    keep = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method")
    hidden = "\n".join(f'<input type="hidden" name="{k}" value="{html.escape(request.arg(k) or "")}">'
                       for k in keep if request.arg(k) is not None)
    page = _PAGE.format(client=html.escape(client_id), scope=html.escape(request.arg("scope") or ""), hidden=hidden)
    return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


@router.route("POST", "/oauth/authorize")
def authorize(context: Context, request: Request) -> Response:
    """"Authorize": remember a one-time code for this user and send the browser back to the app."""
    form = {k: v[0] for k, v in request.form().items()}
    _, redirect_uri = _client_and_redirect(context, form.get("client_id"), form.get("redirect_uri"))
    username = (form.get("username") or "").strip()
    if not username:
        raise HubError(400, "Type the user to sign in as")
    code = secrets.token_urlsafe(24)
    context.oauth.codes[code] = {"client_id": form["client_id"], "redirect_uri": redirect_uri,
                                   "username": username, "scope": form.get("scope", ""),
                                   "nonce": form.get("nonce"), "issued": time.time()}
    query = {"code": code, **({"state": form["state"]} if form.get("state") else {})}
    separator = "&" if "?" in redirect_uri else "?"
    return Response(302, b"", {"Location": f"{redirect_uri}{separator}{urlencode(query)}"})


def _client_credentials(context: Context, request: Request, form: dict[str, str]) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if context.oauth.clients.get(client_id) != secret or not secret:
        raise HubError(401, "Invalid client credentials")
    return client_id


def _claims(username: str, base_url: str) -> dict[str, Any]:
    return {"sub": f"id-{username}", "name": username.title(), "preferred_username": username,
            "profile": f"{base_url}/{username}", "picture": f"{base_url}/avatars/{username}.png",
            "website": None, "email": f"{username}@example.com", "email_verified": True}


@router.route("POST", "/oauth/token")
def token(context: Context, request: Request) -> Response:
    """Exchange a code for an access token (a Hub token of the user) and a signed id_token."""
    from joserfc import jwt

    form = {k: v[0] for k, v in request.form().items()}
    client_id = _client_credentials(context, request, form)
    if form.get("grant_type") != "authorization_code":
        return json_response({"error": "unsupported_grant_type"}, 400)
    grant = context.oauth.codes.pop(form.get("code", ""), None)
    if grant is None or grant["client_id"] != client_id or grant["redirect_uri"] != form.get("redirect_uri"):
        return json_response({"error": "invalid_grant"}, 400)
    access = f"hf_oauth_{secrets.token_hex(16)}"
    context.tokens[access] = (grant["username"], "write")
    now = int(time.time())
    claims = {"iss": request.base_url, "aud": client_id, "iat": now, "exp": now + TOKEN_SECONDS,
              "auth_time": int(grant["issued"]), **_claims(grant["username"], request.base_url)}
    if grant["nonce"]:
        claims["nonce"] = grant["nonce"]
    key = context.oauth.key()
    id_token = jwt.encode({"alg": "RS256", "kid": KEY_ID}, claims, key)
    return json_response({"access_token": access, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
                          "scope": grant["scope"], "id_token": id_token})


@router.route("GET", "/oauth/userinfo")
def userinfo(context: Context, request: Request) -> Response:
    if request.identity is None:
        raise HubError(401, "Invalid credentials in Authorization header")
    return json_response(_claims(request.identity.name, request.base_url))
