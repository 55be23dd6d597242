"""Rank & review tab: the current dataset as a review queue (hallucination-prone and low-margin items
first, as ``build_queue`` orders them; or, once the Quality tab has checked the dataset, the lowest
quality score first), two responses side by side with their judge scores and
rationale, and one click (or key) per decision. Annotations go to the app's AnnotationStore under
the reviewer's name; a reviewer sees and changes only their own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import HubtoolsError
from ..review import (
    AnnotationStore,
    ReviewQueue,
    apply_file,
    build_queue,
    flags_from_checks,
    quality_from_file,
)
from ..review.items import ORDERS
from .review_keys import SHORTCUTS, shortcuts_js  # noqa: F401  (re-exported: the app and tests import them from here)
from .session import Session, fresh_dir, problem, with_dataset

__all__ = [
    "ReviewScreen",
    "ReviewState",
    "build",
    "my_annotations",
    "order_hint",
    "review_apply",
    "review_decide",
    "review_edit",
    "review_open",
    "review_start",
    "review_withdraw",
]

_NEED_DATASET = "Load a dataset first (in **Load** or **Generate**), then start reviewing."
_NEED_QUEUE = "Press **Start reviewing** first."
_NEED_NAME = ("Say who you are first: sign in, or give your **reviewer name** (and your reviewer secret, where "
              "this app asks for one) at the top of the page.")
_NEED_QUALITY = ("**Lowest quality first** needs quality scores: run the checks in the **Quality** tab on this "
                 "dataset first, or start with **hallucination-prone first**.")
#: the queue orders the tab offers: (label, value of ``build_queue``'s ``order``)
ORDER_CHOICES = [("hallucination-prone first (default)", "priority"), ("lowest quality first", "quality")]
_MINE_COLUMNS = ["item", "record", "decision", "edited", "note", "updated"]
_LABELS = {"a": "A is better", "b": "B is better", "tie": "a tie", "skip": "skip", "flag": "flag",
           "accept": "accept", "reject": "reject"}


@dataclass
class ReviewState:
    """One session's review queue, built from the dataset at ``dataset``."""

    dataset: str
    queue: ReviewQueue


class ReviewScreen(NamedTuple):
    """What the review pane shows (in the order of its output components)."""

    item_id: str
    info: str
    prompt: str
    response_a: str
    response_b: str
    score_a: str
    score_b: str
    rationale: str
    kind: str
    progress: str
    status: str
    review: ReviewState | None


def _text(messages: list[dict[str, Any]] | None, *, roles: bool) -> str:
    parts = []
    for m in messages or []:
        content = m.get("content") or (f"[tool calls] {m['tool_calls']}" if m.get("tool_calls") else "")
        parts.append(f"[{m.get('role')}] {content}" if roles else content)
    return "\n\n".join(parts)


def _score(value: Any) -> str:
    return f"Judge score: **{value:g}**" if isinstance(value, (int, float)) else "No judge score"


def _progress(store: AnnotationStore, reviewer: str, review: ReviewState) -> str:
    pending = len(store.pending(reviewer, review.queue))
    total = len(review.queue)
    return f"**{reviewer}:** {total - pending} of {total} reviewed"


def _empty(status: str, review: ReviewState | None, progress: str = "") -> ReviewScreen:
    return ReviewScreen("", "", "", "", "", "", "", "", "", progress, status, review)


