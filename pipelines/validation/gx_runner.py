"""Running a suite with Great Expectations 1.x: the only module of the platform that imports GX.

A file context in the state dir (``<home>/gx/``) holds the suites, one pandas data source, the
checkpoints of each table and the Data Docs site. Validation takes a fast pass first
(``BOOLEAN_ONLY``: no per-row details); only a batch that fails is validated again with ``SUMMARY``
results, so clean batches — nearly all of them — cost less than one full GX run, and failing ones
get counts and samples of bad values.

A run goes through public GX APIs without a checkpoint: the suite and batch definition are
registered once a process (:func:`_registered`), each batch is validated with ``Batch.validate``
and its result stored in the project's validation results store, as ``Checkpoint.run`` would, but
without re-reading and comparing every stored object on each run (GX's freshness checks: a third
of a small batch's validation). The checkpoints stay registered for anyone who runs them by hand.

A history run (:class:`pipelines.validation.session.ValidationSession`) hands in two more things:
:class:`DeferredDocs`, so the pages of clean batches are rendered together once at the end (the
page of a failing batch is rendered at once: its alert points to it), and
:class:`EmptyVerdicts`, so an empty batch whose schema and table-level parameters GX has already
judged is not judged again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.validation.gx_compat import (
    expectation_configurations_cached,
    reuse_compiled_templates,
)
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
    note: str | None = None  # how the verdict was reached, when not by a GX run of its own


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.validator"):
        logging.getLogger(name).setLevel(logging.ERROR)


def gx_context(gx_root: Path) -> Any:
    """The file context of a state dir (GX keeps it in ``<gx_root>/gx``), made once a process."""
    root = gx_root.resolve()
    if root in _CONTEXTS:
        return _CONTEXTS[root]
    _quiet_gx()
    import great_expectations as gx

    reuse_compiled_templates()
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


@dataclass
class _Registered:
    """What a process validates a suite's batches with, registered once in the GX project."""

    suite: Any  # the ExpectationSuite as stored
    batch_definition: Any
    definition_id: str | None
    checkpoint_ids: dict[str, str | None]


_REGISTERED: dict[tuple[Path, str, str], _Registered] = {}


def _suite_key(gx_root: Path, suite_file: SuiteFile) -> tuple[Path, str, str]:
    return (gx_root.resolve(), suite_file.name, json.dumps(suite_file.data, sort_keys=True))


def _registered(gx_root: Path, suite_file: SuiteFile) -> _Registered:
    """The suite's objects; registered once per process (and again if the file changes)."""
    key = _suite_key(gx_root, suite_file)
    if key not in _REGISTERED:
        context = gx_context(gx_root)
        # the scheduler validates the three tables in parallel processes, each of which writes
        # the project's YAML and JSON files on its first run: one at a time, or they interleave
        with _project_lock(gx_root):
            checkpoints = _checkpoints(context, suite_file)
        definition = checkpoints[FAST].validation_definitions[0]
        _REGISTERED[key] = _Registered(
            suite=definition.suite,
            batch_definition=definition.data,
            definition_id=definition.id,
            checkpoint_ids={mode: checkpoint.id for mode, checkpoint in checkpoints.items()},
        )
    return _REGISTERED[key]


class _Identifiers(list):  # type: ignore[type-arg]
    """A list of result identifiers whose membership test is a set lookup: GX's site builder
    asks, for every stored result, whether it is one of those to render."""

    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self._members = set(items)

    def __contains__(self, item: object) -> bool:
        return item in self._members


@dataclass
class DeferredDocs:
    """Data Docs pages of clean batches, rendered together by :meth:`build` (with the index).

    Rendering one page costs about as much as validating a small batch, most of it the site
    builder's own setup (reading the site config, listing every stored result, copying the static
    assets); rendering a history's pages in one go pays that once. Each page's path is known
    before it is rendered, so lineage can name it; it exists once :meth:`build` has run.
    """

    gx_root: Path
    pending: list[Any] = field(default_factory=list)

    def add(self, identifier: Any) -> None:
        self.pending.append(identifier)

    def build(self) -> None:
        if not self.pending:
            return
        identifiers, self.pending = self.pending, []
        gx_context(self.gx_root).build_data_docs(
            resource_identifiers=_Identifiers(identifiers), build_index=True
        )


@dataclass
class _Verdict:
    result: Any  # the ExpectationSuiteValidationResult of the run that judged the batch
    run_id: str
    data_docs_page: str | None


@dataclass
class EmptyVerdicts:
    """GX's verdicts on empty batches, by what such a verdict can depend on.

    A batch without rows gives every column check nothing to judge: the result depends only on
    the suite, the columns and their dtypes, the parameters' types and the values of the
    parameters table-level checks read (a row count band). Within one history the users and
    items tables deliver empty batches on most days; the first of each kind is judged by GX, the
    others reuse its verdict -- and the run id and Data Docs page of that run, which show the
    same checks on the same (empty) data. A verdict with a failure is never reused: that batch
    goes through GX for its own page.
    """

    verdicts: dict[tuple[Any, ...], _Verdict] = field(default_factory=dict)

    @staticmethod
    def key(suite_file: SuiteFile, frame: pd.DataFrame, parameters: dict[str, Any]) -> tuple:
        table_level = _table_level_parameters(suite_file)
        return (
            json.dumps(suite_file.data, sort_keys=True),
            tuple((str(name), str(dtype)) for name, dtype in frame.dtypes.items()),
            tuple(sorted((k, type(v).__name__) for k, v in parameters.items())),
            tuple(sorted((k, repr(v)) for k, v in parameters.items() if k in table_level)),
        )


