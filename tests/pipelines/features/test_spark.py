"""The Spark engine computes the same features as the local one, and Feast's Spark offline store
serves the same training sets as DuckDB.

One small hand-built shop (curated parquet, 40 days) has the edge cases in it: a user with only
views, one without events, one who signs up later, one who went quiet exactly at a window's
first microsecond, events on both sides of midnight, null sessions, devices and prices, NaN
prices, items without category or launch date, items launched later, events of unknown users and
items, rows corrected by a later partition and a key twice in one file. Both engines compute two
consecutive days from the same files (each carrying recency from its own day before), and every
column of both tables must agree: ints and strings exactly, floats within 1e-9.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from pipelines.data import contract
from pipelines.data.partitions import partition_dir, write_partition
from pipelines.features import compute, offline
from pipelines.features import spark as spark_engine
from pipelines.features import store as feast_store
from pipelines.features.schema import DEVICES, FEATURE_TABLES, TIMESTAMP
from pipelines.features.training import training_set

START = date(2026, 2, 1)
LAST = date(2026, 3, 12)
DAYS = (date(2026, 3, 10), date(2026, 3, 11))
USERS = [f"u{i:03d}" for i in range(60)]
CATEGORIES = ("books", "garden", "sports", "toys")
# Prices are multiples of 0.25 (exact in binary), so a user's spend is the same float whatever
# order an engine adds the purchases in, and RFM ties do not depend on summation order.
PRICES = np.arange(1, 200) * 0.25


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _events_of_day(day: date, rng: np.random.Generator) -> list[dict]:
    rows = []
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for n in range(int(rng.integers(25, 45))):
        kind = str(rng.choice(contract.EVENT_TYPES, p=[0.7, 0.2, 0.1]))
        price = float(rng.choice(PRICES))
        if kind == "view" and rng.random() < 0.1:
            price = None if rng.random() < 0.5 else float("nan")
        rows.append(
            {
                "event_id": f"{day}-{n}",
                "user_id": str(rng.choice([*USERS[:50], "stranger"])),  # u050.. act later
                "item_id": str(rng.choice([*(f"i{i:02d}" for i in range(40)), "ghost-item"])),
                "event_type": kind,
                "event_ts": base + timedelta(microseconds=int(rng.integers(0, 86_400_000_000))),
                "session_id": None if rng.random() < 0.2 else f"s{int(rng.integers(0, 30))}",
                "price": price,
                "quantity": int(rng.integers(1, 4)),
                "device": None if rng.random() < 0.15 else str(rng.choice(DEVICES)),
            }
        )
    return rows


def _edge_events() -> list[dict]:
    def event(user: str, at: str, kind: str = "view", item: str = "i01", **extra) -> dict:
        return {
            "event_id": f"edge-{user}-{at}-{kind}",
            "user_id": user,
            "item_id": item,
            "event_type": kind,
            "event_ts": ts(at),
            "session_id": extra.get("session", "edge"),
            "price": extra.get("price", 2.5),
            "quantity": 1,
            "device": extra.get("device", "ios"),
        }

    return [
        # quiet: last seen at the first microsecond of 03-10's 30-day window, gone after
        event("quiet", "2026-02-09T00:00:00", "purchase"),
        event("quiet", "2026-02-08T23:59:59.999999", "purchase"),
        # viewer: only views, one without a price, one without a device or session
        event("viewer", "2026-03-10T08:00:00"),
        event("viewer", "2026-03-10T09:00:00", price=None, device=None, session=None),
        # midnight: the last microsecond of 03-10 and the first of 03-11
        event("midnight", "2026-03-10T23:59:59.999999", "purchase"),
        event("midnight", "2026-03-11T00:00:00", "add_to_cart"),
        # buyer: purchases on several days, twice on one day
        *(
            event("buyer", f"2026-{d}T10:00:00", "purchase", item="i02")
            for d in ("02-20", "03-01", "03-01", "03-08", "03-12")
        ),
        # late: signs up on 03-11, so is no feature row on 03-10
        event("late", "2026-03-11T12:00:00", "add_to_cart"),
    ]


def _write(curated: Path, spec: contract.Table, day: date, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows, columns=spec.column_names)
    table = pa.Table.from_pandas(frame, schema=spec.arrow_schema(), preserve_index=False)
    write_partition(table, curated, spec.name, day)


def _user(user: str, signup: str) -> dict:
    return {
        "user_id": user,
        "signup_ts": ts(signup),
        "country": "US",
        "age_band": None,
        "consent_personalization": True,
    }


def _item(i: int | str, category: str | None, launched: str | None, price: float | None = 4.0):
    name = i if isinstance(i, str) else f"i{i:02d}"
    return {
        "item_id": name,
        "category": category,
        "brand": None if name == "i03" else f"brand-{name}",
        "price": price,
        "launched_ts": None if launched is None else ts(launched),
    }


def build_curated(curated: Path) -> None:
    rng = np.random.default_rng(7)
    edges = _edge_events()
    for offset in range((LAST - START).days + 1):
        day = START + timedelta(days=offset)
        rows = _events_of_day(day, rng) + [e for e in edges if e["event_ts"].date() == day]
        _write(curated, contract.EVENTS, day, rows)
    first_users = [_user(u, "2026-01-01") for u in [*USERS, "quiet", "viewer", "midnight"]]
    first_users += [_user("buyer", "2026-01-01"), _user("silent", "2026-01-01")]
    # u002 twice in one file: the last row (signed up later) wins
    first_users += [_user("u002", "2026-03-11T23:00:00")]
    _write(curated, contract.USERS, START, first_users)
    # a later partition: a new user, and a correction of u001 (signs up on 03-12)
    _write(
        curated,
        contract.USERS,
        date(2026, 3, 11),
        [_user("late", "2026-03-11T06:00:00"), _user("u001", "2026-03-12T20:00:00")],
    )
    items = [
        _item(i, CATEGORIES[i % 4], "2025-06-01", price=float("nan") if i == 7 else 4.0 + i)
        for i in range(39)
    ]
    items[10] = _item(10, "toys", "2026-03-11T05:00:00")  # launched after 03-10
    _write(curated, contract.ITEMS, START, items)
    _write(
        curated,
        contract.ITEMS,
        date(2026, 3, 11),
        [_item(39, None, None, price=None), _item(5, "sports", "2025-06-01")],  # i05 corrected
    )


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, spark) -> tuple[Settings, Settings]:
    """The shop's days computed by each engine, in a state dir per engine."""
    root = tmp_path_factory.mktemp("engines")
    local = Settings(home=root / "local")
    on_spark = Settings(home=root / "spark", feature_engine="spark")
    build_curated(local.curated_dir)
    shutil.copytree(local.curated_dir, on_spark.curated_dir)
    for day in DAYS:
        offline.compute_features_for_day(local, day)
        spark_engine.compute_features_for_day(on_spark, day, spark=spark)
    return local, on_spark