def _show(store: AnnotationStore, reviewer: str, review: ReviewState, item_id: str | None, status: str) -> ReviewScreen:
    """The screen for ``item_id`` (None: the reviewer's next pending item)."""
    if item_id is None:
        pending = store.pending(reviewer, review.queue, limit=1)
        if not pending:
            return _empty(status + (" " if status else "") + "You have reviewed every item of this dataset; "
                          "open one of your annotations below to change it.", review,
                          _progress(store, reviewer, review))
        item = pending[0]
    else:
        item = review.queue.get(item_id)
    view = item.view()
    mine = store.annotation(reviewer, item.item_id)
    position = next(i for i, it in enumerate(review.queue.items) if it.item_id == item.item_id)
    info = (f"**Record {view['index']}** (queue position {position + 1} of {len(review.queue)}) · "
            f"category: {view['category'] or 'none'} · priority {view['priority']:g}"
            + (f" · quality score {view['quality']:g}" if view.get("quality") is not None else "")
            + (f" · why early: {'; '.join(view['reasons'])}" if view["reasons"] else ""))
    if mine is not None:
        decided = _LABELS.get(mine.decision, mine.decision)
        info += f"\n\nYou already decided **{decided}** here; decide again to change it."
    rationale = view.get("rationale")
    if isinstance(rationale, dict):
        rationale = "\n".join(f"- {k}: {v}" for k, v in rationale.items())
    if item.kind == "preference":
        a, b = _text(view["a"], roles=False), _text(view["b"], roles=False)
        score_a, score_b = _score(view.get("score_a")), _score(view.get("score_b"))
        info += "\n\nA and B are in a blind order: A is not always the one the dataset prefers."
    else:
        a, b, score_a, score_b = _text(view["response"], roles=False), "", "", ""
    return ReviewScreen(item.item_id, info, _text(view["prompt"], roles=True), a, b, score_a, score_b,
                        f"**Judge rationale:** {rationale}" if rationale else "", item.kind,
                        _progress(store, reviewer, review), status, review)


def _failed(store: AnnotationStore, reviewer: str, review: ReviewState, item_id: str, status: str) -> ReviewScreen:
    """Keep the item on screen with the failure (or an empty screen when it cannot be shown)."""
    try:
        return _show(store, reviewer, review, item_id, status)
    except HubtoolsError:
        return _empty(status, review)


def order_hint(session: Session) -> str:
    """What the order choice says about the current dataset: whether "lowest quality first" can be used."""
    if session.quality:
        return "Lowest quality first uses the scores of the last check run in the **Quality** tab."
    return "Lowest quality first needs a check run: run the **Quality** tab on this dataset first."


def _queue_for(session: Session, order: str) -> ReviewState:
    loaded = session.loaded()
    flags = scores = None
    if session.quality:
        import orjson

        from ..checks import QualityResult

        quality = QualityResult.from_dict(orjson.loads(Path(session.quality).read_bytes()))
        flags = flags_from_checks(r for name, r in quality.results.items() if name != "schema")
        if order == "quality":  # the default order's screen stays as it was: no scores
            scores = quality_from_file(session.quality)
    return ReviewState(session.dataset, build_queue(loaded.dataset, kind=loaded.kind, flags=flags, quality=scores,
                                                    order=order))


def review_start(store: AnnotationStore, reviewer: str, session: Session, review: ReviewState | None,
                 order: str | None = "priority") -> ReviewScreen:
    """Build (or rebuild) the queue of the current dataset and show the reviewer's next item.

    ``order`` is one of :data:`ORDER_CHOICES`' values (None: the default, "priority"); "quality" needs
    the Quality tab's result for the current dataset. Anything else is refused.
    """
    if order is None:
        order = "priority"
    if not isinstance(order, str) or order not in ORDERS:
        shown = repr(order)[:40] if isinstance(order, (str, int, float)) else type(order).__name__
        return _empty(f"**Cannot start the review.** Unknown queue order {shown}: choose one of "
                      f"{', '.join(repr(o) for o in ORDERS)}.", review)
    if not (reviewer or "").strip():
        return _empty(_NEED_NAME, review)
    if session.dataset is None:
        return _empty(_NEED_DATASET, review)
    if order == "quality" and not session.quality:
        return _empty(_NEED_QUALITY, review)
    try:
        store.annotations(reviewer)  # checks the name before any work
        review = _queue_for(session, order)
        store.register(review.queue)
    except HubtoolsError as exc:
        return _empty(problem("Cannot start the review.", exc), review)
    by = " by the lowest quality score first" if order == "quality" else ""
    return _show(store, reviewer, review, None, f"Queue of {len(review.queue)} items from {session.name}{by}.")


def _not_ready(reviewer: str, review: ReviewState | None) -> ReviewScreen | None:
    """The screen saying what is missing before an item can be decided (a name, a queue), or None."""
    if not (reviewer or "").strip():
        return _empty(_NEED_NAME, review)
    if review is None:
        return _empty(_NEED_QUEUE, review)
    return None


