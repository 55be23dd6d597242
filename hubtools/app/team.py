"""Team mode: who the reviewer is, where the annotations live, and how far reviewers agree.

* **Identity.** In a Space with "Sign in with Hugging Face" (``hf_oauth: true``) the reviewer is the
  signed-in user: :func:`login_reviewer` wraps each review handler so the name comes from the
  login, never from the page. Without a sign-in, where the operator set one secret per reviewer
  (``HUBTOOLS_REVIEWER_SECRETS``), the reviewer is the name typed with its secret. Team mode with
  neither has no reviewer at all: every endpoint is public, so a typed name proves nothing. Only
  on one's own machine (no team mode) does a bare "Reviewer name" box stand in.
* **Roles.** Adjudicating, exporting everyone's annotations and applying the reviews take an
  adjudicator (``HUBTOOLS_ADJUDICATORS``, in a Space by default its owner; outside team mode
  anyone); saving to the Hub takes a reviewer.
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

import hmac
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import HubtoolsError
from ..redact import redact, remember
from ..review import AnnotationStore, RestoreResult, ReviewSync, agreement, export_annotations
from .session import AppSettings, Session, problem, workdir

__all__ = [
    "Login",
    "Team",
    "adjudicate",
    "agreement_view",
    "build",
    "build_identity",
    "export_all",
    "identity_mode",
    "login_reviewer",
    "login_token",
    "open_team",
    "sync_now",
    "team_agreement",
    "team_status",
]

logger = logging.getLogger(__name__)

_CATEGORY_COLUMNS = ["category", "reviewers", "items rated by 2+", "percent agreement", "Cohen's kappa",
                     "Krippendorff's alpha"]
_DISPUTE_COLUMNS = ["item", "record", "category", "votes", "adjudicated"]
_NEED_REVIEWER = ("Say who you are first: sign in with Hugging Face, or give your reviewer name (and your reviewer "
                  "secret, where this app asks for one) at the top of the page.")
_WHO_ADJUDICATES = "Adjudicators are set by the operator (`HUBTOOLS_ADJUDICATORS`; in a Space, by default its owner)."


@dataclass
class Team:
    """The app's annotation store and, in team mode, its Hub sync (or why the sync is off)."""

    settings: AppSettings
    store: AnnotationStore
    sync: ReviewSync | None = None
    restored: RestoreResult | None = None
    #: team mode without a working sync: the reason, for the page
    error: str | None = None


def identity_mode(settings: AppSettings) -> str:
    """How the app knows who a reviewer is: "oauth", "secret", "name" (own machine) or "none"."""
    if settings.oauth:
        return "oauth"
    if settings.reviewer_secrets:
        return "secret"
    return "none" if settings.team else "name"


def _adjudicators(settings: AppSettings) -> tuple[str, ...] | None:
    """Who may adjudicate and apply: the configured names; with none, anyone alone, nobody in a team."""
    if settings.adjudicators is not None or not settings.team:
        return settings.adjudicators
    return ()


def open_team(settings: AppSettings) -> Team:
    """Open the annotation store; in team mode restore it from the Hub and start committing it there."""
    remember(settings.hf_token, *settings.reviewer_secrets.values())
    store = AnnotationStore(settings.app_dir / "reviews.sqlite", adjudicators=_adjudicators(settings))
    if not settings.team:
        return Team(settings, store)
    try:
        sync = ReviewSync(store, settings.team_repo, every=settings.sync_minutes, token=settings.hf_token)
    except Exception as exc:  # network, auth or Hub errors: the app still runs, and says so
        message = redact(f"{exc.__class__.__name__}: {exc}", settings.hf_token)
        logger.warning("team sync to %s is off: %s", settings.team_repo, message)
        return Team(settings, store, error=message)
    logger.info("team sync to %s: restored %s", settings.team_repo, sync.restored)
    return Team(settings, store, sync, sync.restored)


def team_status(team: Team) -> str:
    """What the page says about where annotations go and who the reviewer is."""
    settings = team.settings
    who = {"oauth": "Reviewers **sign in with Hugging Face**; each sees and changes only their own annotations.",
           "secret": "Reviewers give their **reviewer name and secret** (set by the operator in "
                     "`HUBTOOLS_REVIEWER_SECRETS`); each sees and changes only their own annotations.",
           "name": "Reviewers type their **reviewer name** (there is no sign-in outside a Space with `hf_oauth`); "
                   "each sees and changes only the annotations under their name.",
           "none": "**Nobody can review yet:** team mode needs to know who each reviewer is. Run the app as a Space "
                   "with `hf_oauth: true` (Sign in with Hugging Face), or set `HUBTOOLS_REVIEWER_SECRETS` "
                   "(`name:secret,...`), then restart it."}[identity_mode(settings)]
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


def sync_now(team: Team, reviewer: str) -> str:
    """Commit the annotations to the team dataset now (and wait for it); a reviewer's request only."""
    if team.sync is None:
        return team_status(team)
    if not (reviewer or "").strip():
        return _NEED_REVIEWER
    try:
        commit = team.sync.trigger().result()
    except Exception as exc:  # the Hub refused or could not be reached
        return f"**Not saved to the Hub.** {redact(str(exc), team.settings.hf_token)}"
    if commit is None:
        return f"Nothing changed since the last commit to `{team.settings.team_repo}`."
    return f"Saved to `{team.settings.team_repo}`: {commit.commit_url}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def team_agreement(team: Team, reviewer: str) -> tuple[str, list[list[Any]], list[list[Any]]]:
    """:func:`agreement_view` for a reviewer (in team mode who votes how is for the team only)."""
    if team.settings.team and not (reviewer or "").strip():
        return _NEED_REVIEWER, [], []
    return agreement_view(team.store)


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
    if not (adjudicator or "").strip():
        return _NEED_REVIEWER, "", [], []
    if not store.can_adjudicate(adjudicator):
        return f"**Not adjudicated.** {adjudicator} may not adjudicate; {_WHO_ADJUDICATES}", "", [], []
    try:
        store.adjudicate(adjudicator, (item_id or "").strip(), decision, note=(note or "").strip() or None)
        status = f"Adjudicated {item_id.strip()}: **{decision}**."
    except HubtoolsError as exc:
        status = problem("Not adjudicated.", exc)
    return (status, *agreement_view(store))


