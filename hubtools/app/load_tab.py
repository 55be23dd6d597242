"""Load tab: upload a dataset file, see its detected format, counts and the quarantine."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..config import MAX_UPLOAD_MB
from ..convert import validate_to_dir
from ..errors import HubtoolsError

__all__ = ["create_app", "inspect_upload"]

_QUARANTINE_COLUMNS = ["index", "code", "reason", "raw"]


def inspect_upload(path: str | None) -> tuple[str, list[list[Any]], str | None, str | None]:
    """Validate an uploaded file: (markdown summary, quarantine rows, quarantine file, valid file)."""
    if not path:
        return "Upload a dataset file to start.", [], None, None
    out = Path(tempfile.mkdtemp(prefix="hubtools-app-"))
    try:
        summary = validate_to_dir(path, out)
    except HubtoolsError as exc:
        return f"**Cannot read this file.** {exc}", [], None, None
    import orjson

    rows = []
    for line in (out / "quarantine.jsonl").read_bytes().splitlines():
        row = orjson.loads(line)
        raw = row["raw"] if isinstance(row["raw"], str) else orjson.dumps(row["raw"]).decode()
        rows.append([row["index"], row["code"], row["reason"], raw[:300]])
    codes = ", ".join(f"{code}: {n}" for code, n in summary["by_code"].items()) or "none"
    text = (
        f"### {Path(path).name}\n"
        f"- **Format:** `{summary['format']}` ({summary['kind']}), detection confidence "
        f"{summary['confidence']:.0%}\n"
        f"- **Records:** {summary['total']} = **{summary['valid']} valid** + "
        f"**{summary['quarantined']} quarantined**\n"
        f"- **Quarantine reasons:** {codes}\n"
    )
    return text, rows, summary["files"]["quarantine"], summary["files"]["valid"]


def create_app():
    """Build the Gradio Blocks (not launched)."""
    import gradio as gr

    with gr.Blocks(title="hubtools", analytics_enabled=False) as demo:  # offline-first
        gr.Markdown(
            "# hubtools\nUpload an SFT, chat or preference dataset (JSONL, JSON, CSV, Parquet, TXT). "
            "hubtools detects its format, validates every record and keeps the bad ones apart with "
            "a reason. Runs offline: nothing here needs a token or an endpoint."
        )
        with gr.Tab("Load"):
            upload = gr.File(label=f"Dataset file (up to {MAX_UPLOAD_MB} MB)", type="filepath",
                             elem_id="upload")
            summary = gr.Markdown(elem_id="summary")
            quarantine = gr.Dataframe(headers=_QUARANTINE_COLUMNS, label="Quarantine",
                                      elem_id="quarantine", wrap=True)
            with gr.Row():
                quarantine_file = gr.File(label="quarantine.jsonl")
                valid_file = gr.File(label="valid records")
        upload.change(inspect_upload, inputs=upload,
                      outputs=[summary, quarantine, quarantine_file, valid_file], api_name="inspect")
    demo.max_file_size = f"{MAX_UPLOAD_MB}mb"
    return demo