def _table_level_parameters(suite_file: SuiteFile) -> set[str]:
    """Names of the suite parameters that expectations on the whole table read."""
    names: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                names.add(str(value["$PARAMETER"]))
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for expectation in suite_file.expectations:
        kwargs = expectation.get("kwargs", {})
        if "column" not in kwargs:
            collect(kwargs)
    return names


def run_suite(
    gx_root: Path,
    suite_file: SuiteFile,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    run_name: str,
    skipped: dict[str, str],
    *,
    docs: DeferredDocs | None = None,
    empty_verdicts: EmptyVerdicts | None = None,
) -> GxRun:
    """Validate ``frame``: a boolean pass, and a detailed pass only when something failed.

    ``docs``: render the page of a clean batch later (with the others); a failing batch's page is
    rendered now. ``empty_verdicts``: an empty batch already judged alike is not judged again.
    """
    missing = [c for c in _columns_used(suite_file) if c not in frame.columns]
    key = None
    if empty_verdicts is not None and len(frame) == 0:
        key = EmptyVerdicts.key(suite_file, frame, parameters)
        known = empty_verdicts.verdicts.get(key)
        if known is not None:
            results = _check_results(known.result, suite_file, skipped, missing)
            if not any(r.failed for r in results):
                note = (
                    f"no rows: the verdict of GX run {known.run_id} on an empty batch with the "
                    "same columns, dtypes and table-level parameters"
                )
                return GxRun(results, known.run_id, known.data_docs_page, note)
    registered = _registered(gx_root, suite_file)
    run_id = _run_identifier(run_name)
    result = _validate(registered, frame, parameters, run_id, FAST)
    results = _check_results(result, suite_file, skipped, missing)
    failed = any(r.failed for r in results)
    if failed:
        run_id = _run_identifier(run_name)
        result = _validate(registered, frame, parameters, run_id, DETAILED)
        results = _check_results(result, suite_file, skipped, missing)
        failed = any(r.failed for r in results)
    identifier = _store(gx_root, suite_file, result, run_id)
    if docs is not None and not failed:
        docs.add(identifier)
        page = _docs_page(gx_root, identifier, only_if_exists=False)
    else:
        page = _render_docs(gx_root, identifier, with_index=failed)
    run = GxRun(
        results=results,
        run_id=f"{run_name}@{run_id.run_time.isoformat()}",
        data_docs_page=page,
    )
    if key is not None and not failed:
        empty_verdicts.verdicts[key] = _Verdict(result, run.run_id, page)  # type: ignore[union-attr]
    return run


def _run_identifier(run_name: str) -> Any:
    from datetime import UTC, datetime

    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))


def _validate(
    registered: _Registered,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    run_id: Any,
    mode: str,
) -> Any:
    """One pass of the suite over ``frame``, with the meta ``ValidationDefinition.run`` adds."""
    from great_expectations.constants import DATAFRAME_REPLACEMENT_STR

    batch = registered.batch_definition.get_batch(batch_parameters={"dataframe": frame})
    with expectation_configurations_cached():
        result = batch.validate(
            registered.suite,
            result_format={
                "result_format": "BOOLEAN_ONLY" if mode == FAST else "SUMMARY",
                "partial_unexpected_count": SAMPLE_SIZE,
            },
            expectation_parameters=parameters,
        )
    result.meta.update(
        {
            "validation_id": registered.definition_id,
            "checkpoint_id": registered.checkpoint_ids.get(mode),
            "run_id": run_id,
            "validation_time": run_id.run_time,
            "batch_parameters": {"dataframe": DATAFRAME_REPLACEMENT_STR},
        }
    )
    return result


def _store(gx_root: Path, suite_file: SuiteFile, result: Any, run_id: Any) -> Any:
    """Keep the result in the project's validation results store (Data Docs render from it)."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite_identifier = ExpectationSuiteIdentifier(name=suite_file.name)
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=suite_identifier,
        run_id=run_id,
        batch_identifier=result.batch_id,
    )
    gx_context(gx_root).validation_results_store.store_validation_results(
        suite_validation_result=result,
        suite_validation_result_identifier=identifier,
        expectation_suite_identifier=suite_identifier,
    )
    return identifier


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


def _docs_page(gx_root: Path, identifier: Any = None, *, only_if_exists: bool = True) -> str | None:
    """The local path of ``identifier``'s Data Docs page (None: the site's index)."""
    urls = gx_context(gx_root).get_docs_sites_urls(
        resource_identifier=identifier, only_if_exists=only_if_exists
    )
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
    validation: Any,
    suite_file: SuiteFile,
    skipped: dict[str, str],
    missing_columns: list[str],
) -> list[CheckResult]:
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
