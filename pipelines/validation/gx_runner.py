"""Running a suite with Great Expectations 1.x: the only module of the platform that imports GX.

A file context in the state dir (``<home>/gx/``) holds the suites, one pandas data source, the
checkpoints of each table and the Data Docs site. Validation takes a fast pass first
(``BOOLEAN_ONLY``: no per-row details); only a batch that fails is validated again with ``SUMMARY``
results, so clean batches — nearly all of them — cost less than one full GX run, and failing ones
get counts and samples of bad values.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.validation.outcome import SAMPLE_SIZE, CheckResult
from pipelines.validation.suites import SuiteFile

SAMPLE_TEXT_CHARS = 80  # longer sampled values are cut in reasons and alerts

if TYPE_CHECKING:
    import pandas as pd

DATASOURCE = "personalize"
FAST, DETAILED = "boolean", "summary"
_CONTEXTS: dict[Path, Any] = {}


@dataclass
class GxRun:
    results: list[CheckResult]
    run_id: str
    data_docs_page: str | None


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.validator"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _reuse_compiled_templates() -> None:
    """GX builds a fresh Jinja environment for every Data Docs view and recompiles every
    template each time (~0.5 s a page, most of a small batch's validation). Handing those
    environments one shared bytecode cache keeps the pages identical and skips the recompiling."""
    from great_expectations.render.view import view

    if getattr(view.Environment, "_personalize_cached", False):
        return
    import jinja2

    class MemoryBytecodeCache(jinja2.BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            self.store[bucket.key] = bucket.bytecode_to_string()

    original = view.Environment
    cache = MemoryBytecodeCache()

    def environment(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("bytecode_cache", cache)
        return original(*args, **kwargs)

    environment._personalize_cached = True  # type: ignore[attr-defined]
    view.Environment = environment


def gx_context(gx_root: Path) -> Any:
    """The file context of a state dir (GX keeps it in ``<gx_root>/gx``), made once a process."""
    root = gx_root.resolve()
    if root in _CONTEXTS:
        return _CONTEXTS[root]
    _quiet_gx()
    import great_expectations as gx

    _reuse_compiled_templates()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    with _project_lock(root):  # the first process creates the project; others must not meddle
        context = gx.get_context(mode="file", project_root_dir=str(root))
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    _CONTEXTS[root] = context
    return context


@contextmanager
def _project_lock(gx_root: Path) -> Iterator[None]:
    """Serialise writes to the GX project of a state dir across processes on this machine."""
    gx_root.mkdir(parents=True, exist_ok=True)
    with (gx_root / ".gx-project.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _checkpoints(context: Any, suite_file: SuiteFile) -> dict[str, Any]:
    """Register (idempotently) the suite, asset, validation definition and both checkpoints."""
    import great_expectations as gx

    name = suite_file.name
    suite = context.suites.add_or_update(
        gx.ExpectationSuite(
            name=name,
            expectations=suite_file.expectations,
            meta=suite_file.meta,
        )
    )
    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, gx.exceptions.DataContextError):
        source = context.data_sources.add_pandas(DATASOURCE)
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(
        name
    )
    batch = next(iter(asset.batch_definitions), None) or asset.add_batch_definition_whole_dataframe(
        "whole batch"
    )
    definition = _validation_definition(context, name, batch, suite)
    return {
        mode: context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{name}-{mode}",
                validation_definitions=[definition],
                actions=[],  # Data Docs are rendered by _render_docs, without the index
                result_format={
                    "result_format": "BOOLEAN_ONLY" if mode == FAST else "SUMMARY",
                    "partial_unexpected_count": SAMPLE_SIZE,
                },
            )
        )
        for mode in (FAST, DETAILED)
    }


def _validation_definition(context: Any, name: str, batch: Any, suite: Any) -> Any:
    """The stored definition when it already ties this batch to this suite, else a new one.

    GX 1.x's ``validation_definitions.add_or_update`` of a stored definition leaves the file
    context's data source without its context, and every later run in the process fails with
    ``MissingDataContextError`` -- so a process that finds the definition on disk must not
    re-save it.
    """
    import great_expectations as gx

    try:
        stored = context.validation_definitions.get(name)
    except (KeyError, ValueError, gx.exceptions.DataContextError):
        stored = None
    if stored is not None and stored.suite.id == suite.id and stored.data.id == batch.id:
        return stored
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )


_PREPARED: dict[tuple[Path, str, str], dict[str, Any]] = {}


def checkpoint_for(gx_root: Path, suite_file: SuiteFile, mode: str) -> Any:
    """The checkpoint of a suite; registered once per process (and again if the file changes)."""
    key = (gx_root.resolve(), suite_file.name, json.dumps(suite_file.data, sort_keys=True))
    context = gx_context(gx_root)
    if key not in _PREPARED:
        # the scheduler validates the three tables in parallel processes, each of which writes
        # the project's YAML and JSON files on its first run: one at a time, or they interleave
        with _project_lock(gx_root):
            _PREPARED[key] = _checkpoints(context, suite_file)
    # fetched anew each run: GX decorates the in-memory suite while rendering Data Docs, and a
    # decorated suite no longer counts as "fresh" for the next run
    return context.checkpoints.get(_PREPARED[key][mode].name)


def run_suite(
    gx_root: Path,
    suite_file: SuiteFile,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    run_name: str,
    skipped: dict[str, str],
) -> GxRun:
    """Validate ``frame``: a boolean pass, and a detailed pass only when something failed."""
    from great_expectations.core.run_identifier import RunIdentifier

    missing = [c for c in _columns_used(suite_file) if c not in frame.columns]
    run = _run(gx_root, suite_file, frame, parameters, run_name, FAST)
    results = _check_results(run, suite_file, skipped, missing)
    if any(r.failed for r in results):
        run = _run(gx_root, suite_file, frame, parameters, run_name, DETAILED)
        results = _check_results(run, suite_file, skipped, missing)
    run_id = run.run_id if isinstance(run.run_id, RunIdentifier) else None
    identifier = next(iter(run.run_results))
    page = _render_docs(gx_root, identifier, with_index=any(r.failed for r in results))
    return GxRun(
        results=results,
        run_id=f"{run_name}@{run_id.run_time.isoformat()}" if run_id else run_name,
        data_docs_page=page,
    )


def _run(
    gx_root: Path,
    suite_file: SuiteFile,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    run_name: str,
    mode: str,
) -> Any:
    from great_expectations.core.run_identifier import RunIdentifier

    checkpoint = checkpoint_for(gx_root, suite_file, mode)
    return checkpoint.run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        run_id=RunIdentifier(run_name=run_name),
    )


def _render_docs(gx_root: Path, identifier: Any, *, with_index: bool) -> str | None:
    """Render the run's own Data Docs page; the site's index only when the batch failed.

    GX's checkpoint action rebuilds the index on every run, and the index reads back every
    stored validation result: a cost that grows with history (0.3 s a table after six weeks,
    three tables a day). The index is rebuilt when someone needs it: on a failed batch (the
    on-call opens it) and by :func:`build_data_docs_index`.
    """
    gx_context(gx_root).build_data_docs(resource_identifiers=[identifier], build_index=with_index)
    return _docs_page(gx_root, identifier)


def build_data_docs_index(gx_root: Path) -> str | None:
    """Rebuild the Data Docs index over every stored validation; its path (None: no runs yet)."""
    context = gx_context(gx_root)
    stored = context.validation_results_store.list_keys()
    if not stored:
        return None
    latest = max(stored, key=lambda key: key.run_id.run_time)
    context.build_data_docs(resource_identifiers=[latest], build_index=True)
    return _docs_page(gx_root)


def _docs_page(gx_root: Path, identifier: Any = None) -> str | None:
    """The local path of ``identifier``'s Data Docs page (None: the site's index)."""
    urls = gx_context(gx_root).get_docs_sites_urls(resource_identifier=identifier)
    for site in urls:
        url = site.get("site_url")
        if url:
            return url.removeprefix("file://")
    return None


def _columns_used(suite_file: SuiteFile) -> set[str]:
    return {
        e["kwargs"]["column"]
        for e in suite_file.expectations
        if "column" in e.get("kwargs", {}) and e["type"] != "expect_column_to_exist"
    }


def _check_results(
    checkpoint_result: Any,
    suite_file: SuiteFile,
    skipped: dict[str, str],
    missing_columns: list[str],
) -> list[CheckResult]:
    validation = next(iter(checkpoint_result.run_results.values()))
    by_position = list(validation.results)
    out = []
    for expectation, result in zip(
        suite_file.expectations, _align(suite_file, by_position), strict=True
    ):
        meta = expectation.get("meta", {})
        column = expectation.get("kwargs", {}).get("column")
        derived = meta.get("derived_column")
        reason = None
        if column in missing_columns and expectation["type"] != "expect_column_to_exist":
            reason = f"column {column} is missing (see the schema check)"
        elif derived and derived in skipped:
            reason = skipped[derived]
        payload = result.result or {}
        out.append(
            CheckResult(
                expectation=expectation["type"],
                check=meta["check"],
                rule=meta["rule"],
                column=meta.get("column"),
                success=bool(result.success),
                skipped=reason,
                observed=_plain(payload.get("observed_value")),
                unexpected_count=payload.get("unexpected_count"),
                unexpected_percent=payload.get("unexpected_percent"),
                sample=[_plain(v) for v in (payload.get("partial_unexpected_list") or [])][
                    :SAMPLE_SIZE
                ],
            )
        )
    if "volume" in skipped:
        # without history the band cannot be judged; the floor still is, and can still fail
        out = [
            (
                _with_note(r, skipped["volume"])
                if r.failed
                else replace(r, skipped=skipped["volume"])
            )
            if r.check == "volume"
            else r
            for r in out
        ]
    return _skip_checks_of_mistyped_columns(out)


def _skip_checks_of_mistyped_columns(results: list[CheckResult]) -> list[CheckResult]:
    """A column of the wrong type fails its type check; its value checks then say nothing new."""
    mistyped = {
        r.column for r in results if r.expectation == "expect_column_type_to_be" and r.failed
    }
    return [
        replace(r, skipped=f"column {r.column} has the wrong type (see the schema check)")
        if r.column in mistyped and r.check != "schema" and r.failed
        else r
        for r in results
    ]


def _with_note(result: CheckResult, note: str) -> CheckResult:
    return replace(result, rule=f"{result.rule} ({note})")


def _align(suite_file: SuiteFile, results: list[Any]) -> list[Any]:
    """GX returns results in its own order: match them back to the suite by type and meta."""
    by_key = {_key(r.expectation_config.type, r.expectation_config.meta or {}): r for r in results}
    ordered = []
    for expectation in suite_file.expectations:
        key = _key(expectation["type"], expectation.get("meta", {}))
        if key not in by_key:
            raise RuntimeError(f"GX returned no result for {key} of {suite_file.path}")
        ordered.append(by_key[key])
    return ordered


def _key(kind: str, meta: dict[str, Any]) -> tuple[str, ...]:
    return (kind, str(meta.get("column")), str(meta.get("rule")), str(meta.get("derived_column")))


def _plain(value: Any) -> Any:
    """JSON-friendly values for reason.json (timestamps as ISO strings, numpy as Python)."""
    if isinstance(value, str) and len(value) > SAMPLE_TEXT_CHARS:
        # a 2,000,000-character id belongs in the reason as a hint, not in full
        return f"{value[:SAMPLE_TEXT_CHARS]}… ({len(value):,} characters)"
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and value != value:  # NaN
            return None
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)
