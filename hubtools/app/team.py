"""Team mode: who the reviewer is, where the annotations live, and how far reviewers agree.

* **Identity.** In a Space with "Sign in with Hugging Face" (``hf_oauth: true``) the reviewer is the
  signed-in user: :func:`login_reviewer` wraps each review handler so the name comes from the
  login, never from the page. Elsewhere a "Reviewer name" box stands in (two browser sessions can
  act as two reviewers).
* **Storage.** One :class:`~hubtools.review.AnnotationStore` (SQLite, one row per item and
  reviewer) in ``HUBTOOLS_APP_DIR``. In team mode (``HUBTOOLS_TEAM_REPO``, or any Space) a
  :class:`~hubtools.review.ReviewSync` first restores it from that private Hub dataset, then
  commits it there every few minutes with ``huggingface_hub.CommitScheduler``, so a restart loses
  nothing.
* **Agreement.** Percent agreement, Cohen's kappa (two reviewers) and Krippendorff's alpha, overall
  and per category, from :func:`hubtools.review.agreement`; disputed items are queued for
  adjudication.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import HubtoolsError
from ..review import AnnotationStore, RestoreResult, ReviewSync, agreement, export_annotations
from .session import AppSettings, Session, problem, workdir

__all__ = [
    "Team",
    "adjudicate",
    "agreement_view",
    "build",
    "build_identity",
    "export_all",
    "login_reviewer",
    "login_token",
    "open_team",
    "sync_now",
    "team_status",
]

logger = logging.getLogger(__name__)

_CATEGORY_COLUMNS = ["category", "reviewers", "items rated by 2+", "percent agreement", "Cohen's kappa",
                     "Krippendorff's alpha"]
_DISPUTE_COLUMNS = ["item", "record", "category", "votes", "adjudicated"]


@dataclass
class Team:
    """The app's annotation store and, in team mode, its Hub sync (or why the sync is off)."""

    settings: AppSettings
    store: AnnotationStore
    sync: ReviewSync | None = None
    restored: RestoreResult | None = None
    #: team mode without a working sync: the reason, for the page
    error: str | None = None


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def open_team(settings: AppSettings) -> Team:
    """Open the annotation store; in team mode restore it from the Hub and start committing it there."""
    store = AnnotationStore(settings.app_dir / "reviews.sqlite", adjudicators=settings.adjudicators)
    if not settings.team:
        return Team(settings, store)
    try:
        sync = ReviewSync(store, settings.team_repo, every=settings.sync_minutes, token=settings.hf_token)
    except Exception as exc:  # network, auth or Hub errors: the app still runs, and says so
        message = _scrub(f"{exc.__class__.__name__}: {exc}", settings.hf_token)
        logger.warning("team sync to %s is off: %s", settings.team_repo, message)
        return Team(settings, store, error=message)
    logger.info("team sync to %s: restored %s", settings.team_repo, sync.restored)
    return Team(settings, store, sync, sync.restored)


def team_status(team: Team) -> str:
    """What the page says about where annotations go and who the reviewer is."""
    settings = team.settings
    who = ("Reviewers **sign in with Hugging Face**; each sees and changes only their own annotations."
           if settings.oauth else
           "Reviewers type their **reviewer name** (there is no sign-in outside a Space with `hf_oauth`); "
           "each sees and changes only the annotations under their name.")
    if not settings.team:
        return (f"**Local mode.** Annotations are kept on this machine in `{team.store.path}`. {who} Team mode "
                "(annotations committed to a private Hub dataset, restored after a restart) is on in a Space, "
                "or when `HUBTOOLS_TEAM_REPO` is set.")
    if team.sync is None:
        return (f"**Team mode, but the Hub sync is off:** {team.error}. Annotations are kept on this disk only "
                f"(`{team.store.path}`) and are lost if the Space restarts. Give the app a write token "
                f"(`HF_TOKEN` secret) that can create `{settings.team_repo}`, then restart it. {who}")
    restored = team.restored.to_dict() if team.restored else {}
    return (f"**Team mode.** Annotations are committed to the private dataset `{settings.team_repo}` every "
            f"{settings.sync_minutes:g} minutes (restored at start: {restored.get('annotations', 0)} annotations, "
            f"{restored.get('adjudications', 0)} adjudications). {who}")


