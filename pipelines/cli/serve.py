"""Serve the models: `serve` (the real-time API, uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipelines.cli.common import app, err_console, settings_of


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: serve_host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: serve_port, 8000).", min=1, max=65535)
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (default: serve_workers, 1).", min=1)
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log a line per request (off by default: it costs latency on the hot path).",
        ),
    ] = False,
) -> None:
    """Serve recommendations, propensity and segments of the @champion models, and accept
    events (`POST /v1/events`, bearer token PERSONALIZE_SERVE_TOKEN). OpenAPI at /docs.

    With --workers N > 1, /metrics sums all workers: their Prometheus values are kept in
    files under the state dir's serving/prometheus/PORT (emptied at start)."""
    import uvicorn

    from pipelines.serving.metrics import multiprocess_environment

    settings = settings_of(ctx)
    host = host or settings.serve_host
    port = port or settings.serve_port
    workers = workers or settings.serve_workers
    # every worker process builds the same settings from the environment
    os.environ.update(settings.as_environment())
    if workers > 1:
        # set before uvicorn spawns the workers: each imports prometheus_client in multiprocess
        # mode and writes its values there; whichever answers /metrics sums them all
        metrics_dir = settings.state_dir / "serving" / "prometheus" / str(port)
        os.environ.update(multiprocess_environment(metrics_dir))
    if not settings.serve_token:
        err_console.print(
            "[yellow]PERSONALIZE_SERVE_TOKEN is not set: POST /v1/events answers 401.[/]"
        )
    err_console.print(
        f"serving {settings.state_dir} on http://{host}:{port} with {workers} worker(s) "
        "(docs: /docs)"
    )
    uvicorn.run(
        "pipelines.serving.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )
