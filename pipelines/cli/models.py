"""``personalize`` commands about models: train, models, promote, rollback, history, recommend.

Registered on the main app by :mod:`pipelines.cli`; heavy imports stay inside the commands.
"""

from __future__ import annotations

import getpass
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
    run_dags,
    settings_of,
    usage_error,
)
from pipelines.models.catalog import model_names, spec_of

MODELS_HELP = " or ".join(", ".join(model_names()).rsplit(", ", 1))
SHORT_METRIC = {"test_roc_auc": "auc", "test_ndcg_at_10": "ndcg@10", "silhouette": "silh"}


def _check_model(model: str) -> str:
    if model not in model_names():
        raise usage_error(f"unknown model {model!r}; expected {MODELS_HELP}")
    return model


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


@app.command()
def train(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Argument(help=f"Train only this model ({MODELS_HELP}); default all.")
    ] = None,
    date_: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Last day of the training window (default: the last day with features).",
        ),
    ] = None,
) -> None:
    """Train, register, gate and (if blessed and auto-promotion is on) promote, via the train DAG.

    Propensity snapshots stop PERSONALIZE_PROPENSITY_HORIZON_DAYS (default 7) days before the
    window's end, where labels are complete.
    """
    from pipelines.flows.train import TrainingError, last_feature_day

    settings = settings_of(ctx)
    if model is not None:
        _check_model(model)
    try:
        day = parse_day(date_, "--date") if date_ else last_feature_day(settings)
    except TrainingError as problem:
        err_console.print(f"[red]{problem}[/]")
        raise typer.Exit(EXIT_DATA) from None
    conf = {"models": [model]} if model else {}
    records = run_dags(settings, "train", [day], follow=False, conf=conf)
    if any(r.state != "success" for r in records):
        raise typer.Exit(EXIT_DATA)