def review_decide(store: AnnotationStore, decision: str, reviewer: str, item_id: str, note: str | None,
                  review: ReviewState | None) -> ReviewScreen:
    """Save the reviewer's ``decision`` on the shown item, then show their next item."""
    if (missing := _not_ready(reviewer, review)) is not None:
        return missing
    if not item_id:
        return _show(store, reviewer, review, None, "No item is shown.")
    try:
        record = review.queue.get(item_id).index
        store.annotate(reviewer, item_id, decision, note=(note or "").strip() or None)
    except HubtoolsError as exc:
        return _failed(store, reviewer, review, item_id, problem("Not saved.", exc))
    return _show(store, reviewer, review, None, f"Saved: **{_LABELS.get(decision, decision)}** on record {record}.")


def review_edit(store: AnnotationStore, reviewer: str, item_id: str, side: str, edited: str | None,
                note: str | None, review: ReviewState | None) -> ReviewScreen:
    """Save an edit: the preferred response (``side`` "a" or "b") rewritten, or the SFT reply accepted with it."""
    if (missing := _not_ready(reviewer, review)) is not None:
        return missing
    if not item_id:
        return _show(store, reviewer, review, None, "No item is shown.")
    try:
        item = review.queue.get(item_id)
        decision = (side or "a").lower() if item.kind == "preference" else "accept"
        store.annotate(reviewer, item_id, decision, edited=edited or "", note=(note or "").strip() or None)
    except HubtoolsError as exc:
        return _failed(store, reviewer, review, item_id, problem("Not saved.", exc))
    record = item.index
    return _show(store, reviewer, review, None, f"Saved: **{_LABELS[decision]}**, with your edit, on record {record}.")


def review_open(store: AnnotationStore, reviewer: str, item_id: str, review: ReviewState | None) -> ReviewScreen:
    """Show one item again (e.g. one of the reviewer's annotations, to change it)."""
    if (missing := _not_ready(reviewer, review)) is not None:
        return missing
    try:
        store.annotations(reviewer)
        return _show(store, reviewer, review, (item_id or "").strip(), "")
    except HubtoolsError as exc:
        return _empty(problem("Cannot open this item.", exc), review)


def review_withdraw(store: AnnotationStore, reviewer: str, item_id: str, review: ReviewState | None) -> ReviewScreen:
    """Withdraw the reviewer's own annotation of ``item_id`` and show the item again."""
    if (missing := _not_ready(reviewer, review)) is not None:
        return missing
    try:
        removed = store.remove(reviewer, (item_id or "").strip())
        return _show(store, reviewer, review, (item_id or "").strip(),
                     "Your annotation is withdrawn." if removed else "You had not annotated this item.")
    except HubtoolsError as exc:
        return _empty(problem("Cannot withdraw.", exc), review)


def my_annotations(store: AnnotationStore, reviewer: str) -> tuple[list[list[Any]], str]:
    """The reviewer's own annotations (and nobody else's), as table rows, with a status line."""
    if not (reviewer or "").strip():
        return [], _NEED_NAME
    try:
        mine = store.annotations(reviewer)
    except HubtoolsError as exc:
        return [], problem("Cannot list annotations.", exc)
    indexes = {item.item_id: item.index for item in store.items()}
    rows = [[a.item_id, indexes.get(a.item_id), a.decision, "yes" if a.edited else "", a.note or "",
             a.updated_at[:19].replace("T", " ")] for a in reversed(mine)]
    return rows, f"{len(rows)} annotation{'s' if len(rows) != 1 else ''} by **{reviewer}**."


