"""The hubtools Gradio app: layout and glue only; every handler calls the library and formats the result.

Tabs follow the data: **Load** (or **Generate**) makes the session's current dataset, then
**Rank & review**, **Quality** and **Publish** work on it; **Team & agreement** shows where the
annotations live and how far reviewers agree. **Pipeline** runs a whole recipe (``hubtools build``)
in one click. ``create_app()`` builds the Blocks without launching, so tests can drive it;
``python app.py`` (or ``hubtools app``) serves it.

Handlers are plain functions in the tab modules (``load_tab``, ``generate_tab``, ``review_tab``,
``quality_tab``, ``publish_tab``, ``pipeline_tab``, ``team``) taking and returning plain values and a
:class:`~hubtools.app.session.Session`, so they are testable without a server.
"""

from __future__ import annotations

import inspect
import shutil
from typing import Any

from .session import AppSettings, Session

__all__ = ["DELETE_CACHE", "AppSettings", "Session", "create_app"]

#: Gradio's cache (uploads, files sent to browsers): every hour, files older than a day are deleted
#: (and all of them when the app stops). A session's own scratch folder goes when the session ends,
#: or a day after its last change (API clients never close a tab).
DELETE_CACHE = (3600, 86400)

HEADER = """# hubtools
Build, check, review and publish fine-tuning datasets (SFT, chat, preference pairs).

**Works offline, with no token:** loading files and the example, writing instructions, the heuristic judge,
the quality checks (offline toxicity model), review, agreement and the card preview.
**Needs an endpoint or a local model:** generating responses (and the LLM judge).
**Needs the network:** Hub dataset ids. **Needs a token or a sign-in:** publishing."""


def _gradio():
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the hubtools app needs gradio: pip install 'hubtools[app]'") from exc
    return gr


def _blocks_class(gr, settings: AppSettings):
    """Blocks whose ``launch()`` defaults to the upload limit, however the app is launched."""

    class HubtoolsBlocks(gr.Blocks):
        def launch(self, *args: Any, **kwargs: Any):
            kwargs.setdefault("max_file_size", f"{settings.max_upload_mb}mb")
            return super().launch(*args, **kwargs)

    return HubtoolsBlocks


def _with_progress(gr):
    """Wrap a handler whose last parameter is ``progress`` so that Gradio passes a ``gr.Progress`` (tracking tqdm)."""

    def wrap(fn):
        sig = inspect.signature(fn)
        params = [p.replace(default=gr.Progress(track_tqdm=True)) if p.name == "progress" else p
                  for p in sig.parameters.values()]

        def wrapped(*args: Any):
            return fn(*args)

        wrapped.__signature__ = sig.replace(parameters=params)
        wrapped.__name__ = getattr(fn, "__name__", "handler")
        return wrapped

    return wrap


def _forget(session: Session | None) -> None:
    """When a browser session ends: remove its scratch folder."""
    if session is not None and session.workdir:
        shutil.rmtree(session.workdir, ignore_errors=True)


def create_app(settings: AppSettings | None = None):
    """Build the Gradio Blocks (not launched).

    Args:
        settings: how the app runs (default: :meth:`AppSettings.from_config`, i.e. the environment).

    Example:
        >>> demo = create_app()  # doctest: +SKIP
        >>> demo.queue(default_concurrency_limit=4).launch()  # doctest: +SKIP
    """
    gr = _gradio()
    from . import generate_tab, load_tab, pipeline_tab, publish_tab, quality_tab, review_tab, team
    from .session import describe, opening_session

    settings = settings or AppSettings.from_config()
    crew = team.open_team(settings)
    with_progress = _with_progress(gr)
    with _blocks_class(gr, settings)(title="hubtools", analytics_enabled=False,  # offline-first
                                     delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(HEADER, elem_id="header")
        reviewer, login = team.build_identity(gr, demo, settings)
        opening = opening_session(settings)
        session_state = gr.State(opening, delete_callback=_forget, time_to_live=DELETE_CACHE[1])
        current = gr.Markdown(describe(opening), elem_id="current-dataset")
        with gr.Tabs(elem_id="tabs", selected="review" if settings.review is not None else None):
            with gr.Tab("Load", id="load", elem_id="tab-load"):
                load_tab.build(gr, settings, session_state)
            with gr.Tab("Generate", id="generate", elem_id="tab-generate"):
                generate_tab.build(gr, settings, session_state)
            with gr.Tab("Pipeline", id="pipeline", elem_id="tab-pipeline"):
                pipeline_tab.build_tab(gr, settings, session_state, crew.store)
            with gr.Tab("Rank & review", id="review", elem_id="tab-review"):
                review_tab.build(gr, crew.store, reviewer, session_state, login)
            with gr.Tab("Quality", id="quality", elem_id="tab-quality"):
                quality_tab.build(gr, session_state, with_progress)
            with gr.Tab("Publish", id="publish", elem_id="tab-publish"):
                publish_tab.build(gr, settings, session_state)
            with gr.Tab("Team & agreement", id="team", elem_id="tab-team"):
                team.build(gr, crew, reviewer, session_state, login)
        session_state.change(describe, inputs=session_state, outputs=current, api_visibility="private", queue=False)
        demo.load(None, js=review_tab.shortcuts_js(), api_visibility="private")
    demo.max_file_size = settings.max_upload_mb * 1024 * 1024
    demo.hubtools_team = crew  # the store and its Hub sync, for whoever serves the app
    return demo
