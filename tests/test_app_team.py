"""Team mode and publishing against the local Hub: the app runs in its own interpreter with the
environment a Space gives it (HF_ENDPOINT, HF_TOKEN, HUBTOOLS_TEAM_REPO), without a sign-in, so
reviewers prove who they are with the secrets the operator set (HUBTOOLS_REVIEWER_SECRETS), and is
driven with gradio_client. Annotations are committed to the team dataset and restored by a fresh start."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from hubtools.app import AppSettings
from hubtools.app.load_tab import load_example
from hubtools.app.review_tab import review_start
from hubtools.app.session import Session
from hubtools.app.team import login_reviewer, login_token, open_team
from tests.fixtures.app import serve_app
from tests.fixtures.hub import PROJECT_ROOT, WRITE_TOKEN, client_env, run_client_json

WRONG_TOKEN = "hf_wrongTokenThatLooksReal123"
SECRETS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}

RESTART = """
import json
from pathlib import Path
from hubtools.app.load_tab import load_example
from hubtools.app.review_tab import my_annotations, review_start
from hubtools.app.session import AppSettings, Session
from hubtools.app.team import agreement_view, open_team, team_status

team = open_team(AppSettings.from_config())  # what create_app() does first
screen = review_start(team.store, "alice", load_example(Session()).session, None)
summary, per_category, disputes = agreement_view(team.store)
# and a team whose token the Hub refuses
refused = open_team(AppSettings.from_config(hf_token=P["wrong"], team_repo="user/reviews-refused",
                                            app_dir=Path(P["refused_dir"])))
print(json.dumps({"status": team_status(team), "progress": screen.progress,
                  "alice": my_annotations(team.store, "alice")[0], "summary": summary,
                  "refused": {"status": team_status(refused), "sync": refused.sync is not None,
                              "store": str(refused.store.path)}}))
