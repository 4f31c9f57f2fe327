"""Posted events that break a rule only the batch suite can check are quarantined with their
reason at the day's ingest, and nothing the API acknowledged is lost.

The API checks each event against the contract's row rules (types, bounds, allowed values,
"add_to_cart and purchase rows carry a price", unique within the request). Rules that need the
platform's history are the suite's: an ``event_id`` already curated on another day, and an
``item_id`` the items table does not know. The real API accepts such events (202); the real
ingest quarantines the day's batch, log included, naming the rules; release puts the export and
the log back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pipelines.data.event_log import read_event_log
from pipelines.data.partitions import partition_dir
from pipelines.serving.app import create_app
from pipelines.validation.batch import landed_files
from pipelines.validation.ingest import BatchQuarantined, ingest_table, release_quarantine

from .conftest import TOKEN, Shop

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(shop: Shop) -> Iterator[TestClient]:
    with TestClient(create_app(shop.settings, poll=False)) as test_client:
        yield test_client


def test_events_only_the_suite_can_refuse_are_quarantined_with_the_reason_and_kept(
    client: TestClient, shop: Shop
) -> None:
    settings = shop.settings
    day = shop.last_day - timedelta(days=2)  # a day no other serving test ingests
    before = day - timedelta(days=1)
    earlier = pd.read_parquet(partition_dir(settings.curated_dir, "events", before))
    export_files = landed_files(settings.landing_dir, "events", day)
    export = pd.concat(pd.read_parquet(f) for f in export_files)
    known = export.iloc[0]
    stamp = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=20)).isoformat()
    base = {
        "user_id": str(known["user_id"]),
        "event_type": "view",
        "event_ts": stamp,
        "quantity": 1,
        "device": "web",
    }
    again = {**base, "event_id": str(earlier["event_id"].iloc[0]), "item_id": str(known["item_id"])}
    # the suite tolerates 2 % unknown items (late catalogue rows); these are well above that
    unknown = [
        {**base, "event_id": f"live-unknown-item-{n}", "item_id": f"i9999{n}"} for n in range(10)
    ]
    posted = [again, *unknown]

    accepted = client.post("/v1/events", json=posted, headers=AUTH)
    assert accepted.status_code == 202, accepted.text  # row rules hold: the API cannot tell
    assert accepted.json()["days"] == {day.isoformat(): len(posted)}

    with pytest.raises(BatchQuarantined) as quarantined:
        ingest_table(settings, "events", day)
    attempt = quarantined.value.quarantine_dir
    assert attempt.parent == partition_dir(settings.quarantine_dir, "events", day)
    reason = json.loads((attempt / "reason.json").read_text())
    failed = {(f["column"], f["rule"]) for f in reason["failures"]}
    assert ("event_id", "not already loaded on another day") in failed, failed
    assert any(column == "item_id" and "known" in rule for column, rule in failed), failed
    assert any("serving_events" in f for f in reason["files"])  # the log was judged with it
    # nothing acknowledged is lost: the export waits in quarantine, the log stays in landing
    assert len(list(attempt.glob("*.parquet"))) == len(export_files)
    logged = set(read_event_log(settings.landing_dir, day)["event_id"])
    assert {e["event_id"] for e in posted} <= logged

    release_quarantine(settings, "events", day)
    assert len(landed_files(settings.landing_dir, "events", day)) == len(export_files)
    assert {e["event_id"] for e in posted} <= set(
        read_event_log(settings.landing_dir, day)["event_id"]
    )


def test_the_api_and_the_suite_refuse_the_same_row_values(client: TestClient, shop: Shop) -> None:
    """One contract: a value the row rules forbid is a 422 at the API naming the field, and the
    same value in a landed batch fails the suite on the same column."""
    from pipelines.validation.ingest import validate_path

    settings = shop.settings
    day = shop.last_day
    files = landed_files(settings.landing_dir, "events", day)
    export = pd.concat(pd.read_parquet(f) for f in files)
    row = export[export["event_type"] == "purchase"].iloc[0]
    event = {
        "event_id": "same-contract-1",
        "user_id": str(row["user_id"]),
        "item_id": str(row["item_id"]),
        "event_type": "purchase",
        "event_ts": pd.Timestamp(row["event_ts"]).isoformat(),
        "quantity": 1,
        "price": -3.0,
    }
    refused = client.post("/v1/events", json=event, headers=AUTH)
    assert refused.status_code == 422
    assert [p["field"] for p in refused.json()["detail"]] == ["price"]

    bad = export.copy()
    bad.loc[bad.index[bad["event_id"] == row["event_id"]], "price"] = -3.0
    path = settings.state_dir / "scratch" / f"date={day}" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    bad.to_parquet(path)
    outcome = validate_path(settings, path.parent, "events", day)
    assert not outcome.success
    assert {f.column for f in outcome.failures} == {"price"}
