"""Tamper-evident BlackBox (DESIGN.md §16): each tenant's events form a SHA-256 hash chain that
`optria-iq blackbox verify` and `GET /api/blackbox/verify` check end to end.

Tampering is done the way an attacker with database access would: through the owner engine,
past the application. Expected hashes are computed here from literal canonical text.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2.errors
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import (
    TenantWorld,
    alembic_upgrade,
    bearer_headers,
    database_at,
    test_settings,
)
from tests.peers import add_integration, add_mapping, events
from webapp.blackbox.chain import canonical_event, event_hash, verify
from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.blackbox.service import record_event, verify_chain
from webapp.cli import main, migrate
from webapp.config import get_settings
from webapp.db import (
    JSONDocument,
    UTCDateTime,
    create_db_engine,
    create_session_factory,
    tenant_session,
)

GENESIS = "0" * 64
VERIFY_URL = "/api/blackbox/verify"
EVENT_TABLE = BlackBoxEvent.__table__


# --- the canonical form --------------------------------------------------------------------


def hand_built_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": 7,
        "tenant_id": 3,
        "asset_id": None,
        "source_system": "OPTRIA_TWIN",
        "source_type": "TAG_READING",
        "event_category": "SENSOR",
        # Riyadh is UTC+3: the canonical form says 08:00 UTC.
        "event_time": datetime(2025, 3, 1, 11, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Riyadh")),
        "severity": "INFO",
        "summary": "Débit lu — ٣ نقاط",
        "payload": {
            "points": 3,
            "scale": 1.0,
            "peak": 1e20,
            "zero": -0.0,
            "tag": "1",
            "ok": True,
            "none": None,
            "nested": {"b": [0.5, 2], "a": "x"},
        },
        "created_at": datetime(2025, 3, 1, 8, 0, 1, tzinfo=UTC),
        "prev_hash": GENESIS,
        "hash": "not part of what is hashed",
    }
    event.update(changes)
    return event


CANONICAL_TEXT = (
    '{"asset_id":null,"created_at":"2025-03-01T08:00:01.000000Z","event_category":"SENSOR",'
    '"event_time":"2025-03-01T08:00:00.123456Z","id":7,"payload":{"nested":{"a":"x","b":[0.5,2]},'
    '"none":null,"ok":true,"peak":100000000000000000000,"points":3,"scale":1,"tag":"1","zero":0},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"severity":"INFO","source_system":"OPTRIA_TWIN","source_type":"TAG_READING",'
    '"summary":"Débit lu — ٣ نقاط","tenant_id":3}'
)


def test_the_hash_is_sha256_of_the_canonical_json() -> None:
    event = hand_built_event()
    assert canonical_event(event) == CANONICAL_TEXT.encode("utf-8")
    assert event_hash(event) == hashlib.sha256(CANONICAL_TEXT.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("field", "other_value"),
    [
        ("id", 8),
        ("tenant_id", 4),
        ("asset_id", 1),
        ("source_system", "OPTRIA_AUTH"),
        ("source_type", "LOGIN"),
        ("event_category", "AUTH"),
        ("event_time", datetime(2025, 3, 1, 8, 0, 0, 123457, tzinfo=UTC)),
        ("severity", "WARNING"),
        ("summary", "Débit lu — ٤ نقاط"),
        ("payload", {**hand_built_event()["payload"], "points": 4}),
        ("created_at", datetime(2025, 3, 1, 8, 0, 2, tzinfo=UTC)),
        ("prev_hash", "f" * 64),
    ],
)
def test_every_stored_field_is_covered_by_the_hash(field: str, other_value: object) -> None:
    assert event_hash(hand_built_event(**{field: other_value})) != event_hash(hand_built_event())


def test_the_hash_column_itself_is_not_hashed() -> None:
    assert event_hash(hand_built_event(hash="a" * 64)) == event_hash(hand_built_event())


@pytest.mark.parametrize(
    ("before_storage", "read_back"),
    [
        ({"v": 1e20}, {"v": 100000000000000000000}),  # JSONB hands 1e20 back as an integer
        ({"v": -0.0}, {"v": 0}),
        ({"v": 2.0}, {"v": 2}),
        ({"v": 2.5e-7}, {"v": 0.00000025}),
        ({"b": 1, "a": {"y": 2, "x": 1}}, {"a": {"x": 1, "y": 2}, "b": 1}),
        ({"v": (1, "two")}, {"v": [1, "two"]}),
        ({1: "one"}, {"1": "one"}),
    ],
)
def test_what_json_storage_rewrites_hashes_alike(
    before_storage: dict[Any, Any], read_back: dict[str, Any]
) -> None:
    assert event_hash(hand_built_event(payload=before_storage)) == event_hash(
        hand_built_event(payload=read_back)
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"v": 1}, {"v": "1"}),
        ({"v": True}, {"v": 1}),
        ({"v": None}, {"v": "null"}),
        # Differ only past 28 significant digits, where a default decimal context rounds.
        ({"v": 10**40 + 1}, {"v": 10**40}),
        ({"v": 0.1}, {"v": 0.1000000000000001}),
    ],
)
def test_different_values_hash_differently(one: dict[str, Any], other: dict[str, Any]) -> None:
    assert event_hash(hand_built_event(payload=one)) != event_hash(hand_built_event(payload=other))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"payload": {"v": float("nan")}}, ValueError),
        ({"payload": {"v": float("inf")}}, ValueError),
        ({"event_time": datetime(2025, 3, 1, 8, 0)}, ValueError),  # naive
        ({"payload": {"v": {1, 2}}}, TypeError),
    ],
)
def test_values_that_json_storage_cannot_keep_are_refused(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        event_hash(hand_built_event(**changes))


# --- verify over hand-built rows -----------------------------------------------------------


def hand_built_chain(ids: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev_hash = GENESIS
    for number, event_id in enumerate(ids):
        row = hand_built_event(id=event_id, summary=f"event {number}", prev_hash=prev_hash)
        row["hash"] = prev_hash = event_hash(row)
        rows.append(row)
    return rows


def test_an_intact_chain_verifies_and_names_its_head() -> None:
    rows = hand_built_chain([10, 20, 30, 40])
    result = verify(rows)
    assert (result.ok, result.events_checked, result.first_bad_id) == (True, 4, None)
    assert result.head_hash == rows[-1]["hash"]


def test_an_empty_chain_verifies_without_a_head() -> None:
    result = verify([])
    assert (result.ok, result.events_checked, result.first_bad_id, result.head_hash) == (
        True, 0, None, None,
    )


def _edited(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[1]["summary"] = "nothing to see"
    return rows


def _deleted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del rows[1]
    return rows


def _inserted_with_a_valid_own_hash(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    forged = hand_built_event(id=15, summary="forged", prev_hash=rows[0]["hash"])
    forged["hash"] = event_hash(forged)
    return [rows[0], forged, *rows[1:]]


def _inserted_with_a_copied_hash(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    forged = {**rows[1], "id": 15, "summary": "forged"}
    return [rows[0], forged, *rows[1:]]


def _out_of_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rows[0], rows[2], rows[1], rows[3]]


def _not_starting_at_genesis(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows[1:]


@pytest.mark.parametrize(
    ("tamper", "first_bad_id", "checked"),
    [
        (_edited, 20, 2),
        (_deleted, 30, 2),
        (_inserted_with_a_valid_own_hash, 20, 3),  # the forged row links; the next cannot
        (_inserted_with_a_copied_hash, 15, 2),
        (_out_of_order, 30, 2),
        (_not_starting_at_genesis, 20, 1),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else None,
)
def test_verify_reports_the_first_bad_event(
    tamper: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    first_bad_id: int,
    checked: int,
) -> None:
    result = verify(tamper(hand_built_chain([10, 20, 30, 40])))
    assert (result.ok, result.events_checked, result.first_bad_id, result.head_hash) == (
        False, checked, first_bad_id, None,
    )


def test_ids_must_ascend_even_when_the_links_hold() -> None:
    assert verify(hand_built_chain([10, 5, 30])).first_bad_id == 5


def test_verify_stops_reading_at_the_first_bad_event() -> None:
    rows = _edited(hand_built_chain([10, 20, 30]))

    def rows_then_failure() -> Iterator[dict[str, Any]]:
        yield from rows[:2]
        raise AssertionError("read past the first bad event")

    assert verify(rows_then_failure()).first_bad_id == 20


# --- the chain the app writes --------------------------------------------------------------


def record(
    factory: sessionmaker[Session], world: TenantWorld, label: str, **fields: Any
) -> int:
    """One event in its own transaction, as a request would write it; its id."""
    values: dict[str, Any] = {
        "asset_id": world.assets[0].id,
        "source_system": "TEST_RIG",
        "source_type": "UNIT",
        "event_category": "SENSOR",
        "severity": "INFO",
        "summary": f"{world.tenant.code} {label}",
        "payload": {"label": label},
    }
    values.update(fields)
    with tenant_session(factory, world.tenant.id) as session:
        event = record_event(session, tenant_id=world.tenant.id, **values)
        session.commit()
        return event.id


def assert_linked(rows: list[dict[str, Any]]) -> None:
    """Stored rows, id order: linked from GENESIS, each hash hex SHA-256, content intact."""
    assert rows, "no chain to check"
    assert rows[0]["prev_hash"] == GENESIS
    for previous, row in itertools.pairwise(rows):
        assert row["id"] > previous["id"]
        assert row["prev_hash"] == previous["hash"], row["id"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", row["hash"]) for row in rows)
    assert verify(rows).ok


def chain_of(engine: Engine, world: TenantWorld) -> list[dict[str, Any]]:
    """The tenant's whole chain, id order (arranging a world may already write CONFIG events)."""
    return events(engine, tenant_id=world.tenant.id)


