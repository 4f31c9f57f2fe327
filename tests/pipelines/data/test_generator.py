"""The synthetic shop: deterministic, realistic enough to learn from, and breakable on purpose."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.generator import (
    BAD_KINDS,
    GeneratorError,
    PlantedChange,
    ShopSpec,
    generate,
    parse_planted,
)
from pipelines.data.partitions import partition_days, partition_dir

START = date(2026, 3, 2)  # a Monday


def read_events(home: Path) -> pd.DataFrame:
    files = sorted((home / "landing" / "events").glob("date=*/*.parquet"))
    frames = [pq.read_table(f).to_pandas().assign(day=f.parent.name[5:]) for f in files]
    return pd.concat(frames, ignore_index=True)


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four weeks of a 1,500-user shop, generated once for the statistical checks."""
    home = tmp_path_factory.mktemp("month")
    generate(ShopSpec(users=1500, items=300, days=28, seed=7, start=START), Settings(home=home))
    return home


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    spec = ShopSpec(
        users=200,
        items=60,
        days=5,
        seed=3,
        start=START,
        drifts=(PlantedChange("promo", START + timedelta(days=2)),),
        bad=(PlantedChange("negative-price", START + timedelta(days=3)),),
    )
    generate(spec, Settings(home=tmp_path / "a"))
    generate(spec, Settings(home=tmp_path / "b"))
    first, second = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert len(first) == 3 * 5 + 4  # three tables a day, four truth files
    assert first == second


def test_another_seed_gives_another_shop(tmp_path: Path) -> None:
    generate(
        ShopSpec(users=100, items=40, days=2, seed=1, start=START), Settings(home=tmp_path / "a")
    )
    generate(
        ShopSpec(users=100, items=40, days=2, seed=2, start=START), Settings(home=tmp_path / "b")
    )
    assert all_files(tmp_path / "a") != all_files(tmp_path / "b")


def test_batches_follow_the_contract(month: Path) -> None:
    for table in contract.TABLE_NAMES:
        spec = contract.table(table)
        days = partition_days(month / "landing", table)
        assert len(days) == 28
        schema = pq.read_schema(partition_dir(month / "landing", table, days[0]) / "part-0.parquet")
        assert schema.names == spec.column_names
        for column in spec.columns:
            assert schema.field(column.name).type == contract.arrow_type(column.kind), column.name

    events = read_events(month)
    assert events.event_id.is_unique
    assert set(events.event_type) == set(contract.EVENT_TYPES)
    assert set(events.device.dropna()) == set(contract.DEVICES)
    assert events.device.isna().any() and events.session_id.notna().all()
    priced = events.event_type.isin(contract.PRICED_EVENT_TYPES)
    assert events.loc[priced, "price"].notna().all()
    assert (events.price.dropna() > 0).all()
    assert (events.quantity >= 1).all()
    assert (events.event_ts.dt.strftime("%Y-%m-%d") == events.day).all()


def test_users_and_items_land_on_their_first_day(month: Path) -> None:
    users = pd.concat(
        pq.read_table(p).to_pandas().assign(day=p.parent.name[5:])
        for p in sorted((month / "landing/users").glob("*/*.parquet"))
    )
    items = pd.concat(
        pq.read_table(p).to_pandas().assign(day=p.parent.name[5:])
        for p in sorted((month / "landing/items").glob("*/*.parquet"))
    )
    assert users.user_id.is_unique and len(users) == 1500
    assert items.item_id.is_unique and len(items) == 300
    later = users[users.day > START.isoformat()]
    assert len(later) > 0, "new sign-ups arrive during the month"
    assert (later.signup_ts.dt.strftime("%Y-%m-%d") == later.day).all()
    assert users.country.str.fullmatch(r"[A-Z]{2}").all()

    events = read_events(month)
    first_seen = events.merge(users[["user_id", "signup_ts"]], on="user_id", how="left")
    assert first_seen.signup_ts.notna().all(), "every event's user is known"
    assert (first_seen.event_ts >= first_seen.signup_ts).all(), "nobody acts before signing up"
    launched = events.merge(items[["item_id", "launched_ts"]], on="item_id", how="left")
    assert (launched.event_ts >= launched.launched_ts).all(), "nobody buys an unlaunched item"


