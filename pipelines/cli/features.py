"""Look at the feature store: `features show`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.common import (
    EXIT_DATA,
    app,
    console,
    err_console,
    plain,
    settings_of,
)
from pipelines.models.catalog import spec_of

features_app = typer.Typer(help="Look at the feature store.", no_args_is_help=True)
app.add_typer(features_app, name="features")


@features_app.command("show")
def features_show(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The user whose online features to print.")],
    service: Annotated[
        str, typer.Option(help="Feature service: propensity_v1 or recommender_v1.")
    ] = spec_of("propensity").feature_service or "propensity_v1",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print a user's features as the online store serves them right now."""
    from pipelines.features.online import online_features

    settings = settings_of(ctx)
    frame = online_features(settings, [user_id], service)
    values = {k: plain(v) for k, v in frame.iloc[0].items()}
    if as_json:
        console.print_json(json.dumps(values, default=str))
        return
    known = [v for k, v in values.items() if k != "user_id" and v is not None]
    table = Table(title=f"{service} for user {user_id}", show_header=False)
    for key, value in values.items():
        table.add_row(key, "—" if value is None else str(value))
    console.print(table)
    if not known:
        err_console.print(
            f"no online features for {user_id}: unknown user, or features not materialized yet "
            "(`personalize run features --date D`)."
        )
        raise typer.Exit(EXIT_DATA)
