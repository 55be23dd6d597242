"""Publish tab: preview the dataset card and the annotation guidelines of the current dataset, then
push it (data, card, guidelines, quality report: one commit) to a Hub repo, as a pull request or
not, private or not. Pushing needs the visitor's own write token: typed here, or from the sign-in in
a Space. The app's HF_TOKEN is used only where the operator allowed it
(``HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH``), and never for the team's reviews repo. Tokens are
never shown."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import HubtoolsError
from ..publish.card import write_cards
from ..publish.context import CardSettings
from ..publish.hub import parse_repo_id, push
from ..publish.merge import split_front_matter
from ..redact import redact, remember
from .session import AppSettings, Session, fresh_dir, problem

__all__ = ["PreviewScreen", "build", "publish", "publish_preview", "token_status"]

_NEED_DATASET = "Load a dataset first (in **Load** or **Generate**)."


class PreviewScreen(NamedTuple):
    """The rendered card (metadata and body) and guidelines."""

    status: str
    metadata: str
    card: str
    guidelines: str
    session: Session


def _card_settings(repo_id: str | None, license: str | None, pretty_name: str | None,
                   session: Session) -> CardSettings:
    return CardSettings(repo_id=(repo_id or "").strip() or None, license=(license or "").strip() or None,
                        pretty_name=(pretty_name or "").strip() or None, provenance=session.provenance)


def token_status(settings: AppSettings) -> str:
    """Where the publishing token comes from, said plainly."""
    if settings.hf_token and settings.allow_server_token_for_publish:
        return ("Publishing uses the app's token (`HF_TOKEN`, allowed by `HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH`), "
                "unless you type another below. Tokens are never shown or stored.")
    if settings.oauth:
        return ("Publishing needs a Hugging Face token with write access: **sign in with Hugging Face** "
                "(top of the page), or type a token below. The Space's own token is not used for this.")
    return ("**No token:** publishing needs your own Hugging Face token with write access, typed below (it is not "
            "shown or stored). The app's own `HF_TOKEN` is not used for this unless the operator sets "
            "`HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH=1`. The preview works without one.")


def publish_preview(repo_id: str | None, license: str | None, pretty_name: str | None,
                    session: Session) -> PreviewScreen:
    """Render README.md and annotation_guidelines.md for the current dataset (no network)."""
    if session.dataset is None:
        return PreviewScreen(_NEED_DATASET, "", "", "", session)
    session, out = fresh_dir(session, "card")
    try:
        result = write_cards(session.loaded(), out, quality=session.quality, report=False,
                             settings=_card_settings(repo_id, license, pretty_name, session))
    except HubtoolsError as exc:
        return PreviewScreen(problem("Cannot render the card.", exc), "", "", "", session)
    import yaml

    metadata, body = split_front_matter(result.files["README.md"].read_text(encoding="utf-8"))
    guidelines = result.files["annotation_guidelines.md"].read_text(encoding="utf-8")
    checked = "" if session.quality else " The checks ran now with their defaults (run them in **Quality** to choose)."
    return PreviewScreen(f"Card and guidelines for {session.name}.{checked}",
                         yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True), body, guidelines, session)


def publish(settings: AppSettings, repo_id: str | None, private: bool, create_pr: bool, license: str | None,
            pretty_name: str | None, token: str | None, session: Session) -> tuple[str, str]:
    """Push the current dataset with its card, guidelines and report; return (status, the URL to open)."""
    if session.dataset is None:
        return _NEED_DATASET, ""
    if not (repo_id or "").strip():
        return "Give the repo id to publish to, such as `your-name/my-dataset`.", ""
    if settings.team_repo and _same_repo(repo_id, settings.team_repo):
        return (f"**Not published.** `{settings.team_repo}` holds this app's team annotations; publish the dataset "
                "to another repo.", "")
    typed = (token or "").strip()
    remember(typed)
    token = typed or (settings.hf_token if settings.allow_server_token_for_publish else None)
    if not token:
        where = ("sign in with Hugging Face or type a token" if settings.oauth else
                 "type a token (it is not shown or stored)")
        return (f"**No Hugging Face token, so nothing was published.** Publishing needs your own token with write "
                f"access: {where}.", "")
    try:
        result = push(session.loaded(), repo_id.strip(), private=bool(private), create_pr=bool(create_pr),
                      quality=session.quality, settings=_card_settings(repo_id, license, pretty_name, session),
                      token=token)
    except HubtoolsError as exc:
        return redact(problem("Not published.", exc), token), ""
    url = result.pr_url or result.commit_url or result.url
    if not result.changed:
        text = f"**Nothing changed:** {result.url} already has this content."
    elif result.pr_url:
        text = f"**Opened a pull request** on {result.repo_id}: {result.pr_url}"
    else:
        text = f"**Published** {result.records:,} records to {result.url} ({result.commit_url})"
    text += f"\n\n{'Created' if result.created else 'Updated'} the repo; {result.quarantined:,} records kept out."
    text += "".join(f"\n- {note}" for note in result.notes)
    return text, url


def _same_repo(repo_id: str, other: str) -> bool:
    """Whether two dataset ids name one repo (the Hub compares them without case)."""
    try:
        return parse_repo_id(repo_id)[0].lower() == parse_repo_id(other)[0].lower()
    except HubtoolsError:
        return repo_id.strip().lower() == other.lower()


def build(gr, settings: AppSettings, session_state) -> None:
    """Lay out the Publish tab and wire its events (inside a ``gr.Blocks`` context)."""
    from functools import partial

    from .team import login_token

    gr.Markdown(token_status(settings), elem_id="publish-token-status")
    with gr.Row():
        repo_id = gr.Textbox(label="Repo id", placeholder="your-name/my-dataset", elem_id="publish-repo-id")
        license = gr.Textbox(label="License (optional)", placeholder="apache-2.0", elem_id="publish-license")
        pretty_name = gr.Textbox(label="Pretty name (optional)", elem_id="publish-pretty-name")
    with gr.Row():
        private = gr.Checkbox(label="Private (when the repo is created)", elem_id="publish-private")
        create_pr = gr.Checkbox(label="Open a pull request instead of committing to main", elem_id="publish-pr")
        token = gr.Textbox(label="Hugging Face token (write)", type="password", placeholder="hf_...",
                           elem_id="publish-token")
    with gr.Row():
        preview = gr.Button("Preview the card", elem_id="publish-preview")
        push_button = gr.Button("Publish to the Hub", variant="primary", elem_id="publish-push")
    status = gr.Markdown(elem_id="publish-status")
    url = gr.Textbox(label="Result URL", interactive=False, elem_id="publish-url")
    with gr.Tab("Dataset card"):
        metadata = gr.Code(language="yaml", label="Card metadata", interactive=False, elem_id="publish-metadata")
        card = gr.Markdown(elem_id="publish-card")
    with gr.Tab("Annotation guidelines"):
        guidelines = gr.Markdown(elem_id="publish-guidelines")
    jobs = {"concurrency_id": "publish", "concurrency_limit": 2}
    preview.click(publish_preview, inputs=[repo_id, license, pretty_name, session_state],
                  outputs=[status, metadata, card, guidelines, session_state], api_name="publish_preview", **jobs)
    push_button.click(login_token(settings.oauth, 5)(partial(publish, settings)),
                      inputs=[repo_id, private, create_pr, license, pretty_name, token, session_state],
                      outputs=[status, url], api_name="publish", **jobs)
