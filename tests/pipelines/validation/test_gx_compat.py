"""What ``gx_compat`` relies on in the installed Great Expectations, checked so an upgrade that
changes it fails here, loudly, instead of slowing or breaking Data Docs silently."""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import jinja2
from packaging.specifiers import SpecifierSet

from pipelines.validation.gx_compat import GX_RANGE, reuse_compiled_templates

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
