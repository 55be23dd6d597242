"""The Generate tab's endpoints as an anonymous visitor of a public Space calls them (``gradio_client``):
the Space's HF_TOKEN never goes to an endpoint a visitor names, only the key the visitor typed does,
nothing shown repeats a key, and only https endpoints on public addresses (or the operator's
allowlist) are called at all. The app runs in its own interpreter with a Space's environment
(``SPACE_ID``, ``HF_TOKEN``, a team repo) against the local Hub; the endpoint is a catcher that
records every Authorization header and echoes it in its error bodies.
"""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest

from hubtools import config
from hubtools.app import AppSettings
from hubtools.app.generate_tab import check_endpoint_status, generate
from hubtools.app.session import Session
from tests.fixtures.app import serve_app
from tests.fixtures.catcher import Catcher
from tests.fixtures.hub import PROJECT_ROOT, WRITE_TOKEN, client_env
from tests.fixtures.openai import OPENAI_MODELS, OPENAI_TOKEN
from tests.openai_server import OpenAIServer

from .conftest import CORPUS

#: what the visitor types: shaped like no known secret, so only remembering it can mask it
TYPED = OPENAI_TOKEN
SERVER_TOKEN = "space-owner-token-31c9e4"
TASKS = ["qa", "summarization"]


@pytest.fixture(scope="module")
def endpoints():
    """The stand-in (127.0.0.1, not allowlisted) and a catcher in front of it (allowlisted by the operator)."""
    stand_in = OpenAIServer(models=OPENAI_MODELS, token=TYPED).start()
    catcher = Catcher(stand_in.url, TYPED).start()
    yield SimpleNamespace(stand_in=stand_in, catcher=catcher)
    catcher.stop()
    stand_in.stop()


@pytest.fixture(scope="module")
def space(hub_server, endpoints, tmp_path_factory):
    """The app as a public Space: the owner's token in HF_TOKEN, a team repo, the catcher allowlisted."""
    home = tmp_path_factory.mktemp("space-endpoints")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_"))}
    env.update(client_env(hub_server, home / "hf_home", token=WRITE_TOKEN), PYTHONPATH=str(PROJECT_ROOT),
               GRADIO_ANALYTICS_ENABLED="False", HUBTOOLS_APP_DIR=str(home / "app"), SPACE_ID="user/hubtools-space",
               HUBTOOLS_TEAM_REPO=f"user/space-reviews-{uuid.uuid4().hex[:8]}", HUBTOOLS_TEAM_SYNC_MINUTES="60",
               HUBTOOLS_ALLOWED_ENDPOINTS=endpoints.catcher.base_url)
    with serve_app(env, home) as url:
        yield SimpleNamespace(url=url, home=home)


@pytest.fixture
def visitor(space, endpoints):
    from gradio_client import Client

    endpoints.catcher.seen.clear()
    endpoints.stand_in.reset()
    return Client(space.url, verbose=False)


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("docs") / "doc.md"
    path.write_text((CORPUS / "llama_factory" / "wiki_demo.txt").read_text(encoding="utf-8")[:2500], encoding="utf-8")
    return str(path)


def test_check_endpoint_sends_only_the_typed_key_and_names_it(visitor, endpoints):
    catcher = endpoints.catcher
    none = visitor.predict(catcher.base_url, "stand-in-small", "", api_name="/check_endpoint")
    typed = visitor.predict(catcher.base_url, "stand-in-small", TYPED, api_name="/check_endpoint")
    echo = visitor.predict(catcher.base_url, "echo", TYPED, api_name="/check_endpoint")
    assert "needs a key and none was sent (401) (credential: none). Fix: type this endpoint's key in the key box" \
        in none
    assert typed.startswith("ok: ") and typed.endswith("(credential: the key you typed)")
    assert "request refused (400): model echo refuses a request with Authorization: Bearer ***" in echo
    assert catcher.authorizations() == {None, f"Bearer {TYPED}"}  # never the Space's token
    assert TYPED not in none + typed + echo and WRITE_TOKEN not in none + typed + echo


def test_only_https_public_or_allowlisted_endpoints_are_called(visitor, endpoints):
    port = endpoints.stand_in.url.rsplit(":", 1)[1]
    said = {url: visitor.predict(url, "stand-in-small", TYPED, api_name="/check_endpoint") for url in (
        f"http://127.0.0.1:{port}/v1", f"https://127.0.0.1:{port}/v1", f"https://localhost:{port}/v1",
        "https://169.254.169.254/latest", f"https://[::1]:{port}/v1")}
    assert "refused: only https endpoints are accepted here" in said[f"http://127.0.0.1:{port}/v1"]
    assert "refused: 127.0.0.1 is not a public address" in said[f"https://127.0.0.1:{port}/v1"]
    assert "is not a public address" in said[f"https://localhost:{port}/v1"]
    assert "refused: 169.254.169.254 is not a public address" in said["https://169.254.169.254/latest"]
    assert "refused: ::1 is not a public address" in said[f"https://[::1]:{port}/v1"]
    assert all("HUBTOOLS_ALLOWED_ENDPOINTS" in line for line in said.values())
    assert endpoints.stand_in.completions() == []


