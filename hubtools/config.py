"""Settings read from the environment, in one place: other modules import these."""

from __future__ import annotations

import logging
import os

__all__ = [
    "ADJUDICATORS",
    "ALLOWED_ENDPOINTS",
    "ALLOW_SERVER_TOKEN_FOR_INFERENCE",
    "ALLOW_SERVER_TOKEN_FOR_PUBLISH",
    "API_KEY",
    "APP_DIR",
    "CACHE_DIR",
    "HF_ENDPOINT",
    "HF_INFERENCE_ENDPOINT",
    "HF_TOKEN",
    "MAX_UPLOAD_MB",
    "OAUTH_AVAILABLE",
    "OPENAI_API_KEY",
    "REVIEWER_SECRETS",
    "SPACE_ID",
    "TEAM_REPO",
    "TEAM_SYNC_MINUTES",
    "VERBOSITY",
    "configure_logging",
]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}

#: HUBTOOLS_VERBOSITY: debug, info, warning (default) or error.
VERBOSITY = _LEVELS.get(os.environ.get("HUBTOOLS_VERBOSITY", "warning").lower(), logging.WARNING)
#: HUBTOOLS_MAX_UPLOAD_MB: largest file the app accepts (default 200).
MAX_UPLOAD_MB = int(os.environ.get("HUBTOOLS_MAX_UPLOAD_MB", "200"))
#: HUBTOOLS_CACHE: where generation keeps its on-disk completion cache (default ~/.cache/hubtools).
CACHE_DIR = os.path.expanduser(os.environ.get("HUBTOOLS_CACHE", "~/.cache/hubtools"))

# --- inference credentials (hubtools/generate/credentials.py decides which goes where) -----
#: HUBTOOLS_API_KEY: the key for a non-Hugging-Face --endpoint when --api-key is not given.
API_KEY = os.environ.get("HUBTOOLS_API_KEY") or None
#: OPENAI_API_KEY: sent only to endpoints on https://api.openai.com.
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY") or None
#: HF_ENDPOINT: the Hub's address; HF_TOKEN may be sent there (as to the Hub and its inference router).
HF_ENDPOINT = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
#: HF_INFERENCE_ENDPOINT: huggingface_hub's serverless inference address, an HF host too when set.
HF_INFERENCE_ENDPOINT = (os.environ.get("HF_INFERENCE_ENDPOINT") or "").rstrip("/") or None

# --- the app (hubtools/app) --------------------------------------------------------------
#: HF_TOKEN: a Hub token. The app uses it to publish when run outside a Space, and in team mode to
#: commit the annotations to TEAM_REPO. Never logged or shown.
HF_TOKEN = os.environ.get("HF_TOKEN") or None
#: SPACE_ID: set by Hugging Face Spaces ("owner/name"); None outside a Space.
SPACE_ID = os.environ.get("SPACE_ID") or None
#: True in a Space with "Sign in with Hugging Face" (SYSTEM=spaces and OAUTH_CLIENT_ID, i.e. ``hf_oauth: true``).
OAUTH_AVAILABLE = (os.environ.get("SYSTEM") == "spaces" and SPACE_ID is not None
                   and bool(os.environ.get("OAUTH_CLIENT_ID")))
#: HUBTOOLS_TEAM_REPO: the private dataset where team annotations are committed; setting it turns
#: team mode on. In a Space it defaults to "<space id>-reviews".
TEAM_REPO = os.environ.get("HUBTOOLS_TEAM_REPO") or (f"{SPACE_ID}-reviews" if SPACE_ID else None)
#: HUBTOOLS_TEAM_SYNC_MINUTES: minutes between commits of the annotations to TEAM_REPO (default 5).
TEAM_SYNC_MINUTES = float(os.environ.get("HUBTOOLS_TEAM_SYNC_MINUTES", "5"))
#: HUBTOOLS_ADJUDICATORS: comma-separated user names who may settle disputed items (default: the
#: Space owner, SPACE_AUTHOR_NAME, in a Space; anyone outside one).
ADJUDICATORS = tuple(n.strip() for n in (os.environ.get("HUBTOOLS_ADJUDICATORS")
                                         or os.environ.get("SPACE_AUTHOR_NAME") or "").split(",")
                     if n.strip()) or None
#: HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_INFERENCE: "1" lets the app send its HF_TOKEN to Hugging Face's own
#: inference routes on a visitor's behalf (off: visitors use their sign-in or their own key).
ALLOW_SERVER_TOKEN_FOR_INFERENCE = os.environ.get("HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_INFERENCE", "").strip().lower() in (
    "1", "true", "yes", "on")
#: HUBTOOLS_ALLOWED_ENDPOINTS: comma-separated URL prefixes a Space's visitors may use as endpoints even
#: when they are not https on a public address (e.g. "http://10.0.0.5:8000/v1").
ALLOWED_ENDPOINTS = tuple(p.strip() for p in os.environ.get("HUBTOOLS_ALLOWED_ENDPOINTS", "").split(",") if p.strip())
#: HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH: "1" lets anyone who reaches the app publish with its HF_TOKEN
#: (off: publishing takes the visitor's sign-in or the token they type).
ALLOW_SERVER_TOKEN_FOR_PUBLISH = os.environ.get("HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH", "").strip().lower() in (
    "1", "true", "yes", "on")
#: HUBTOOLS_REVIEWER_SECRETS: "name:secret,name:secret", one shared secret per reviewer: where there is no
#: "Sign in with Hugging Face", a reviewer is whoever gives a name with its secret. Never logged or shown.
REVIEWER_SECRETS = {name.strip(): secret.strip() for name, _, secret in
                    (pair.partition(":") for pair in os.environ.get("HUBTOOLS_REVIEWER_SECRETS", "").split(","))
                    if name.strip() and secret.strip()}
#: HUBTOOLS_APP_DIR: where the app keeps its annotation store, reviews.sqlite (default CACHE_DIR/app).
APP_DIR = os.path.expanduser(os.environ.get("HUBTOOLS_APP_DIR") or os.path.join(CACHE_DIR, "app"))


def configure_logging(level: int | None = None) -> None:
    """Send hubtools logs to stderr at ``level`` (default: HUBTOOLS_VERBOSITY)."""
    logger = logging.getLogger("hubtools")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        from .redact import RedactingFilter  # config is imported by redact: import it here, not at the top

        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    logger.setLevel(level if level is not None else VERBOSITY)