def _partition(settings: Settings, table: str, day: date) -> pd.DataFrame:
    frame = offline.read_offline_partition(settings.feast_offline_dir, table, day)
    assert frame is not None, f"no {table} partition for {day} in {settings.state_dir}"
    return frame


def assert_same_features(local: pd.DataFrame, other: pd.DataFrame, table: str, label: str) -> None:
    spec = FEATURE_TABLES[table]
    local = local.sort_values(spec.join_key, kind="stable").reset_index(drop=True)
    other = other.sort_values(spec.join_key, kind="stable").reset_index(drop=True)
    assert list(other[spec.join_key]) == list(local[spec.join_key]), f"{label}: other entities"
    for column in spec.columns:
        mine, theirs = local[column.name], other[column.name]
        where = f"{label}: {table}.{column.name}"
        if column.dtype == "float64":
            np.testing.assert_allclose(
                theirs.to_numpy("float64", na_value=np.nan),
                mine.to_numpy("float64", na_value=np.nan),
                rtol=1e-9,
                atol=1e-12,
                equal_nan=True,
                err_msg=where,
            )
        else:
            a = [None if pd.isna(v) else v for v in mine]
            b = [None if pd.isna(v) else v for v in theirs]
            diff = [
                (local[spec.join_key][i], x, y)
                for i, (x, y) in enumerate(zip(a, b, strict=True))
                if x != y
            ]
            assert not diff, f"{where}: (key, local, spark) differ: {diff[:5]}"


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("table", ["user_activity", "item_popularity"])
def test_spark_features_equal_local_features(homes, table: str, day: date) -> None:
    local, on_spark = homes
    assert_same_features(
        _partition(local, table, day), _partition(on_spark, table, day), table, str(day)
    )