@app.command()
def models(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Registered versions with their aliases, gate decision and key metrics, newest first."""
    from pipelines.models.catalog import model_names
    from pipelines.registry import model_overview

    settings = settings_of(ctx)
    names = [_check_model(model)] if model else list(model_names())
    overview = {name: model_overview(settings, name) for name in names}
    if as_json:
        console.print_json(json.dumps(overview, default=str))
        return
    for name in names:
        rows = overview[name]
        if not rows:
            console.print(f"{name}: no versions yet (`personalize train {name}`)")
            continue
        table = Table(title=name)
        key_metrics = spec_of(name).key_metrics
        for column in ("version", "aliases", "created", "window", "gate", *key_metrics):
            table.add_column(column)
        for row in rows:
            metrics = row["metrics"]
            table.add_row(
                str(row["version"]),
                ", ".join(row["aliases"]) or "—",
                row["created"][:16],
                row["window"],
                row["gate"] or "—",
                *(_number(metrics.get(m)) for m in key_metrics),
            )
        console.print(table)


def _number(value: object) -> str:
    return "—" if value is None else f"{float(value):.4g}"


@app.command()
def promote(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODELS_HELP)],
    version: Annotated[int, typer.Argument(help="Registered version to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes to the audit log).")],
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the gate did not bless it.")
    ] = False,
) -> None:
    """Make VERSION the champion (the replaced one becomes previous_champion)."""
    from pipelines.registry import RegistryError, promote

    settings = settings_of(ctx)
    _check_model(model)
    try:
        move = promote(
            settings, model, version, actor=_actor(), reason=reason, require_blessed=not force
        )
    except RegistryError as problem:
        err_console.print(f"[red]{problem}[/]")
        raise typer.Exit(EXIT_DATA) from None
    if move is None:
        console.print(f"{model} v{version} is already the champion: nothing to do")
    else:
        console.print(f"{model}: champion v{move.from_version} -> v{move.to_version}")


@app.command()
def rollback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODELS_HELP)],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes to the audit log).")],
    to: Annotated[
        int | None, typer.Option("--to", help="Version to restore (default: previous_champion).")
    ] = None,
) -> None:
    """Move champion back to the previous champion (or --to VERSION); the demoted version is
    tagged and the move is audited."""
    from pipelines.gates import RollbackError
    from pipelines.registry import RegistryError, rollback

    settings = settings_of(ctx)
    _check_model(model)
    try:
        move = rollback(settings, model, to_version=to, reason=reason, actor=_actor())
    except (RegistryError, RollbackError) as problem:
        err_console.print(f"[red]cannot roll back {model}:[/] {problem}")
        raise typer.Exit(EXIT_DATA) from None
    console.print(f"{model}: champion v{move.from_version} -> v{move.to_version} ({reason})")


@app.command()
def history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help=MODELS_HELP)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Every alias move of MODEL (promotions, rollbacks, hand moves in the MLflow UI)."""
    from pipelines.registry import read_audit, reconcile_manual_moves

    settings = settings_of(ctx)
    _check_model(model)
    reconcile_manual_moves(settings, model)
    records = read_audit(settings, model)
    if as_json:
        for record in records:
            console.print(json.dumps(record, default=str), highlight=False, markup=False)
        return
    if not records:
        console.print(f"{model}: no alias moves yet")
        return
    table = Table(title=f"{model}: alias moves")
    for column in ("when", "action", "alias", "from", "to", "actor", "reason"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r["ts"][:19],
            r["action"],
            r["alias"],
            _version(r.get("from_version")),
            _version(r.get("to_version")),
            r.get("actor", ""),
            r.get("reason", ""),
        )
    console.print(table)


def _version(value: object) -> str:
    return "—" if value is None else f"v{value}"


recommend_app = typer.Typer(help="Recommendations: evaluate on any log, or publish top-k.")
app.add_typer(recommend_app, name="recommend")


@recommend_app.command("evaluate")
def recommend_evaluate(
    train_file: Annotated[
        Path | None,
        typer.Option(
            "--train", help="Interactions to fit on: user_id, item_id[, weight|rating][, timestamp]"
        ),
    ] = None,
    test_file: Annotated[
        Path | None, typer.Option("--test", help="Interactions to evaluate against.")
    ] = None,
    events_file: Annotated[
        Path | None,
        typer.Option("--events", help="One interaction log to split by --protocol (not --train)."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            help="temporal: the last --test-days are test; random: a random --test-fraction of "
            "each user's rows. Selection validates the same way.",
        ),
    ] = "temporal",
    test_days: Annotated[int, typer.Option("--test-days", help="Temporal test days.")] = 30,
    valid_days: Annotated[
        int | None, typer.Option("--valid-days", help="Temporal validation days (default: same).")
    ] = None,
    test_fraction: Annotated[
        float, typer.Option("--test-fraction", help="Random: share of each user's rows.")
    ] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Seed of random splits and samples.")] = 0,
    exclude_seen: Annotated[
        str,
        typer.Option(
            "--exclude-seen",
            help="auto (decide by validation), true (never recommend a user's own items), false.",
        ),
    ] = "auto",
    k: Annotated[int, typer.Option("--k", help="List length.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write user_id, item_id, rank, score: k rows per test user."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Fit on any interaction log; print test metrics@k of the validated winner beside
    popularity and buy-again, and which candidate won validation."""
    from pipelines.models.interactions import InteractionsError
    from pipelines.models.recommender import PROTOCOLS, evaluate_files, parse_exclude_seen

    if events_file is None and (train_file is None or test_file is None):
        raise usage_error("give --events FILE, or both --train FILE and --test FILE")
    if events_file is not None and (train_file is not None or test_file is not None):
        raise usage_error("give either --events or --train/--test, not both")
    if protocol not in PROTOCOLS:
        raise usage_error(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    try:
        setting = parse_exclude_seen(exclude_seen)
    except ValueError as problem:
        raise usage_error(f"--exclude-seen: {problem}") from None
    for option, path in (("--train", train_file), ("--test", test_file), ("--events", events_file)):
        if path is not None and not path.exists():
            raise usage_error(f"{option} {path}: no such file")
    try:
        result = evaluate_files(
            train_file,
            test_file,
            k=k,
            out=out,
            seed=seed,
            events_path=events_file,
            protocol=protocol,
            test_days=test_days,
            valid_days=valid_days,
            test_fraction=test_fraction,
            exclude_seen=setting,
        )
    except (InteractionsError, ValueError) as problem:
        err_console.print(f"[red]{problem}[/]")
        raise typer.Exit(EXIT_DATA) from None
    if as_json:
        console.print_json(json.dumps(result, default=str))
        return
    _print_evaluation(result, k)


def _print_evaluation(result: dict, k: int) -> None:
    """The test metrics table (winner, popularity, buy-again, ...) and the validation winner."""
    metrics = result["test_metrics"]
    names = [result["model"], *(n for n in ("popularity", "buy_again") if n != result["model"])]
    names += [n for n in metrics if n not in names]
    columns = [f"recall_at_{k}", f"ndcg_at_{k}"]
    columns += [c for c in ("recall_at_10", "ndcg_at_10") if c not in columns]
    table = Table(title=f"test, {result['users']} users ({result['split']})")
    table.add_column("model")
    for column in columns:
        table.add_column(column.replace("_at_", "@"), justify="right")
    for name in names:
        label = f"{name} (winner)" if name == result["model"] else name
        table.add_row(label, *(_number(metrics[name].get(c)) for c in columns))
    console.print(table)
    console.print(f"validation winner: {result['winner']}", highlight=False, markup=False)
    console.print(
        f"seen items: {'excluded' if result['exclude_seen'] else 'allowed'} "
        f"(setting {result['selection']['exclude_seen_setting']}); truth: {result['truth']}",
        highlight=False,
        markup=False,
    )
    if "out" in result:
        console.print(f"wrote {result['out']} ({result['out_users']} users x {k})")


@recommend_app.command("batch")
def recommend_batch(
    ctx: typer.Context,
    date_: Annotated[
        str | None, typer.Option("--date", help="Day to publish for (default: last feature day).")
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Items per user.")] = 10,
) -> None:
    """Write the champion recommender's top-k for every user into the online store."""
    from pipelines.flows.train import TrainingError, last_feature_day, publish_recommendations
    from pipelines.registry import RegistryError

    settings = settings_of(ctx)
    try:
        day: date = parse_day(date_, "--date") if date_ else last_feature_day(settings)
        result = publish_recommendations(settings, day, k=k)
    except (TrainingError, RegistryError) as problem:
        err_console.print(f"[red]{problem}[/]")
        raise typer.Exit(EXIT_DATA) from None
    console.print(
        f"recommender v{result['version']}: top-{k} for {result['users']} users written for "
        f"{result['day']} ({result['online_rows']} online rows). "
        "Read one: `personalize features show USER --service recommendations_v1`"
    )


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    no_dags: Annotated[
        bool, typer.Option("--no-dags", help="Skip the DAG runs (no Airflow import: faster).")
    ] = False,
) -> None:
    """One screen: last run of every DAG, each model's champion / challenger / previous with key
    metrics and its last gate and alias move, open alerts, quarantined batches."""
    from pipelines.local.status import KEY_METRICS as STATUS_METRICS
    from pipelines.local.status import platform_status

    settings = settings_of(ctx)
    state = platform_status(settings, dag_runs=not no_dags)
    if as_json:
        console.print_json(json.dumps(state, default=str))
        return
    console.print(f"[bold]personalize[/] — profile {state['profile']}, state dir {state['home']}")
    runs = state.get("dag_runs")
    if isinstance(runs, list):
        table = Table(title="DAG runs (latest)")
        for column in ("dag", "day", "state", "ended"):
            table.add_column(column)
        for run in runs:
            table.add_row(
                run["dag_id"], run.get("day") or "—", run["state"], (run.get("ended") or "—")[:19]
            )
        console.print(table)
    elif runs is not None:
        console.print(f"DAG runs: {runs['error']}")
    models = state["models"]
    if "error" in models:
        console.print(f"models: {models['error']}")
    else:
        table = Table(title="Models")
        for column in ("model", "champion", "challenger", "previous", "last gate", "last move"):
            table.add_column(column)
        for name, info in models.items():
            move = info["last_move"]
            gate = info["last_gate"]
            table.add_row(
                name,
                _alias_cell(info["champion"], STATUS_METRICS[name]),
                _alias_cell(info["challenger"], STATUS_METRICS[name]),
                _alias_cell(info["previous_champion"], STATUS_METRICS[name]),
                f"v{gate['version']} {gate['decision']}" if gate else "—",
                f"{move['action']} {_version(move['from_version'])}→{_version(move['to_version'])}"
                if move
                else "—",
            )
        console.print(table)
    alerts = state["alerts"]
    if isinstance(alerts, list):
        console.print(f"[bold]Open alerts[/] (newest first): {len(alerts)}")
        for alert in alerts[:10]:
            acked = " (acknowledged)" if alert.get("ack") else ""
            console.print(
                f"  {alert.get('id', '')} {str(alert.get('ts', ''))[:16]} "
                f"[{str(alert.get('severity', '')).upper()}] {alert.get('summary', '')}{acked}",
                highlight=False,
                markup=False,
            )
    quarantined = state["quarantined"]
    if isinstance(quarantined, list):
        console.print(f"[bold]Quarantined batches:[/] {len(quarantined)}")
        for batch in quarantined[:10]:
            console.print(
                f"  {batch['table']} {batch['day']}: {batch['summary']} — {batch['next_step']}",
                highlight=False,
                markup=False,
            )
    console.print("Look around: `personalize up` (Airflow + MLflow UIs), `personalize models`.")


def _alias_cell(info: dict | None, metrics: tuple[str, ...]) -> str:
    """``v3 auc 0.712``: the version and its first key metric, short enough for 80 columns."""
    if info is None:
        return "—"
    metric = metrics[0]
    label = SHORT_METRIC.get(metric, metric)
    return f"v{info['version']} {label} {_number(info['metrics'].get(metric))}"


@app.command()
def reports(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N reports.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Monitoring reports (drift, live performance), newest first, with their verdicts and the
    HTML report to open."""
    from pipelines.flows.monitor import list_reports

    settings = settings_of(ctx)
    if model is not None:
        _check_model(model)
    found = list_reports(settings, model)[:limit]
    if as_json:
        console.print_json(json.dumps(found, default=str))
        return
    if not found:
        console.print("no monitoring reports yet: they appear after `personalize run monitor`")
        return
    for report in found:
        console.print(
            f"{report['day']} {report['model']} v{report['version']}: {report['verdict']}",
            highlight=False,
            markup=False,
        )
        if report["report"]:
            console.print(f"    {report['report']}", highlight=False, markup=False)