def test_generate_and_judge_send_the_typed_key_and_never_the_spaces_token(visitor, endpoints, document):
    from gradio_client import handle_file

    catcher = endpoints.catcher
    args = ([handle_file(document)], catcher.base_url, "stand-in-small")
    rest = (False, TASKS, 5, 3, 2, 1, 2, 800, 1)
    stopped = visitor.predict(*args, "", *rest, api_name="/generate")[0]
    assert stopped.startswith("**Generation stopped.**") and "the key was rejected (401)" in stopped
    screen = visitor.predict(*args, TYPED, *rest, api_name="/generate")[0]
    assert "**2 of 2 candidate responses** from stand-in-small" in screen
    ranked = visitor.predict("llm", catcher.base_url, "stand-in-judge", TYPED, "best_vs_worst", 0.0, 7.0,
                             api_name="/judge_rank")[0]
    assert ranked.startswith("**LLM judge**")
    refused = visitor.predict(*args[:1], endpoints.stand_in.base_url, "stand-in-small", TYPED, *rest,
                              api_name="/generate")[0]
    assert "refused: only https endpoints are accepted here" in refused
    assert catcher.authorizations() == {None, f"Bearer {TYPED}"}
    assert len([a for m, _, a in catcher.seen if m == "POST" and a == f"Bearer {TYPED}"]) >= 4
    assert all(TYPED not in text and WRITE_TOKEN not in text for text in (stopped, screen, ranked, refused))


# --------------------------------------------------------------------------- Hugging Face's own routes


@pytest.fixture
def hf_catcher(openai_server, monkeypatch):
    """A catcher standing where the app believes Hugging Face is (HF_ENDPOINT)."""
    catcher = Catcher(openai_server.url, OPENAI_TOKEN).start()
    monkeypatch.setattr(config, "HF_ENDPOINT", catcher.url)
    monkeypatch.setenv("HF_TOKEN", SERVER_TOKEN)  # what huggingface_hub would pick up by itself
    yield catcher
    catcher.stop()


def test_hugging_face_routes_get_the_sign_in_or_the_servers_token_only_where_allowed(hf_catcher, openai_server):
    url = f"{hf_catcher.url}/v1"
    base = AppSettings(hf_token=SERVER_TOKEN)
    anonymous = check_endpoint_status(base, url, "stand-in-small", "")
    signed_in = check_endpoint_status(base, url, "stand-in-small", "", "oauth-access-token-8d1f")
    allowed = check_endpoint_status(AppSettings(hf_token=SERVER_TOKEN, allow_server_token_for_inference=True),
                                    url, "stand-in-small", "")
    assert "none was sent (401) (credential: none)" in anonymous
    assert "(credential: your Hugging Face sign-in)" in signed_in
    assert "(credential: the Space's HF_TOKEN (allowed by its operator))" in allowed
    assert [auth for _, _, auth in hf_catcher.seen] == [None, "Bearer oauth-access-token-8d1f",
                                                        f"Bearer {SERVER_TOKEN}"]
    # the catcher echoed each key in its 401 body: none of them is shown
    assert all(secret not in anonymous + signed_in + allowed
               for secret in (SERVER_TOKEN, "oauth-access-token-8d1f"))
    # a sign-in never goes to a custom endpoint
    custom = check_endpoint_status(base, openai_server.base_url, "stand-in-small", "", "oauth-access-token-8d1f")
    assert "(credential: none)" in custom and all(not r.authorized for r in openai_server.completions())


@pytest.mark.parametrize("folder", ["/etc", "../..", "~/.cache/huggingface"])
def test_in_a_space_a_folder_on_the_server_is_not_a_model(tmp_path, folder):
    doc = tmp_path / "doc.md"
    doc.write_text("# Notes\n\nAnarchism is a political philosophy. " * 20, encoding="utf-8")
    screen = generate(AppSettings(space=True), [str(doc)], "", folder, "", False, TASKS, 5, 3, 2, 1, 1, 800, 1,
                      Session())
    assert "a folder on the server is not a model here" in screen.summary and screen.candidates_file is None