def test_the_shop_exercises_the_edge_cases(homes) -> None:
    """The comparison above means something only if the data reaches every branch."""
    local, _ = homes
    first, second = (_partition(local, "user_activity", d).set_index("user_id") for d in DAYS[:2])
    assert "late" not in first.index and "late" in second.index
    assert "u001" in first.index and "u001" not in second.index  # corrected sign-up
    assert "u002" not in first.index  # the last row of the file wins
    assert first.loc["quiet", "views_30d"] == 0 and first.loc["quiet", "purchases_30d"] == 1
    assert second.loc["quiet", "purchases_30d"] == 0
    assert second.loc["quiet", "days_since_last_purchase"] == pytest.approx(31.0)  # carried
    assert first.loc["silent", "views_30d"] == 0 and first.loc["silent", "rfm_recency"] == 1
    assert pd.isna(first.loc["silent", "days_since_last_event"])
    assert first.loc["viewer", "purchases_30d"] == 0 and first.loc["viewer", "views_1d"] == 2
    assert first.loc["midnight", "purchases_1d"] == 1 and first.loc["midnight", "carts_1d"] == 0
    assert second.loc["midnight", "carts_1d"] == 1 and second.loc["midnight", "purchases_1d"] == 0
    assert first["device_share_web_1d"].isna().any() and first["avg_view_price_1d"].isna().any()
    assert (first["top_category_3"].isna() & (first["views_30d"] > 0)).any()
    assert first["days_between_purchases"].notna().any()
    assert set(first["rfm_monetary"]) == {1, 2, 3, 4, 5}
    items = _partition(local, "item_popularity", DAYS[0]).set_index("item_id")
    assert "i10" not in items.index and "ghost-item" not in items.index
    assert pd.isna(items.loc["i07", "item_price"]) and items.loc["i05", "item_category"] == "garden"
    later = _partition(local, "item_popularity", DAYS[1]).set_index("item_id")
    assert later.loc["i05", "item_category"] == "sports" and pd.isna(
        later.loc["i39", "item_category"]
    )


def test_spark_partitions_have_the_layout_and_types_the_platform_reads(homes) -> None:
    _, on_spark = homes
    for table in ("user_activity", "item_popularity"):
        folder = partition_dir(on_spark.feast_offline_dir, table, DAYS[0])
        assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
        theirs = pq.read_schema(folder / "part-0.parquet")
        mine = offline.offline_schema(FEATURE_TABLES[table])
        assert theirs.names == mine.names
        assert [f.type for f in theirs] == [f.type for f in mine], table
        stamps = pq.read_table(folder / "part-0.parquet", columns=[TIMESTAMP])[TIMESTAMP]
        assert set(stamps.to_pylist()) == {datetime(2026, 3, 11, tzinfo=UTC)}
        assert b"org.apache.spark.version" in pq.read_metadata(folder / "part-0.parquet").metadata


def test_carried_purchase_rhythm_matches_when_previous_has_it(homes, spark) -> None:
    """The pure functions with a full earlier partition (lifetime purchase days carried)."""
    local, _ = homes
    day, before = DAYS[1], DAYS[0]
    previous = _partition(local, "user_activity", before)
    events, users, items = offline.read_curated_window(local.curated_dir, day)
    expected = compute.user_activity(events, users, items, day, previous=previous)
    # quiet's purchase left the window: its lifetime purchase day survives only by being carried
    quiet = expected.set_index("user_id").loc["quiet"]
    assert quiet["purchases_30d"] == 0 and quiet["purchase_days_total"] == 1
    s_events, s_users, s_items = spark_engine.read_curated_window(spark, local.curated_dir, day)
    file = partition_dir(local.feast_offline_dir, "user_activity", before) / "part-0.parquet"
    got = spark_engine.user_activity(
        s_events, s_users, s_items, day, previous=spark.read.parquet(str(file))
    ).toPandas()
    assert_same_features(expected, got, "user_activity", "with rhythm carried")


def test_rfm_scores_match_pandas_ranks_on_ties_and_nulls(spark) -> None:
    values = [3.0, None, 1.0, 3.0, 3.0, 7.0, None, 2.0, 2.0, 9.0, 1.0, 5.0, 3.0]
    frame = spark.createDataFrame(
        [(str(i), v) for i, v in enumerate(values)], "user_id string, v double"
    )
    for higher in (True, False):
        got = (
            spark_engine.rfm_score(frame, "v", "score", higher_is_better=higher)
            .toPandas()
            .assign(i=lambda f: f["user_id"].astype(int))
            .sort_values("i")["score"]
            .tolist()
        )
        expected = compute.rfm_score(np.array(values, dtype=float), higher_is_better=higher)
        assert got == expected.tolist(), f"higher_is_better={higher}"


