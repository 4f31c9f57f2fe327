"""`personalize serve --workers 2`, the real command on the serving shop: whichever worker
answers ``/metrics`` reports the requests of both (prometheus_client's multiprocess mode), and the
workers' live gauges go when they stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from pipelines.registry import CHAMPION, aliases

from .conftest import Shop

ROUTE = "/health"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def two_workers(shop: Shop, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``personalize serve --workers 2`` on a free port until ready; (base URL, the metrics
    dir); stopped with SIGINT (Ctrl-C: the workers shut down cleanly) on exit."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    home = str(shop.settings.state_dir)
    serve = ["--home", home, "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import app; app()", *serve],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers can be stopped with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # ~10 s per worker on an idle machine, 2-5x on a busy one or without compiled bytecode
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            started = (tmp_path / "serve.log").read_text().count("Application startup complete")
            if started == 2 and httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                break  # both workers took their models: either may get the next connection
            time.sleep(0.2)
        yield base, shop.settings.state_dir / "serving" / "prometheus" / str(port)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # parent and workers
            server.wait(5)
        finally:
            log.close()


def _requests_per_worker(metrics_dir: Path, scratch: Path) -> dict[str, float]:
    """What each worker's own file counts for ``ROUTE`` (one file per worker process)."""
    counted = {}
    for file in sorted(metrics_dir.glob("counter_*.db")):
        alone = scratch / file.stem
        alone.mkdir(parents=True)
        shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(alone))
        labels = {"route": ROUTE, "method": "GET", "status": "200"}
        counted[file.stem] = registry.get_sample_value("personalize_http_requests_total", labels)
    return {pid: n for pid, n in counted.items() if n}


def test_metrics_of_two_workers_count_every_request_and_live_gauges_go_with_them(
    shop: Shop, tmp_path: Path
) -> None:
    sent = 0

    def one(_: int) -> int:
        # a new connection each: the kernel hands connections to either worker
        return httpx.get(f"{base}{ROUTE}", timeout=10).status_code

    with two_workers(shop, tmp_path) as (base, metrics_dir), ThreadPoolExecutor(8) as pool:
        for batch in range(10):  # until both have answered some (almost always at once)
            assert set(pool.map(one, range(40))) == {200}
            sent += 40
            if len(_requests_per_worker(metrics_dir, tmp_path / f"look{batch}")) >= 2:
                break
        per_worker = _requests_per_worker(metrics_dir, tmp_path / "final")
        assert len(per_worker) == 2, per_worker  # both served: one registry alone misses some

        text = httpx.get(f"{base}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        counted = sum(
            s.value
            for s in families["personalize_http_requests"].samples
            if s.name == "personalize_http_requests_total" and s.labels["route"] == ROUTE
        )
        assert counted == sent, (counted, sent, per_worker)
        # one sample per model, no pid label: the version the live workers set most recently
        (recommender,) = [
            s for s in families["personalize_model_version"].samples
            if s.labels["model"] == "recommender"
        ]  # fmt: skip
        assert recommender.value == aliases(shop.settings, "recommender")[CHAMPION]
        assert list(metrics_dir.glob("gauge_live*.db"))
    # the workers stopped: their live gauges went with them, their counts stay in the totals
    assert not list(metrics_dir.glob("gauge_live*.db"))
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2
