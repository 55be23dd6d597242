"""Sign in with Hugging Face, end to end, in real Chromium: the app as a Space with ``hf_oauth: true``.

The app runs with the environment a Space gives it (``SYSTEM=spaces``, ``SPACE_ID``,
``OAUTH_CLIENT_ID``/``SECRET``/``SCOPES``, ``OPENID_PROVIDER_URL``), so Gradio mounts its real
OAuth routes (authlib), not the local mock. The local Hub plays the OpenID provider
(``tests/hubserver/api_oauth.py``): the browser is sent to its consent page, signs in as a user,
comes back with a code that Gradio exchanges for an access token and a signed id_token. Then the
reviewer is the signed-in user, whatever the page says, and publishing with an empty token box
uses the user's own OAuth token.
"""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.fixtures.app import serve_app
from tests.fixtures.hub import PROJECT_ROOT, client_env

from tests.fixtures.browser import WAIT, box, pages_of, tab, upload

from .conftest import CORPUS

DPO = CORPUS / "llama_factory" / "dpo_en_demo.json"

CLIENT_ID, CLIENT_SECRET = "space-oauth-client", "space-oauth-secret"


@pytest.fixture(scope="module")
def space_app(hub_server, tmp_path_factory):
    """The app as a Space with OAuth, served by its own interpreter, the local Hub as the provider."""
    hub_server.register_oauth_app(CLIENT_ID, CLIENT_SECRET)
    home = tmp_path_factory.mktemp("oauth-space")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_"))}
    env.update(client_env(hub_server, home / "hf_home"), PYTHONPATH=str(PROJECT_ROOT),
               GRADIO_ANALYTICS_ENABLED="False", HUBTOOLS_APP_DIR=str(home / "app"),
               SYSTEM="spaces", SPACE_ID="user/hubtools-team", OAUTH_CLIENT_ID=CLIENT_ID,
               OAUTH_CLIENT_SECRET=CLIENT_SECRET, OAUTH_SCOPES="openid profile write-repos",
               OPENID_PROVIDER_URL=hub_server.url,
               HUBTOOLS_TEAM_REPO=f"user/oauth-reviews-{uuid.uuid4().hex[:8]}", HUBTOOLS_TEAM_SYNC_MINUTES="60")
    with serve_app(env, home) as url:
        yield SimpleNamespace(url=url, home=home)


@pytest.fixture
def page(browser, space_app, request, tmp_path_factory):
    """One page of the Space app (its own session), with artifacts on failure."""
    pages = pages_of(browser, space_app, request, tmp_path_factory)
    open_one = next(pages)
    yield open_one()
    next(pages, None)  # closes the page, saving artifacts if the test failed


def sign_in(page, hub_server, username: str) -> None:
    expect(page.locator("#signed-in")).to_contain_text("Not signed in", timeout=WAIT)
    page.locator("#login").click()
    page.wait_for_url(f"{hub_server.url}/oauth/authorize?*", timeout=WAIT)
    expect(page.get_by_role("heading")).to_have_text(f"Authorize {CLIENT_ID}")
    page.locator("#oauth-username").fill(username)
    page.locator("#oauth-authorize").click()
    expect(page.locator("#signed-in")).to_have_text(f"Signed in as {username}.", timeout=WAIT)


def test_sign_in_makes_the_user_the_reviewer_and_publishes_with_their_token(page, space_app, hub_server):
    sign_in(page, hub_server, "alice")
    token_requests = [e for e in hub_server.request_log() if e["path"] == "/oauth/token"]
    assert token_requests and token_requests[-1]["status"] == 200  # Gradio exchanged the code itself

    upload(page, DPO)
    tab(page, "Rank & review")
    page.locator("#review-start").click()
    expect(page.locator("#review-progress")).to_have_text("alice: 0 of 300 reviewed", timeout=WAIT)
    page.locator("#review-choose-a").click()
    expect(page.locator("#review-progress")).to_have_text("alice: 1 of 300 reviewed", timeout=WAIT)

    repo = f"alice/oauth-publish-{uuid.uuid4().hex[:8]}"
    tab(page, "Publish")
    box(page, "publish-repo-id").fill(repo)
    page.locator("#publish-push").click()  # no token typed: the signed-in user's OAuth token
    expect(page.locator("#publish-status")).to_contain_text(f"Published 300 records to {hub_server.url}",
                                                            timeout=60_000)
    assert hub_server.repo_exists(repo)
    commits = [e for e in hub_server.request_log()
               if e["method"] == "POST" and e["path"].startswith(f"/api/datasets/{repo}/commit/")]
    assert commits and commits[-1]["headers"]["authorization"].startswith("Bearer hf_oauth_")


def test_signing_out_ends_the_session(page, space_app, hub_server):
    sign_in(page, hub_server, "bob")
    page.locator("#login").click()  # signed in, the button signs out
    expect(page.locator("#signed-in")).to_contain_text("Not signed in", timeout=WAIT)
