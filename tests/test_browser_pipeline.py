"""The Pipeline view in real headless Chromium: upload a prompt list, write a recipe, validate it, run it
against the OpenAI-protocol stand-in (responses -> heuristic judge -> rank -> check -> card -> push to the
local Hub with the token typed in the page), and see the accounting table; the dataset is read back with
``datasets``. The app is test_browser.py's: its own interpreter, pointed at the local Hub, without HF_TOKEN.
"""

from __future__ import annotations

import json
import uuid

from playwright.sync_api import expect

from tests.fixtures.browser import box, tab
from tests.fixtures.hub import WRITE_TOKEN, run_client_json
from tests.fixtures.openai import OPENAI_TOKEN
from tests.test_browser import new_page, served_app  # noqa: F401 - the served app and its pages

QUESTIONS = ["What is the capital of France?", "Name three rivers in Europe.", "Explain photosynthesis briefly.",
             "Write a haiku about the sea.", "How do vaccines work?", "What is a prime number?"]


def test_a_recipe_runs_from_the_pipeline_view_to_a_published_dataset(new_page, openai_server, hub_server, hub_env,
                                                                     tmp_path):
    prompts = tmp_path / "questions.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in QUESTIONS), encoding="utf-8")
    repo = f"user/pipeline-{uuid.uuid4().hex[:8]}"
    recipe = f"""name: browser-build
sources:
  prompts: questions.jsonl
stages:
  responses: {{endpoint: {openai_server.base_url}, model: stand-in-small, n: 2}}
  judge: {{}}
  rank: {{min_margin: 0.1}}
  check: {{checks: [exact_duplicates, pii]}}
  card: {{license: apache-2.0, language: en}}
  push: {{repo: {repo}}}
"""
    page = new_page()
    tab(page, "Pipeline")
    page.locator("#pipeline-files input[type=file]").set_input_files(str(prompts))
    expect(page.locator("#pipeline-files")).to_contain_text("questions.jsonl", timeout=30_000)
    box(page, "pipeline-recipe").fill(recipe)
    status = page.locator("#pipeline-status")

    page.locator("#pipeline-validate").click()  # no token yet: the push is refused before anything runs
    expect(status).to_contain_text("stages.push needs your Hugging Face token", timeout=30_000)
    page.locator("#pipeline-api-key input[type=password]").fill(OPENAI_TOKEN)
    page.locator("#pipeline-token input[type=password]").fill(WRITE_TOKEN)
    page.locator("#pipeline-validate").click()
    expect(status).to_contain_text("The recipe is valid.", timeout=30_000)
    expect(page.locator("#pipeline-recipe-file")).to_contain_text("hubtools.yaml")

    page.locator("#pipeline-run").click()
    expect(status).to_contain_text("Built browser-build: ", timeout=60_000)
    expect(status).to_contain_text(f"Published: {hub_server.url}/datasets/{repo}")
    expect(page.locator("#pipeline-stages")).to_have_text(
        "✓ load:prompts · ✓ responses · ✓ judge · ✓ rank · ✓ check · ✓ card · ✓ push")
    rows = page.locator("#pipeline-accounting table tbody tr")
    expect(rows).to_have_count(7)
    stages = [rows.nth(i).locator("td").first.inner_text().strip() for i in range(7)]
    assert stages == ["load (prompts)", "responses", "judge", "rank", "check", "card", "push"]
    responses = [c.inner_text().strip() for c in rows.nth(1).locator("td").all()]
    assert responses[1] == "6 prompts" and responses[4] == "12 candidates"
    published = int(rows.nth(6).locator("td").nth(4).inner_text().split()[0])
    expect(page.locator("#pipeline-report-file")).to_contain_text("report.md")
    expect(page.locator("#current-dataset")).to_contain_text("build browser-build")
    html = page.content()
    assert OPENAI_TOKEN not in html and WRITE_TOKEN not in html

    hub = run_client_json(f"""
import json
from datasets import load_dataset
from huggingface_hub import hf_hub_download
ds = load_dataset({repo!r}, split="train")
card = open(hf_hub_download({repo!r}, "README.md", repo_type="dataset")).read()
print(json.dumps({{"rows": len(ds), "columns": ds.column_names, "card": card}}))
""", hub_env)
    assert hub["rows"] == published > 0 and {"prompt", "chosen", "rejected"} <= set(hub["columns"])
    assert "name: browser-build" in hub["card"] and "| responses | 6 prompts |" in hub["card"]
    assert OPENAI_TOKEN not in hub["card"] and WRITE_TOKEN not in hub["card"]