def rig_rows(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events this test recorded itself."""
    return [row for row in chain if row["source_system"] == "TEST_RIG"]


def verified_in_session(factory: sessionmaker[Session], world: TenantWorld) -> tuple[bool, int]:
    with tenant_session(factory, world.tenant.id) as session:
        result = verify_chain(session, batch_size=3)  # small batches: several keyset pages
        return result.ok, result.events_checked


def test_events_written_by_the_app_form_one_chain_per_tenant(
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    integration_id = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="Demo", config={}
    )
    asset_id = tenant_a.assets[0].id
    add_mapping(
        session_factory, tenant_a.tenant.id, asset_id=asset_id, integration_id=integration_id,
        metric="vibration_rms", tag="PI:P-101.VIB", unit="mm/s",
    )
    admin_a = bearer_headers(client, tenant_a.admin.email)  # AUTH events
    bearer_headers(client, tenant_b.admin.email)
    wrong = {"username": tenant_a.users["viewer"].email, "password": "wrong password"}
    assert client.post("/api/auth/token", data=wrong).status_code == 401
    series_url = f"/api/twins/assets/{asset_id}/metrics/vibration_rms/series"
    for _ in range(2):  # SENSOR events
        assert client.get(series_url, headers=admin_a).status_code == 200

    chain_a = chain_of(owner_engine, tenant_a)
    # (Arranging the world may have written CONFIG events before these.)
    assert [(row["event_category"], row["severity"]) for row in chain_a[-4:]] == [
        ("AUTH", "INFO"), ("AUTH", "WARNING"), ("SENSOR", "INFO"), ("SENSOR", "INFO"),
    ]
    assert_linked(chain_a)
    assert_linked(chain_of(owner_engine, tenant_b))  # its own chain, from GENESIS

    response = client.get(VERIFY_URL, headers=admin_a)
    assert response.status_code == 200
    assert response.json() == {
        "ok": True, "events": len(chain_a), "first_bad_id": None, "head_hash": chain_a[-1]["hash"],
    }


def test_events_of_one_transaction_chain_in_the_order_recorded(
    owner_engine: Engine, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    first = record(session_factory, tenant_a, "before")
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        common = {"tenant_id": tenant_a.tenant.id, "asset_id": tenant_a.assets[0].id,
                  "source_system": "OPTRIA_TWIN"}
        sensor = record_event(
            session, **common, source_type="TAG_READING", event_category="SENSOR",
            severity="INFO", summary="Time-series fetched", payload={"source": "fallback"},
        )
        warning = record_event(
            session, **common, source_type="CONNECTOR", event_category="CONNECTOR",
            severity="WARNING", summary="Using synthetic fallback", payload={"metric": "x"},
        )
        session.commit()
    chain = chain_of(owner_engine, tenant_a)
    assert [row["id"] for row in chain[-3:]] == [first, sensor.id, warning.id]
    assert [row["event_category"] for row in chain[-3:]] == ["SENSOR", "SENSOR", "CONNECTOR"]
    assert_linked(chain)
    assert verified_in_session(session_factory, tenant_a) == (True, len(chain))


def test_a_rolled_back_event_leaves_the_chain_intact(
    owner_engine: Engine, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    record(session_factory, tenant_a, "kept")
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        record_event(
            session, tenant_id=tenant_a.tenant.id, asset_id=None, source_system="TEST_RIG",
            source_type="UNIT", event_category="SENSOR", severity="INFO", summary="dropped",
            payload={},
        )
        session.rollback()
    record(session_factory, tenant_a, "kept too")
    chain = chain_of(owner_engine, tenant_a)
    assert [row["summary"] for row in rig_rows(chain)] == ["TENANT_A kept", "TENANT_A kept too"]
    assert_linked(chain)


def test_each_tenant_has_its_own_chain(
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    for number in range(3):
        record(session_factory, tenant_a, f"a{number}")
        record(session_factory, tenant_b, f"b{number}")
    for world in (tenant_a, tenant_b):
        chain = chain_of(owner_engine, world)
        own_label = world.tenant.code[-1].lower()
        assert [row["payload"]["label"][0] for row in rig_rows(chain)] == [own_label] * 3
        assert_linked(chain)  # starts at GENESIS although the other tenant's ids interleave
        assert verified_in_session(session_factory, world) == (True, len(chain))


TRICKY_PAYLOAD: dict[str, Any] = {
    "huge_float": 1e20,
    "negative_zero": -0.0,
    "tiny": 2.5e-7,
    "inexact_sum": 0.1 + 0.2,
    "big_int": 12345678901234567890123456789012345,
    "integral_float": 2.0,
    "text_number": "1e20",
    "nested": {"z": [1.5, -0.0, {"b": 1, "a": 2}], "ä": "ünïcode ٣", "longer key": False},
    "nothing": None,
}


def test_payload_numbers_keep_their_hash_through_storage(
    backend: str,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    record(session_factory, tenant_a, "tricky", payload=TRICKY_PAYLOAD)
    record(session_factory, tenant_a, "after it")
    [stored, _] = rig_rows(chain_of(owner_engine, tenant_a))
    assert stored["payload"] == TRICKY_PAYLOAD
    if backend == "postgresql":
        # JSONB did rewrite the numbers, so the test above is not vacuous there.
        assert type(stored["payload"]["huge_float"]) is int
        assert type(stored["payload"]["integral_float"]) is float
    chain = chain_of(owner_engine, tenant_a)
    assert_linked(chain)
    assert verified_in_session(session_factory, tenant_a) == (True, len(chain))


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_writers_never_fork_a_chain_nor_lose_an_event(
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    writers = [tenant_a] * 30 + [tenant_b] * 6
    start = threading.Barrier(len(writers))

    def write(world: TenantWorld, writer: int) -> None:
        start.wait(timeout=30)
        with tenant_session(session_factory, world.tenant.id) as session:
            for category in ("SENSOR", "CONNECTOR"):  # two events in one transaction
                record_event(
                    session, tenant_id=world.tenant.id, asset_id=None, source_system="TEST_RIG",
                    source_type="UNIT", event_category=category, severity="INFO",
                    summary=f"writer {writer} {category}", payload={"writer": writer},
                )
            session.commit()

    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        futures = [pool.submit(write, world, number) for number, world in enumerate(writers)]
        for future in futures:
            future.result(timeout=120)

    for world, writer_count in ((tenant_a, 30), (tenant_b, 6)):
        chain = chain_of(owner_engine, world)
        written = rig_rows(chain)
        assert len(written) == 2 * writer_count
        assert len({row["payload"]["writer"] for row in written}) == writer_count
        # A transaction's two events are neighbours: nobody appended between them.
        assert chain[-len(written):] == written
        for sensor, connector in zip(written[::2], written[1::2], strict=True):
            assert sensor["payload"] == connector["payload"]
            assert (sensor["event_category"], connector["event_category"]) == (
                "SENSOR", "CONNECTOR",
            )
        assert_linked(chain)
        assert verified_in_session(session_factory, world) == (True, len(chain))


def test_a_second_writer_waits_until_the_first_commits(
    owner_engine: Engine, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        with tenant_session(session_factory, tenant_a.tenant.id) as first:
            record_event(
                first, tenant_id=tenant_a.tenant.id, asset_id=None, source_system="TEST_RIG",
                source_type="UNIT", event_category="SENSOR", severity="INFO", summary="first",
                payload={},
            )
            second = pool.submit(record, session_factory, tenant_a, "second")
            # Still waiting for the first transaction's chain lock after a generous second.
            done, _ = wait([second], timeout=1.0)
            assert not done
            first.commit()
        second.result(timeout=30)
    chain = chain_of(owner_engine, tenant_a)
    assert [row["summary"] for row in chain[-2:]] == ["first", "TENANT_A second"]
    assert_linked(chain)


def test_tenants_do_not_wait_for_each_others_chain(
    backend: str,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer for the whole database")
    with tenant_session(session_factory, tenant_a.tenant.id) as holding_a:
        record_event(
            holding_a, tenant_id=tenant_a.tenant.id, asset_id=None, source_system="TEST_RIG",
            source_type="UNIT", event_category="SENSOR", severity="INFO", summary="holds A",
            payload={},
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(record, session_factory, tenant_b, "not blocked").result(timeout=10)
        holding_a.commit()
    assert_linked(chain_of(owner_engine, tenant_b))


# --- tampering, caught by the API and the CLI ----------------------------------------------


def run_verify(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *arguments: str,
) -> tuple[int, list[str], str]:
    """`optria-iq blackbox verify ...`: exit status, stdout lines, stderr."""
    monkeypatch.setenv("OPTRIA_DATABASE_URL", database_url)
    get_settings.cache_clear()
    capsys.readouterr()
    try:
        status = main(["blackbox", "verify", *arguments])
    finally:
        get_settings.cache_clear()
    output = capsys.readouterr()
    return status, output.out.splitlines(), output.err


Ids = dict[str, int]


def set_columns(engine: Engine, event_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(EVENT_TABLE).where(EVENT_TABLE.c.id == event_id).values(values))


def edit_summary(engine: Engine, ids: Ids) -> int:
    set_columns(engine, ids["a1"], summary="TENANT_A nothing happened")
    return ids["a1"]


def edit_payload(engine: Engine, ids: Ids) -> int:
    set_columns(engine, ids["a2"], payload={"label": "a2", "pressure": 99})
    return ids["a2"]


def delete_a_middle_row(engine: Engine, ids: Ids) -> int:
    with engine.begin() as connection:
        connection.execute(delete(EVENT_TABLE).where(EVENT_TABLE.c.id == ids["a1"]))
    return ids["a2"]


def _forge_between_a0_and_a1(engine: Engine, ids: Ids, *, valid_own_hash: bool) -> None:
    """A forged A event in the id gap left by B's event (which the forger removes)."""
    with engine.begin() as connection:
        rows = {row["id"]: dict(row) for row in connection.execute(
            sa.select(EVENT_TABLE).where(EVENT_TABLE.c.id.in_([ids["a0"], ids["a1"]]))
        ).mappings()}
        connection.execute(delete(EVENT_TABLE).where(EVENT_TABLE.c.id == ids["b0"]))
        forged = {
            **rows[ids["a1"]],
            "id": ids["b0"],
            "summary": "TENANT_A valve opened by hand",
            "prev_hash": rows[ids["a0"]]["hash"],
        }
        if valid_own_hash:
            forged["hash"] = event_hash(forged)
        connection.execute(insert(EVENT_TABLE).values(forged))


def insert_a_forged_row(engine: Engine, ids: Ids) -> int:
    _forge_between_a0_and_a1(engine, ids, valid_own_hash=True)
    return ids["a1"]  # the forged row links to a0, but a1 does not link to it


def insert_a_row_with_a_copied_hash(engine: Engine, ids: Ids) -> int:
    _forge_between_a0_and_a1(engine, ids, valid_own_hash=False)
    return ids["b0"]


def swap_two_rows(engine: Engine, ids: Ids) -> int:
    with engine.begin() as connection:
        for old, new in ((ids["a1"], -1), (ids["a2"], ids["a1"]), (-1, ids["a2"])):
            connection.execute(
                update(EVENT_TABLE).where(EVENT_TABLE.c.id == old).values(id=new)
            )
    return ids["a1"]


@pytest.mark.parametrize(
    "tamper",
    [
        edit_summary,
        edit_payload,
        delete_a_middle_row,
        insert_a_forged_row,
        insert_a_row_with_a_copied_hash,
        swap_two_rows,
    ],
    ids=lambda tamper: tamper.__name__,
)
def test_tampering_is_caught_by_the_api_and_the_cli(
    tamper: Callable[[Engine, Ids], int],
    database_url: str,
    client: TestClient,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)  # (an AUTH event before a0)
    ids = {"a0": record(session_factory, tenant_a, "a0")}
    ids["b0"] = record(session_factory, tenant_b, "b0")
    for label in ("a1", "a2", "a3"):
        ids[label] = record(session_factory, tenant_a, label)
    assert client.get(VERIFY_URL, headers=headers).json()["ok"] is True

    first_bad_id = tamper(owner_engine, ids)

    chain_ids = [row["id"] for row in chain_of(owner_engine, tenant_a)]
    response = client.get(VERIFY_URL, headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "events": chain_ids.index(first_bad_id) + 1,
        "first_bad_id": first_bad_id,
        "head_hash": None,
    }
    status, lines, errors = run_verify(database_url, monkeypatch, capsys)
    assert status == 1, lines
    broken_at = lines.index(f"first bad event: {first_bad_id}")
    assert lines[broken_at - 1] == (
        f"tenant TENANT_A: BROKEN, events checked: {chain_ids.index(first_bad_id) + 1}"
    )
    assert lines[-1].endswith("broken chains: 1")
    assert errors == ""
    # B's chain is untouched (or, where the forger removed its newest event, shorter).
    assert run_verify(database_url, monkeypatch, capsys, "--tenant", "TENANT_B")[0] == 0


def test_the_cli_counts_the_events_it_checked(
    database_url: str,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
    tenant_b: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for label in ("a0", "a1", "a2"):
        record(session_factory, tenant_a, label)
    record(session_factory, tenant_b, "b0")

    chain_a, chain_b = chain_of(owner_engine, tenant_a), chain_of(owner_engine, tenant_b)
    count_a, count_b = len(chain_a), len(chain_b)
    head_a, head_b = chain_a[-1]["hash"], chain_b[-1]["hash"]

    status, lines, _ = run_verify(database_url, monkeypatch, capsys)
    assert status == 0
    assert lines == [
        f"tenant TENANT_A: intact, events checked: {count_a}, head {head_a}",
        f"tenant TENANT_B: intact, events checked: {count_b}, head {head_b}",
        f"tenants checked: 2, events checked: {count_a + count_b}, broken chains: 0",
    ]
    status, lines, _ = run_verify(database_url, monkeypatch, capsys, "--tenant", "TENANT_B")
    assert status == 0
    assert lines == [
        f"tenant TENANT_B: intact, events checked: {count_b}, head {head_b}",
        f"tenants checked: 1, events checked: {count_b}, broken chains: 0",
    ]


def test_the_cli_refuses_an_unknown_tenant(
    database_url: str,
    tenant_a: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, lines, errors = run_verify(database_url, monkeypatch, capsys, "--tenant", "NOPE")
    assert (status, lines, errors) == (1, [], "error: no tenant with code NOPE\n")


def test_only_a_tenant_admin_may_verify(client: TestClient, tenant_a: TenantWorld) -> None:
    assert client.get(VERIFY_URL).status_code == 401
    for role, expected in (("viewer", 403), ("engineer", 403), ("tenant_admin", 200)):
        headers = bearer_headers(client, tenant_a.users[role].email)
        assert client.get(VERIFY_URL, headers=headers).status_code == expected, role


# --- the database refuses edits by the app (PostgreSQL) ------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        update(BlackBoxEvent).values(summary="rewritten"),
        delete(BlackBoxEvent),
        update(BlackBoxIncident).values(title="rewritten"),
        delete(BlackBoxIncident),
    ],
    ids=["update event", "delete event", "update incident", "delete incident"],
)
def test_the_app_role_may_not_edit_or_delete_blackbox_rows(
    statement: sa.Executable,
    backend: str,
    owner_engine: Engine,
    session_factory: sessionmaker[Session],
    tenant_a: TenantWorld,
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no roles to revoke from")
    record(session_factory, tenant_a, "kept")
    before = chain_of(owner_engine, tenant_a)
    with (
        tenant_session(session_factory, tenant_a.tenant.id) as session,
        pytest.raises(ProgrammingError, match="permission denied") as refused,
    ):
        session.execute(statement)
    assert isinstance(refused.value.orig, psycopg2.errors.InsufficientPrivilege)
    assert chain_of(owner_engine, tenant_a) == before


# --- migration 0002 chains the events that already exist -----------------------------------

# The 0001 shapes of the rows arranged below (not the models, which grow).
TENANT_0001 = sa.table(
    "tenant",
    sa.column("id", sa.Integer()),
    sa.column("code", sa.String()),
    sa.column("name", sa.String()),
    sa.column("is_active", sa.Boolean()),
    sa.column("timezone", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
EVENT_0001 = sa.table(
    "blackbox_event",
    sa.column("id", sa.Integer()),
    sa.column("tenant_id", sa.Integer()),
    sa.column("asset_id", sa.Integer()),
    sa.column("source_system", sa.String()),
    sa.column("source_type", sa.String()),
    sa.column("event_category", sa.String()),
    sa.column("event_time", UTCDateTime()),
    sa.column("severity", sa.String()),
    sa.column("summary", sa.String()),
    sa.column("payload", JSONDocument),
    sa.column("created_at", UTCDateTime()),
)
INCIDENT_0001 = sa.table(
    "blackbox_incident",
    sa.column("id", sa.Integer()),
    sa.column("tenant_id", sa.Integer()),
    sa.column("title", sa.String()),
    sa.column("severity", sa.String()),
    sa.column("status", sa.String()),
    sa.column("opened_at", UTCDateTime()),
    sa.column("first_event_id", sa.Integer()),
    sa.column("last_event_id", sa.Integer()),
    sa.column("event_count", sa.Integer()),
)
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_at("0001", request.param, tmp_path) as url:
        yield url


def arrange_0001_rows(engine: Engine) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Two tenants' events, interleaved, and an incident pointing at events: tenant ids and
    each tenant's event ids."""
    payloads = [{"n": 0, "peak": 1e20}, {"n": 1}, {"n": 2, "zero": -0.0}, {"n": 3}, {"n": 4}]
    tenant_ids: dict[str, int] = {}
    event_ids: dict[str, list[int]] = {"OLD_A": [], "OLD_B": []}
    with engine.begin() as connection:
        for code in event_ids:
            tenant_ids[code] = connection.execute(
                insert(TENANT_0001)
                .values(code=code, name=code, is_active=True, timezone="UTC", created_at=T0)
                .returning(TENANT_0001.c.id)
            ).scalar_one()
        for number, payload in enumerate(payloads):
            code = "OLD_A" if number % 2 == 0 else "OLD_B"
            new_event = insert(EVENT_0001).values(
                tenant_id=tenant_ids[code], asset_id=None, source_system="OPTRIA_AUTH",
                source_type="LOGIN", event_category="AUTH", severity="INFO",
                summary=f"old event {number}", payload=payload,
                event_time=T0 + timedelta(seconds=number), created_at=T0,
            ).returning(EVENT_0001.c.id)
            event_ids[code].append(connection.execute(new_event).scalar_one())
        connection.execute(
            insert(INCIDENT_0001).values(
                tenant_id=tenant_ids["OLD_A"], title="old incident", severity="WARNING",
                status="open", opened_at=T0, first_event_id=event_ids["OLD_A"][0],
                last_event_id=event_ids["OLD_A"][-1], event_count=3,
            )
        )
    return tenant_ids, event_ids


@contextmanager
def migrating_as_table_owner(url: str) -> Iterator[sa.Connection]:
    """A connection to migrate with. On PostgreSQL it runs as a non-superuser owning the
    BlackBox tables, as on a managed server: FORCE ROW LEVEL SECURITY then hides their rows
    from it unless the migration shows it each tenant in turn."""
    engine = create_db_engine(url, as_app_role=False)
    role = f"optria_owner_{uuid.uuid4().hex[:12]}"
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as connection:
            if postgres:
                connection.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS")
                for table in ("blackbox_event", "blackbox_incident", "alembic_version"):
                    connection.exec_driver_sql(f"ALTER TABLE {table} OWNER TO {role}")
                connection.exec_driver_sql(f"GRANT CREATE ON SCHEMA public TO {role}")
                connection.exec_driver_sql(f"GRANT SELECT ON tenant TO {role}")
                connection.exec_driver_sql(f"SET ROLE {role}")
                connection.commit()
            yield connection
    finally:
        if postgres:
            with engine.begin() as connection:
                connection.exec_driver_sql("RESET ROLE")  # a pooled connection may keep it
                if connection.execute(
                    sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
                ).first():
                    connection.exec_driver_sql(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
                    connection.exec_driver_sql(f"DROP OWNED BY {role}")
                    connection.exec_driver_sql(f"DROP ROLE {role}")
        engine.dispose()


def test_migration_0002_chains_the_events_already_there(database_at_0001: str) -> None:
    owner = create_db_engine(database_at_0001, as_app_role=False)
    app_engine = create_db_engine(database_at_0001)
    try:
        tenant_ids, event_ids = arrange_0001_rows(owner)
        incidents_before = owner_rows(owner, INCIDENT_0001)

        with migrating_as_table_owner(database_at_0001) as connection:
            alembic_upgrade(connection, "0002")
            connection.commit()

        for code, ids in event_ids.items():
            chain = events(owner, tenant_id=tenant_ids[code])
            assert [row["id"] for row in chain] == ids
            assert_linked(chain)
        assert owner_rows(owner, INCIDENT_0001) == incidents_before

        # The app, migrated the usual way to the newest schema, appends to the chain.
        migrate(test_settings(database_at_0001))
        factory = create_session_factory(app_engine)
        with tenant_session(factory, tenant_ids["OLD_A"]) as session:
            record_event(
                session, tenant_id=tenant_ids["OLD_A"], asset_id=None, source_system="TEST_RIG",
                source_type="UNIT", event_category="SENSOR", severity="INFO",
                summary="after the migration", payload={},
            )
            session.commit()
        with tenant_session(factory, tenant_ids["OLD_A"]) as session:
            result = verify_chain(session)
        assert (result.ok, result.events_checked) == (True, 4)
    finally:
        app_engine.dispose()
        owner.dispose()


def owner_rows(engine: Engine, table: sa.TableClause) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(table)).mappings()]