def review_apply(store: AnnotationStore, reviewer: str, session: Session) -> tuple[str, str | None, Session]:
    """Apply every reviewer's decisions to the current dataset; the reviewed file becomes the current dataset.

    Everyone's decisions (and edits) go into the result, so only an adjudicator may do it.
    """
    if not (reviewer or "").strip():
        return _NEED_NAME, None, session
    if not store.can_adjudicate(reviewer):
        return (f"**Not applied.** Applying everyone's reviews is for adjudicators; {reviewer} is not one "
                "(`HUBTOOLS_ADJUDICATORS`; in a Space, by default its owner)."), None, session
    if session.dataset is None:
        return _NEED_DATASET, None, session
    session, out = fresh_dir(session, "reviewed")
    try:
        summary = apply_file(session.loaded(), store, out / Path(session.dataset).name)
    except HubtoolsError as exc:
        return problem("Cannot apply the reviews.", exc), None, session
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["by_reason"].items()) or "none"
    text = (f"**{summary['total']} records = {summary['written']} kept + {summary['excluded']} left out + "
            f"{summary['quarantined']} quarantined** ({summary['swapped']} swapped, {summary['edited']} edited; "
            f"left out: {reasons}). Disputed records stay out until someone adjudicates them.")
    if summary["written"]:
        session = with_dataset(session, summary["files"]["out"], name=f"{session.name} (reviewed)",
                               kind=session.kind or "", format=summary["format"], records=summary["written"],
                               provenance=session.provenance)
        text += " The reviewed records are now the **current dataset**."
    return text, summary["files"]["out"], session


def _order_last(fn, extra: int):
    """``fn`` (a login-wrapped :func:`review_start`, whose ``order`` comes before the login's ``extra``
    inputs) taking ``order`` as its last input instead."""
    if not extra:
        return fn
    import inspect

    params = list(inspect.signature(fn).parameters.values())
    at = next(i for i, p in enumerate(params) if p.name == "order")

    def wrapped(*args):
        *values, order = args
        values.insert(at, order)
        return fn(*values)

    wrapped.__signature__ = inspect.Signature([*params[:at], *params[at + 1:], params[at]])
    wrapped.__name__ = getattr(fn, "__name__", "review_start")
    return wrapped


