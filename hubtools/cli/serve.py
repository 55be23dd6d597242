"""``hubtools app``: the web app, served."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app


@app.command(name="app")
def run_app(
    host: Annotated[str | None, typer.Option(
        help="Address to serve on (default: GRADIO_SERVER_NAME, else 127.0.0.1).", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        help="Port to serve on (default: GRADIO_SERVER_PORT, else 7860 or the next free one).",
        show_default=False)] = None,
    share: Annotated[bool, typer.Option(help="Ask Gradio for a public link (needs internet).")] = False,
    review: Annotated[Path | None, typer.Option(
        help="Open on this dataset's review queue (what `hubtools build` prints at its review gate).",
        exists=True, dir_okay=False)] = None,
) -> None:
    """Open the hubtools web app: load, generate, review, check and publish in a browser.

    Tabs follow the data: Load (a file, a Hub id or the bundled example), Generate (pairs from
    your documents; responses need --endpoint-style settings in the tab), Rank & review (side by
    side, keyboard shortcuts), Quality (checks, plots, filter), Publish (card preview, push;
    needs a token) and Team (agreement, adjudication). Runs offline with no token.

    Example: hubtools app --port 7860
    Example: hubtools app --review runs/my-dataset/rank/data.parquet
    """
    from ..app import AppSettings, create_app

    settings = AppSettings.from_config(review=review.resolve() if review else None)
    # None: Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, as in a Space
    create_app(settings).queue(default_concurrency_limit=4).launch(server_name=host, server_port=port, share=share)
