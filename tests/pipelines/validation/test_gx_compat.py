"""What ``gx_compat`` relies on in the installed Great Expectations, checked so an upgrade that
changes it fails here, loudly, instead of slowing or breaking Data Docs silently."""

from __future__ import annotations

import inspect
import tomllib
from datetime import date
from importlib.metadata import version
from pathlib import Path

import jinja2
import pandas as pd
import pytest
from packaging.specifiers import SpecifierSet

from pipelines.validation.gx_compat import (
    GX_RANGE,
    expectation_configurations_cached,
    reuse_compiled_templates,
)

ROOT = Path(__file__).resolve().parents[3]


def test_the_installed_gx_is_in_the_range_written_for_and_pyproject_pins_it() -> None:
    assert version("great-expectations") in SpecifierSet(",".join(GX_RANGE))
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"great-expectations{','.join(GX_RANGE)}" in dependencies


def test_gx_builds_its_page_environments_by_the_module_name_the_cache_wraps() -> None:
    from great_expectations.render.view import view

    # the views construct their Jinja environments through this module's ``Environment``
    assert "Environment(" in inspect.getsource(view)
    reuse_compiled_templates()
    reuse_compiled_templates()  # once per process: a second call does not wrap the wrapper
    environment = view.Environment(loader=jinja2.DictLoader({"page": "<p>{{ rows }}</p>"}))
    assert isinstance(environment.bytecode_cache, jinja2.BytecodeCache)
    first = environment.get_template("page").render(rows=3)
    again = view.Environment(loader=jinja2.DictLoader({"page": "<p>{{ rows }}</p>"}))
    assert again.bytecode_cache is environment.bytecode_cache, "one cache for every page"
    assert again.get_template("page").render(rows=3) == first == "<p>3</p>"


def test_gx_rebuilds_an_expectations_configuration_from_its_fields_on_every_read() -> None:
    """What the cache relies on: ``configuration`` is a property computed from the fields."""
    from great_expectations.expectations import ExpectColumnValuesToBeBetween
    from great_expectations.expectations.expectation import Expectation

    assert isinstance(inspect.getattr_static(Expectation, "configuration"), property)
    expectation = ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=10)
    first, again = expectation.configuration, expectation.configuration
    assert first == again and first is not again, "built afresh on each read (outside the cache)"
    expectation.max_value = 20
    assert expectation.configuration.kwargs["max_value"] == 20


def test_inside_the_cache_a_configuration_is_built_once_until_a_field_changes() -> None:
    from great_expectations.expectations import ExpectColumnValuesToBeBetween

    expectation = ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=10)
    with expectation_configurations_cached():
        first = expectation.configuration
        assert expectation.configuration is first
        expectation.max_value = 20  # a reassigned field: built again, with the new value
        changed = expectation.configuration
        assert changed is not first and changed.kwargs["max_value"] == 20
        other = ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=10)
        assert other.configuration is not first and other.configuration == first
    assert expectation.configuration is not changed, "the cache ends with the block"


def test_inside_the_cache_a_configuration_builds_its_expectation_once_until_it_changes() -> None:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    configuration = ExpectationConfiguration(
        type="expect_column_values_to_be_between", kwargs={"column": "price", "max_value": 10}
    )
    assert configuration.to_domain_obj() is not configuration.to_domain_obj()
    with expectation_configurations_cached():
        first = configuration.to_domain_obj()
        assert configuration.to_domain_obj() is first
        configuration.kwargs.update({"max_value": 20})  # changed in place, as GX adds batch_id
        assert configuration.to_domain_obj().max_value == 20
    assert configuration.to_domain_obj() is not first


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.config import Settings
    from pipelines.data.generator import ShopSpec, generate

    home = tmp_path_factory.mktemp("shop")
    generate(ShopSpec(users=60, items=20, days=2, seed=3, start=DAY), Settings(home=home))
    return home


DAY = date(2026, 3, 2)


@pytest.mark.parametrize("table", ["events", "users", "items"])
@pytest.mark.parametrize("spoiled", [False, True])
@pytest.mark.parametrize("result_format", ["BOOLEAN_ONLY", "SUMMARY"])
def test_a_suite_run_gives_the_same_result_with_the_cache(
    table: str, spoiled: bool, result_format: str, shop: Path
) -> None:
    """Every expectation of the platform's suites, on a landed batch, clean and with bad values
    (so the detailed results carry counts and samples): the results are GX's without the cache."""
    import great_expectations as gx

    from pipelines.data import contract
    from pipelines.validation.batch import curated_history, landed_files, prepare, read_batch
    from pipelines.validation.suites import load_suite

    suite_file = load_suite(table)
    batch = read_batch(landed_files(shop / "landing", table, DAY), table, DAY)
    history = curated_history(shop / "curated", shop / "landing", table, DAY, 7)
    prepared = prepare(batch, history, suite_file.meta, suite_file.derived_columns)
    frame = prepared.frame
    if spoiled:  # an empty id, a duplicated row
        key = contract.table(table).key
        frame = pd.concat([frame, frame.head(1)], ignore_index=True)
        frame.loc[0, key] = " "
    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name=table, expectations=suite_file.expectations)
    batches = (
        context.data_sources.add_pandas("shop")
        .add_dataframe_asset(table)
        .add_batch_definition_whole_dataframe("whole batch")
    )

    def run() -> dict:
        result = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite,
            result_format={"result_format": result_format, "partial_unexpected_count": 5},
            expectation_parameters=prepared.parameters,
        )
        return {k: v for k, v in result.to_json_dict().items() if k != "meta"}

    plain = run()
    with expectation_configurations_cached():
        cached = run()
    assert cached == plain
    assert plain["success"] is not spoiled