def build(gr, store: AnnotationStore, reviewer, session_state, login) -> None:
    """Lay out the review pane and wire its events (inside a ``gr.Blocks`` context).

    ``login`` (a :class:`~hubtools.app.team.Login`) wraps a handler whose first argument is the
    reviewer name so that the name is proven (by the sign-in, or a name with its secret), not taken
    from the page; its ``extra`` components go after each handler's own inputs.
    """
    from functools import partial

    review_state = gr.State(None)
    keys = "`a` A is better, `b` B is better, `t` tie, `y` accept, `r` reject, `s` skip, `f` flag, `e` edit"
    gr.Markdown("Review the current dataset: the queue puts hallucination-prone and low-margin items first "
                "(or, once the **Quality** tab has checked it, the lowest quality score first). "
                f"Keys (outside text boxes): {keys}.")
    order = gr.Radio(ORDER_CHOICES, value="priority", label="Queue order", info=order_hint(Session()),
                     elem_id="review-order")
    with gr.Row():
        start = gr.Button("Start reviewing / refresh the queue", variant="primary", elem_id="review-start")
        progress = gr.Markdown(elem_id="review-progress")
    info = gr.Markdown(elem_id="review-info")
    prompt = gr.Textbox(label="Prompt", interactive=False, lines=3, max_lines=12, elem_id="review-prompt")
    with gr.Row(equal_height=True):
        with gr.Column():
            response_a = gr.Textbox(label="Response A", interactive=False, lines=6, max_lines=20, elem_id="review-a")
            score_a = gr.Markdown(elem_id="review-score-a")
        with gr.Column():
            response_b = gr.Textbox(label="Response B", interactive=False, lines=6, max_lines=20, elem_id="review-b")
            score_b = gr.Markdown(elem_id="review-score-b")
    rationale = gr.Markdown(elem_id="review-rationale")
    with gr.Row():
        choose_a = gr.Button("A is better [a]", variant="primary", elem_id="review-choose-a")
        choose_b = gr.Button("B is better [b]", variant="primary", elem_id="review-choose-b")
        tie = gr.Button("Tie [t]", elem_id="review-tie")
        accept = gr.Button("Accept [y]", variant="primary", visible=False, elem_id="review-accept")
        reject = gr.Button("Reject [r]", visible=False, elem_id="review-reject")
        skip = gr.Button("Skip [s]", elem_id="review-skip")
        flag = gr.Button("Flag [f]", variant="stop", elem_id="review-flag")
    note = gr.Textbox(label="Note (optional, saved with the decision)", elem_id="review-note")
    with gr.Accordion("Edit the better response [e]", open=False, elem_id="review-edit-accordion"):
        edit_side = gr.Radio([("A", "a"), ("B", "b")], value="a", label="The better response, which you edit",
                             elem_id="review-edit-side")
        edit_text = gr.Textbox(label="Edited response", lines=5, elem_id="review-edit-text")
        edit = gr.Button("Save the edit", elem_id="review-edit")
    status = gr.Markdown(elem_id="review-status")
    with gr.Row():
        item_id = gr.Textbox(label="Item", interactive=False, elem_id="review-item-id")
        kind = gr.Textbox(visible=False, elem_id="review-kind")
    with gr.Accordion("My annotations (only yours)", open=False):
        with gr.Row():
            refresh = gr.Button("Show my annotations", elem_id="review-mine-refresh")
            open_id = gr.Textbox(label="Item to open", placeholder="click a row, or paste an item id",
                                 elem_id="review-open-id")
            open_button = gr.Button("Open it", elem_id="review-open")
            withdraw = gr.Button("Withdraw my annotation", variant="stop", elem_id="review-withdraw")
        mine_status = gr.Markdown(elem_id="review-mine-status")
        mine = gr.Dataframe(headers=_MINE_COLUMNS, interactive=False, wrap=True, elem_id="review-mine")
    with gr.Row():
        apply_button = gr.Button("Apply the reviews to the dataset", elem_id="review-apply")
        apply_file_out = gr.File(label="reviewed records", elem_id="review-apply-file")
    apply_summary = gr.Markdown(elem_id="review-apply-summary")

    screen = [item_id, info, prompt, response_a, response_b, score_a, score_b, rationale, kind, progress, status,
              review_state]
    fast = {"concurrency_limit": None}  # review clicks never wait for the long jobs
    extra = login.extra  # the reviewer secret, where the app asks for one
    # the order goes after the login's inputs, so the endpoint's earlier arguments keep their places
    start.click(_order_last(login(partial(review_start, store)), len(extra)),
                inputs=[reviewer, session_state, review_state, *extra, order],
                outputs=screen, api_name="review_start", **fast)
    session_state.change(lambda s: gr.update(info=order_hint(s)), inputs=session_state, outputs=order,
                         api_visibility="private", queue=False)
    for button, decision in ((choose_a, "a"), (choose_b, "b"), (tie, "tie"), (accept, "accept"),
                             (reject, "reject"), (skip, "skip"), (flag, "flag")):
        button.click(login(partial(review_decide, store, decision)),
                     inputs=[reviewer, item_id, note, review_state, *extra],
                     outputs=screen, api_name=f"review_{decision}", **fast).then(
            lambda: "", outputs=note, api_visibility="private", queue=False)
    edit.click(login(partial(review_edit, store)),
               inputs=[reviewer, item_id, edit_side, edit_text, note, review_state, *extra],
               outputs=screen, api_name="review_edit", **fast)
    open_button.click(login(partial(review_open, store)), inputs=[reviewer, open_id, review_state, *extra],
                      outputs=screen, api_name="review_open", **fast)
    withdraw.click(login(partial(review_withdraw, store)), inputs=[reviewer, open_id, review_state, *extra],
                   outputs=screen, api_name="review_withdraw", **fast)
    refresh.click(login(partial(my_annotations, store)), inputs=[reviewer, *extra], outputs=[mine, mine_status],
                  api_name="my_annotations", **fast)

    def pick(event):
        return event.row_value[0] if event.row_value else ""

    pick.__annotations__ = {"event": gr.SelectData}
    mine.select(pick, outputs=open_id, api_visibility="private", queue=False)

    def buttons_for(kind_value):
        pair = kind_value != "sft"
        return [gr.update(visible=pair)] * 3 + [gr.update(visible=not pair)] * 2 + [gr.update(visible=pair)]

    kind.change(buttons_for, inputs=kind, outputs=[choose_a, choose_b, tie, accept, reject, edit_side],
                api_visibility="private", queue=False)
    apply_button.click(login(partial(review_apply, store)), inputs=[reviewer, session_state, *extra],
                       outputs=[apply_summary, apply_file_out, session_state], api_name="review_apply",
                       concurrency_id="checks", concurrency_limit=1)