def test_a_schema_column_without_a_spark_expression_is_an_error(spark) -> None:
    frame = spark.createDataFrame([("i1",)], "item_id string")
    with pytest.raises(offline.FeaturesError, match="needs an expression"):
        spark_engine._assemble(frame, "item_popularity", 0)


def test_the_features_flow_picks_the_engine_from_the_settings(homes, monkeypatch) -> None:
    from pipelines.flows.features import compute_for_run

    local, _ = homes
    home = local.state_dir.parent / "flow"
    shutil.copytree(local.curated_dir, Settings(home=home).curated_dir)
    monkeypatch.setenv("PERSONALIZE_HOME", str(home))
    context = {"dag_run": SimpleNamespace(conf={"day": DAYS[0].isoformat()})}
    for engine, from_spark in (("local", False), ("spark", True)):
        monkeypatch.setenv("PERSONALIZE_FEATURE_ENGINE", engine)
        result = compute_for_run(context)
        assert result["engine"] == engine
        path = Path(result["partitions"]["user_activity"])
        written = pq.read_metadata(path).metadata or {}
        assert (b"org.apache.spark.version" in written) is from_spark, engine
        assert_same_features(
            _partition(local, "user_activity", DAYS[0]),
            pq.read_table(path).to_pandas(),
            "user_activity",
            engine,
        )


# ---- Feast: the Spark offline store serves the training sets ------------------------------------


def test_feature_store_config_names_the_spark_offline_store() -> None:
    config = feast_store.feature_store_config(Settings(feature_engine="spark"))
    assert config["offline_store"]["type"] == "spark"
    assert config["offline_store"]["spark_conf"]["spark.master"] == "local[2]"
    assert feast_store.feature_store_config(Settings())["offline_store"] == {"type": "duckdb"}


@pytest.fixture(scope="module")
def stores(homes) -> tuple[Settings, Settings]:
    """A DuckDB and a Spark Feast store over the same offline files: only the join differs."""
    local, _ = homes
    on_spark = Settings(home=local.state_dir.parent / "feast-spark", feature_engine="spark")
    shutil.copytree(local.feast_offline_dir, on_spark.feast_offline_dir)
    feast_store.apply_repo(local)
    feast_store.apply_repo(on_spark)
    return local, on_spark


@pytest.mark.parametrize("service", ["propensity_v1", "recommender_v1"])
def test_spark_offline_store_training_set_equals_duckdb(stores, service: str) -> None:
    local, on_spark = stores
    assert feast_store.feature_store(on_spark).config.offline_store.type == "spark"
    rows = [
        ("u000", "i01", "2026-03-11T00:00:00"),  # exactly day 1's stamp
        ("u000", "i01", "2026-03-11T13:00:00"),  # between stamps: day 1's features
        ("quiet", "i02", "2026-03-12T00:00:00"),
        ("late", "i10", "2026-03-12T00:00:00"),
        ("late", "i10", "2026-03-11T00:00:00"),  # before its first row: nulls
        ("ghost", "ghost-item", "2026-03-12T00:00:00"),  # unknown: nulls
        ("buyer", "i05", "2026-03-20T00:00:00"),  # past the TTL: nulls
        *((u, "i03", "2026-03-12T06:00:00") for u in USERS[:20]),
    ]
    entity_df = pd.DataFrame(rows, columns=["user_id", "item_id", TIMESTAMP])
    entity_df[TIMESTAMP] = pd.to_datetime(entity_df[TIMESTAMP], utc=True)
    if service == "propensity_v1":
        entity_df = entity_df.drop(columns="item_id")
    entity_df["label"] = np.arange(len(entity_df)) % 2
    expected = training_set(entity_df, service, settings=local)
    got = training_set(entity_df, service, settings=on_spark)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) == len(entity_df)
    assert (
        expected["views_30d" if service == "propensity_v1" else "item_views_30d"].notna().sum() > 20
    )
    for column in expected.columns:
        a, b = expected[column], got[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(
                b.to_numpy("float64", na_value=np.nan),
                a.to_numpy("float64", na_value=np.nan),
                rtol=1e-9,
                equal_nan=True,
                err_msg=column,
            )
        else:
            assert [None if pd.isna(v) else v for v in b] == [
                None if pd.isna(v) else v for v in a
            ], column
