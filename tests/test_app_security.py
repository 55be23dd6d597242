"""The app as a public Space, probed as a visitor probes it: through its HTTP API, as gradio_client calls it.

The app runs in its own interpreter with what a Space gives it: the owner's token in ``HF_TOKEN``,
a team repo, "Sign in with Hugging Face" (``SYSTEM=spaces``, ``OAUTH_*``, the local Hub as the OpenID
provider). An anonymous visitor reads no file of the server, no private dataset, publishes nothing,
and neither sees nor changes any reviewer's annotations; a signed-in visitor (the real OAuth code
flow, done over HTTP) reads and publishes with their own token, sees only their own annotations,
and applies or adjudicates only as the Space owner.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from hubtools.app import AppSettings
from hubtools.app.load_tab import load_example
from hubtools.app.review_tab import review_start
from hubtools.app.session import Session
from hubtools.app.team import Team, login_reviewer, open_team, team_status
from tests.fixtures.app import serve_app
from tests.fixtures.hub import PROJECT_ROOT, WRITE_TOKEN, client_env, run_client_json

CLIENT_ID, CLIENT_SECRET = "secure-space-client", "secure-space-secret"
MARK = "SERVER-ONLY-7f3a9c"  # in every file of the server a visitor must never see
EXAMPLE = PROJECT_ROOT / "hubtools" / "app" / "examples" / "preference_pairs.jsonl"

MAKE_REPOS = """
import json
from huggingface_hub import HfApi
P = json.loads(PARAMS)
api = HfApi()
def card(path):
    return ("---\\nconfigs:\\n- config_name: default\\n  data_files:\\n  - split: train\\n    path: " + path
            + "\\n---\\n# data\\n").encode()
api.create_repo(P["private"], repo_type="dataset", private=True)
api.upload_file(path_or_fileobj=open(P["example"], "rb").read(), path_in_repo="data/train.jsonl",
                repo_id=P["private"], repo_type="dataset")
for repo, path in ((P["offhost"], "https://example.invalid/pairs.jsonl"), (P["onserver"], P["server_file"])):
    api.create_repo(repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=card(path), path_in_repo="README.md", repo_id=repo, repo_type="dataset")
