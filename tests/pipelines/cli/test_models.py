"""The model commands: models, promote, rollback, history, status, recommend evaluate."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines import registry
from pipelines.cli import app
from pipelines.config import Settings

runner = CliRunner()
MODEL = "propensity"


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["models"],
        ["promote"],
        ["rollback"],
        ["history"],
        ["status"],
        ["recommend", "evaluate"],
        ["recommend", "batch"],
    ],
)
def test_every_model_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def register_blessed(settings: Settings, seed: int) -> int:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=40)})
    estimator = LogisticRegression().fit(frame, frame["a"] > 0)
    run = registry.TrainingRun(
        model=MODEL,
        log_model=lambda name: mlflow.sklearn.log_model(
            estimator, name=name, pip_requirements=registry.pinned_requirements()
        ),
        metrics={"test_roc_auc": 0.7 + seed / 100},
        lineage=registry.Lineage(date(2026, 1, 1), date(2026, 1, 30), (), "f" * 64, ()),
    )
    version = registry.log_and_register(settings, run).version
    registry.tag_version(settings, MODEL, version, {"gate.decision": "blessed"})
    return version


def test_promote_rollback_history_and_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    v1, v2, v3 = (register_blessed(settings, seed) for seed in (1, 2, 3))
    base = ("--home", str(home))

    assert invoke(*base, "promote", MODEL, str(v1), "--reason", "first").exit_code == 0
    assert invoke(*base, "promote", MODEL, str(v2), "--reason", "better").exit_code == 0
    # an engineer moves the alias in the MLflow UI
    registry.mlflow_client(settings).set_registered_model_alias(MODEL, "champion", str(v3))

    shown = invoke(*base, "history", MODEL, "--json")
    moves = [json.loads(line) for line in shown.output.splitlines() if line.startswith("{")]
    assert [(m["action"], m["to_version"]) for m in moves] == [
        ("promote", v1),
        ("promote", v2),
        ("manual", v3),
    ]

    rolled = invoke(*base, "rollback", MODEL, "--reason", "hand pick was wrong")
    assert rolled.exit_code == 0, rolled.output
    assert f"v{v3} -> v{v2}" in rolled.output
    assert registry.aliases(settings, MODEL)["champion"] == v2
    assert invoke(*base, "rollback", MODEL, "--reason", "again").exit_code == 0  # v2 -> v1
    last = invoke(*base, "rollback", MODEL, "--reason", "nothing left")
    assert last.exit_code == 1
    assert "no previous champion recorded for propensity" in last.output

    listed = invoke(*base, "models", MODEL, "--json")
    rows = json.loads(listed.output)[MODEL]
    assert [r["version"] for r in rows] == [v3, v2, v1]
    assert rows[-1]["aliases"] == ["champion"]

    state = json.loads(invoke(*base, "status", "--no-dags", "--json").output)
    assert state["models"][MODEL]["champion"]["version"] == v1
    assert state["models"][MODEL]["last_move"]["action"] == "rollback"
    assert state["quarantined"] == [] and state["alerts"] == []


def test_rollback_to_restores_the_chosen_version_not_the_previous_champion(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    v1, v2, v3 = (register_blessed(settings, seed) for seed in (1, 2, 3))
    base = ("--home", str(home))
    for version in (v1, v2, v3):
        assert invoke(*base, "promote", MODEL, str(version), "--reason", "next").exit_code == 0

    def champions() -> dict[str, int]:
        return {a: v for a, v in registry.aliases(settings, MODEL).items() if a != "challenger"}

    assert champions() == {"champion": v3, "previous_champion": v2}

    rolled = invoke(*base, "rollback", MODEL, "--to", str(v1), "--reason", "v2 and v3 are bad")
    assert rolled.exit_code == 0, rolled.output
    assert f"v{v3} -> v{v1}" in rolled.output
    # v1 replaced nothing when it was promoted: no previous champion is left behind it
    assert champions() == {"champion": v1}
    tags = {int(v.version): v.tags for v in registry.versions(settings, MODEL)}
    assert tags[v3]["rolled_back"] == "true" and tags[v3]["rollback.reason"] == "v2 and v3 are bad"
    assert "rolled_back" not in tags[v2] and "rolled_back" not in tags[v1]
    last = registry.read_audit(settings, MODEL)[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("rollback", v3, v1)
    assert last["reason"] == "v2 and v3 are bad"

    again = invoke(*base, "rollback", MODEL, "--to", str(v1), "--reason", "twice")
    assert again.exit_code == 1 and f"v{v1} is already the champion" in again.output
    assert registry.aliases(settings, MODEL)["champion"] == v1
    forward = invoke(*base, "rollback", MODEL, "--to", str(v2), "--reason", "v2 was fine after all")
    assert forward.exit_code == 0 and f"v{v1} -> v{v2}" in forward.output
    assert champions() == {"champion": v2, "previous_champion": v1}
    unknown = invoke(*base, "rollback", MODEL, "--to", "99", "--reason", "typo")
    assert unknown.exit_code == 1 and f"{MODEL} has no version 99" in unknown.output
    assert champions() == {"champion": v2, "previous_champion": v1}


def test_promote_refuses_a_version_the_gate_did_not_bless(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    version = register_blessed(settings, 1)
    registry.tag_version(settings, MODEL, version, {"gate.decision": "rejected"})
    refused = invoke("--home", str(home), "promote", MODEL, str(version), "--reason", "x")
    assert refused.exit_code == 1 and "not blessed" in refused.output
    forced = invoke("--home", str(home), "promote", MODEL, str(version), "--reason", "x", "--force")
    assert forced.exit_code == 0
    assert registry.aliases(settings, MODEL)["champion"] == version


def test_recommend_evaluate_on_a_plain_ratings_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    users, items = [f"user{u}" for u in range(60)], [f"movie{i}" for i in range(30)]
    # two tastes: even users like even movies, odd users odd ones
    rows = [
        (u, m, int(rng.integers(3, 6)), 1_700_000_000 + t)
        for t in range(1500)
        for u, m in [(rng.choice(users), rng.choice(items))]
        if int(u[4:]) % 2 == int(m[5:]) % 2
    ]
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    frame = frame.drop_duplicates(["userId", "movieId"])
    cut = frame["timestamp"].quantile(0.8)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame[frame["timestamp"] <= cut].to_csv(train, index=False)
    frame[frame["timestamp"] > cut].to_csv(test, index=False)
    out = tmp_path / "recs.parquet"

    result = invoke(
        "recommend",
        "evaluate",
        "--train",
        str(train),
        "--test",
        str(test),
        "--k",
        "5",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["metrics"]["ndcg_at_5"] > report["baseline"]["popularity"]["ndcg_at_5"]
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs.groupby("user_id").size().max() == 5
    seen = set(map(tuple, pd.read_csv(train)[["userId", "movieId"]].astype(str).to_numpy()))
    assert not seen & set(map(tuple, recs[["user_id", "item_id"]].to_numpy()))

    missing = invoke(
        "recommend", "evaluate", "--train", str(tmp_path / "nope.csv"), "--test", str(test)
    )
    assert missing.exit_code == 2 and "no such" in " ".join(missing.output.split())


def test_recommend_evaluate_one_log_with_a_random_split_prints_the_comparison(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for u in range(80):  # customers rebuying their three staples, now and then something new
        staples = rng.choice(40, 3, replace=False)
        for day in range(0, 100, 7):
            bought = [*rng.choice(staples, 2, replace=False), int(rng.integers(40))]
            rows += [(f"c{u}", f"sku{i}", f"2025-03-{1 + day // 7:02d}T10:00:00Z") for i in bought]
    log = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer_id", "sku", "event_ts"]).to_csv(log, index=False)
    out = tmp_path / "recs.csv"
    args = ["recommend", "evaluate", "--events", str(log), "--protocol", "random"]
    args += ["--test-fraction", "0.25", "--seed", "42", "--out", str(out)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for expected in ("popularity", "buy_again", "(winner)", "validation winner:", "ndcg@10"):
        assert expected in text, expected
    assert "random per user: test 25%" in text
    recs = pd.read_csv(out)
    assert (recs.groupby("user_id").size() == 10).all()

    as_json = json.loads(invoke(*args, "--json").output)
    assert {"popularity", "buy_again"} <= set(as_json["test_metrics"])
    assert as_json["protocol"] == "random" and as_json["winner"]
    assert as_json["test_metrics"] == json.loads(invoke(*args, "--json").output)["test_metrics"]

    both = invoke("recommend", "evaluate", "--events", str(log), "--train", str(log))
    assert both.exit_code == 2
