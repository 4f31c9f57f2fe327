"""Where the platform leans on Airflow internals, and only here (tested for the pinned range).

* :func:`reuse_bundle_syncs` — ``dag.test()`` re-parses and re-syncs the whole DAGs folder on
  every run; the parsed bag is reused per folder (``airflow.dag_processing.dagbag``'s
  ``BundleDagBag`` and ``sync_bag_to_db``).
* :class:`TaskBodyClock` — time inside task bodies, around the task runner's ``_execute_task``,
  so a run's remaining wall time can be told as Airflow's own.

Both are checked by ``tests/pipelines/orchestration/test_airflow_compat.py`` against the installed
Airflow; the pin below is the range they were written for (pyproject pins the same).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

AIRFLOW_RANGE = (">=3.3", "<3.4")


_bundle_sync_reused = False


def reuse_bundle_syncs(folder_signature: Callable[[Path], object]) -> None:
    """Let ``dag.test()`` parse and sync the DAGs folder once per process, not once per run.

    Airflow's ``dag.test()`` re-parses the whole bundle and writes every DAG of it to the
    metadata DB on each call, so that DAGs it triggers exist there (apache/airflow#64884): about
    0.1 s of every run (measured: 10 features runs 8.9 s -> 7.8 s). Here the parsed bag is kept
    per folder until a file in it changes (``folder_signature``, the one the parse cache uses)
    and a bag already synced is not synced again. Installed once per process; if Airflow's
    module no longer has these names, runs simply go the slow way.
    """
    global _bundle_sync_reused
    if _bundle_sync_reused:
        return
    from airflow.dag_processing import dagbag as module

    make_bag = getattr(module, "BundleDagBag", None)
    sync = getattr(module, "sync_bag_to_db", None)
    if make_bag is None or sync is None:
        _bundle_sync_reused = True
        return
    bags: dict[tuple[str, str | None], tuple[object, Any]] = {}
    # by id, holding each bag so that its id cannot be reused by a later one
    synced: dict[int, Any] = {}

    def reused_bag(*args: Any, **kwargs: Any) -> Any:
        folder = kwargs.get("dag_folder")
        if args or folder is None:
            return make_bag(*args, **kwargs)
        key = (str(folder), kwargs.get("bundle_name"))
        signature = folder_signature(Path(folder))
        cached = bags.get(key)
        if cached is None or cached[0] != signature:
            cached = bags[key] = (signature, make_bag(**kwargs))
        return cached[1]

    def sync_once(bag: Any, *args: Any, **kwargs: Any) -> Any:
        if id(bag) in synced:
            return None
        result = sync(bag, *args, **kwargs)
        synced[id(bag)] = bag
        return result

    module.BundleDagBag = reused_bag
    module.sync_bag_to_db = sync_once
    _bundle_sync_reused = True


class TaskBodyClock:
    """Seconds spent inside task bodies (the operator's ``execute``), per (dag_id, run_id).

    Measured around the task runner's ``_execute_task`` -- what the task itself does, here one
    call into ``pipelines.*`` -- so what remains of a run's wall time is Airflow's: creating the
    run, the in-process execution API calls that start, heartbeat and finish each task instance,
    XComs and asset events. (Airflow's ``TaskInstance.duration`` includes most of that.)
    """

    def __init__(self) -> None:
        self.seconds: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[tuple[str, str]] = Counter()  # task bodies run, per run
        self._original: Any = None

    def __enter__(self) -> TaskBodyClock:
        from airflow.sdk.execution_time import task_runner

        original = self._original = task_runner._execute_task
        seconds, calls = self.seconds, self.calls

        def timed(context: Any, ti: Any, log: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(context=context, ti=ti, log=log)
            finally:
                seconds[(ti.dag_id, ti.run_id)] += time.perf_counter() - began
                calls[(ti.dag_id, ti.run_id)] += 1

        task_runner._execute_task = timed
        return self

    def __exit__(self, *exc: object) -> None:
        from airflow.sdk.execution_time import task_runner

        task_runner._execute_task = self._original
