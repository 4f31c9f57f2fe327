"""Bring data in and look at it: `config`, `generate`, `import`, `validate`,
`release-quarantine`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.common import (
    EXIT_DATA,
    app,
    console,
    err_console,
    parse_day,
    progress_bar,
    run_dags,
    settings_of,
    usage_error,
)


@app.command("config")
def show_config(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the active profile and where every store lives."""
    described = settings_of(ctx).describe()
    if as_json:
        console.print_json(json.dumps(described))
        return
    table = Table(title="personalize settings", show_header=False)
    for key, value in described.items():
        table.add_row(key, value)
    console.print(table)


def _generate_shop_export(
    ctx: typer.Context,
    style: str | None,
    out: Path | None,
    file_format: str,
    scale: float,
    users: int,
    items: int,
    days: int,
    seed: int,
    start: str,
    *,
    planted: bool,
    as_json: bool,
) -> None:
    """`generate --shop-style`: sizes the user did not type come from the style, not from the
    landing generator's defaults (a wholesaler's year is not 30 days of 2,000 users)."""
    from pipelines.data.shop_styles import SHOP_STYLES, ShopStyleError, write_shop_export

    if style is None or out is None:
        raise usage_error(
            "--shop-style and --out go together, e.g. --shop-style gift-wholesale --out ./export"
            f" (styles: {', '.join(SHOP_STYLES)})"
        )
    if planted:
        raise usage_error("--drift/--bad apply to landing batches, not to --shop-style exports")

    def given(name: str) -> bool:
        # by name: typer vendors its own click, whose ParameterSource is not click's
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "PROMPT")

    try:
        export = write_shop_export(
            style,
            out,
            customers=users if given("users") else None,
            items=items if given("items") else None,
            days=days if given("days") else None,
            seed=seed,
            start=parse_day(start, "--start") if given("start") else None,
            file_format=file_format,
            scale=scale,
        )
    except ShopStyleError as problem:
        raise usage_error(str(problem)) from None
    home = ctx.parent.params.get("home") if ctx.parent is not None else None
    command = export.import_command(home)
    if as_json:
        console.print_json(json.dumps({**export.to_dict(), "import_command": command}))
        return
    console.print(
        f"{export.style}: {export.rows:,} rows, {export.first_day} .. {export.last_day} "
        f"(seed {export.seed}) in {export.events}",
        markup=False,
    )
    if export.items is not None:
        console.print(f"item catalogue: {export.items}", markup=False)
    for reason, count in export.planted.items():
        console.print(
            f"planted for the importer to reject: {count:,} rows ({reason})", markup=False
        )
    console.print(f"recipe: {out / 'export.json'}", markup=False)
    console.print("next:", markup=False)
    console.print(command, markup=False, highlight=False, soft_wrap=True)


