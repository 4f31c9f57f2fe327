"""The Evidently internals monitoring relies on give what the public ValueDrift metric gives."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from packaging.specifiers import SpecifierSet

from pipelines.monitoring.evidently_compat import EVIDENTLY_RANGE, column_drift


def test_the_installed_evidently_is_in_the_range_this_was_written_for() -> None:
    assert version("evidently") in SpecifierSet(",".join(EVIDENTLY_RANGE))


@pytest.mark.parametrize(
    ("column", "method", "threshold"),
    [("amount", "wasserstein", 0.1), ("amount", "psi", 0.2), ("category", "jensenshannon", 0.05)],
)
def test_column_drift_matches_the_public_value_drift_metric(column, method, threshold) -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    rng = np.random.default_rng(7)
    reference = pd.DataFrame(
        {"amount": rng.gamma(2.0, 10.0, 1500), "category": rng.choice(list("abcd"), 1500)}
    )
    current = pd.DataFrame(
        {
            "amount": rng.gamma(2.4, 10.0, 900),
            "category": rng.choice(list("abcd"), 900, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    numerical = column == "amount"
    definition = DataDefinition(
        numerical_columns=["amount"] if numerical else [],
        categorical_columns=[] if numerical else ["category"],
    )
    report = Report(
        [ValueDrift(column=column, method=method, threshold=threshold)], include_tests=True
    )
    snapshot = report.run(
        Dataset.from_pandas(current[[column]], data_definition=definition),
        Dataset.from_pandas(reference[[column]], data_definition=definition),
    ).dict()
    public_score = float(snapshot["metrics"][0]["value"])
    public_drifted = str(snapshot["tests"][0]["status"]).endswith("FAIL")

    verdict = column_drift(
        reference, current, column, numerical=numerical, method=method, threshold=threshold
    )
    assert verdict.score == pytest.approx(public_score)
    assert verdict.drifted == public_drifted
    assert verdict.threshold == threshold
