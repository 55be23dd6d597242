"""Load tab: upload a file, give a Hub dataset id or take the example; see its detected format,
kind, counts and the quarantine. What loads becomes the session's current dataset.

Files come in only through the upload: the Hub-id box takes ``owner/name`` (optionally
``:config``) and nothing that could name a file on the server. Hub datasets are read as the
visitor: with their sign-in token in a Space with OAuth, else with no token, never the app's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ..convert import validate_to_dir
from ..errors import HubtoolsError
from ..hub_ids import DATASET_ID
from ..io import Source
from ..redact import redact
from .isolate import run_isolated
from .session import EXAMPLE, AppSettings, Session, fresh_dir, problem, too_big, with_dataset

__all__ = ["LoadScreen", "build", "inspect_upload", "load_example", "load_hub", "load_upload"]

_QUARANTINE_COLUMNS = ["index", "code", "reason", "raw"]
_FILE_TYPES = [".jsonl", ".json", ".csv", ".parquet", ".txt", ".gz"]
#: what the Hub-id box accepts: owner/name with an optional :config


class LoadScreen(NamedTuple):
    """What the Load tab shows (in the order of its output components)."""

    summary: str
    quarantine: list[list[Any]]
    quarantine_file: str | None
    valid_file: str | None
    session: Session


def _quarantine_rows(path: Path) -> list[list[Any]]:
    import orjson

    rows = []
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        raw = row["raw"] if isinstance(row["raw"], str) else orjson.dumps(row["raw"]).decode()
        rows.append([row["index"], row["code"], row["reason"], raw[:300]])
    return rows


def _summary_text(name: str, summary: dict[str, Any]) -> str:
    codes = ", ".join(f"{code}: {n}" for code, n in summary["by_code"].items()) or "none"
    return (
        f"### {name}\n"
        f"- **Format:** `{summary['format']}` ({summary['kind']}), detection confidence "
        f"{summary['confidence']:.0%}\n"
        f"- **Records:** {summary['total']} = **{summary['valid']} valid** + "
        f"**{summary['quarantined']} quarantined**\n"
        f"- **Quarantine reasons:** {codes}\n"
    )


def _validate(source: str, name: str, session: Session, failure: str, split: str | None = None, *,
              max_bytes: int | None = None) -> LoadScreen:
    """validate_to_dir into a fresh folder of the session; the valid file becomes the current dataset.

    The reading runs in a child process: input that crashes a parser is refused, the app lives on.
    ``max_bytes`` bounds a file once decompressed (the upload limit).
    """
    session, out = fresh_dir(session, "loads")
    try:
        summary = run_isolated(validate_to_dir, source, out, split=split, max_bytes=max_bytes)
    except (HubtoolsError, OSError) as exc:  # OSError: the Hub or a file could not be reached
        return LoadScreen(problem(failure, exc), [], None, None, session)
    text = _summary_text(name, summary)
    valid = summary["files"]["valid"]
    if summary["valid"]:
        session = with_dataset(session, valid, name=name, kind=summary["kind"], format=summary["format"],
                               records=summary["valid"])
        text += "\nThis is now the **current dataset** of the Generate, Review, Quality and Publish tabs."
    else:
        text += "\n**No record is valid**, so the current dataset is unchanged; the quarantine says why."
    return LoadScreen(text, _quarantine_rows(out / "quarantine.jsonl"), summary["files"]["quarantine"], valid,
                      session)


def inspect_upload(path: str | None) -> tuple[str, list[list[Any]], str | None, str | None]:
    """Validate an uploaded file: (markdown summary, quarantine rows, quarantine file, valid file)."""
    screen = load_upload(AppSettings.from_config(), path, Session())
    return screen[:4]


def load_upload(settings: AppSettings, path: str | None, session: Session) -> LoadScreen:
    """Validate an uploaded file and make it the current dataset."""
    if not path:
        return LoadScreen("Upload a dataset file to start.", [], None, None, session)
    refused = too_big(path, settings)
    if refused:
        return LoadScreen(refused, [], None, None, session)
    return _validate(path, Path(path).name, session, "Cannot read this file.",
                     max_bytes=settings.max_upload_mb * 1024 * 1024)


def _hub_id_problem(hub_id: str) -> str | None:
    """Why ``hub_id`` is not a Hub dataset id the app reads (None when it is one)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    match = DATASET_ID.match(hub_id)
    if match is None:
        return "it is not `owner/name` (optionally `owner/name:config`)"
    try:
        validate_repo_id(match["repo"])
    except HFValidationError:
        return "`owner` and `name` take letters, digits, `-`, `_` and `.`, with no `--` or `..`"
    return None