@app.command()
def generate(
    ctx: typer.Context,
    users: Annotated[
        int, typer.Option("--users", "--customers", help="Customers in the shop.", min=1)
    ] = 2000,
    items: Annotated[
        int, typer.Option(help="Catalogue size (before planted launches).", min=12)
    ] = 500,
    days: Annotated[int, typer.Option(help="Daily batches to write.", min=1)] = 30,
    seed: Annotated[int, typer.Option(help="Same seed and arguments, same bytes.")] = 42,
    start: Annotated[str, typer.Option(help="First data day, YYYY-MM-DD.")] = "2026-01-01",
    drift: Annotated[
        list[str] | None,
        typer.Option(
            help="Plant a change from a day on: "
            "covariate|concept|new-items|promo@YYYY-MM-DD. Repeatable.",
        ),
    ] = None,
    bad: Annotated[
        list[str] | None,
        typer.Option(
            help="Write that day's events batch broken: missing-column|wrong-dtype|null-keys|"
            "negative-price|unknown-event-type|duplicate-event-id|out-of-day-ts|empty-file|"
            "corrupt-file@YYYY-MM-DD. Repeatable.",
        ),
    ] = None,
    shop_style: Annotated[
        str | None,
        typer.Option(
            "--shop-style",
            help="Instead of landing batches, write a shop's own export to --out, shaped like "
            "a public dataset, for `personalize import`: gift-wholesale (UCI Online Retail "
            "order lines) or fashion-clicks (REES46 click log). --users/--items/--days/--start "
            "default to the style's sizes.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the --shop-style export.")
    ] = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format", help="--shop-style file: csv (text timestamps) or parquet (epoch ms)."
        ),
    ] = "csv",
    scale: Annotated[
        float,
        typer.Option(
            help="--shop-style: multiply the style's default customers and items.", min=0.001
        ),
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Write a synthetic shop's daily landing batches, with ground truth under `<home>/truth/`.

    With `--shop-style STYLE --out DIR`, write a shop's export file instead and print the
    `personalize import` command that brings it in.
    """
    if shop_style is not None or out is not None:
        _generate_shop_export(
            ctx, shop_style, out, file_format, scale, users, items, days, seed, start,
            planted=bool(drift or bad), as_json=as_json,
        )  # fmt: skip
        return

    from pipelines.data.generator import (
        BAD_KINDS,
        DRIFT_KINDS,
        DayWritten,
        GeneratorError,
        ShopSpec,
        parse_planted,
    )
    from pipelines.data.generator import (
        generate as generate_shop,
    )

    settings = settings_of(ctx)
    try:
        spec = ShopSpec(
            users=users,
            items=items,
            days=days,
            seed=seed,
            start=parse_day(start, "--start"),
            drifts=tuple(parse_planted(d, DRIFT_KINDS, "--drift") for d in drift or ()),
            bad=tuple(parse_planted(b, BAD_KINDS, "--bad") for b in bad or ()),
        )
    except GeneratorError as problem:
        raise usage_error(str(problem)) from None

    with progress_bar(remaining=True, hidden=as_json) as progress:
        task = progress.add_task("generating days", total=spec.days)

        def advance(written: DayWritten) -> None:
            progress.update(task, advance=1, description=f"generated {written.day}")

        report = generate_shop(spec, settings, progress=advance)

    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    by_type = report.by_type()
    summary = Table(title=f"synthetic shop {spec.start} .. {spec.end} (seed {spec.seed})")
    for column in ("table", "rows", "where"):
        summary.add_column(column)
    summary.add_row("events", f"{report.events:,}", str(report.landing / "events"))
    summary.add_row("users", f"{report.users:,}", str(report.landing / "users"))
    summary.add_row("items", f"{report.items:,}", str(report.landing / "items"))
    summary.add_row("ground truth", "", str(report.truth))
    console.print(summary)
    views = max(by_type["view"], 1)
    carts = max(by_type["add_to_cart"], 1)
    console.print(
        f"funnel: {by_type['view']:,} views → {by_type['add_to_cart']:,} carts "
        f"({by_type['add_to_cart'] / views:.1%}) → {by_type['purchase']:,} purchases "
        f"({by_type['purchase'] / carts:.1%} of carts)"
    )
    for change in spec.drifts:
        console.print(f"planted drift: [yellow]{change}[/]")
    for change in spec.bad:
        console.print(f"planted broken batch: [red]{change}[/] (events)")
    console.print(f"scenario and ground truth: {report.truth / 'scenario.json'}")


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV (.csv, .csv.gz, .tsv) or parquet file.")],
    table: Annotated[str, typer.Option(help="Contract table: events, users or items.")] = "events",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN: which column of the file holds a contract field. Repeatable.",
        ),
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option(help="Event type for every row, e.g. purchase for an order-lines file."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="IANA zone of naive timestamps (the shop's wall clock), e.g. Europe/London. "
            "Default UTC. Day partitions are UTC days either way."
        ),
    ] = None,
    timestamp_format: Annotated[
        str | None,
        typer.Option(
            help="The one spelling of text timestamps, in strftime codes, e.g. "
            "'%d/%m/%Y %H:%M'. Default: guessed from the values (day first only when a day "
            "above 12 shows it)."
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="Item catalogue (CSV/parquet) for an events log. Without launched_ts it only "
            "describes the items derived from the log.",
        ),
    ] = None,
    items_map: Annotated[
        list[str] | None,
        typer.Option(
            "--items-map",
            help="FIELD=COLUMN for the items catalogue, or for item columns of the log itself "
            "when there is no --items file (e.g. category=category_code). Repeatable.",
        ),
    ] = None,
    users: Annotated[
        Path | None, typer.Option("--users", help="Customer catalogue for an events log.")
    ] = None,
    users_map: Annotated[
        list[str] | None,
        typer.Option(
            "--users-map",
            help="FIELD=COLUMN for the customer catalogue, or for user columns of the log "
            "(e.g. country=Country). Repeatable.",
        ),
    ] = None,
    derive: Annotated[
        bool,
        typer.Option(
            help="Derive the users and items an events log names but nobody landed yet "
            "(first seen, last price)."
        ),
    ] = True,
    assume_consent: Annotated[
        bool,
        typer.Option(
            help="Derived users carry consent_personalization=true (the shop holds consent "
            "outside this export). Off: false, never personalise without consent."
        ),
    ] = False,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Then run ingest -> features -> monitor for every imported day and train "
            "(the bulk path of `personalize load-history`).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Convert a shop's own log (order lines, clicks, ratings) into landing batches by day.

    An events log without users/items tables gets them derived (first seen, last price; category
    and brand when mapped). Rows that cannot be converted go to `<home>/rejects/` with a reason
    each. Exits 0 when any row was written, 1 when none was, 2 on a bad mapping.
    """
    from rich.progress import BarColumn, Progress

    from pipelines.data.catalogue import import_shop_log
    from pipelines.data.importer import ImportProblem, import_file, parse_mapping

    settings = settings_of(ctx)
    try:
        fields = parse_mapping(mapping or [], table)
        item_fields = parse_mapping(items_map or [], "items")
        user_fields = parse_mapping(users_map or [], "users")
        if table != "events" and (items or users or item_fields or user_fields):
            raise ImportProblem("--items/--users and their maps apply to --table events only")
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            "{task.completed:,} rows",
            console=err_console,
            disable=as_json,
            transient=True,
        ) as progress:
            task = progress.add_task(f"importing {path.name}", total=None)

            def advance(rows: int) -> None:
                progress.update(task, advance=rows)

            if table == "events":
                log = import_shop_log(
                    path,
                    fields,
                    settings=settings,
                    event_type=event_type,
                    timezone=timezone,
                    timestamp_format=timestamp_format,
                    items=items,
                    items_mapping=item_fields,
                    users=users,
                    users_mapping=user_fields,
                    derive=derive,
                    assume_consent=assume_consent,
                    progress=advance,
                )
                report, payload = log.events, log.to_dict()
            else:
                report = import_file(
                    path,
                    table,
                    fields,
                    settings=settings,
                    event_type=event_type,
                    timezone=timezone,
                    timestamp_format=timestamp_format,
                    progress=advance,
                )
                log, payload = None, report.to_dict()
    except ImportProblem as problem:
        raise usage_error(str(problem)) from None

    if as_json and not backfill:
        console.print_json(json.dumps(payload))
    elif not as_json:
        console.print(
            f"{path}: read {report.rows_read:,} rows, wrote {report.rows_written:,} "
            f"into {len(report.partitions)} day partition(s) of landing/{table}, "
            f"rejected {report.rows_rejected:,}"
        )
        for reason, count in sorted(report.rejected.items(), key=lambda kv: -kv[1]):
            console.print(f"  rejected {count:,}: {reason}")
        if report.rejects_file is not None:
            console.print(f"rejected rows with their reasons: {report.rejects_file}")
        if log is not None:
            for name, catalogue in log.catalogues.items():
                console.print(
                    f"{name} catalogue {catalogue.source.name}: {catalogue.rows_written:,} rows "
                    f"read, {catalogue.rows_rejected:,} rejected"
                )
            for name, derived in log.derived.items():
                console.print(
                    f"derived {derived.rows:,} {name} from the log "
                    f"({derived.with_attributes:,} described by a catalogue or mapped columns)"
                )
    if report.rows_written == 0:
        err_console.print(
            "[bold red]no row could be converted[/]: check the --map columns and formats "
            "against the rejects file."
        )
        raise typer.Exit(EXIT_DATA)
    days = sorted(date.fromisoformat(p.name.removeprefix("date=")) for p in report.partitions)
    if backfill and days:
        from pipelines.cli.history import history_command

        # --json: one document, the import's report beside the history's
        code = history_command(
            settings, days[0], days[-1], as_json=as_json, json_with={"import": payload}
        )
        if code:
            raise typer.Exit(code)
    elif not as_json and days:
        console.print(
            f"next: `personalize load-history --start {days[0]} --end {days[-1]}` "
            "(or re-run with --backfill)"
        )


