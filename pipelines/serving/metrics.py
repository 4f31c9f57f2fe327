"""Prometheus metrics of the serving API (``GET /metrics``).

One process (tests, ``serve --workers 1``): each app has its own registry, so two apps in one
process never share counters. Several workers (``serve --workers N``): ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, prometheus_client
then keeps every value in a per-process file there, and ``/metrics`` — whichever worker answers
— sums the files of all workers (:func:`latest`): counters and histograms add up, the model
version gauges read the most recent value any live worker set, and a worker leaving cleanly
removes its live gauges (:func:`process_exiting`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SERVE_ENV = "PERSONALIZE_SERVE_METRICS_DIR"
"""Set by ``serve --workers N`` beside :data:`MULTIPROC_ENV`: this app collects from the files."""


@dataclass
class ServingMetrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    model_version: Gauge
    fallbacks: Counter
    events_pushed: Counter
    events_rejected: Counter
    registry_up: Gauge
    multiprocess_dir: str | None = None  # set: the values live in files shared by workers


def multiprocess_dir() -> str | None:
    """The directory of the workers' files when ``serve`` started this process as one of
    several workers, else None.

    Not ``PROMETHEUS_MULTIPROC_DIR`` alone: importing Feast sets that variable in any process
    that has none (``feast/metrics.py``), after prometheus_client chose its mode on import — a
    single process would then collect from an empty directory.
    """
    ours = os.environ.get(SERVE_ENV)
    return ours if ours and ours == os.environ.get(MULTIPROC_ENV) else None


def multiprocess_environment(path: Path) -> dict[str, str]:
    """What ``serve`` exports before starting workers: ``path`` emptied and created (values of
    an earlier run would add up otherwise), for prometheus_client and for the app."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return {MULTIPROC_ENV: str(path), SERVE_ENV: str(path)}


def serving_metrics() -> ServingMetrics:
    registry = CollectorRegistry()
    return ServingMetrics(
        registry=registry,
        requests=Counter(
            "personalize_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "personalize_http_request_duration_seconds",
            "Time from request to response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        model_version=Gauge(
            "personalize_model_version",
            "Registered version of each model being served (@champion when loaded).",
            ["model"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        ),
        fallbacks=Counter(
            "personalize_fallbacks",
            "Answers that fell back from the model's own, by endpoint and reason.",
            ["endpoint", "reason"],
            registry=registry,
        ),
        events_pushed=Counter(
            "personalize_events_pushed",
            "Events accepted, logged and pushed to the online store.",
            registry=registry,
        ),
        events_rejected=Counter(
            "personalize_events_rejected",
            "Event requests refused, by reason (invalid, too_large, unauthorized).",
            ["reason"],
            registry=registry,
        ),
        registry_up=Gauge(
            "personalize_registry_reachable",
            "1 when the last poll of the model registry succeeded (several workers: the "
            "lowest of the live workers).",
            registry=registry,
            multiprocess_mode="livemin",
        ),
        multiprocess_dir=multiprocess_dir(),
    )


def latest(metrics: ServingMetrics) -> bytes:
    """The text exposition of ``/metrics``: this app's registry, or with several workers the
    sum over every worker's files (a registry built per scrape, as prometheus_client asks)."""
    if metrics.multiprocess_dir is None:
        return generate_latest(metrics.registry)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics.multiprocess_dir)
    return generate_latest(registry)


def process_exiting(metrics: ServingMetrics) -> None:
    """A worker stops: drop its live gauges (its counters stay, part of the totals)."""
    if metrics.multiprocess_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), metrics.multiprocess_dir)