def sync_now(team: Team) -> str:
    """Commit the annotations to the team dataset now (and wait for it)."""
    if team.sync is None:
        return team_status(team)
    try:
        commit = team.sync.trigger().result()
    except Exception as exc:  # the Hub refused or could not be reached
        return f"**Not saved to the Hub.** {_scrub(str(exc), team.settings.hf_token)}"
    if commit is None:
        return f"Nothing changed since the last commit to `{team.settings.team_repo}`."
    return f"Saved to `{team.settings.team_repo}`: {commit.commit_url}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def agreement_view(store: AnnotationStore) -> tuple[str, list[list[Any]], list[list[Any]]]:
    """Agreement figures: a summary line, a row per category (overall first), the disputed items."""
    report = agreement(store)
    rows = []
    for name, figures in [("overall", report.overall), *report.per_category.items()]:
        rows.append([name, figures.reviewers, figures.items, _figure(figures.percent_agreement),
                     _figure(figures.cohen_kappa), _figure(figures.krippendorff_alpha)])
    disputes = [[d["item_id"], d.get("index"), d["category"], ", ".join(f"{k}: {v}" for k, v in d["votes"].items()),
                 d.get("adjudicated") or ""] for d in report.disagreements]
    notes = "".join(f"\n- {note}" for note in report.overall.notes.values())
    return f"**{report.summary()}**{notes}", rows, disputes


def adjudicate(store: AnnotationStore, adjudicator: str, item_id: str, decision: str,
               note: str | None) -> tuple[str, str, list[list[Any]], list[list[Any]]]:
    """Settle a disputed item (adjudicators only); return the status and the refreshed agreement view."""
    try:
        store.adjudicate(adjudicator, (item_id or "").strip(), decision, note=(note or "").strip() or None)
        status = f"Adjudicated {item_id.strip()}: **{decision}**."
    except HubtoolsError as exc:
        status = problem("Not adjudicated.", exc)
    return (status, *agreement_view(store))


def export_all(store: AnnotationStore, reviewer: str, session: Session) -> tuple[str, str | None, Session]:
    """Every reviewer's annotations as one Parquet file, for the dataset owner (adjudicators only)."""
    try:
        if not store.can_adjudicate(reviewer) or not reviewer:
            return (f"Only adjudicators may export everyone's annotations; {reviewer or 'you'} may not.", None,
                    session)
        session, out = workdir(session, "export")
        rows = export_annotations(store, out / "annotations.parquet")
    except HubtoolsError as exc:
        return problem("Cannot export.", exc), None, session
    return f"{rows} rows (one per item and reviewer, plus adjudications).", str(out / "annotations.parquet"), session


# --------------------------------------------------------------------------- sign-in


def _with_extra_parameter(fn, name: str, annotation: Any):
    """``fn``'s signature plus a trailing parameter Gradio fills in (the OAuth profile or token)."""
    sig = inspect.signature(fn)
    extra = inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=annotation)
    return sig.replace(parameters=[*sig.parameters.values(), extra])


def login_reviewer(oauth: bool):
    """A wrapper for review handlers whose first argument is the reviewer name.

    With ``oauth``, the wrapped handler gets the signed-in user's name (or "" when nobody is signed
    in) whatever the page sent; without, handlers are used as they are.
    """
    if not oauth:
        return lambda fn: fn
    import gradio as gr

    def wrap(fn):
        def wrapped(*args):
            *values, profile = args
            values[0] = profile.username if profile is not None else ""
            return fn(*values)

        wrapped.__signature__ = _with_extra_parameter(fn, "profile", gr.OAuthProfile | None)
        wrapped.__annotations__ = {"profile": gr.OAuthProfile | None}
        return wrapped

    return wrap


def login_token(oauth: bool, position: int):
    """A wrapper for handlers with a typed token at ``position``: with ``oauth``, an empty one is
    replaced by the signed-in user's token."""
    if not oauth:
        return lambda fn: fn
    import gradio as gr

    def wrap(fn):
        def wrapped(*args):
            *values, token = args
            if not values[position] and token is not None:
                values[position] = token.token
            return fn(*values)

        wrapped.__signature__ = _with_extra_parameter(fn, "oauth_token", gr.OAuthToken | None)
        wrapped.__annotations__ = {"oauth_token": gr.OAuthToken | None}
        return wrapped

    return wrap


def build_identity(gr, demo, settings: AppSettings):
    """The sign-in button (in a Space with OAuth) or the reviewer-name box; return the name component."""
    if not settings.oauth:
        return gr.Textbox(label="Reviewer name", placeholder="your Hugging Face user name", max_lines=1,
                          elem_id="reviewer")
    with gr.Row():
        gr.LoginButton(elem_id="login")
        signed_in = gr.Markdown(elem_id="signed-in")

    def who(profile):
        return f"Signed in as **{profile.username}**." if profile else "Not signed in: sign in to review."

    who.__annotations__ = {"profile": gr.OAuthProfile | None}
    demo.load(who, outputs=signed_in, api_visibility="private")
    # the name box is hidden and ignored: login_reviewer() takes the name from the login
    return gr.Textbox(visible=False, elem_id="reviewer")


def build(gr, team: Team, reviewer, session_state, login) -> None:
    """Lay out the Team & agreement tab and wire its events (inside a ``gr.Blocks`` context)."""
    from functools import partial

    gr.Markdown(team_status(team), elem_id="team-status")
    with gr.Row():
        save = gr.Button("Save the annotations to the Hub now", visible=team.sync is not None,
                         elem_id="team-sync")
        save_status = gr.Markdown(elem_id="team-sync-status")
    gr.Markdown("### Agreement between reviewers")
    refresh = gr.Button("Compute agreement", variant="primary", elem_id="agreement-refresh")
    summary = gr.Markdown(elem_id="agreement-summary")
    per_category = gr.Dataframe(headers=_CATEGORY_COLUMNS, interactive=False, label="Per category",
                                elem_id="agreement-table")
    disputes = gr.Dataframe(headers=_DISPUTE_COLUMNS, interactive=False, wrap=True,
                            label="Disagreements (queued for adjudication until settled)",
                            elem_id="agreement-disputes")
    who = ("anyone" if team.settings.adjudicators is None else ", ".join(team.settings.adjudicators))
    with gr.Accordion(f"Adjudicate a disputed item (allowed: {who})", open=False):
        gr.Markdown("Open the item in **Rank & review** (My annotations, Item to open) to see it; "
                    "A and B mean the sides as shown there.")
        with gr.Row():
            adj_item = gr.Textbox(label="Item", elem_id="adjudicate-item")
            adj_decision = gr.Dropdown(["a", "b", "tie", "flag", "accept", "reject"], value="a", label="Decision",
                                       elem_id="adjudicate-decision")
            adj_note = gr.Textbox(label="Note", elem_id="adjudicate-note")
        adj_button = gr.Button("Adjudicate", elem_id="adjudicate")
        adj_status = gr.Markdown(elem_id="adjudicate-status")
    with gr.Accordion("Export everyone's annotations (adjudicators)", open=False):
        export_button = gr.Button("Export annotations.parquet", elem_id="team-export")
        export_status = gr.Markdown(elem_id="team-export-status")
        export_file = gr.File(label="annotations.parquet", elem_id="team-export-file")

    def pick(event):
        return event.row_value[0] if event.row_value else ""

    pick.__annotations__ = {"event": gr.SelectData}
    disputes.select(pick, outputs=adj_item, api_visibility="private", queue=False)
    fast = {"concurrency_limit": None}
    refresh.click(partial(agreement_view, team.store), outputs=[summary, per_category, disputes],
                  api_name="agreement", **fast)
    adj_button.click(login(partial(adjudicate, team.store)), inputs=[reviewer, adj_item, adj_decision, adj_note],
                     outputs=[adj_status, summary, per_category, disputes], api_name="adjudicate", **fast)
    export_button.click(login(partial(export_all, team.store)), inputs=[reviewer, session_state],
                        outputs=[export_status, export_file, session_state], api_name="export_annotations", **fast)
    save.click(partial(sync_now, team), outputs=save_status, api_name="team_sync", concurrency_id="sync",
               concurrency_limit=1)
