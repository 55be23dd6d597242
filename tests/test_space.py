"""``hubtools space deploy`` against the local Hub: the Space gets the app, its requirements and this
very hubtools source, secrets and variables; redeploying replaces only what it shipped; the
deployed repository runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from hubtools.cli import app
from hubtools.publish.space import space_requirements
from tests.fixtures.hub import PROJECT_ROOT, WRITE_TOKEN, run_client, run_client_json

from .test_push import assert_no_token, cli_command, snippet

SECRET_VALUE = "sk-judge-secret-value-42"


def front_matter(readme: bytes) -> dict:
    text = readme.decode()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_deploy_creates_the_space_with_files_secrets_and_variables(hub_server, hub_env, hub_repo_id, tmp_path):
    env = {**hub_env, "JUDGE_KEY": SECRET_VALUE}
    result = run_client(cli_command("space", "deploy", hub_repo_id, "--secret", "JUDGE_KEY", "--variable",
                                    "MODEL_ID=user/tiny", "--hardware", "cpu-upgrade", "--private"), env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{hub_server.url}/spaces/{hub_repo_id}"
    assert hub_server.space_secrets(hub_repo_id) == {"JUDGE_KEY": SECRET_VALUE}
    assert hub_server.space_variables(hub_repo_id) == {"MODEL_ID": "user/tiny"}
    assert hub_server.space_runtime(hub_repo_id)["hardware"]["requested"] == "cpu-upgrade"
    assert hub_server.context.store.get("space", hub_repo_id).private is True

    files = hub_server.files(hub_repo_id, "space")
    meta = front_matter(files["README.md"])
    assert (meta["sdk"], meta["app_file"], meta["hf_oauth"]) == ("gradio", "app.py", True)
    assert {"read-repos", "write-repos"} <= set(meta["hf_oauth_scopes"])
    import gradio

    assert meta["sdk_version"] == gradio.__version__
    requirements = files["requirements.txt"].decode().splitlines()
    assert "datasets>=3.0" in requirements and not any(r.startswith("gradio") for r in requirements)
    assert files["app.py"] == (PROJECT_ROOT / "space" / "app.py").read_bytes()
    # the card templates travel inside the package, where an installed wheel has them
    for path, local in [("hubtools/__init__.py", "hubtools/__init__.py"), ("hubtools/publish/hub.py", "hubtools/publish/hub.py"),
                        ("hubtools/app/__init__.py", "hubtools/app/__init__.py"),
                        ("hubtools/_cards/README.md.j2", "cards/README.md.j2")]:
        assert files[path] == (PROJECT_ROOT / local).read_bytes(), path  # this very version of hubtools
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in files)
    assert not any(p.startswith(("cards/", "hubtools/_space")) for p in files)
    assert [c["title"] for c in hub_server.commits(hub_repo_id, "space")] == ["Deploy hubtools 0.1.0",
                                                                               "initial commit"]
    assert_no_token(result.stdout, result.stderr, *files.values())
    for blob in (result.stdout, result.stderr, *files.values()):
        assert SECRET_VALUE not in (blob if isinstance(blob, str) else blob.decode(errors="replace"))
    for entry in hub_server.request_log():
        if "/secrets" not in entry["path"]:  # the secret travels only to the secrets endpoint
            assert SECRET_VALUE.encode() not in entry["body"]


def test_redeploy_removes_stale_source_keeps_added_files_and_runs(hub_server, hub_env, hub_repo_id, tmp_path):
    code = cli_command("space", "deploy", hub_repo_id)
    first = run_client(code, hub_env)
    assert first.returncode == 0, first.stderr
    store = hub_server.context.store
    from tests.hubserver.store import Operation

    repo = store.get("space", hub_repo_id)
    store.commit(repo, "main", [Operation("file", "hubtools/retired_module.py", content=b"x = 1\n"),
                                # where deploys put the templates before they moved into the package
                                Operation("file", "cards/README.md.j2", content=b"old template"),
                                Operation("file", "notes.md", content=b"team notes")],
                 title="Someone's edits", description="", author="user")
    second = run_client(code, hub_env)
    assert second.returncode == 0, second.stderr
    files = hub_server.files(hub_repo_id, "space")
    assert "hubtools/retired_module.py" not in files and files["notes.md"] == b"team notes"
    assert "cards/README.md.j2" not in files and "hubtools/_cards/README.md.j2" in files
    assert len(hub_server.commits(hub_repo_id, "space")) == 4

    # the deployed repository runs: its app builds from the hubtools it ships, not the installed one
    snapshot = tmp_path / "space"
    for path, data in files.items():
        (snapshot / path).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / path).write_bytes(data)
    run_code = ("import json, gradio, hubtools, app\n"
                "from hubtools.publish.templates import cards_dir\n"
                "print(json.dumps([hubtools.__file__, str(cards_dir()), isinstance(app.demo, gradio.Blocks)]))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("HF_")}
    run = subprocess.run([sys.executable, "-c", run_code], cwd=snapshot, capture_output=True, text=True, timeout=300,
                         env={**env, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr
    package, templates, is_blocks = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(package) == snapshot / "hubtools" / "__init__.py"
    assert Path(templates) == snapshot / "hubtools" / "_cards"
    assert is_blocks is True


def test_secret_values_never_come_from_the_command_line(monkeypatch):
    monkeypatch.delenv("MY_SECRET", raising=False)
    runner = CliRunner()
    inline = runner.invoke(app, ["space", "deploy", "me/app", "--secret", f"MY_SECRET={SECRET_VALUE}",
                                 "--token", WRITE_TOKEN])
    unset = runner.invoke(app, ["space", "deploy", "me/app", "--secret", "MY_SECRET"])
    bad_var = runner.invoke(app, ["space", "deploy", "me/app", "--variable", "NOVALUE"])
    assert (inline.exit_code, unset.exit_code, bad_var.exit_code) == (1, 1, 1)
    assert inline.stderr.startswith("error: --secret takes a name, not NAME=VALUE (MY_SECRET)")
    assert SECRET_VALUE not in inline.output and WRITE_TOKEN not in inline.output
    assert unset.stderr.startswith("error: --secret MY_SECRET: the environment variable MY_SECRET is not set")
    assert bad_var.stderr.startswith("error: --variable 'NOVALUE' is not NAME=VALUE")


def test_space_requirements_are_the_project_dependencies_without_gradio():
    import tomllib

    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    cpu = space_requirements(cpu=True)
    assert cpu[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert cpu[1:] == [d for d in deps if not d.startswith("gradio")] + ["authlib", "itsdangerous"]
    assert space_requirements(cpu=False) == cpu[1:]


# Someone else's deploy lands at the worst moment: `Racing` is the real huggingface_hub client, which
# creates the Space (with that other person's app) or commits to it just before this deploy's request.
RACE = """
from huggingface_hub import HfApi
from hubtools.errors import HubError
from hubtools.publish.space import deploy_space

