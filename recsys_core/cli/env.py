"""``settings-env``: the environment variables the lab reads (the table in docs/settings.md).

Registered on the main CLI by one import line in :mod:`recsys_core.cli`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from recsys_core.cli.app import app
from recsys_core.settings import settings_table


@app.command("settings-env")
def settings_env(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A Markdown table (as in docs/settings.md).")
    ] = False,
) -> None:
    """List every environment variable the lab reads, with its default and meaning."""
    typer.echo(settings_table(markdown=markdown))
