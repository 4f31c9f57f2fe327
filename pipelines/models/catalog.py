"""The models the platform trains: the built-in specs, and any registered beside them."""

from __future__ import annotations

from pipelines.models.spec import ModelSpec
from pipelines.models.specs import propensity, recommender, segmentation

BUILT_IN: tuple[ModelSpec, ...] = (propensity.SPEC, recommender.SPEC, segmentation.SPEC)
_registered: dict[str, ModelSpec] = {spec.name: spec for spec in BUILT_IN}


class UnknownModel(ValueError):
    """A model name no spec describes."""


def register(spec: ModelSpec) -> ModelSpec:
    """Add (or replace) a model; from then on every DAG run, gate and monitor knows it."""
    _registered[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget a registered model (a built-in one cannot be forgotten)."""
    if name in {spec.name for spec in BUILT_IN}:
        raise ValueError(f"{name} is built in")
    _registered.pop(name, None)


def model_names() -> tuple[str, ...]:
    return tuple(_registered)


def spec_of(name: str) -> ModelSpec:
    try:
        return _registered[name]
    except KeyError:
        raise UnknownModel(
            f"unknown model {name!r}; expected one of {', '.join(_registered)}"
        ) from None