print(json.dumps("ok"))
"""


@pytest.fixture(scope="module")
def space(hub_server, tmp_path_factory):
    """The app as a Space (owner: ``user``, whose write token is HF_TOKEN), with files it must keep."""
    hub_server.register_oauth_app(CLIENT_ID, CLIENT_SECRET)
    home = tmp_path_factory.mktemp("secure-space")
    record = json.dumps({"instruction": f"what is {MARK}?", "output": "a secret"})
    secrets = home / "secrets"
    secrets.mkdir()
    (secrets / "notes.jsonl").write_text(f"{record}\nnot json at all {MARK}\n")
    shaped_like_an_id = home / "local" / "pairs"  # relative to the app's working directory
    shaped_like_an_id.mkdir(parents=True)
    (shaped_like_an_id / "data.jsonl").write_text(f"{record}\n")
    tag = uuid.uuid4().hex[:8]
    repos = SimpleNamespace(private=f"user/private-{tag}", offhost=f"user/offhost-{tag}",
                            onserver=f"user/onserver-{tag}", team=f"user/secure-reviews-{tag}")
    params = json.dumps({**vars(repos), "example": str(EXAMPLE), "server_file": str(secrets / "notes.jsonl")})
    run_client_json(f"PARAMS = {params!r}\n" + MAKE_REPOS, client_env(hub_server, home / "setup"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_", "GRADIO_"))}
    env.update(client_env(hub_server, home / "hf_home"), PYTHONPATH=str(PROJECT_ROOT),
               GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(home / "gradio"),
               HUBTOOLS_APP_DIR=str(home / "app"), SYSTEM="spaces", SPACE_ID="user/hubtools-secure",
               SPACE_AUTHOR_NAME="user", OAUTH_CLIENT_ID=CLIENT_ID, OAUTH_CLIENT_SECRET=CLIENT_SECRET,
               OAUTH_SCOPES="openid profile write-repos", OPENID_PROVIDER_URL=hub_server.url,
               HUBTOOLS_TEAM_REPO=repos.team, HUBTOOLS_TEAM_SYNC_MINUTES="60")
    assert env["HF_TOKEN"] == WRITE_TOKEN
    with serve_app(env, home) as url:
        yield SimpleNamespace(url=url.rstrip("/"), home=home, repos=repos, secrets=secrets)


def _session_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("session="):
            return header.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {response.status_code} {response.headers}")


def sign_in(space, hub_server, username: str) -> dict[str, str]:
    """The OAuth code flow a browser goes through, over HTTP; return the signed-in session's headers.

    Gradio's session cookie is ``Secure``, so it is carried by hand over this http:// test server.
    """
    with httpx.Client(timeout=30) as http:
        start = http.get(f"{space.url}/login/huggingface")
        assert start.status_code in (302, 303, 307) and start.headers["location"].startswith(hub_server.url)
        cookie = _session_cookie(start)
        query = dict(parse_qsl(urlsplit(start.headers["location"]).query))
        consent = http.post(f"{hub_server.url}/oauth/authorize", data={**query, "username": username})
        assert consent.status_code == 302, consent.text
        back = http.get(consent.headers["location"], headers={"Cookie": cookie})
        assert back.status_code in (302, 303, 307), back.text
        return {"Cookie": _session_cookie(back)}


def client(space, headers: dict[str, str] | None = None):
    from gradio_client import Client

    return Client(space.url, verbose=False, headers=headers, download_files=str(space.home / "downloads"))


def _everything(*outputs) -> str:
    return json.dumps(outputs, default=str)


def _auth_sent_for(hub_server, repo_id: str, since: int) -> set[str]:
    """The Authorization headers the Hub saw for ``repo_id`` since request number ``since``."""
    return {entry["headers"].get("authorization", "") for entry in hub_server.request_log()[since:]
            if repo_id in entry["path"]}


# --------------------------------------------------------------------------- anonymous


def test_the_hub_id_box_reads_no_file_of_the_server(space):
    anonymous = client(space)
    home = space.home
    probes = [str(space.secrets / "notes.jsonl"), str(space.secrets), f"../{home.name}/secrets/notes.jsonl",
              "./secrets", str(home / "app"), str(home / "app" / "reviews.sqlite"), str(home / "gradio"),
              "/etc/passwd", "~/.cache/huggingface/token", f"hf://datasets/{space.repos.private}",
              "file:///etc/passwd", "secrets/../secrets/notes.jsonl", "secrets"]
    for probe in probes:
        text, rows, quarantine, valid = anonymous.predict(probe, "", api_name="/load_hub")
        assert text.startswith("**Not a Hub dataset id:**"), (probe, text)
        assert valid is None and quarantine is None and MARK not in _everything(text, rows), probe
    # shaped like an id and present on the server's disk (relative to its working directory): only
    # ever looked up on the Hub
    for probe in ("local/pairs", "secrets/notes.jsonl", "local/pairs:default"):
        text, rows, quarantine, valid = anonymous.predict(probe, "", api_name="/load_hub")
        assert text.startswith("**Cannot read this Hub dataset") and "no such dataset on the Hub" in text, probe
        assert valid is None and MARK not in _everything(text, rows), probe


def test_an_upload_cannot_name_a_file_of_the_server(space):
    payload = {"data": [{"path": str(space.secrets / "notes.jsonl"), "meta": {"_type": "gradio.FileData"}}]}
    with httpx.Client(timeout=30) as http:
        event = http.post(f"{space.url}/gradio_api/call/inspect", json=payload)
        assert event.status_code == 200, event.text
        stream = http.get(f"{space.url}/gradio_api/call/inspect/{event.json()['event_id']}").text
    assert "event: error" in stream and "event: complete" not in stream and MARK not in stream


def test_a_private_dataset_is_read_only_with_the_visitors_own_access(space, hub_server):
    private = space.repos.private
    before = len(hub_server.request_log())
    text, _, _, valid = client(space).predict(private, "", api_name="/load_hub")
    assert text.startswith("**Cannot read this Hub dataset") and valid is None
    sent = _auth_sent_for(hub_server, private, before)
    assert sent and not any(WRITE_TOKEN in value for value in sent), sent  # asked anonymously, never as the Space

    before = len(hub_server.request_log())
    text, _, _, valid = client(space, sign_in(space, hub_server, "user")).predict(private, "", api_name="/load_hub")
    assert "20 = **20 valid** + **0 quarantined**" in text and valid
    sent = _auth_sent_for(hub_server, private, before)
    assert sent and all(value.startswith("Bearer hf_oauth_") for value in sent if value), sent

    # the owner's read left the dataset in the app's caches: nobody else gets it from there
    text, _, _, valid = client(space).predict(private, "", api_name="/load_hub")
    assert text.startswith("**Cannot read this Hub dataset") and valid is None
    text, _, _, valid = client(space, sign_in(space, hub_server, "other")).predict(private, "", api_name="/load_hub")
    assert text.startswith("**Cannot read this Hub dataset") and valid is None


def test_a_hub_dataset_whose_files_live_elsewhere_is_refused(space):
    anonymous = client(space)
    text, _, _, valid = anonymous.predict(space.repos.offhost, "", api_name="/load_hub")
    assert "its data files are not on the Hub" in text and "example.invalid" in text and valid is None
    text, rows, _, valid = anonymous.predict(space.repos.onserver, "", api_name="/load_hub")
    assert "its data files are not on the Hub" in text and valid is None and MARK not in _everything(text, rows)


def test_an_anonymous_visitor_publishes_nothing(space, hub_server):
    anonymous = client(space)
    anonymous.predict(api_name="/load_example")
    repo = f"user/anonymous-{uuid.uuid4().hex[:8]}"
    status, url = anonymous.predict(repo, False, False, "", "", "", api_name="/publish")
    assert status.startswith("**No Hugging Face token, so nothing was published.**") and url == ""
    assert not hub_server.repo_exists(repo)
    # not even with a token of one's own over the team's annotations
    status, url = anonymous.predict(space.repos.team, False, False, "", "", WRITE_TOKEN, api_name="/publish")
    assert status.startswith("**Not published.**") and "team annotations" in status and url == ""
    assert WRITE_TOKEN not in status


def test_an_anonymous_visitor_neither_reviews_nor_manages_the_team(space):
    anonymous = client(space)
    anonymous.predict(api_name="/load_example")
    screen = anonymous.predict("alice", api_name="/review_start")
    assert "Say who you are first" in screen[-1] and screen[0] == ""
    rows, status = anonymous.predict("alice", api_name="/my_annotations")
    assert rows["data"] == [] and "Say who you are first" in status
    summary, _ = anonymous.predict("user", api_name="/review_apply")
    assert "Say who you are first" in summary
    assert "Say who you are first" in anonymous.predict("user", api_name="/team_sync")
    assert "Say who you are first" in anonymous.predict("user", "item", "a", "", api_name="/adjudicate")[0]
    assert "Say who you are first" in anonymous.predict("user", api_name="/agreement")[0]
    assert anonymous.predict("user", api_name="/export_annotations")[0].startswith("Only adjudicators")


# --------------------------------------------------------------------------- signed in


def test_signed_in_reviewers_act_only_as_themselves_and_roles_hold(space, hub_server):
    alice = client(space, sign_in(space, hub_server, "alice"))
    bob = client(space, sign_in(space, hub_server, "bob"))
    owner = client(space, sign_in(space, hub_server, "user"))  # SPACE_AUTHOR_NAME: the adjudicator
    for reviewer in (alice, bob, owner):
        reviewer.predict(api_name="/load_example")
    first = alice.predict("bob", api_name="/review_start")[0]  # the name typed is ignored
    assert alice.predict("bob", first, "", api_name="/review_a")[-1].startswith("Saved: **A is better**")
    mine, status = alice.predict("bob", api_name="/my_annotations")
    assert [row[0] for row in mine["data"]] == [first] and "by **alice**" in status

    bob.predict("alice", api_name="/review_start")
    rows, status = bob.predict("alice", api_name="/my_annotations")
    assert rows["data"] == [] and "by **bob**" in status
    withdrawn = bob.predict("alice", first, api_name="/review_withdraw")
    assert withdrawn[-1].startswith("You had not annotated this item")
    assert [row[0] for row in alice.predict("", api_name="/my_annotations")[0]["data"]] == [first]
    bob.predict("alice", first, "", api_name="/review_b")  # a dispute, for the adjudicator

    assert "is not one" in bob.predict("user", api_name="/review_apply")[0]
    assert "bob may not adjudicate" in bob.predict("user", first, "a", "", api_name="/adjudicate")[0]
    assert bob.predict("user", api_name="/export_annotations")[0].startswith("Only adjudicators")
    assert bob.predict("", api_name="/team_sync").startswith(f"Saved to `{space.repos.team}`")
    assert bob.predict("", api_name="/agreement")[0].startswith("**2 reviewers")

    assert owner.predict("", first, "a", "", api_name="/adjudicate")[0] == f"Adjudicated {first}: **a**."
    applied, _ = owner.predict("", api_name="/review_apply")
    assert applied.startswith("**20 records = ")


def test_a_signed_in_visitor_publishes_with_their_own_token(space, hub_server):
    other = client(space, sign_in(space, hub_server, "other"))
    other.predict(api_name="/load_example")
    repo = f"other/signed-in-{uuid.uuid4().hex[:8]}"
    before = len(hub_server.request_log())
    status, _ = other.predict(repo, False, False, "", "", "", api_name="/publish")
    assert status.startswith("**Published** 20 records"), status
    sent = _auth_sent_for(hub_server, repo, before)
    assert sent and all(value.startswith("Bearer hf_oauth_") for value in sent if value), sent


def test_no_token_reaches_the_apps_log_and_its_cache_is_cleaned(space):
    log = (space.home / "app.log").read_text()
    assert WRITE_TOKEN not in log and "hf_oauth_" not in log
    from hubtools.app import DELETE_CACHE, create_app

    demo = create_app(AppSettings(app_dir=space.home / "unserved"))
    assert demo.delete_cache == DELETE_CACHE and DELETE_CACHE[1] <= 86400  # uploads do not pile up
    sessions = [block for block in demo.blocks.values()
                if getattr(getattr(block, "delete_callback", None), "__name__", "") == "_forget"]
    assert len(sessions) == 1 and sessions[0].time_to_live == DELETE_CACHE[1]  # nor session folders


# --------------------------------------------------------------------------- without a sign-in


def test_team_mode_without_a_sign_in_or_secrets_has_no_reviewer(tmp_path):
    settings = AppSettings(app_dir=tmp_path, team_repo="user/reviews", hf_token=WRITE_TOKEN)
    store = open_team(AppSettings(app_dir=tmp_path)).store  # the store alone: no Hub here
    start = login_reviewer(settings)(lambda reviewer, session: review_start(store, reviewer, session, None))
    screen = start("alice", load_example(Session()).session, "anything")
    assert "Say who you are first" in screen.status and screen.progress == ""
    status = team_status(Team(settings, store, error="not started in this test"))
    assert "Nobody can review yet" in status and "HUBTOOLS_REVIEWER_SECRETS" in status


def test_with_reviewer_secrets_the_name_counts_only_with_its_secret(tmp_path):
    settings = AppSettings(app_dir=tmp_path, team_repo="user/reviews",
                           reviewer_secrets={"alice": "alice-secret-1", "bob": "bob-secret-2"})
    store = open_team(AppSettings(app_dir=tmp_path)).store
    session = load_example(Session()).session
    login = login_reviewer(settings)
    start = login(lambda reviewer, s: review_start(store, reviewer, s, None))
    assert start("alice", session, "alice-secret-1").progress == "**alice:** 0 of 20 reviewed"
    assert "Say who you are first" in start("alice", session, "bob-secret-2").status
    assert "Say who you are first" in start("alice", session, "").status
    assert "Say who you are first" in start("carol", session, "alice-secret-1").status
    assert "alice-secret-1" not in repr(settings)


@pytest.mark.parametrize(("path", "leaves"), [
    ("data/train-*.jsonl", False), ("hf://datasets/user/other/data/*.parquet", False), ("**/*.csv", False),
    ("https://example.com/x.jsonl", True), ("file:/etc/passwd", True), ("/etc/passwd", True), ("~/x.jsonl", True),
    ("C:\\data\\x.jsonl", True), ("data/../../x.jsonl", True), ("hf://datasets/a/b/../../c/d/x.jsonl", True),
    ("zip://*.jsonl::https://example.com/x.zip", True), ("hf://buckets/user/b/x.jsonl", True), ("s3://b/x", True),
])
def test_which_data_files_of_a_card_stay_on_the_hub(path, leaves):
    from hubtools._hub_read import off_hub

    assert off_hub(path) is leaves