def test_sessions_run_through_the_funnel(month: Path) -> None:
    counts = read_events(month).event_type.value_counts()
    view_to_cart = counts["add_to_cart"] / counts["view"]
    cart_to_purchase = counts["purchase"] / counts["add_to_cart"]
    assert 0.04 < view_to_cart < 0.25
    assert 0.2 < cart_to_purchase < 0.8

    events = read_events(month)
    purchases = events[events.event_type == "purchase"]
    carts = events[events.event_type == "add_to_cart"]
    first_cart = carts.groupby(["session_id", "item_id"]).event_ts.min().rename("cart_ts")
    bought = purchases.join(first_cart, on=["session_id", "item_id"])
    assert bought.cart_ts.notna().all(), "every purchase follows a cart in its session"
    assert (bought.event_ts >= bought.cart_ts).all()


def test_repeat_buyers_and_browsers_exist(month: Path) -> None:
    events = read_events(month)
    per_user = events.groupby("user_id").event_type.value_counts().unstack(fill_value=0)
    browsers = per_user[(per_user.view >= 20) & (per_user.purchase == 0)]
    repeat_buyers = per_user[per_user.purchase >= 3]
    assert len(browsers) > 20 and len(repeat_buyers) > 20


def test_weekends_are_busier(month: Path) -> None:
    per_day = read_events(month).groupby("day").size()
    weekday = pd.to_datetime(per_day.index).dayofweek
    assert per_day[weekday >= 5].mean() > 1.15 * per_day[weekday <= 3].mean()


def test_price_sensitivity_shows_in_conversion(month: Path) -> None:
    events = read_events(month)
    views = events[events.event_type == "view"].dropna(subset=["price"])
    items = pd.concat(pq.read_table(p).to_pandas() for p in (month / "landing/items").glob("*/*"))
    views = views.merge(items[["item_id", "category"]], on="item_id")
    carted = events[events.event_type == "add_to_cart"][["session_id", "item_id"]].drop_duplicates()
    views = views.merge(carted.assign(carted=True), on=["session_id", "item_id"], how="left")
    views["carted"] = views.carted.notna()
    relative = views.price / views.groupby("category").price.transform("median")
    cheap, dear = views[relative < 0.7], views[relative > 1.5]
    assert cheap.carted.mean() > 1.3 * dear.carted.mean()


def test_ground_truth_matches_what_users_do(month: Path) -> None:
    from sklearn.metrics import roc_auc_score

    truth = pq.read_table(month / "truth/purchase_probability_7d.parquet").to_pandas()
    assert not any(p.is_relative_to(month / "landing") for p in (month / "truth").iterdir())
    assert truth.p_purchase_7d.between(0, 1).all()
    events = read_events(month)
    purchases = events[events.event_type == "purchase"]
    snapshot = truth.snapshot_ts.min() + pd.Timedelta(days=7)
    at_snapshot = truth[truth.snapshot_ts == snapshot]
    in_window = purchases[
        (purchases.event_ts >= snapshot) & (purchases.event_ts < snapshot + pd.Timedelta(days=7))
    ]
    bought = at_snapshot.user_id.isin(in_window.user_id)
    assert abs(bought.mean() - at_snapshot.p_purchase_7d.mean()) < 0.05
    top = at_snapshot.p_purchase_7d >= at_snapshot.p_purchase_7d.quantile(0.8)
    bottom = at_snapshot.p_purchase_7d <= at_snapshot.p_purchase_7d.quantile(0.2)
    assert bought[top].mean() > 3 * bought[bottom].mean()
    assert roc_auc_score(bought, at_snapshot.p_purchase_7d) > 0.7

    interest = pq.read_table(month / "truth/user_interest.parquet").to_pandas()
    shares = interest.groupby("user_id").share.sum()
    assert np.allclose(shares, 1.0)
    views = events[events.event_type == "view"].merge(
        pd.concat(pq.read_table(p).to_pandas() for p in (month / "landing/items").glob("*/*")),
        on="item_id",
    )
    top_category = interest.loc[interest.groupby("user_id").share.idxmax(), ["user_id", "category"]]
    joined = views.merge(top_category, on="user_id", suffixes=("", "_true"))
    assert (joined.category == joined.category_true).mean() > 0.35, "views follow true interests"