class Racing(HfApi):
    raced = False

    def _other(self):
        if not Racing.raced:
            Racing.raced = True
            other = HfApi()
            if P["at"] == "create":
                other.create_repo(P["repo"], repo_type="space", space_sdk="gradio")
            other.upload_file(path_or_fileobj=b"print('their app')", path_in_repo="app.py", repo_id=P["repo"],
                              repo_type="space", commit_message="their app")

    def create_repo(self, *args, **kwargs):
        if P["at"] == "create":
            self._other()
        return super().create_repo(*args, **kwargs)

    def create_commit(self, *args, **kwargs):
        if P["at"] == "commit":
            self._other()
        return super().create_commit(*args, **kwargs)

try:
    deploy_space(P["repo"], api=Racing())
    print(json.dumps({"ok": True}))
except HubError as exc:
    print(json.dumps({"ok": False, "error": str(exc)}))
"""


def test_a_deploy_never_lands_on_a_space_someone_else_created_meanwhile(hub_server, hub_env, hub_repo_id):
    outcome = run_client_json(snippet(RACE, repo=hub_repo_id, at="create"), hub_env)
    assert outcome == {"ok": False, "error": f"{hub_repo_id} was created by someone else while this deploy was being "
                                             "prepared; nothing was committed. run the same command again to "
                                             "publish on top of it"}
    files = hub_server.files(hub_repo_id, "space")
    assert files["app.py"] == b"print('their app')" and not any(p.startswith("hubtools/") for p in files), list(files)
    assert [c["title"] for c in hub_server.commits(hub_repo_id, "space")] == ["their app", "initial commit"]


def test_a_deploy_whose_new_space_got_a_commit_meanwhile_fails_and_keeps_it(hub_server, hub_env, hub_repo_id):
    outcome = run_client_json(snippet(RACE, repo=hub_repo_id, at="commit"), hub_env)
    assert not outcome["ok"] and outcome["error"].startswith(f"{hub_repo_id} changed while pushing (someone else "
                                                             "committed); nothing was committed")
    files = hub_server.files(hub_repo_id, "space")
    assert files["app.py"] == b"print('their app')" and not any(p.startswith("hubtools/") for p in files)
    assert [c["title"] for c in hub_server.commits(hub_repo_id, "space")] == ["their app", "initial commit"]


def _env_read_by_the_app() -> set[str]:
    """Every HUBTOOLS_* variable the app and the Space's entry point read: named in their code, or
    behind a ``hubtools.config`` setting they use (followed through the settings it is built from)."""
    import ast
    import re

    sources = [*sorted((PROJECT_ROOT / "hubtools" / "app").rglob("*.py")), *sorted((PROJECT_ROOT / "space").glob("*.py"))]
    code = "\n".join(path.read_text(encoding="utf-8") for path in sources)
    names = set(re.findall(r"HUBTOOLS_[A-Z0-9_]+", code))
    used = set(re.findall(r"\bconfig\.([A-Z][A-Z0-9_]*)", code))
    for imported in re.findall(r"from (?:\.\.|hubtools\.)config import \(?([\w, \n]+)\)?", code):
        used |= {n.strip() for n in imported.split(",") if n.strip()}
    settings = {}
    for node in ast.parse((PROJECT_ROOT / "hubtools" / "config.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            settings[node.targets[0].id] = {
                "env": {n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                        and n.value.startswith("HUBTOOLS_")},
                "uses": {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}}
    seen: set[str] = set()
    while used - seen:
        name = (used - seen).pop()
        seen.add(name)
        if name in settings:
            names |= settings[name]["env"]
            used |= settings[name]["uses"]
    return names


def test_the_space_card_documents_every_operator_variable_the_app_reads():
    from hubtools.publish.templates import render

    read = _env_read_by_the_app()
    assert {"HUBTOOLS_REVIEWER_SECRETS", "HUBTOOLS_ADJUDICATORS", "HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH",
            "HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_INFERENCE", "HUBTOOLS_ALLOWED_ENDPOINTS", "HUBTOOLS_TEAM_REPO",
            "HUBTOOLS_TEAM_SYNC_MINUTES", "HUBTOOLS_MAX_UPLOAD_MB", "HUBTOOLS_APP_DIR", "HUBTOOLS_CACHE"} <= read
    card = render("space/README.md", {"title": "t", "version": "0", "gradio_version": "5", "repo_id": "me/app",
                                      "requirements": [], "secrets": ["HF_TOKEN", "JUDGE_KEY"],
                                      "variables": ["HUBTOOLS_MAX_UPLOAD_MB", "MODEL_ID"]})
    rows = {}
    for line in card.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells
    missing = sorted(read - rows.keys())
    assert not missing, f"space/README.md does not document {missing}"
    for name in read | {"HF_TOKEN"}:
        _, kind, allows, default = rows[name]
        assert kind in {"secret", "variable"} and allows and default, rows[name]  # what it allows, and its default
    # a name set at deploy is listed once; one the card already documents is not repeated
    assert rows["JUDGE_KEY"][1:3] == ["secret", "set at deploy"] and rows["MODEL_ID"][1] == "variable"
    assert card.count("`HUBTOOLS_MAX_UPLOAD_MB`") == 1 and card.count("| `HF_TOKEN` |") == 1