def load_hub(hub_id: str, split: str | None, session: Session, token: str | bool = False) -> LoadScreen:
    """Read a Hub dataset (``user/name``, optionally ``user/name:config``) and make it the current dataset.

    ``split`` picks the split (empty: ``train``, else the dataset's first split). ``token`` is the
    visitor's own (their sign-in); ``False`` (the default) reads with no token at all.
    """
    hub_id = (hub_id or "").strip()
    split = (split or "").strip() or None
    if not hub_id:
        return LoadScreen("Type a Hub dataset id such as `user/name`.", [], None, None, session)
    refused = _hub_id_problem(hub_id)
    if refused:
        return LoadScreen(f"**Not a Hub dataset id:** {refused}. Files come in through the upload box.", [], None,
                          None, session)
    name = f"{hub_id} ({split})" if split else hub_id
    source = Source(hub_id, "hub", split=split, token=token or False)
    screen = _validate(source, name, session, "Cannot read this Hub dataset (it needs the network; a private or "
                       "gated one needs you signed in with access to it).")
    return screen._replace(summary=redact(screen.summary, token if isinstance(token, str) else None))


def load_example(session: Session) -> LoadScreen:
    """Load the bundled example (20 preference pairs with judge scores) as the current dataset."""
    return _validate(str(EXAMPLE), "example: preference_pairs.jsonl", session, "Cannot read the example.")


def _as_signed_in(gr, fn):
    """``fn(hub_id, split, session, token)`` with the token of the signed-in visitor (False: nobody)."""

    def read_hub(hub_id, split, session, oauth_token):
        return fn(hub_id, split, session, oauth_token.token if oauth_token is not None else False)

    read_hub.__annotations__ = {"oauth_token": gr.OAuthToken | None}
    return read_hub


def build(gr, settings: AppSettings, session_state) -> None:
    """Lay out the Load tab and wire its events (inside a ``gr.Blocks`` context)."""
    from functools import partial

    gr.Markdown("Upload an SFT, chat or preference dataset (JSONL, JSON, CSV, Parquet, TXT, optionally .gz), "
                "give a Hub dataset id, or load the bundled example. hubtools detects the format, validates "
                "every record and keeps the bad ones apart with a reason. Files and the example need no "
                "network; a Hub id does.")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label=f"Dataset file (up to {settings.max_upload_mb} MB)", type="filepath",
                             file_types=_FILE_TYPES, elem_id="upload")
        with gr.Column(scale=1):
            with gr.Row():
                hub_id = gr.Textbox(label="or a Hub dataset id", placeholder="user/name", elem_id="load-hub-id",
                                    scale=3)
                hub_split = gr.Textbox(label="split", placeholder="train", elem_id="load-hub-split", scale=1)
            hub_button = gr.Button("Load from the Hub", elem_id="load-hub")
            example_button = gr.Button("Load the example (20 preference pairs)", variant="primary",
                                       elem_id="load-example")
    summary = gr.Markdown(elem_id="summary")
    quarantine = gr.Dataframe(headers=_QUARANTINE_COLUMNS, label="Quarantine: records kept out, with the reason",
                              elem_id="quarantine", wrap=True, interactive=False)
    with gr.Row():
        quarantine_file = gr.File(label="quarantine.jsonl", elem_id="quarantine-file")
        valid_file = gr.File(label="valid records", elem_id="valid-file")
    outputs = [summary, quarantine, quarantine_file, valid_file, session_state]
    jobs = {"concurrency_id": "load", "concurrency_limit": 2}
    upload.upload(partial(load_upload, settings), inputs=[upload, session_state], outputs=outputs,
                  api_name="inspect", **jobs)
    hub_inputs = [hub_id, hub_split, session_state]
    read_hub = _as_signed_in(gr, load_hub) if settings.oauth else load_hub
    hub_button.click(read_hub, inputs=hub_inputs, outputs=outputs, api_name="load_hub", **jobs)
    hub_id.submit(read_hub, inputs=hub_inputs, outputs=outputs, api_visibility="private", **jobs)
    example_button.click(load_example, inputs=[session_state], outputs=outputs, api_name="load_example", **jobs)