# ---- planted changes -------------------------------------------------------------------------


def test_promo_lifts_purchases_for_a_week_then_reverts(tmp_path: Path) -> None:
    promo_day = START + timedelta(days=7)
    spec = ShopSpec(
        users=1200,
        items=200,
        days=21,
        seed=5,
        start=START,
        drifts=(PlantedChange("promo", promo_day),),
    )
    generate(spec, Settings(home=tmp_path))
    events = read_events(tmp_path)
    purchases = events[events.event_type == "purchase"].groupby("day").size()
    days = pd.to_datetime(purchases.index).date
    during = purchases[(days >= promo_day) & (days < promo_day + timedelta(days=7))].mean()
    before = purchases[days < promo_day].mean()
    after = purchases[days >= promo_day + timedelta(days=7)].mean()
    assert during > 1.5 * before
    assert after < 1.25 * before


def test_covariate_drift_moves_devices_and_prices(tmp_path: Path) -> None:
    drift_day = START + timedelta(days=5)
    spec = ShopSpec(
        users=800,
        items=100,
        days=10,
        seed=5,
        start=START,
        drifts=(PlantedChange("covariate", drift_day),),
    )
    generate(spec, Settings(home=tmp_path))
    events = read_events(tmp_path)
    after = pd.to_datetime(events.day).dt.date >= drift_day
    mobile = events.device.isin(["ios", "android"])
    assert mobile[after].mean() > mobile[~after].mean() + 0.15
    same_item = events.groupby([after.rename("after"), events.item_id]).price.median().unstack(0)
    ratio = (same_item[True] / same_item[False]).dropna()
    assert ratio.median() == pytest.approx(1.2, abs=0.02)


def test_new_items_launch_on_their_day(tmp_path: Path) -> None:
    launch = START + timedelta(days=3)
    spec = ShopSpec(
        users=600,
        items=100,
        days=6,
        seed=5,
        start=START,
        drifts=(PlantedChange("new-items", launch),),
    )
    generate(spec, Settings(home=tmp_path))
    batch = pq.read_table(partition_dir(tmp_path / "landing", "items", launch) / "part-0.parquet")
    assert batch.num_rows >= 20
    new_ids = set(batch["item_id"].to_pylist())
    events = read_events(tmp_path)
    assert not events[pd.to_datetime(events.day).dt.date < launch].item_id.isin(new_ids).any()
    assert events[pd.to_datetime(events.day).dt.date >= launch].item_id.isin(new_ids).mean() > 0.1


def test_concept_drift_changes_true_interests(tmp_path: Path) -> None:
    change = START + timedelta(days=2)
    spec = ShopSpec(
        users=100,
        items=40,
        days=4,
        seed=5,
        start=START,
        drifts=(PlantedChange("concept", change),),
    )
    generate(spec, Settings(home=tmp_path))
    interest = pq.read_table(tmp_path / "truth/user_interest.parquet").to_pandas()
    before = interest[interest.valid_from == START].set_index(["user_id", "category"]).share
    after = interest[interest.valid_from == change].set_index(["user_id", "category"]).share
    assert len(before) == len(after) > 0
    assert (before - after).abs().mean() > 0.05


# ---- broken batches ---------------------------------------------------------------------------

BAD_DAY = START + timedelta(days=1)


