"""The app's Load tab, built without a server and driven over HTTP with gradio_client."""

from __future__ import annotations

import pytest

from hubtools.app import create_app
from hubtools.app.load_tab import inspect_upload

from .conftest import CORPUS


def test_inspect_upload_shows_format_counts_and_quarantine():
    text, rows, quarantine_file, valid_file = inspect_upload(
        str(CORPUS / "alpaca_eval/alpaca-7b_vs_davinci003_gpt4_annotations.json"))
    assert "`alpaca_eval_pairwise` (preference)" in text
    assert "805 = **789 valid** + **16 quarantined**" in text
    assert len(rows) == 16 and rows[0][1] == "no_preference"
    assert quarantine_file.endswith("quarantine.jsonl") and valid_file.endswith("valid.json")


def test_unusable_upload_says_why_instead_of_failing(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    text, rows, *_ = inspect_upload(str(path))
    assert text.startswith("**Cannot read this file.**") and "empty" in text and rows == []


@pytest.fixture(scope="module")
def served_app():
    demo = create_app()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    yield demo
    demo.close()


def test_inspect_endpoint_over_http(served_app):
    from gradio_client import Client, handle_file

    client = Client(served_app.local_url, verbose=False)
    text, table, quarantine_file, valid_file = client.predict(
        handle_file(str(CORPUS / "llama_factory/kto_en_demo.json")), api_name="/inspect")
    assert "`kto` (unpaired)" in text
    assert "300 = **300 valid** + **0 quarantined**" in text
    assert valid_file.endswith(".json")