"""


def team_env(hub_server, home: Path, repo: str, app_dir: Path) -> dict[str, str]:
    return {**client_env(hub_server, home / "hf_home"), "HUBTOOLS_TEAM_REPO": repo,
            "HUBTOOLS_APP_DIR": str(app_dir), "HUBTOOLS_TEAM_SYNC_MINUTES": "60",
            "HUBTOOLS_REVIEWER_SECRETS": ",".join(f"{k}:{v}" for k, v in SECRETS.items()),
            "GRADIO_ANALYTICS_ENABLED": "False"}


@pytest.fixture(scope="module")
def team_app(hub_server, tmp_path_factory):
    """The app in team mode, served by its own interpreter (the clients read HF_* at import)."""
    home = tmp_path_factory.mktemp("team")
    repo = f"user/team-reviews-{uuid.uuid4().hex[:8]}"
    env = team_env(hub_server, home, repo, home / "app1")
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "HUBTOOLS_"))}
    full.update(env, PYTHONPATH=str(PROJECT_ROOT))
    with serve_app(full, home) as url:
        yield SimpleNamespace(url=url, repo=repo, home=home)


def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def test_publish_to_the_hub_then_as_a_pull_request_and_load_it_back(team_app, hub_server, hub_repo_id):
    c = client(team_app)
    c.predict(api_name="/load_example")
    c.predict(["exact_duplicates", "length_outliers"], "", "", api_name="/run_checks")  # the pushes reuse them
    status, url = c.predict(hub_repo_id, False, False, "mit", "", "", api_name="/publish")
    assert status.startswith("**No Hugging Face token, so nothing was published.**")  # not with the app's own
    assert not hub_server.repo_exists(hub_repo_id)
    status, url = c.predict(hub_repo_id, False, False, "mit", "", WRITE_TOKEN, api_name="/publish")
    assert status.startswith("**Published** 20 records to ") and url.startswith(hub_server.url)
    files = hub_server.files(hub_repo_id)
    assert {"README.md", "annotation_guidelines.md", "quality.json", "dataset_quality_report.md",
            "data/train-00000-of-00001.parquet"} <= set(files)
    assert b"license: mit" in files["README.md"]
    status, url = c.predict(hub_repo_id, False, True, "apache-2.0", "", WRITE_TOKEN, api_name="/publish")
    assert status.startswith("**Opened a pull request**") and "/discussions/" in url
    assert len(hub_server.pull_requests(hub_repo_id)) == 1
    assert b"license: mit" in hub_server.files(hub_repo_id)["README.md"]  # main is untouched
    status, url = c.predict(hub_repo_id, False, False, "", "", WRONG_TOKEN, api_name="/publish")
    assert status.startswith("**Not published.**") and WRONG_TOKEN not in status and url == ""
    text, rows, _, valid = c.predict(hub_repo_id, "", api_name="/load_hub")
    assert "20 = **20 valid** + **0 quarantined**" in text and valid.endswith(".jsonl")
    text, _, _, valid = c.predict(hub_repo_id, "test", api_name="/load_hub")
    assert f"{hub_repo_id} has no split 'test'" in text and "use one of train" in text and valid is None


@pytest.fixture(scope="module")
def reviewed(team_app, hub_server, tmp_path_factory):
    """Alice and Bob review one item in the team app and save to the Hub; then the app restarts
    (a new interpreter, an empty disk) and what it restored is returned."""
    alice, bob = client(team_app), client(team_app)
    for c, name in ((alice, "alice"), (bob, "bob")):
        c.predict(api_name="/load_example")
        c.predict(name, SECRETS[name], api_name="/review_start")
    first = alice.predict("alice", SECRETS["alice"], api_name="/review_start")[0]
    alice.predict("alice", first, "wrong number", SECRETS["alice"], api_name="/review_a")
    bob.predict("bob", first, "", SECRETS["bob"], api_name="/review_b")
    refused = {"sync": alice.predict("alice", "", api_name="/team_sync"),  # no secret, no reviewer
               "bob as alice": bob.predict("alice", SECRETS["bob"], api_name="/my_annotations")}
    saved = alice.predict("alice", SECRETS["alice"], api_name="/team_sync")
    fresh = tmp_path_factory.mktemp("restart")
    params = json.dumps({"wrong": WRONG_TOKEN, "refused_dir": str(fresh / "refused")})
    code = f"import json\nP = json.loads({params!r})\n" + RESTART
    restarted = run_client_json(code, team_env(hub_server, fresh, team_app.repo, fresh / "app"))
    return SimpleNamespace(item=first, saved=saved, restarted=restarted, fresh=fresh, refused=refused)


def test_annotations_are_committed_per_reviewer_to_a_private_dataset(reviewed, team_app, hub_server):
    assert reviewed.refused["sync"].startswith("Say who you are first")
    rows, status = reviewed.refused["bob as alice"]  # a name counts only with its own secret
    assert rows["data"] == [] and "reviewer name" in status
    assert reviewed.saved.startswith(f"Saved to `{team_app.repo}`: ")
    files = hub_server.files(team_app.repo)
    rows = {name: [json.loads(line) for line in files[f"annotations/{name}.jsonl"].splitlines()]
            for name in ("alice", "bob")}
    assert [(r["item_id"], r["reviewer"], r["decision"]) for r in rows["alice"]] == [(reviewed.item, "alice", "a")]
    assert [(r["item_id"], r["reviewer"], r["decision"]) for r in rows["bob"]] == [(reviewed.item, "bob", "b")]
    assert hub_server.context.store.get("dataset", team_app.repo).private


def test_a_restart_restores_the_annotations_from_the_hub(reviewed):
    restarted = reviewed.restarted
    assert restarted["status"].startswith("**Team mode.**")
    assert "restored at start: 2 annotations" in restarted["status"]
    assert restarted["progress"] == "**alice:** 1 of 20 reviewed"
    assert [(row[0], row[2], row[4]) for row in restarted["alice"]] == [(reviewed.item, "a", "wrong number")]
    assert restarted["summary"].startswith("**2 reviewers, 1 item: 0.0% agreement")


def test_team_mode_with_a_refused_token_says_the_sync_is_off_and_keeps_working(reviewed):
    refused = reviewed.restarted["refused"]
    assert refused["status"].startswith("**Team mode, but the Hub sync is off:**")
    assert WRONG_TOKEN not in refused["status"] and "`HF_TOKEN` secret" in refused["status"]
    assert refused["sync"] is False and refused["store"] == str(reviewed.fresh / "refused" / "reviews.sqlite")


def test_with_sign_in_the_reviewer_and_token_come_from_the_login(tmp_path):
    import gradio as gr
    from gradio.utils import get_type_hints

    store = open_team(AppSettings(app_dir=tmp_path)).store
    session = load_example(Session()).session
    start = login_reviewer(AppSettings(oauth=True))(lambda reviewer, s: review_start(store, reviewer, s, None))
    assert get_type_hints(start)["profile"] == (gr.OAuthProfile | None)
    carol = gr.OAuthProfile({"name": "Carol", "preferred_username": "carol", "profile": "", "picture": ""})
    assert start("mallory", session, carol).progress == "**carol:** 0 of 20 reviewed"  # the page's name is ignored
    assert "reviewer name" in start("mallory", session, None).status  # not signed in: nobody
    publish = login_token(True, 1)(lambda repo, token: token)
    assert get_type_hints(publish)["oauth_token"] == (gr.OAuthToken | None)
    oauth = gr.OAuthToken(token="hf_oauth", scope="write-repos", expires_at=0)
    assert publish("me/x", "", oauth) == "hf_oauth" and publish("me/x", "hf_typed", oauth) == "hf_typed"
