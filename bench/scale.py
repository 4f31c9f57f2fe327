"""Benchmark: the platform at scale, one part per question (issue 18's point 7).

.venv/bin/python bench/scale.py --part features [--events 1000000 10000000] [--engines local spark]
.venv/bin/python bench/scale.py --part celery [--cycle-days 3] [--workers 1 2]

Parts (``--part``, repeatable; each writes bench/results/scale_<part>.json):

* ``features``: one day of features (user_activity + item_popularity, read from the curated
  parquet of a 30-day window, written to the offline store) on the local engine (numpy) and on
  Spark (``spark_master``, local[2] by default), for each ``--events`` size. Each measurement runs
  in a fresh process, so its wall time includes what a DAG task pays (Spark's JVM start is
  reported apart), and its peak memory is that process tree's (the JVM included), sampled.

* ``materialize``: entity rows/s of one day of user_activity (``--users`` entities, 35 features)
  written by ``online.materialize_interval`` into the local profile's SQLite online store and into
  Redis (a ``redis-server`` of its own on a free port, Feast registry on a scratch PostgreSQL
  database, dropped after): a fresh write, then the same day again (an upsert);
* ``online``: p50/p99 ms of one entity's propensity_v1 read through ``online.online_features`` and
  ``online_feature_values`` (the serving path), from SQLite and from Redis, same rows.

* ``celery``: the same short cycle -- ``--cycle-days`` days of ingest -> features -> monitor
  (assets) after a curated history -- on the local profile (``dag.test`` in a fresh process,
  one task at a time) and on a scratch prod cluster (``pipelines.local.cluster``: scheduler,
  PostgreSQL, Redis broker) with each of ``--workers`` Celery worker counts (1 2 by default),
  the days run by the scheduler's catch-up. Wall time from the first run to the last one
  settled (cluster start and ``init`` reported apart), tasks run, and the per-task overhead
  wall / tasks; the seconds inside task bodies beside it (local: the task body clock; prod: the
  task instances' durations, which include the task process start).

New parts are one function and one entry in ``PARTS``: ``run(args) -> dict`` returning the
figures to record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import record

DAYS = 30
DAY = date(2026, 1, 30)  # the day measured: the last of the 30 generated
USERS_PER_MILLION_EVENTS = 40_000  # as bench/features_compute.py's generated shop
ITEMS = 5_000


# ---- measuring ----------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of this process and its children (a JVM), sampled every 50 ms."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        import psutil

        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that just exited
                total += child.memory_info().rss
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._rss())
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak_bytes = max(self.peak_bytes, self._rss())
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


# ---- part: features -----------------------------------------------------------------------------


def write_synthetic_shop(curated: Path, events: int, seed: int = 1) -> dict[str, int]:
    """``events`` events over 30 days as curated parquet, fast (numpy, not the story generator).

    The shape of the generated shop: 40k users and 5k items per million events, 70 % views,
    20 % carts, 10 % purchases, ~3 events per session, some null sessions and devices.
    """
    import numpy as np
    import pyarrow as pa

    from pipelines.data import contract
    from pipelines.data.partitions import write_partition

    rng = np.random.default_rng(seed)
    n_users = max(100, events * USERS_PER_MILLION_EVENTS // 1_000_000)
    user_names = pa.array([f"u{i:08d}" for i in range(n_users)])
    item_names = pa.array([f"i{i:06d}" for i in range(ITEMS)])
    item_prices = np.round(rng.lognormal(3, 1, ITEMS), 2)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) - timedelta(days=DAYS - 1)
    first = start - timedelta(days=60)
    users = pa.table(
        {
            "user_id": user_names,
            "signup_ts": pa.array([first] * n_users, pa.timestamp("us", tz="UTC")),
            "country": pa.array(["US"] * n_users),
            "age_band": pa.nulls(n_users, pa.string()),
            "consent_personalization": pa.array([True] * n_users),
        },
        schema=contract.USERS.arrow_schema(),
    )
    write_partition(users, curated, "users", start.date())
    categories = pa.array([f"cat-{i % 20:02d}" for i in range(ITEMS)])
    items = pa.table(
        {
            "item_id": item_names,
            "category": categories,
            "brand": pa.array([f"brand-{i % 300}" for i in range(ITEMS)]),
            "price": pa.array(item_prices),
            "launched_ts": pa.array([first] * ITEMS, pa.timestamp("us", tz="UTC")),
        },
        schema=contract.ITEMS.arrow_schema(),
    )
    write_partition(items, curated, "items", start.date())

    per_day = events // DAYS
    kinds = pa.array(list(contract.EVENT_TYPES))
    devices = pa.array([*contract.DEVICES, None])
    written = 0
    for offset in range(DAYS):
        day_start = start + timedelta(days=offset)
        n = per_day if offset < DAYS - 1 else events - written
        user = rng.integers(0, n_users, n)
        item = rng.integers(0, ITEMS, n)
        kind = rng.choice(3, n, p=[0.7, 0.2, 0.1])
        micros = int(day_start.timestamp() * 1_000_000) + np.sort(
            rng.integers(0, 86_400_000_000, n)
        )
        session = np.where(
            rng.random(n) < 0.1, -1, (user * 7 + offset) * 10 + rng.integers(0, 3, n)
        )
        device = rng.choice(len(devices), n, p=[0.5, 0.25, 0.15, 0.1])

        def pick(names: pa.Array, codes: np.ndarray) -> pa.Array:
            return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), names).cast(
                pa.string()
            )

        table = pa.table(
            {
                "event_id": pa.array(np.char.add(f"e{offset}-", np.arange(n).astype(str))),
                "user_id": pick(user_names, user),
                "item_id": pick(item_names, item),
                "event_type": pick(kinds, kind),
                "event_ts": pa.array(micros, pa.timestamp("us", tz="UTC")),
                "session_id": pa.array(np.char.add("s", session.astype(str)), mask=session < 0),
                "price": pa.array(item_prices[item]),
                "quantity": pa.array(np.where(kind == 2, rng.integers(1, 4, n), 1)),
                "device": pick(devices, device),
            },
            schema=contract.EVENTS.arrow_schema(),
        )
        write_partition(table, curated, "events", day_start.date())
        written += n
    return {"events": written, "users": n_users, "items": ITEMS}


def measure_features_engine(home: Path, engine: str, spark_master: str) -> dict[str, object]:
    """One day of features on ``engine`` in this (fresh) process: the worker of the part."""
    from pipelines.config import Settings

    settings = Settings(home=home, feature_engine=engine, spark_master=spark_master)
    result: dict[str, object] = {"engine": engine}
    with PeakMemory() as memory:
        started = time.perf_counter()
        if engine == "spark":
            from pipelines.features.spark import compute_features_for_day, spark_session

            session = spark_session(settings)
            session.sparkContext.setLogLevel("ERROR")
            result["startup_s"] = round(time.perf_counter() - started, 2)
            result["spark_master"] = spark_master
            computing = time.perf_counter()
            paths = compute_features_for_day(settings, DAY, spark=session)
        else:
            from pipelines.features.offline import compute_features_for_day

            computing = time.perf_counter()
            paths = compute_features_for_day(settings, DAY)
        done = time.perf_counter()
    result["compute_s"] = round(done - computing, 2)
    result["wall_s"] = round(done - started, 2)
    result["peak_mb"] = memory.peak_mb
    # the machine is shared: how busy it was says how far the figures are from an idle one's
    result["load_avg_1m_after"] = round(os.getloadavg()[0], 1)
    result["rows_out"] = {name: _rows(path) for name, path in paths.items()}
    return result


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def run_features(args: argparse.Namespace) -> dict[str, object]:
    runs = []
    for size in args.events:
        with tempfile.TemporaryDirectory(prefix="scale-features-") as tmp:
            home = Path(tmp) / "home"
            from pipelines.config import Settings

            settings = Settings(home=home)
            started = time.perf_counter()
            shop = write_synthetic_shop(settings.curated_dir, size)
            generate_s = round(time.perf_counter() - started, 1)
            print(f"[features] {size:,} events written in {generate_s} s", flush=True)
            for engine in args.engines:
                print(f"[features] {size:,} events on {engine} ...", flush=True)
                try:
                    figures = _in_fresh_process(home, engine, args.spark_master, args.timeout)
                except RuntimeError as error:
                    figures = {"engine": engine, "error": str(error)}
                if "compute_s" in figures:
                    figures["rows_per_s"] = round(shop["events"] / max(figures["compute_s"], 1e-9))
                print(f"[features] {json.dumps(figures)}", flush=True)
                runs.append(
                    {"events": shop["events"], "shop": shop, "generate_s": generate_s, **figures}
                )
    return {
        "what": "one day of user_activity + item_popularity from a 30-day curated window",
        "day": DAY.isoformat(),
        "runs": runs,
        "note": "rows_per_s = events in the window / compute_s; wall_s adds Spark's JVM start; "
        "peak_mb is the measuring process tree's (the JVM included)",
    }


def _in_fresh_process(home: Path, engine: str, master: str, timeout: float) -> dict[str, object]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        "features",
        "--home",
        str(home),
        "--engine",
        engine,
        "--spark-master",
        master,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"did not finish within {timeout:.0f} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
    return json.loads(lines[-1])


# ---- parts: materialize, online (SQLite vs Redis) -----------------------------------------------


@contextlib.contextmanager
def online_homes(users: int, days: int) -> Iterator[dict[str, object]]:
    """The same synthetic feature rows in two state dirs: local (SQLite online store) and prod
    (Redis of its own, registry on a scratch PostgreSQL database); settings per store."""
    import uuid

    from features_store import build_home

    from pipelines.local.cluster import (
        distinct_free_ports,
        drop_databases,
        start_redis,
        stop_process,
    )
    from pipelines.orchestration.initialise import ensure_database

    with tempfile.TemporaryDirectory(prefix="scale-online-") as tmp:
        (port,) = distinct_free_ports(1)
        server = start_redis(port, Path(tmp))
        tag = uuid.uuid4().hex[:8]
        prod = {
            "profile": "prod",
            "feast_registry_database": f"pz_{tag}_feast",
            "airflow_database": f"pz_{tag}_airflow",
            "mlflow_database": f"pz_{tag}_mlflow",
            "redis_url": f"redis://127.0.0.1:{port}/0",
        }
        from pipelines.config import Settings

        scratch = Settings(home=Path(tmp) / "redis", **prod)
        try:
            ensure_database(scratch, scratch.feast_registry_database)
            yield {
                "sqlite": build_home(Path(tmp) / "sqlite", users, days),
                "redis": build_home(Path(tmp) / "redis", users, days, **prod),
            }
        finally:
            stop_process(server)
            drop_databases(scratch)


def run_materialize(args: argparse.Namespace) -> dict[str, object]:
    from features_store import START, TICK, day_end

    from pipelines.features import store as feast_store
    from pipelines.features.online import materialize_interval

    start = day_end(START + timedelta(days=1))
    results = {}
    with online_homes(args.users, days=2) as homes:
        for name, settings in homes.items():
            feast_store.clear_store_cache()
            runs = []
            for what in ("fresh", "upsert"):
                started = time.perf_counter()
                written = materialize_interval(settings, start, start + TICK, ["user_activity"])
                seconds = time.perf_counter() - started
                runs.append(
                    {
                        "write": what,
                        "rows": written["user_activity"],
                        "s": round(seconds, 2),
                        "rows_per_s": round(written["user_activity"] / seconds),
                    }
                )
            results[name] = runs
            print(f"[materialize] {name}: {json.dumps(runs)}", flush=True)
    return {
        "what": "one day of user_activity (35 features) via online.materialize_interval",
        "users": args.users,
        "stores": results,
        "load_avg_1m_after": round(os.getloadavg()[0], 1),
    }


def run_online(args: argparse.Namespace) -> dict[str, object]:
    import numpy as np
    from features_store import START, TICK, day_end, timed

    from pipelines.features import store as feast_store
    from pipelines.features.online import (
        materialize_interval,
        online_feature_values,
        online_features,
    )

    rng = np.random.default_rng(11)
    ids = [f"user_{i:07d}" for i in range(args.users)]

    def one() -> list[str]:
        return [ids[rng.integers(0, len(ids))]]

    results = {}
    with online_homes(args.users, days=1) as homes:
        for name, settings in homes.items():
            feast_store.clear_store_cache()
            materialize_interval(settings, day_end(START), day_end(START) + TICK)
            results[name] = {
                "one_user_frame": timed(
                    lambda s=settings: online_features(s, one(), "propensity_v1"), args.repeat
                ),
                "one_user_dict": timed(
                    lambda s=settings: online_feature_values(s, one(), "propensity_v1"),
                    args.repeat,
                ),
            }
            print(f"[online] {name}: {json.dumps(results[name])}", flush=True)
    return {
        "what": "one user's propensity_v1 online features, p50/p99 ms over --repeat reads",
        "users_online": args.users,
        "repeat": args.repeat,
        "stores": results,
        "load_avg_1m_after": round(os.getloadavg()[0], 1),
    }


# ---- part: celery (the cycle on the local profile vs 1 and 2 Celery workers) --------------------

CYCLE_SHOP = {"users": 300, "items": 60, "seed": 11}
CYCLE_DAGS = ("ingest", "features", "monitor")
QUIET_S = 10.0  # the scheduler loop sleeps 0.5 s: an asset-triggered run is queued well within


def _cycle_days(cycle_days: int) -> list[date]:
    """The days the DAGs run: the last ``cycle_days`` before today (what the catch-up reaches)."""
    last = datetime.now(UTC).date() - timedelta(days=1)
    return [last - timedelta(days=n) for n in range(cycle_days - 1, -1, -1)]


def _cycle_settings(days: list[date]) -> dict[str, object]:
    return {
        "dags_start": days[0].isoformat(),
        "task_retries": 2,
        "retry_delay_seconds": 1.0,
        "sensor_poke_seconds": 1.0,
        "sensor_timeout_seconds": 60.0,
    }


def _curate_history(settings: object, history_days: int, days: list[date]) -> None:
    from pipelines.data.generator import ShopSpec
    from pipelines.models.testing import curated_shop

    start = days[0] - timedelta(days=history_days)
    spec = ShopSpec(**CYCLE_SHOP, days=history_days + len(days), start=start)
    curated_shop(settings, spec, upto=days[0] - timedelta(days=1))


def measure_local_cycle(home: Path, history_days: int, cycle_days: int) -> dict[str, object]:
    """The cycle on the local profile in this (fresh) process: the worker of the part."""
    from pipelines.config import Settings
    from pipelines.orchestration.airflow_compat import TaskBodyClock
    from pipelines.orchestration.airflow_env import configure_airflow
    from pipelines.orchestration.runner import run_dag

    days = _cycle_days(cycle_days)
    settings = Settings(home=home, **_cycle_settings(days))
    _curate_history(settings, history_days, days)
    configure_airflow(settings)
    records = []
    with TaskBodyClock() as clock:
        started = time.perf_counter()
        for day in days:
            records += run_dag(settings, "ingest", day, follow=True)
        wall = time.perf_counter() - started
    tasks = sum(clock.calls.values())
    return {
        "setup": "local",
        "executor": settings.executor,
        "wall_s": round(wall, 1),
        "dag_runs": _count(r.dag_id for r in records),
        "states": _count(r.state for r in records),
        "tasks": tasks,
        "per_task_s": round(wall / tasks, 2) if tasks else None,
        "task_body_s": round(sum(clock.seconds.values()), 1),
    }


def _count(values: object) -> dict[str, int]:
    from collections import Counter

    return dict(sorted(Counter(values).items()))


def measure_cluster_cycle(
    root: Path, workers: int, history_days: int, cycle_days: int, timeout: float
) -> dict[str, object]:
    """The cycle on a scratch prod cluster with ``workers`` Celery workers."""
    from pipelines.local.cluster import scratch_cluster

    days = _cycle_days(cycle_days)
    with scratch_cluster(root, workers=workers, **_cycle_settings(days)) as cluster:
        started = time.perf_counter()
        done = cluster.cli("init")
        if done.returncode != 0:
            raise RuntimeError(f"init failed: {(done.stdout + done.stderr)[-600:]}")
        init_s = time.perf_counter() - started
        _curate_history(cluster.settings, history_days, days)
        api = cluster.start(timeout=300)

        def finished(runs: list[dict]) -> bool:
            return bool(runs) and all(r["state"] in ("success", "failed") for r in runs)

        def settled(dag_id: str, after: list[dict] | None) -> list[dict] | None:
            runs = api.runs(dag_id)
            if after is None:  # scheduled: one run per day
                return runs if finished(runs) and len(runs) >= len(days) else None
            # asset-triggered: the scheduler folds events queued while a run is going into the
            # next run, so there are not one run per day: settled when every run has finished
            # and the scheduler had QUIET_S since the upstream DAG's last run to queue another
            last_upstream = datetime.fromisoformat(max(r["end_date"] for r in after))
            quiet = (datetime.now(UTC) - last_upstream).total_seconds() >= QUIET_S
            return runs if finished(runs) and quiet and len(api.runs(dag_id)) == len(runs) else None

        started = time.perf_counter()
        for dag_id in CYCLE_DAGS:
            api.unpause(dag_id)
        runs: dict[str, list[dict]] = {}
        upstream = None
        for dag_id in CYCLE_DAGS:
            runs[dag_id] = upstream = api.wait_for(
                lambda d=dag_id, u=upstream: settled(d, u), f"{dag_id} runs", timeout
            )
        wall = time.perf_counter() - started
        instances = [
            ti
            for dag_id, dag_runs in runs.items()
            for run in dag_runs
            for ti in api.task_instances(dag_id, run["dag_run_id"])
        ]
        ran = [ti for ti in instances if ti["state"] in ("success", "failed")]
        return {
            "setup": f"celery x{workers}",
            "executor": cluster.settings.executor,
            "workers": workers,
            "worker_concurrency": cluster.settings.celery_worker_concurrency,
            "wall_s": round(wall, 1),
            "dag_runs": {d: len(r) for d, r in runs.items()},
            "states": _count(r["state"] for rs in runs.values() for r in rs),
            "tasks": len(ran),
            "per_task_s": round(wall / len(ran), 2) if ran else None,
            "task_instance_s": round(sum(ti.get("duration") or 0.0 for ti in ran), 1),
            "init_s": round(init_s, 1),
            "cluster_start_s": cluster.seconds.get("cluster start"),
        }


def run_celery(args: argparse.Namespace) -> dict[str, object]:
    setups = []
    with tempfile.TemporaryDirectory(prefix="scale-celery-") as tmp:
        command = [
            sys.executable,
            __file__,
            "--worker",
            "celery-local",
            "--home",
            str(Path(tmp) / "local"),
            "--history-days",
            str(args.history_days),
            "--cycle-days",
            str(args.cycle_days),
        ]
        print(f"[celery] local profile, {args.cycle_days} days ...", flush=True)
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"local cycle: exit {done.returncode}: {done.stderr[-600:]}")
        setups.append(json.loads(lines[-1]))
        print(f"[celery] {lines[-1]}", flush=True)
        for workers in args.workers:
            print(f"[celery] cluster with {workers} worker(s) ...", flush=True)
            figures = measure_cluster_cycle(
                Path(tmp) / f"celery{workers}",
                workers,
                args.history_days,
                args.cycle_days,
                args.timeout,
            )
            print(f"[celery] {json.dumps(figures)}", flush=True)
            setups.append(figures)
    return {
        "what": f"{args.cycle_days} days of ingest -> features -> monitor after "
        f"{args.history_days} curated days ({CYCLE_SHOP['users']} users, "
        f"{CYCLE_SHOP['items']} items): local profile vs Celery workers",
        "cycle_days": args.cycle_days,
        "history_days": args.history_days,
        "shop": CYCLE_SHOP,
        "setups": setups,
        "load_avg_1m_after": round(os.getloadavg()[0], 1),
        "note": "wall_s from the first run to the last settled (prod: the scheduler's catch-up "
        "after unpausing; cluster start and init apart); per_task_s = wall_s / tasks run",
    }


# ---- the parts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    help: str
    run: Callable[[argparse.Namespace], dict[str, object]]


PARTS: dict[str, Part] = {
    "features": Part("feature computation, Spark vs the local engine", run_features),
    "materialize": Part("materialization rows/s, Redis vs SQLite", run_materialize),
    "online": Part("online read p50/p99 ms, Redis vs SQLite", run_online),
    "celery": Part(
        "the cycle's wall and per-task overhead, local vs 1/2 Celery workers", run_celery
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="parts: " + "; ".join(f"{name}: {part.help}" for name, part in PARTS.items()),
    )
    parser.add_argument(
        "--part", action="append", choices=sorted(PARTS), help="what to measure (repeatable)"
    )
    parser.add_argument(
        "--events", type=int, nargs="+", default=[1_000_000, 10_000_000], help="features: sizes"
    )
    parser.add_argument(
        "--engines", nargs="+", default=["local", "spark"], choices=["local", "spark"]
    )
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--users", type=int, default=50_000, help="materialize/online: entities")
    parser.add_argument("--repeat", type=int, default=1_000, help="online: reads per store")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds one measurement may take"
    )
    parser.add_argument("--cycle-days", type=int, default=3, help="celery: DAG days")
    parser.add_argument("--history-days", type=int, default=14, help="celery: curated days")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="celery: worker counts"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "features":
        print(json.dumps(measure_features_engine(args.home, args.engine, args.spark_master)))
        return
    if args.worker == "celery-local":
        print(json.dumps(measure_local_cycle(args.home, args.history_days, args.cycle_days)))
        return
    for name in args.part or sorted(PARTS):
        result = PARTS[name].run(args)
        record(f"scale_{name}", {**result, "cores": os.cpu_count()})


if __name__ == "__main__":
    main()
