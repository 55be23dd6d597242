"""Reading a Hub dataset id: the real `datasets` client against the local Hub server."""

from __future__ import annotations

import json
import textwrap

from tests.fixtures.hub import run_client, run_client_json

from .conftest import CORPUS


def test_hub_dataset_id_loads_through_datasets_and_keeps_the_quarantine(hub_env, hub_repo_id):
    rows = json.loads((CORPUS / "llama_factory/kto_en_demo.json").read_text())[:20]
    rows[3]["messages"][-1]["content"] = "  "  # a blank reply must be quarantined, not dropped
    code = textwrap.dedent(f"""
        import json
        from datasets import Dataset
        import hubtools
        rows = json.loads({json.dumps(json.dumps(rows))})
        Dataset.from_list(rows).push_to_hub({hub_repo_id!r})
        result = hubtools.load({hub_repo_id!r})
        print(json.dumps({{"format": result.format, "total": result.total, "valid": result.valid,
                          "codes": {{r.index: r.code for r in result.quarantine}},
                          "first": result.dataset[0]["completion"][0]["content"]}}))
    """)
    out = run_client_json(code, hub_env)
    assert (out["format"], out["total"], out["valid"]) == ("kto", 20, 19)
    assert out["codes"] == {"3": "empty_text"}
    assert out["first"] == rows[0]["messages"][-1]["content"]


def test_missing_hub_dataset_is_a_clear_cli_error(hub_env):
    result = run_client("from hubtools.cli import main; import sys; sys.argv = ['hubtools', 'inspect', "
                        "'user/no-such-dataset']; main()", hub_env)
    assert result.returncode == 2
    assert "no such dataset on the Hub" in result.stderr
    assert "Traceback" not in result.stderr
    assert hub_env["HF_TOKEN"] not in result.stderr + result.stdout


def test_an_unreachable_hub_is_a_clear_cli_error(tmp_path):
    # offline mode fails at once; a dead endpoint takes the clients' ~25 s of retries to the same end
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": "hf_offlinetest123456"}
    result = run_client("from hubtools.cli import main; import sys; sys.argv = ['hubtools', 'inspect', "
                        "'user/not-cached']; main()", env)
    assert result.returncode == 1, result.stderr  # a network failure, not bad input (2)
    assert "user/not-cached: not in the local cache, and HF_HUB_OFFLINE=1 keeps the Hub out" in result.stderr
    assert "unset HF_HUB_OFFLINE" in result.stderr
    assert "Traceback" not in result.stderr and "hf_offlinetest" not in result.stderr + result.stdout


def test_split_option_reads_that_split_of_a_hub_dataset(hub_env, hub_repo_id, tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        from datasets import Dataset, DatasetDict
        from typer.testing import CliRunner
        from hubtools.cli import app
        rows = lambda n, tag: [{{"instruction": f"{{tag}} question {{i}}", "output": f"answer {{i}}"}} for i in range(n)]
        DatasetDict({{"train": Dataset.from_list(rows(5, "train")),
                      "test": Dataset.from_list(rows(3, "test"))}}).push_to_hub({hub_repo_id!r})
        runner = CliRunner()
        out = {{}}
        for split in (None, "test", "dev"):
            args = ["inspect", {hub_repo_id!r}, "--json"] + (["--split", split] if split else [])
            result = runner.invoke(app, args)
            out[str(split)] = [result.exit_code, result.stdout if result.exit_code == 0 else result.output]
        result = runner.invoke(app, ["validate", {hub_repo_id!r}, "--split", "test", "--out", {str(tmp_path / "v")!r}])
        out["validate"] = [result.exit_code, result.output]
        print(json.dumps(out))
    """)
    out = run_client_json(code, hub_env)
    default, test, dev = json.loads(out["None"][1]), json.loads(out["test"][1]), out["dev"]
    assert (default["total"], default["samples"][0]["instruction"]) == (5, "train question 0")
    assert (test["total"], test["samples"][0]["instruction"]) == (3, "test question 0")
    assert dev[0] == 2 and "has no split 'dev'" in dev[1] and "train" in dev[1] and "test" in dev[1]
    assert out["validate"][0] == 0 and "3 records = 3 valid + 0 quarantined" in out["validate"][1]


def test_split_is_refused_for_a_local_file(tmp_path):
    from hubtools.cli import app
    from typer.testing import CliRunner

    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "hi", "output": "hello"}\n')
    result = CliRunner().invoke(app, ["inspect", str(path), "--split", "test"])
    assert result.exit_code == 2 and "a split applies to Hub dataset ids only" in result.output


def test_a_hub_dataset_with_several_configs_asks_for_one(hub_env, hub_repo_id):
    code = textwrap.dedent(f"""
        import json
        from datasets import Dataset
        from typer.testing import CliRunner
        from hubtools.cli import app
        for name in ("easy", "hard"):
            Dataset.from_list([{{"question": f"{{name}} q{{i}}", "answer": "a"}} for i in range(2)]).push_to_hub(
                {hub_repo_id!r}, config_name=name)
        runner = CliRunner()
        missing = runner.invoke(app, ["inspect", {hub_repo_id!r}])
        chosen = runner.invoke(app, ["inspect", {hub_repo_id!r} + ":hard", "--json"])
        print(json.dumps({{"missing": [missing.exit_code, missing.output],
                          "chosen": [chosen.exit_code, chosen.stdout]}}))
    """)
    out = run_client_json(code, hub_env)
    code_missing, text = out["missing"]
    assert code_missing == 2 and "has several configs" in text and "easy" in text and "hard" in text
    assert f"{hub_repo_id}:easy" in text and "Traceback" not in text
    code_chosen, stdout = out["chosen"]
    assert code_chosen == 0 and json.loads(stdout)["samples"][0]["question"] == "hard q0"
