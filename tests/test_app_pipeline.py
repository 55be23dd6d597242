"""The Pipeline tab: a recipe over the visitor's uploads runs stage by stage against the OpenAI-protocol
stand-in, the accounting table fills as stages finish, the review gate queues pairs in the app's store;
and what an anonymous visitor may not do (server paths, the server's environment and tokens) is refused,
every problem at once, before anything runs. The page itself is in test_browser_pipeline.py."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from hubtools import config
from hubtools.app import AppSettings
from hubtools.app.pipeline_tab import run_recipe, starter_recipe, validate_recipe
from hubtools.app.review_tab import review_start
from hubtools.app.session import Session
from hubtools.app.team import open_team
from hubtools.pipeline import accounting_problems, parse_recipe
from tests.fixtures.catcher import Catcher
from tests.fixtures.hub import WRITE_TOKEN
from tests.fixtures.openai import OPENAI_TOKEN
from tests.test_app_security import MARK, _auth_sent_for, _everything, client, sign_in, space  # noqa: F401

QUESTIONS = ["What is the capital of France?", "Name three rivers in Europe.", "Explain photosynthesis briefly.",
             "Write a haiku about the sea.", "How do vaccines work?"]
SERVER_TOKEN = "hf_servertokenNEVERsent123"


@pytest.fixture
def prompts(tmp_path) -> str:
    """A prompt list, as the upload component hands it to the handler (a path in Gradio's cache)."""
    path = tmp_path / "upload" / "prompts.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS), encoding="utf-8")
    return str(path)


@pytest.fixture
def store(tmp_path):
    return open_team(AppSettings(app_dir=tmp_path / "app")).store


def recipe(endpoint: str, *, extra: str = "", name: str = "small") -> str:
    return f"""name: {name}
sources:
  prompts: prompts.jsonl
stages:
  responses: {{endpoint: {endpoint}, model: stand-in-small, n: 2}}
  judge: {{}}
  rank: {{min_margin: 0.1}}
{extra}  check: {{checks: [exact_duplicates, pii]}}
  card: {{license: apache-2.0, language: en}}
"""


def run_all(settings, store, text, files, key="", token="", session=None, oauth=None):
    return list(run_recipe(settings, store.path, text, files, key, token, session or Session(), None, oauth))


def test_a_recipe_over_an_upload_runs_and_the_table_fills_stage_by_stage(openai_server, prompts, store):
    screens = run_all(AppSettings(), store, recipe(openai_server.base_url), [prompts], key=OPENAI_TOKEN)
    final = screens[-1]
    assert final.status.startswith("**Built `small`:**"), final.status
    assert len(openai_server.completions()) == len(QUESTIONS) * 2  # the typed key opened the endpoint
    tables = [s.accounting for s in screens]
    filled = [t.count("\n| ") for t in tables]  # data rows of the markdown table as the run went
    assert filled == sorted(filled) and filled[0] == 0 and len(set(filled)) >= 6  # one more row per stage
    for stage in ("load (prompts)", "responses", "judge", "rank", "check", "card"):
        assert f"| {stage} |" in final.accounting
    assert "✓ responses" in final.stages and "○" not in final.stages
    assert any("▶ responses" in s.stages for s in screens)  # shown running before it finished
    report = Path(final.report_file).read_text(encoding="utf-8")
    assert final.accounting in report and "prompts: prompts.jsonl" in report
    assert Path(final.recipe_file).read_text(encoding="utf-8") == recipe(openai_server.base_url)
    assert all(OPENAI_TOKEN not in s.status + s.accounting for s in screens)
    session = final.session
    assert session.kind == "preference" and session.records > 0 and Path(session.dataset).is_file()
    run = Path(final.report_file).parent
    assert Path(session.workdir) in run.parents  # the run lives in the session's scratch folder
    rows = json.loads((run / "summary.json").read_text())["stages"]
    from hubtools.pipeline import StageRow

    assert accounting_problems([StageRow.from_dict(r) for r in rows]) == []

    again = run_all(AppSettings(), store, recipe(openai_server.base_url), [prompts], key=OPENAI_TOKEN,
                    session=session)
    assert again[-1].status.startswith("**Built") and "(earlier run)" in again[-1].accounting
    assert again[2].accounting.count("(earlier run)") == 1  # streamed rows say so too, as each stage is reused
    assert len(openai_server.completions()) == len(QUESTIONS) * 2  # resumed: nothing asked twice


def test_every_refusal_is_listed_at_once_and_nothing_runs(prompts, store, tmp_path, monkeypatch):
    secret = tmp_path / "server-side.jsonl"
    secret.write_text('{"prompt": "on the server"}\n')
    monkeypatch.setenv("SERVER_SECRET_KEY", "sk-server-secret-value")
    text = f"""name: ../../escape
sources:
  prompts: prompts.jsonl
  dataset: {secret}
  documents: ../upload
stages:
  instructions: {{}}
  responses: {{endpoint: http://127.0.0.1:9/v1, model: m, api_key_env: SERVER_SECRET_KEY}}
  judge: {{}}
  rank: {{}}
  review: {{mode: gate, store: {tmp_path / 'elsewhere.sqlite'}}}
  check: {{checks: [contamination], eval_sets: [bench={secret}], num_proc: 8}}
  polish: {{}}
  push: {{repo: someone/data}}
"""
    settings = AppSettings(hf_token=SERVER_TOKEN)  # the server has a token; the visitor gave none
    status, recipe_file, session = validate_recipe(settings, store.path, text, [prompts], "", "", Session(), None)
    expected = [f"sources.dataset: '{secret}' is not one of your uploads (yours: prompts.jsonl)",
                "sources.documents: '../upload' is not one of your uploads",
                "stages.responses.api_key_env: this app does not read its server's environment",
                "stages.review.store: this app queues reviews in its own store",
                f"stages.check.eval_sets: 'bench={secret}' is not one of your uploads",
                "stages.check.num_proc", "unknown stage 'polish'",
                "stages.push needs your Hugging Face token with write access: type it in the token box"]
    for fragment in expected:
        assert fragment in status, (fragment, status)
    assert status.startswith(f"**{status.count(chr(10) + '- ')} problem(s) in the recipe** (nothing ran)")
    assert "the environment has no" not in status and "sk-server-secret-value" not in status
    assert Path(recipe_file).read_text() == text  # offered for download as written
    screens = run_all(settings, store, text, [prompts])
    assert len(screens) == 1 and screens[0].status == status and screens[0].report_file is None
    assert not (Path(screens[0].session.workdir) / "pipeline" / "runs").exists()
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_an_upload_named_by_its_file_name_validates_and_shows_the_plan(prompts, store, openai_server):
    status, _, _ = validate_recipe(AppSettings(), store.path, recipe(openai_server.base_url), [prompts], "", "",
                                   Session(), None)
    assert status.startswith("**The recipe is valid.**")
    assert "- `load:prompts`: will run" in status and "- `card`: will run" in status
    status, _, _ = validate_recipe(AppSettings(), store.path, recipe(openai_server.base_url), [], "", "",
                                   Session(), None)
    assert "sources.prompts: 'prompts.jsonl' is not one of your uploads (yours: none yet)" in status


def test_push_uses_the_visitors_token_never_the_servers_unless_allowed(prompts, store, openai_server):
    text = recipe(openai_server.base_url) + "  push: {repo: me/data}\n"
    need = "stages.push needs your Hugging Face token"
    quiet = AppSettings(hf_token=SERVER_TOKEN)
    assert need in validate_recipe(quiet, store.path, text, [prompts], "", "", Session(), None)[0]
    assert need not in validate_recipe(quiet, store.path, text, [prompts], "", "hf_visitor_write_token1",
                                       Session(), None)[0]
    assert need not in validate_recipe(quiet, store.path, text, [prompts], "", "", Session(), "hf_oauth_visitor1")[0]
    allowed = AppSettings(hf_token=SERVER_TOKEN, allow_server_token_for_publish=True)
    assert need not in validate_recipe(allowed, store.path, text, [prompts], "", "", Session(), None)[0]
    team = AppSettings(team_repo="me/data")
    gated = text.replace("  judge:", "  review: gate\n  judge:")
    status = validate_recipe(team, store.path, gated, [prompts], "", "tok12345", Session(), None)[0]
    assert "holds this app's team annotations" in status
    assert "the review gate queues pairs in the team's annotations; sign in" in status  # no spam in the team store
    status = validate_recipe(team, store.path, gated, [prompts], "", "", Session(), "hf_oauth_visitor1")[0]
    assert "review gate" not in status


def test_a_space_refuses_private_endpoints_and_server_folders_as_models(prompts, store, tmp_path):
    text = f"""name: s
sources: {{prompts: prompts.jsonl}}
stages:
  responses: {{endpoint: http://127.0.0.1:8000/v1, model: m}}
  judge: {{endpoint: https://169.254.169.254/v1, model: j}}
  instructions: {{model: {tmp_path}}}
"""
    status, _, _ = validate_recipe(AppSettings(space=True), store.path, text, [prompts], "", "", Session(), None)
    assert "stages.responses.endpoint: http://127.0.0.1:8000/v1: refused: only https endpoints" in status
    assert "stages.judge.endpoint: https://169.254.169.254/v1: refused: 169.254.169.254 is not a public" in status
    assert "stages.instructions.model: a folder on the server is not a model here" in status


def test_without_a_typed_key_the_endpoint_gets_no_server_credential(openai_server, prompts, store, monkeypatch):
    catcher = Catcher(openai_server.url, OPENAI_TOKEN).start()
    try:
        monkeypatch.setattr(config, "HF_TOKEN", SERVER_TOKEN)
        monkeypatch.setattr(config, "API_KEY", "sk-server-wide-api-key")  # HUBTOOLS_API_KEY: the CLI's, not ours
        settings = AppSettings(hf_token=SERVER_TOKEN)
        screens = run_all(settings, store, recipe(catcher.base_url), [prompts])
        assert screens[-1].status.startswith("**The build stopped.**"), screens[-1].status
        assert "press **Run** again to resume" in screens[-1].status and "✗ responses" in screens[-1].stages
        assert catcher.authorizations() == {None}
        wrong = run_all(settings, store, recipe(catcher.base_url), [prompts], key="sk-typed-but-wrong-key")
        assert "sk-typed-but-wrong-key" not in wrong[-1].status  # the catcher echoes it back: redacted
        assert catcher.authorizations() == {None, "Bearer sk-typed-but-wrong-key"}
    finally:
        catcher.stop()


def test_the_review_gate_queues_pairs_in_the_apps_store_then_run_again_applies_them(openai_server, prompts, store):
    text = recipe(openai_server.base_url, extra="  review: gate\n", name="gate")
    first = run_all(AppSettings(), store, text, [prompts], key=OPENAI_TOKEN)[-1]
    assert first.status.startswith("**Stopped at `review` for review:**"), first.status
    assert "⏸ review" in first.stages and "○ check" in first.stages
    pairs = first.session.records
    assert pairs > 0 and len(store.items()) == pairs
    # the Rank & review tab works on the queued pairs: the same items, nothing new registered
    screen = review_start(store, "alice", first.session, None)
    assert screen.progress == f"**alice:** 0 of {pairs} reviewed" and len(store.items()) == pairs
    store.annotate("alice", store.items()[0].item_id, "tie")  # a tie: the pair goes
    second = run_all(AppSettings(), store, text, [prompts], key=OPENAI_TOKEN, session=first.session)[-1]
    assert second.status.startswith("**Built `gate`:**"), second.status
    assert "| review |" in second.accounting and "✓ review" in second.stages
    assert second.session.records == pairs - 1


def test_the_template_names_the_uploads_and_reads_no_environment(prompts):
    text = starter_recipe([prompts])
    assert "prompts: prompts.jsonl" in text and "api_key_env" not in text
    assert parse_recipe(text).stage_list()[:3] == ["responses", "judge", "rank"]


# --------------------------------------------------------------------------- the app as a public Space, over its API


def hub_recipe(repo: str, *, push: str = "", name: str = "from-hub") -> str:
    return (f"name: {name}\nsources: {{hub: {repo}}}\nstages:\n  check: {{checks: [exact_duplicates]}}\n"
            f"  card: {{license: apache-2.0}}\n" + (f"  push: {{repo: {push}}}\n" if push else ""))


def test_as_a_space_an_anonymous_visitor_reads_no_server_file_no_private_dataset_and_publishes_nothing(
        space, hub_server):
    anonymous = client(space)
    private = space.repos.private
    before = len(hub_server.request_log())
    status, stages, table, _, _ = anonymous.predict(hub_recipe(private), [], "", "", api_name="/pipeline_run")
    assert status.startswith("**The build stopped.**"), status
    assert "✗ load:hub" in stages and table == ""
    sent = _auth_sent_for(hub_server, private, before)
    assert sent and not any(WRITE_TOKEN in value for value in sent), sent  # asked anonymously, never as the Space

    for probe in ("local/pairs", "./secrets", str(space.secrets / "notes.jsonl")):  # shaped like ids or paths
        status, *outputs = anonymous.predict(hub_recipe(probe), [], "", "", api_name="/pipeline_run")
        assert "sources.hub" in status or "load:hub" in outputs[0], (probe, status)
        assert MARK not in _everything(status, *outputs), probe
    text = (f"name: x\nsources: {{dataset: {space.secrets / 'notes.jsonl'}}}\n"
            "stages:\n  check: {}\n  filter: {drop: [schema]}\n")
    status, *outputs = anonymous.predict(text, [], "", "", api_name="/pipeline_run")
    assert "is not one of your uploads" in status and MARK not in _everything(status, *outputs)

    # the files box takes uploads only: a path of the server is refused by Gradio before the handler runs
    payload = {"data": ["name: x\nsources: {dataset: notes.jsonl}\nstages:\n  check: {}\n",
                        [{"path": str(space.secrets / "notes.jsonl"), "meta": {"_type": "gradio.FileData"}}], "", ""]}
    with httpx.Client(timeout=30) as http:
        event = http.post(f"{space.url}/gradio_api/call/pipeline_run", json=payload)
        assert event.status_code == 200, event.text
        stream = http.get(f"{space.url}/gradio_api/call/pipeline_run/{event.json()['event_id']}").text
    assert "event: error" in stream and "event: complete" not in stream and MARK not in stream

    repo = f"user/pipeline-anonymous-{uuid.uuid4().hex[:8]}"
    status, *_ = anonymous.predict(hub_recipe(private, push=repo), [], "", "", api_name="/pipeline_run")
    assert "stages.push needs your Hugging Face token" in status and "(nothing ran)" in status
    assert not hub_server.repo_exists(repo)


def test_as_a_space_a_signed_in_visitor_builds_from_their_private_dataset_and_publishes_as_themselves(
        space, hub_server):
    owner = client(space, sign_in(space, hub_server, "user"))
    repo = f"user/pipeline-signed-in-{uuid.uuid4().hex[:8]}"
    before = len(hub_server.request_log())
    status, stages, table, recipe_file, report_file = owner.predict(
        hub_recipe(space.repos.private, push=repo), [], "", "", api_name="/pipeline_run")
    assert status.startswith("**Built `from-hub`:** 20 records"), status
    assert "✓ push" in stages and "| load (hub) | 20 records |" in table
    assert Path(report_file).read_text(encoding="utf-8").count("| push |") == 1
    assert hub_server.repo_exists(repo)
    for repo_id in (space.repos.private, repo):  # read and published with the visitor's own token
        sent = _auth_sent_for(hub_server, repo_id, before)
        assert sent and all(value.startswith("Bearer hf_oauth_") for value in sent if value), (repo_id, sent)
