"""The local Hub against the real `huggingface_hub` and `datasets` clients, each run in a fresh interpreter."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
import textwrap
import urllib.request
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.fixtures.hub import (
    OTHER_USER_TOKEN,
    PROJECT_ROOT,
    READ_TOKEN,
    WRITE_TOKEN,
    client_env,
    run_client,
    run_client_json,
)
from tests.hubserver import HubServer

PARQUET_SHARD = "data/train-00000-of-00001.parquet"


def snippet(body: str, **params: Any) -> str:
    """Return client code that starts with `P = <params>` so the body needs no string formatting."""
    return f"import json\nP = json.loads({json.dumps(params)!r})\n" + textwrap.dedent(body)


def requests_for(server: HubServer, fragment: str) -> list[dict[str, Any]]:
    """Return the logged requests whose path contains `fragment`."""
    return [entry for entry in server.request_log() if fragment in entry["path"]]


def test_card_files_and_ranged_download_through_the_client(hub_server, hub_env, hub_repo_id):
    readme = "---\nlicense: cc-by-4.0\npretty_name: Tiny notes\n---\n# Tiny notes\n"
    notes = "0123456789abcdefghij"
    out = run_client_json(
        snippet(
            """
            from huggingface_hub import DatasetCard, HfApi, HfFileSystem, hf_hub_download
            api = HfApi()
            repo = P["repo"]
            url = api.create_repo(repo, repo_type="dataset")
            for path, text, message in (("README.md", P["readme"], "Add card"),
                                        ("docs/notes.txt", P["notes"], "Add notes")):
                api.upload_file(path_or_fileobj=text.encode(), path_in_repo=path, repo_id=repo,
                                repo_type="dataset", commit_message=message)
            card = DatasetCard.load(repo)
            info = api.dataset_info(repo)
            local = hf_hub_download(repo, "docs/notes.txt", repo_type="dataset")
            with HfFileSystem().open(f"datasets/{repo}/docs/notes.txt", "rb") as f:
                f.seek(5)
                ranged = f.read(4).decode()
            refs = api.list_repo_refs(repo, repo_type="dataset")
            print(json.dumps({
                "url": [url.repo_type, url.repo_id],
                "license": card.data.license,
                "pretty_name": card.data.pretty_name,
                "info": [info.sha, info.card_data.license, info.private],
                "files": api.list_repo_files(repo, repo_type="dataset"),
                "downloaded": open(local).read(),
                "ranged": ranged,
                "branches": [[b.name, b.target_commit] for b in refs.branches],
                "whoami": api.whoami()["name"],
            }))
            """,
            repo=hub_repo_id,
            readme=readme,
            notes=notes,
        ),
        hub_env,
    )

    assert out["url"] == ["dataset", hub_repo_id]
    assert out["license"] == "cc-by-4.0"
    assert out["pretty_name"] == "Tiny notes"
    assert sorted(out["files"]) == [".gitattributes", "README.md", "docs/notes.txt"]
    files = hub_server.files(hub_repo_id)
    assert files["README.md"] == readme.encode()
    assert files["docs/notes.txt"] == notes.encode()
    commits = hub_server.commits(hub_repo_id)
    assert [c["title"] for c in commits] == ["Add notes", "Add card", "initial commit"]
    assert out["info"] == [commits[0]["id"], "cc-by-4.0", False]
    assert out["branches"] == [["main", commits[0]["id"]]]
    assert out["downloaded"] == notes
    assert out["ranged"] == notes[5:9]
    ranged = [e for e in requests_for(hub_server, f"{hub_repo_id}/resolve/") if "range" in e["headers"]]
    assert ranged and all(e["method"] == "GET" and e["status"] == 206 for e in ranged)
    assert out["whoami"] == "user"


def test_push_to_hub_then_load_dataset_returns_the_rows(hub_server, hub_env, hub_repo_id):
    first_rows = {"text": ["hello", "wörld", "third"], "score": [0.5, 1.5, 2.5]}
    second_rows = {"text": ["only one"], "score": [9.0]}
    out = run_client_json(
        snippet(
            """
            from datasets import Dataset, load_dataset
            repo = P["repo"]
            Dataset.from_dict(P["first"]).push_to_hub(repo)
            first = load_dataset(repo, split="train").to_dict()
            Dataset.from_dict(P["second"]).push_to_hub(repo, commit_message="Replace rows")
            second = load_dataset(repo, split="train").to_dict()
            print(json.dumps({"first": first, "second": second}))
            """,
            repo=hub_repo_id,
            first=first_rows,
            second=second_rows,
        ),
        hub_env,
    )

    assert out["first"] == first_rows
    assert out["second"] == second_rows
    files = hub_server.files(hub_repo_id)
    assert PARQUET_SHARD in hub_server.lfs_files(hub_repo_id)
    assert files[PARQUET_SHARD].startswith(b"PAR1")
    assert "num_examples: 1" in files["README.md"].decode()
    assert hub_server.commits(hub_repo_id)[0]["title"] == "Replace rows"
    shard_sha = hashlib.sha256(files[PARQUET_SHARD]).hexdigest()
    uploads = [e for e in hub_server.request_log() if e["method"] == "PUT"]
    assert any(e["path"].startswith(f"/lfs-storage/{shard_sha}?") and e["status"] == 200 for e in uploads)
    for entry in uploads:  # the upload URL stands for a pre-signed storage URL: no token may reach it
        assert "authorization" not in entry["headers"]
        assert WRITE_TOKEN not in entry["path"]


def test_create_commit_with_create_pr_leaves_main_unchanged(hub_server, hub_env, hub_repo_id):
    out = run_client_json(
        snippet(
            """
            from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
            from huggingface_hub.errors import HfHubHTTPError
            api = HfApi()
            repo = P["repo"]
            api.create_repo(repo, repo_type="dataset")
            api.upload_file(path_or_fileobj=b"v1\\n", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
            api.upload_file(path_or_fileobj=b"old\\n", path_in_repo="old.txt", repo_id=repo, repo_type="dataset")
            info = api.create_commit(
                repo, repo_type="dataset", commit_message="Propose v2", create_pr=True,
                operations=[CommitOperationAdd("a.txt", b"v2\\n"), CommitOperationAdd("b.txt", b"new\\n"),
                            CommitOperationDelete("old.txt")],
            )
            refs = api.list_repo_refs(repo, repo_type="dataset", include_pull_requests=True)
            details = api.get_discussion_details(repo, info.pr_num, repo_type="dataset")
            try:
                api.create_commit(repo, repo_type="dataset", commit_message="stale", parent_commit="0" * 40,
                                  operations=[CommitOperationAdd("stale.txt", b"x")])
                stale = None
            except HfHubHTTPError as exc:
                stale = [type(exc).__name__, exc.response.status_code]
            print(json.dumps({
                "pr": [info.pr_num, info.pr_revision, info.oid],
                "pr_refs": [[r.ref, r.target_commit] for r in refs.pull_requests],
                "details": [details.is_pull_request, details.status, details.target_branch, details.title],
                "stale": stale,
            }))
            """,
            repo=hub_repo_id,
        ),
        hub_env,
    )

    main = hub_server.files(hub_repo_id)
    assert {path: main[path] for path in ("a.txt", "old.txt")} == {"a.txt": b"v1\n", "old.txt": b"old\n"}
    assert "b.txt" not in main and "stale.txt" not in main
    pr_files = hub_server.files(hub_repo_id, revision="refs/pr/1")
    assert pr_files["a.txt"] == b"v2\n" and pr_files["b.txt"] == b"new\n"
    assert "old.txt" not in pr_files
    pr_head = hub_server.commits(hub_repo_id, revision="refs/pr/1")[0]["id"]
    assert out["pr"] == [1, "refs/pr/1", pr_head]
    assert out["pr_refs"] == [["refs/pr/1", pr_head]]
    assert hub_server.pull_requests(hub_repo_id) == [
        {"num": 1, "ref": "refs/pr/1", "title": "Propose v2", "status": "open"}
    ]
    assert out["details"] == [True, "open", "refs/heads/main", "Propose v2"]
    assert out["stale"] == ["HfHubHTTPError", 412]


def test_merge_pull_request_brings_the_changes_to_main(hub_server, hub_env, hub_repo_id):
    out = run_client_json(
        snippet(
            """
            from huggingface_hub import HfApi
            api = HfApi()
            repo = P["repo"]
            api.create_repo(repo, repo_type="dataset")
            pr = api.create_pull_request(repo, title="Add the data", repo_type="dataset")
            api.upload_file(path_or_fileobj=b"rows\\n", path_in_repo="data.txt", repo_id=repo,
                            repo_type="dataset", revision=pr.git_reference)
            api.comment_discussion(repo, pr.num, "ready", repo_type="dataset")
            api.merge_pull_request(repo, pr.num, repo_type="dataset")
            merged = api.get_discussion_details(repo, pr.num, repo_type="dataset")
            print(json.dumps({"created": [pr.num, pr.status], "merged": [merged.status, merged.merge_commit_oid],
                              "comments": [e.content for e in merged.events if e.type == "comment"]}))
            """,
            repo=hub_repo_id,
        ),
        hub_env,
    )

    assert out["created"] == [1, "draft"]
    assert hub_server.files(hub_repo_id)["data.txt"] == b"rows\n"
    head = hub_server.commits(hub_repo_id)[0]
    assert out["merged"] == ["merged", head["id"]]
    assert head["title"] == "Add the data"
    assert out["comments"][-1] == "ready"


def test_space_creation_secrets_variables_and_hardware(hub_server, hub_env, hub_repo_id):
    out = run_client_json(
        snippet(
            """
            from huggingface_hub import HfApi
            api = HfApi()
            repo = P["repo"]
            url = api.create_repo(repo, repo_type="space", space_sdk="gradio")
            api.add_space_secret(repo, "JUDGE_KEY", "sk-test-123", description="judge key")
            api.add_space_variable(repo, "MODEL_ID", "user/tiny")
            variables = api.get_space_variables(repo)
            secrets = api.get_space_secrets(repo)
            requested = api.request_space_hardware(repo, "t4-small")
            runtime = api.get_space_runtime(repo)
            print(json.dumps({
                "url": [url.repo_type, url.repo_id],
                "variables": {k: v.value for k, v in variables.items()},
                "secrets": {k: s.description for k, s in secrets.items()},
                "hardware": [requested.requested_hardware, runtime.hardware, runtime.stage],
                "sdk": api.space_info(repo).sdk,
            }))
            """,
            repo=hub_repo_id,
        ),
        hub_env,
    )

    assert out["url"] == ["space", hub_repo_id]
    assert hub_server.repo_exists(hub_repo_id, "space")
    assert not hub_server.repo_exists(hub_repo_id, "dataset")
    assert hub_server.space_secrets(hub_repo_id) == {"JUDGE_KEY": "sk-test-123"}
    assert hub_server.space_variables(hub_repo_id) == {"MODEL_ID": "user/tiny"}
    assert out["variables"] == {"MODEL_ID": "user/tiny"}
    assert out["secrets"] == {"JUDGE_KEY": "judge key"}
    assert out["hardware"] == ["t4-small", "t4-small", "RUNNING"]
    assert hub_server.space_runtime(hub_repo_id)["hardware"]["current"] == "t4-small"
    assert out["sdk"] == "gradio"


def test_auth_and_lookup_errors_map_to_the_client_exceptions(hub_server, hub_env, hub_repo_id):
    private, missing = hub_repo_id, f"{hub_repo_id}-missing"
    result = run_client(
        snippet(
            """
            from huggingface_hub import HfApi, hf_hub_download
            def outcome(call):
                try:
                    call()
                except Exception as exc:
                    return [type(exc).__name__, getattr(getattr(exc, "response", None), "status_code", None)]
                return None
            api = HfApi()
            api.create_repo(P["private"], repo_type="dataset", private=True)
            print(json.dumps({
                "read_token_write": outcome(
                    lambda: HfApi(token=P["read"]).create_repo(P["missing"], repo_type="dataset")),
                "read_token_read": HfApi(token=P["read"]).dataset_info(P["private"]).private,
                "anonymous": outcome(lambda: HfApi(token=False).dataset_info(P["private"])),
                "other_user": outcome(lambda: HfApi(token=P["other"]).dataset_info(P["private"])),
                "missing_repo_upload": outcome(lambda: api.upload_file(
                    path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=P["missing"], repo_type="dataset")),
                "missing_file": outcome(lambda: hf_hub_download(P["private"], "nope.txt", repo_type="dataset")),
                "missing_revision": outcome(lambda: hf_hub_download(
                    P["private"], ".gitattributes", repo_type="dataset", revision="no-such-branch")),
                "duplicate": outcome(lambda: api.create_repo(P["private"], repo_type="dataset")),
                "exist_ok": str(api.create_repo(P["private"], repo_type="dataset", exist_ok=True)),
            }), flush=True)
            HfApi(token="hf_not_a_real_token").whoami()
            """,
            private=private,
            missing=missing,
            read=READ_TOKEN,
            other=OTHER_USER_TOKEN,
        ),
        hub_env,
    )

    assert result.returncode != 0
    assert "HfHubHTTPError" in result.stderr and "Invalid user token" in result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["read_token_write"] == ["HfHubHTTPError", 403]
    assert out["read_token_read"] is True
    assert out["anonymous"] == ["RepositoryNotFoundError", 401]
    assert out["other_user"] == ["RepositoryNotFoundError", 404]
    assert out["missing_repo_upload"] == ["RepositoryNotFoundError", 404]
    assert out["missing_file"] == ["RemoteEntryNotFoundError", 404]
    assert out["missing_revision"] == ["RevisionNotFoundError", 404]
    assert out["duplicate"] == ["HfHubHTTPError", 409]
    assert out["exist_ok"] == f"{hub_server.url}/datasets/{private}"
    assert not hub_server.repo_exists(missing)


def test_upload_folder_and_paginated_listings(tmp_path):
    server = HubServer({WRITE_TOKEN: ("user", "write")}).start()
    server.context.tree_page_size = server.context.expanded_tree_page_size = server.context.commits_page_size = 2
    folder = tmp_path / "folder"
    for name, data in {"a.txt": b"a", "b.txt": b"b", "sub/c.txt": b"c", "sub/deep/d.txt": b"d",
                       "weights.bin": bytes(range(256)), "scratch.tmp": b"ignored"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    try:
        out = run_client_json(
            snippet(
                """
                from huggingface_hub import HfApi
                api = HfApi()
                repo = "user/folder"
                api.create_repo(repo, repo_type="dataset")
                api.upload_folder(folder_path=P["folder"], repo_id=repo, repo_type="dataset", path_in_repo="data",
                                  ignore_patterns="*.tmp", commit_message="Add folder")
                for i in range(3):
                    api.upload_file(path_or_fileobj=f"edit {i}".encode(), path_in_repo="data/a.txt", repo_id=repo,
                                    repo_type="dataset", commit_message=f"Edit {i}")
                tree = api.list_repo_tree(repo, path_in_repo="data", repo_type="dataset", expand=True)
                print(json.dumps({
                    "files": api.list_repo_files(repo, repo_type="dataset"),
                    "commits": [c.title for c in api.list_repo_commits(repo, repo_type="dataset")],
                    "tree": {e.path: e.last_commit.title for e in tree},
                }))
                """,
                folder=str(folder),
            ),
            client_env(server, tmp_path / "hf_home"),
        )
        paged = [e for e in server.request_log() if e["method"] == "GET" and "cursor=" in e["path"]]
        files = server.files("user/folder")
        lfs = server.lfs_files("user/folder")
    finally:
        server.stop()

    expected = ["data/a.txt", "data/b.txt", "data/sub/c.txt", "data/sub/deep/d.txt", "data/weights.bin"]
    assert sorted(out["files"]) == [".gitattributes", *expected]
    assert files["data/sub/deep/d.txt"] == b"d" and files["data/a.txt"] == b"edit 2"
    assert lfs == {"data/weights.bin"}
    assert out["commits"] == ["Edit 2", "Edit 1", "Edit 0", "Add folder", "initial commit"]
    assert out["tree"] == {
        "data/sub": "Add folder",
        "data/a.txt": "Edit 2",
        "data/b.txt": "Add folder",
        "data/weights.bin": "Add folder",
    }
    assert any("/tree/" in e["path"] for e in paged) and any("/commits/" in e["path"] for e in paged)


def test_raw_http_chunked_bodies_keep_alive_and_error_headers(hub_server):
    address = urlparse(hub_server.url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    auth = {"Authorization": f"Bearer {WRITE_TOKEN}"}

    def call(method: str, path: str, body: Any = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers={**auth, **headers}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    yaml_body = json.dumps({"content": "---\nlicense: mit\n---\n", "repoType": "dataset"}).encode()
    status, _, body = call("POST", "/api/validate-yaml", iter([yaml_body[:10], yaml_body[10:]]))
    assert (status, json.loads(body)) == (200, {"errors": [], "warnings": []})
    bad_yaml = json.dumps({"content": "---\nlicense: [unclosed\n---\n"}).encode()
    status, _, body = call("POST", "/api/validate-yaml", bad_yaml)
    assert status == 400 and json.loads(body)["errors"]

    repo = "user/raw-http"
    status, _, _ = call("POST", "/api/repos/create", json.dumps({"name": "raw-http", "type": "dataset"}).encode())
    assert status == 200
    status, headers, body = call("HEAD", f"/datasets/{repo}/resolve/main/.gitattributes")
    size = len(hub_server.files(repo)[".gitattributes"])
    assert (status, int(headers["Content-Length"]), body) == (200, size, b"")
    head = hub_server.commits(repo)[0]["id"]
    assert headers["X-Repo-Commit"] == head
    status, headers, _ = call("GET", f"/datasets/{repo}/resolve/main/missing.txt")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", head)
    status, headers, _ = call("GET", "/api/datasets/user/no-such-repo")
    assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")
    status, headers, _ = call("GET", f"/api/datasets/{repo}/revision/nope")
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    status, headers, _ = call("GET", "/api/whoami-v2", Authorization="Bearer hf_unknown")
    assert (status, headers["X-Error-Message"]) == (401, "Invalid credentials in Authorization header")
    conn.close()


def test_module_runs_standalone_and_prints_its_url():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hubserver", "--port", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        request = urllib.request.Request(f"{url}/api/whoami-v2", headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["name"] == "user"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_oauth_provider_refuses_bad_clients_reused_codes_and_checks_with_authlib():
    """The OpenID provider with authlib's own client: discovery, code, token, id_token signature."""
    import asyncio

    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc import jwt
    from joserfc.jwk import KeySet

    with HubServer() as server:
        server.register_oauth_app("app", "s3cret")
        meta = json.loads(urllib.request.urlopen(f"{server.url}/.well-known/openid-configuration").read())
        assert meta["issuer"] == server.url and meta["id_token_signing_alg_values_supported"] == ["RS256"]

        def code_for(user: str) -> str:
            form = f"client_id=app&redirect_uri=http://127.0.0.1:1/cb&scope=openid&state=xyz&nonce=n1&username={user}"
            conn = http.client.HTTPConnection(urlparse(server.url).netloc)
            conn.request("POST", "/oauth/authorize", form, {"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            assert response.status == 302
            location = response.getheader("Location")
            assert location.startswith("http://127.0.0.1:1/cb?") and "state=xyz" in location
            return location.split("code=")[1].split("&")[0]

        async def exchange(code: str, secret: str) -> dict[str, Any]:
            async with AsyncOAuth2Client("app", secret, token_endpoint_auth_method="client_secret_basic") as client:
                return await client.fetch_token(meta["token_endpoint"], code=code,
                                                redirect_uri="http://127.0.0.1:1/cb")

        code = code_for("carol")
        token = asyncio.run(exchange(code, "s3cret"))
        keys = KeySet.import_key_set(json.loads(urllib.request.urlopen(meta["jwks_uri"]).read()))
        claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
        jwt.JWTClaimsRegistry(exp={"essential": True}, aud={"essential": True, "value": "app"}).validate(claims)
        assert (claims["preferred_username"], claims["nonce"], claims["aud"], claims["iss"]) == \
            ("carol", "n1", "app", server.url)
        whoami = urllib.request.Request(f"{server.url}/api/whoami-v2",
                                        headers={"Authorization": f"Bearer {token['access_token']}"})
        assert json.loads(urllib.request.urlopen(whoami).read())["name"] == "carol"  # a real Hub token

        from authlib.integrations.base_client.errors import OAuthError

        with pytest.raises(OAuthError, match="invalid_grant"):  # a code works once
            asyncio.run(exchange(code, "s3cret"))
        with pytest.raises(OAuthError, match="Invalid client credentials"):
            asyncio.run(exchange(code_for("carol"), "wrong"))
