"""`gitml ui`: browse runs, compare them and follow metrics over history, in a browser."""

from __future__ import annotations

import os
from pathlib import Path

import click

from gitml.http.ui import serve
from gitml.http.ui_export import export
from gitml.repo import Repo


@click.command()
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Another address needs GITML_UI_TOKEN.")  # fmt: skip
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the pages as a static site in DIR (CI artifact, GitHub Pages).",
)
def ui(port: int, host: str, open_browser: bool, export_dir: Path | None) -> None:
    """Browse, filter and compare runs, and follow a metric along a branch, in a browser.

    A read-only web app over the same index as `gitml runs`; it updates as runs log. Nothing
    is fetched from the internet. Bound to another address than 127.0.0.1 it wants the token in
    GITML_UI_TOKEN, given once as /?token=...

    \b
    Example:
      gitml ui --open
      GITML_UI_TOKEN=s3cret gitml ui --host 0.0.0.0 --port 8765
      gitml ui --export site/    # a static copy: open site/index.html through any web server
    """
    if export_dir is not None:
        counts = export(Repo.find(reading=True), export_dir)
        click.echo(f"wrote {export_dir}: {counts['runs']} runs, {counts['series']} step metrics, "
                   f"{counts['models']} models")  # fmt: skip
        return
    token = os.environ.get("GITML_UI_TOKEN") or None
    serve(Repo.find(reading=True), host=host, port=port, token=token, open_browser=open_browser)


COMMANDS = [ui]