@pytest.fixture(scope="module")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[ShopSpec, Path]:
    spec = ShopSpec(users=300, items=60, days=3, seed=11, start=START)
    home = tmp_path_factory.mktemp("clean")
    generate(spec, Settings(home=home))
    return spec, home


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_plants_exactly_its_defect(
    kind: str, clean_shop: tuple[ShopSpec, Path], tmp_path: Path
) -> None:
    spec, clean_home = clean_shop
    broken = ShopSpec(**{**spec.__dict__, "bad": (PlantedChange(kind, BAD_DAY),)})
    generate(broken, Settings(home=tmp_path))

    clean_files, broken_files = all_files(clean_home), all_files(tmp_path)
    bad_file = f"landing/events/date={BAD_DAY.isoformat()}/part-0.parquet"
    assert set(clean_files) == set(broken_files)
    differing = {name for name in clean_files if clean_files[name] != broken_files[name]}
    # scenario.json records what was planted; everything else but the broken batch is untouched
    assert differing == {bad_file, "truth/scenario.json"}, "only that day's events batch changes"

    clean = pq.read_table(clean_home / bad_file)
    if kind == "corrupt-file":
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(tmp_path / bad_file)
        assert 0 < len(broken_files[bad_file]) < len(clean_files[bad_file])
        return
    bad = pq.read_table(tmp_path / bad_file)
    assert_only_defect(kind, clean.to_pandas(), bad)


def assert_only_defect(kind: str, clean: pd.DataFrame, bad_table: pa.Table) -> None:
    bad = bad_table.to_pandas()
    if kind == "empty-file":
        assert bad_table.num_rows == 0 and bad_table.schema.names == list(clean.columns)
        return
    if kind == "missing-column":
        assert list(bad.columns) == [c for c in clean.columns if c != "item_id"]
        pd.testing.assert_frame_equal(bad, clean.drop(columns="item_id"))
        return
    if kind == "wrong-dtype":
        assert bad_table.schema.field("price").type == pa.string()
        pd.testing.assert_series_equal(bad.price.astype(float), clean.price, check_dtype=False)
        pd.testing.assert_frame_equal(bad.drop(columns="price"), clean.drop(columns="price"))
        return

    column = {
        "null-keys": "user_id",
        "negative-price": "price",
        "unknown-event-type": "event_type",
        "duplicate-event-id": "event_id",
        "out-of-day-ts": "event_ts",
    }[kind]
    assert bad_table.schema == contract.EVENTS.arrow_schema().with_metadata(
        bad_table.schema.metadata
    ), "the types stay the contract's"
    pd.testing.assert_frame_equal(bad.drop(columns=column), clean.drop(columns=column))
    changed = _changed_rows(clean[column], bad[column])
    assert 0 < changed.sum() <= 0.05 * len(clean)
    values = bad.loc[changed, column]
    if kind == "null-keys":
        assert values.isna().all()
    elif kind == "negative-price":
        assert (values < 0).all() and (values == -clean.loc[changed, "price"]).all()
    elif kind == "unknown-event-type":
        assert (values == "click").all()
    elif kind == "duplicate-event-id":
        assert bad.event_id.duplicated().sum() == changed.sum()
        assert values.isin(clean.event_id).all()
    elif kind == "out-of-day-ts":
        assert (values.dt.date != BAD_DAY).all()


def _changed_rows(clean: pd.Series, bad: pd.Series) -> pd.Series:
    same = (clean == bad) | (clean.isna() & bad.isna())
    return ~same.fillna(False)


def test_planted_changes_are_checked_before_writing(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="expected KIND@YYYY-MM-DD"):
        parse_planted("sale@2026-03-02", ("promo",), "--drift")
    with pytest.raises(GeneratorError, match="outside the generated days"):
        ShopSpec(days=3, start=START, bad=(PlantedChange("empty-file", START + timedelta(9)),))
    assert parse_planted("promo@2026-03-04", ("promo",), "--drift") == PlantedChange(
        "promo", date(2026, 3, 4)
    )