def export_all(store: AnnotationStore, reviewer: str, session: Session) -> tuple[str, str | None, Session]:
    """Every reviewer's annotations as one Parquet file, for the dataset owner (adjudicators only)."""
    try:
        if not reviewer or not store.can_adjudicate(reviewer):
            return (f"Only adjudicators may export everyone's annotations; {reviewer or 'you'} may not. "
                    f"{_WHO_ADJUDICATES}", None, session)
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


@dataclass
class Login:
    """Wraps review handlers whose first argument is the reviewer name, so that it is a proven name.

    ``extra`` are the input components each wrapped handler takes after its own (the secret box).
    """

    wrap: Callable[[Callable], Callable]
    extra: list[Any] = field(default_factory=list)

    def __call__(self, fn: Callable) -> Callable:
        return self.wrap(fn)


def _secret_matches(settings: AppSettings, name: str, secret: str | None) -> bool:
    expected = settings.reviewer_secrets.get(name)
    return expected is not None and hmac.compare_digest(expected.encode(), (secret or "").encode())


def login_reviewer(settings: AppSettings, secret_box: Any = None) -> Login:
    """The :class:`Login` of ``settings``' :func:`identity_mode`.

    "oauth": the name is the signed-in user's ("" when nobody is signed in), whatever the page
    sent. "secret": the typed name when its secret (``secret_box``, an extra input) matches, else
    "". "none": always "". "name": the typed name, as it is (one's own machine).
    """
    mode = identity_mode(settings)
    if mode == "name":
        return Login(lambda fn: fn)
    if mode == "oauth":
        import gradio as gr

        def with_profile(fn):
            def wrapped(*args):
                *values, profile = args
                values[0] = profile.username if profile is not None else ""
                return fn(*values)

            wrapped.__signature__ = _with_extra_parameter(fn, "profile", gr.OAuthProfile | None)
            wrapped.__annotations__ = {"profile": gr.OAuthProfile | None}
            return wrapped

        return Login(with_profile)

    def with_secret(fn):
        def wrapped(*args):
            *values, secret = args
            name = (values[0] or "").strip()
            values[0] = name if mode == "secret" and _secret_matches(settings, name, secret) else ""
            return fn(*values)

        wrapped.__signature__ = _with_extra_parameter(fn, "reviewer_secret", str | None)
        return wrapped

    return Login(with_secret, [secret_box] if secret_box is not None else [])


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


def build_identity(gr, demo, settings: AppSettings) -> tuple[Any, Login]:
    """The sign-in button (a Space with OAuth) or the reviewer name (and secret) boxes; return the
    name component and the :class:`Login` the review handlers are wrapped with."""
    mode = identity_mode(settings)
    if mode == "oauth":
        with gr.Row():
            gr.LoginButton(elem_id="login")
            signed_in = gr.Markdown(elem_id="signed-in")

        def who(profile):
            return f"Signed in as **{profile.username}**." if profile else "Not signed in: sign in to review."

        who.__annotations__ = {"profile": gr.OAuthProfile | None}
        demo.load(who, outputs=signed_in, api_visibility="private")
        # the name box is hidden and ignored: login_reviewer() takes the name from the login
        return gr.Textbox(visible=False, elem_id="reviewer"), login_reviewer(settings)
    if mode == "name":
        return (gr.Textbox(label="Reviewer name", placeholder="your Hugging Face user name", max_lines=1,
                           elem_id="reviewer"), login_reviewer(settings))
    with gr.Row():
        name = gr.Textbox(label="Reviewer name", max_lines=1, elem_id="reviewer", visible=mode == "secret")
        secret = gr.Textbox(label="Reviewer secret (from the operator)", type="password", max_lines=1,
                            elem_id="reviewer-secret", visible=mode == "secret")
    if mode == "none":
        gr.Markdown("**Reviewing is off:** this app runs in team mode without a sign-in. See **Team & agreement**.",
                    elem_id="reviewer-off")
    return name, login_reviewer(settings, secret)


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
    allowed = team.store.adjudicators
    who = ("anyone" if allowed is None else ", ".join(sorted(allowed)) or "nobody yet, see HUBTOOLS_ADJUDICATORS")
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
    refresh.click(login(partial(team_agreement, team)), inputs=[reviewer, *login.extra],
                  outputs=[summary, per_category, disputes], api_name="agreement", **fast)
    adj_button.click(login(partial(adjudicate, team.store)),
                     inputs=[reviewer, adj_item, adj_decision, adj_note, *login.extra],
                     outputs=[adj_status, summary, per_category, disputes], api_name="adjudicate", **fast)
    export_button.click(login(partial(export_all, team.store)), inputs=[reviewer, session_state, *login.extra],
                        outputs=[export_status, export_file, session_state], api_name="export_annotations", **fast)
    save.click(login(partial(sync_now, team)), inputs=[reviewer, *login.extra], outputs=save_status,
               api_name="team_sync", concurrency_id="sync", concurrency_limit=1)
