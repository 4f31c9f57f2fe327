"""Benchmark: the serving API under load (targets on 2 cores: recommendations p99 <= 10 ms and
>= 500 req/s, propensity p99 <= 10 ms).

.venv/bin/python bench/serving.py [--users 1000 --items 200 --seconds 10 --concurrency 8]
                                  [--home DIR] [--loadgen auto|wrk|python]

Builds a shop with registered champions, published segments and recommendations and a filled
online store (``--home DIR`` keeps it and reuses it on the next run: the build takes minutes),
starts ``personalize serve`` on 127.0.0.1 in its own process, and drives it at a fixed
concurrency (``--concurrency`` connections, each with one request in flight) for ``--seconds``
per scenario: recommendations of known users, propensity, events (one per POST),
recommendations again while the recommender's alias moves to another version mid-run (the
server polls every second), and, as the floor, a bare FastAPI endpoint doing a numpy top-10
over as many items, in a uvicorn process of its own run like the server (same event loop and
HTTP parser, no access log).

The load comes from ``wrk`` (``apt-get install wrk``) with ``bench/serving_wrk.lua`` when it is
installed, else from an asyncio httpx client in this process, which on 2 cores is itself the
bottleneck (its CPU is reported: near one core means the figures are the client's). Reports
requests/s, p50/p95/p99 ms, errors, the load generator's CPU, the server's peak MB, the core
count and the load average; compare the server with the floor of the same run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record

TOKEN = "bench-token"
FLOOR_APP = textwrap.dedent(
    """
    import numpy as np
    from fastapi import FastAPI
    app = FastAPI()
    scores = np.random.default_rng(0).random((USERS, ITEMS))
    @app.get("/v1/users/{user_id}/recommendations")
    async def top(user_id: str, k: int = 10):
        row = scores[hash(user_id) % scores.shape[0]]
        best = np.argpartition(-row, k)[:k]
        best = best[np.argsort(-row[best])]
        return {"items": [{"item_id": int(i), "score": float(row[i])} for i in best]}
    """
)


def built(home: Path, users: int, items: int) -> tuple[object, int, int]:
    """The shop of ``home`` (built now unless a previous run left it), with the recommender's
    first champion back as champion; (settings, champion, the version the swap moves to)."""
    from pipelines.config import Settings
    from pipelines.registry import CHAMPION, aliases, promote

    marker = home / "bench_serving.json"
    if marker.is_file():
        held = json.loads(marker.read_text())
        if held["users"] == users and held["items"] == items:
            settings = Settings(home=home, train_time_budget_seconds=3.0)
            if aliases(settings, "recommender")[CHAMPION] != held["champion"]:
                promote(settings, "recommender", held["champion"], actor="bench",
                        reason="reset", require_blessed=False)  # fmt: skip
            return settings, held["champion"], held["second"]
        shutil.rmtree(home)
    settings, second = build(home, users, items)
    champion = aliases(settings, "recommender")[CHAMPION]
    marker.write_text(
        json.dumps({"users": users, "items": items, "champion": champion, "second": second})
    )
    return settings, champion, second


def build(home: Path, users: int, items: int) -> tuple[object, int]:
    from pipelines.config import Settings
    from pipelines.data.generator import ShopSpec
    from pipelines.days import end_of_day
    from pipelines.features.online import materialize_interval
    from pipelines.flows.train import (
        carry_out_gate,
        gate_version,
        publish_recommendations,
        publish_segments,
        train_model,
    )
    from pipelines.models.testing import curated_shop

    settings = Settings(home=home, train_time_budget_seconds=3.0)
    spec = ShopSpec(users=users, items=items, days=40, seed=3, start=date(2026, 1, 5))
    last = curated_shop(settings, spec)[-1]
    for model in ("segmentation", "propensity", "recommender"):
        carry_out_gate(
            settings, gate_version(settings, model, train_model(settings, model, last).version)
        )
    publish_segments(settings, last)
    publish_recommendations(settings, last)
    materialize_interval(
        settings,
        end_of_day(last) - timedelta(days=1),
        end_of_day(last) + timedelta(seconds=1),
        tables=["user_activity", "item_popularity"],
    )
    second = train_model(settings, "recommender", last - timedelta(days=1)).version
    return settings, second


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


WRK_SCRIPT = Path(__file__).resolve().parent / "serving_wrk.lua"


def drive_wrk(
    base: str, mode: str, seconds: float, concurrency: int, users: int, during=None
) -> dict:
    """One wrk run (one thread, ``concurrency`` connections) of ``mode``; ``during`` is called
    half-way through."""
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_USERS": str(users), "BENCH_TOKEN": TOKEN}
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        [*command, "-s", str(WRK_SCRIPT), base], env=env, stdout=subprocess.PIPE, text=True
    )
    if during is not None:
        time.sleep(seconds / 2)
        during()
    out, _ = process.communicate(timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out[-2000:]}")
    found = json.loads(line.removeprefix("WRK_JSON "))
    wall = found["duration_us"] / 1e6
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "requests": found["requests"],
        "rows_per_s": round(found["requests"] / wall, 1),
        "p50_ms": round(found["p50_us"] / 1000, 2),
        "p95_ms": round(found["p95_us"] / 1000, 2),
        "p99_ms": round(found["p99_us"] / 1000, 2),
        "max_ms": round(found["max_us"] / 1000, 2),
        "errors": found["non_2xx"] + found["socket_errors"],
        "wall_s": round(wall, 2),
        "loadgen": "wrk",
        "loadgen_cpu_cores": round(cpu / wall, 2),
    }


async def drive(base: str, make_request, seconds: float, concurrency: int, during=None) -> dict:
    import httpx
    import numpy as np

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            method, url, kwargs = make_request(next(counter))
            started = time.perf_counter()
            response = await client.request(method, url, **kwargs)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    cpu_began = time.process_time()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        began = time.perf_counter()
        tasks = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        if during is not None:
            await asyncio.sleep(seconds / 2)
            await asyncio.to_thread(during)
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rows_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": errors,
        "wall_s": round(wall, 2),
        "loadgen": "python (httpx)",
        "loadgen_cpu_cores": round(cpu / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--home", type=Path, help="Keep the built shop here and reuse it (default: a temp dir)."
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), or the asyncio httpx client.",
    )
    args = parser.parse_args()
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if args.loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home.resolve() if args.home else Path(scratch) / "home"
        started = time.perf_counter()
        settings, _, second = built(home, args.users, args.items)
        build_s = time.perf_counter() - started
        port, floor_port = 18731, 18732
        env = {
            **os.environ,
            **settings.as_environment(),
            "PERSONALIZE_SERVE_TOKEN": TOKEN,
            "PERSONALIZE_SERVE_POLL_SECONDS": "1",
        }
        server = start(
            [
                sys.executable,
                "-c",
                "from pipelines.cli import app; app()",
                "serve",
                "--port",
                str(port),
            ],
            env,
            port,
        )
        floor_file = Path(scratch) / "floor_app.py"
        floor_file.write_text(
            FLOOR_APP.replace("USERS", str(args.users)).replace("ITEMS", str(args.items))
        )
        floor = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                scratch,
                "floor_app:app",
                "--port",
                str(floor_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            floor_port,
        )
        base, floor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
        users = [f"u{i:06d}" for i in range(args.users)]

        def recs(n: int):
            return "GET", f"/v1/users/{users[n % len(users)]}/recommendations", {}

        def propensity(n: int):
            return "GET", f"/v1/users/{users[(n * 7) % len(users)]}/propensity", {}

        def event(n: int):
            body = {
                "event_id": f"bench-{n}-{time.monotonic_ns()}",
                "user_id": users[n % len(users)],
                "item_id": "i00001",
                "event_type": "view",
                "event_ts": datetime.now(UTC).isoformat(),
                "quantity": 1,
            }
            return (
                "POST",
                "/v1/events",
                {"json": body, "headers": {"Authorization": f"Bearer {TOKEN}"}},
            )

        def swap() -> None:
            from pipelines.registry import promote

            promote(
                settings,
                "recommender",
                second,
                actor="bench",
                reason="swap mid-run",
                require_blessed=False,
            )

        modes = {recs: "recommendations", propensity: "propensity", event: "events"}

        def run(url: str, make_request, seconds: float, concurrency: int, during=None) -> dict:
            if use_wrk:
                mode = modes[make_request]
                return drive_wrk(url, mode, seconds, concurrency, args.users, during)
            return asyncio.run(drive(url, make_request, seconds, concurrency, during))

        try:
            run(base, recs, 2.0, args.concurrency)  # warm-up
            run(base, propensity, 2.0, args.concurrency)
            run(floor_base, recs, 2.0, args.concurrency)
            load_before = os.getloadavg()
            result = {
                "users": args.users,
                "items": args.items,
                "concurrency": args.concurrency,
                "seconds_per_scenario": args.seconds,
                "build_s": round(build_s, 1),
                "recommendations": run(base, recs, args.seconds, args.concurrency),
                "propensity": run(base, propensity, args.seconds, args.concurrency),
                "events": run(base, event, args.seconds, args.concurrency),
                "recommendations_with_alias_swap": run(
                    base, recs, args.seconds, args.concurrency, during=swap
                ),
                "floor_numpy_top10": run(floor_base, recs, args.seconds, args.concurrency),
            }
            import httpx

            served = httpx.get(f"{base}/v1/models").json()["models"]["recommender"]["version"]
            result["swap_served_version_after"] = served
            result["swap_target_version"] = second
            result["server_peak_mb"] = peak_rss_mb(server.pid)
            result["load_average_1m_before_after"] = [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ]
            bare = result["floor_numpy_top10"]
            for name in ("recommendations", "propensity", "recommendations_with_alias_swap"):
                result[name]["vs_floor"] = {
                    "throughput": round(result[name]["rows_per_s"] / bare["rows_per_s"], 2),
                    "p99": round(result[name]["p99_ms"] / bare["p99_ms"], 2),
                }
        finally:
            for process in (server, floor):
                process.terminate()
                process.wait(10)
    record("serving", result)


if __name__ == "__main__":
    main()
