"""Prometheus metrics of one serving process (``GET /metrics``).

Each app has its own registry, so two apps in one process (tests) never share counters. With
several workers each process reports its own; scrape them by their ports, or run one worker per
container behind the load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
            "1 when the last poll of the model registry succeeded.",
            registry=registry,
        ),
    )