@app.command()
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A parquet file or a date=YYYY-MM-DD dir.")],
    table: Annotated[str, typer.Option(help="Contract table: events, users or items.")] = "events",
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Data day of the batch (default: date= in the path, else its most common day).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Run a table's GX suite on a file, outside Airflow; nothing is loaded or moved.

    Prints one line per expectation, failures first. Checks that need history (volume band,
    ids of other days, unknown ids) say *skipped* while the state dir has no curated data.
    Exits 1 when any check fails.
    """
    from pipelines.data import contract
    from pipelines.validation.ingest import validate_path

    settings = settings_of(ctx)
    if table not in contract.TABLES:
        raise usage_error(f"--table {table!r}: expected one of {', '.join(contract.TABLES)}")
    if not path.exists():
        raise usage_error(f"{path}: no such file or directory")
    day = parse_day(date_, "--date") if date_ else None
    with err_console.status(f"validating {path} against the {table} suite"):
        try:
            outcome = validate_path(settings, path, table, day)
        except FileNotFoundError as missing:
            raise usage_error(str(missing)) from None
    if as_json:
        console.print_json(json.dumps(outcome.to_dict(), default=str))
    else:
        if outcome.extra_columns:
            console.print(
                f"note: extra columns are kept and reported: {', '.join(outcome.extra_columns)}",
                markup=False,
            )
        for line in outcome.lines():
            style = {"FAIL": "red", "SKIP": "yellow"}.get(line[:4], "")
            console.print(line, style=style, markup=False, highlight=False)
        console.print(outcome.summary(), style="bold", markup=False, highlight=False)
        if outcome.data_docs_page:
            console.print(f"Data Docs: {outcome.data_docs_page}", markup=False)
    if not outcome.success:
        raise typer.Exit(EXIT_DATA)


@app.command("release-quarantine")
def release_quarantine(
    ctx: typer.Context,
    table: Annotated[str, typer.Argument(help="events, users or items.")],
    day: Annotated[str, typer.Argument(help="Data day of the quarantined batch, YYYY-MM-DD.")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Also run what the reloaded day sets off.")
    ] = False,
) -> None:
    """Re-validate a fixed quarantined batch and load it: it goes back to landing and the
    ingest DAG runs for its day. If it fails again it is quarantined again (history is kept)."""
    from pipelines.data import contract
    from pipelines.validation.ingest import NothingToRelease
    from pipelines.validation.ingest import release_quarantine as release

    settings = settings_of(ctx)
    if table not in contract.TABLES:
        raise usage_error(f"{table!r}: expected one of {', '.join(contract.TABLES)}")
    data_day = parse_day(day, "DATE")
    try:
        landing = release(settings, table, data_day)
    except NothingToRelease as nothing:
        err_console.print(f"[bold red]nothing released:[/] {nothing}")
        raise typer.Exit(EXIT_DATA) from None
    console.print(f"released to {landing}; re-validating with the ingest DAG")
    records = run_dags(settings, "ingest", [data_day], follow=follow)
    if any(r.state != "success" for r in records):
        raise typer.Exit(EXIT_DATA)
