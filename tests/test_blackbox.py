"""BlackBox API and page (DESIGN.md §5, §6, §7): order, filters, limits, UTC, tenancy, fragments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from webapp.blackbox.models import BlackBoxIncident
from webapp.blackbox.service import record_event
from webapp.db import tenant_session

EVENT_FIELDS = {
    "id",
    "asset_id",
    "source_system",
    "source_type",
    "event_category",
    "event_time",
    "severity",
    "summary",
    "payload",
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    minutes: float
    category: str = "SENSOR"
    severity: str = "INFO"
    asset: int | None = 0  # index into the world's assets, or None


def add_events(
    factory: sessionmaker[Session], world: TenantWorld, specs: list[Spec]
) -> list[dict[str, object]]:
    """One commit per event, so ids grow in the order given."""
    created = []
    for number, spec in enumerate(specs):
        with tenant_session(factory, world.tenant.id) as session:
            asset_id = None if spec.asset is None else world.assets[spec.asset].id
            event = record_event(
                session,
                tenant_id=world.tenant.id,
                asset_id=asset_id,
                source_system="TEST_RIG",
                source_type="UNIT",
                event_category=spec.category,
                severity=spec.severity,
                summary=f"{world.tenant.code} event {number}",
                payload={"n": number, "tenant": world.tenant.code},
                event_time=T0 + timedelta(minutes=spec.minutes),
            )
            session.commit()
            created.append(
                {
                    "id": event.id,
                    "time": event.event_time,
                    "category": spec.category,
                    "severity": spec.severity,
                    "asset_id": asset_id,
                }
            )
    return created


def newest_first(events: list[dict[str, object]]) -> list[int]:
    return [e["id"] for e in sorted(events, key=lambda e: (e["time"], e["id"]), reverse=True)]  # type: ignore[arg-type, return-value]


def fetch(client: TestClient, headers: dict[str, str], **params: object):  # type: ignore[no-untyped-def]
    return client.get("/api/blackbox/events", params=params, headers=headers)


def mine(events: list[dict]) -> list[int]:
    """Ids of the test's own events (the login itself writes an AUTH event)."""
    return [e["id"] for e in events if e["source_system"] == "TEST_RIG"]


SPECS = [
    Spec(0, "SENSOR", "INFO", 0),
    Spec(5, "CONNECTOR", "WARNING", None),
    Spec(10, "SENSOR", "INFO", 1),
    Spec(10, "ALARM", "CRITICAL", 1),  # same instant as the previous: id breaks the tie
    Spec(10, "SENSOR", "WARNING", 0),
    Spec(20, "SENSOR", "INFO", 0),
    Spec(-30, "OPERATOR", "INFO", None),
]


@pytest.fixture
def world(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> tuple[TenantWorld, list[dict[str, object]], list[dict[str, object]]]:
    events_a = add_events(session_factory, tenant_a, SPECS)
    events_b = add_events(session_factory, tenant_b, [Spec(15), Spec(15, "ALARM", "CRITICAL")])
    return tenant_a, events_a, events_b


# --- /api/blackbox/events --------------------------------------------------------------------


def test_events_are_newest_first_by_time_then_id(client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, events_b = world
    # A tenant admin: logins (AUTH) are listed for admins only (§18, test_blackbox_screen.py).
    headers = bearer_headers(client, tenant_a.admin.email)
    response = fetch(client, headers)
    assert response.status_code == 200
    listed = response.json()["events"]
    assert mine(listed) == newest_first(events_a)
    tie = [e["id"] for e in events_a if e["time"] == T0 + timedelta(minutes=10)]
    assert mine(listed)[1:4] == sorted(tie, reverse=True)
    # The login's own AUTH event happened now: it is the newest; the world's users were
    # created (CONFIG) just before.
    assert listed[0]["event_category"] == "AUTH"
    assert [e["event_category"] for e in listed[1 : 1 + len(tenant_a.users)]] == [
        "CONFIG"
    ] * len(tenant_a.users)
    assert len(listed) == len(events_a) + 1 + len(tenant_a.users)
    # Nothing from the other tenant.
    assert not {e["id"] for e in events_b} & {e["id"] for e in listed}
    assert all(e["payload"].get("tenant") in (None, "TENANT_A") for e in listed)


def test_event_shape_and_utc_timestamps(client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    listed = fetch(client, headers).json()["events"]
    for event in listed:
        assert set(event) == EVENT_FIELDS
        assert ISO_UTC.match(event["event_time"]), event["event_time"]
    by_id = {e["id"]: e for e in listed}
    first = by_id[events_a[0]["id"]]
    assert first["event_time"] == "2025-03-01T08:00:00Z"
    assert first == {
        "id": events_a[0]["id"],
        "asset_id": tenant_a.assets[0].id,
        "source_system": "TEST_RIG",
        "source_type": "UNIT",
        "event_category": "SENSOR",
        "event_time": "2025-03-01T08:00:00Z",
        "severity": "INFO",
        "summary": "TENANT_A event 0",
        "payload": {"n": 0, "tenant": "TENANT_A"},
    }


def test_event_with_microseconds_and_a_non_utc_input_time_comes_back_in_utc(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    riyadh = datetime(2025, 3, 1, 11, 0, 0, 250000, tzinfo=ZoneInfo("Asia/Riyadh"))
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        record_event(
            session,
            tenant_id=tenant_a.tenant.id,
            asset_id=None,
            source_system="TEST_RIG",
            source_type="UNIT",
            event_category="SENSOR",
            severity="INFO",
            summary="x",
            payload={},
            event_time=riyadh,
        )
        session.commit()
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    listed = fetch(client, headers, category="SENSOR").json()["events"]
    assert [e["event_time"] for e in listed] == ["2025-03-01T08:00:00.250000Z"]


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"category": "SENSOR"}, lambda e: e["category"] == "SENSOR"),
        ({"severity": "WARNING"}, lambda e: e["severity"] == "WARNING"),
        (
            {"category": "SENSOR", "severity": "INFO"},
            lambda e: e["category"] == "SENSOR" and e["severity"] == "INFO",
        ),
        ({"category": "NOTHING_LIKE_THIS"}, lambda e: False),
    ],
)
def test_category_and_severity_filters(client: TestClient, world, params, keep) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    listed = fetch(client, headers, **params).json()["events"]
    assert [e["id"] for e in listed] == newest_first([e for e in events_a if keep(e)])


def test_asset_filter(client: TestClient, world, tenant_b: TenantWorld) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    asset_id = tenant_a.assets[1].id
    listed = fetch(client, headers, asset_id=asset_id).json()["events"]
    assert [e["id"] for e in listed] == newest_first(
        [e for e in events_a if e["asset_id"] == asset_id]
    )
    assert {e["asset_id"] for e in listed} == {asset_id}
    # Another tenant's asset id shows nothing, exactly like an unknown one.
    assert fetch(client, headers, asset_id=tenant_b.assets[0].id).json() == {"events": []}
    assert fetch(client, headers, asset_id=999999).json() == {"events": []}


@pytest.mark.parametrize(
    "since",
    [
        "2025-03-01T08:10:00Z",
        "2025-03-01T08:10:00",  # naive means UTC
        "2025-03-01T11:10:00+03:00",
        "2025-03-01T08:10:00.000000+00:00",
    ],
)
def test_since_is_inclusive_and_understands_offsets(
    client: TestClient,
    world,
    since: str,  # type: ignore[no-untyped-def]
) -> None:
    tenant_a, events_a, _ = world
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    listed = fetch(client, headers, since=since, category="SENSOR").json()["events"]
    cutoff = T0 + timedelta(minutes=10)
    expected = [e for e in events_a if e["time"] >= cutoff and e["category"] == "SENSOR"]
    assert [e["id"] for e in listed] == newest_first(expected)
    assert len(expected) == 3  # two of them exactly at `since`


def test_limit_default_and_bounds(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        for minute in range(130):
            record_event(
                session,
                tenant_id=tenant_a.tenant.id,
                asset_id=None,
                source_system="TEST_RIG",
                source_type="UNIT",
                event_category="SENSOR",
                severity="INFO",
                summary=f"e{minute}",
                payload={"minute": minute},
                event_time=T0 + timedelta(minutes=minute),
            )
        session.commit()
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    default = fetch(client, headers, category="SENSOR").json()["events"]
    assert len(default) == 100
    assert [e["payload"]["minute"] for e in default] == list(range(129, 29, -1))
    assert len(fetch(client, headers, category="SENSOR", limit=1).json()["events"]) == 1
    assert len(fetch(client, headers, category="SENSOR", limit=1000).json()["events"]) == 130
    for bad in (0, -1, 1001, "many"):
        response = fetch(client, headers, limit=bad)
        assert response.status_code == 422, bad
        assert ["query", "limit"] in [error["loc"] for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-13-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"since": "9999-12-31T23:59:59-01:00"}, "since"),
        ({"asset_id": 0}, "asset_id"),
        ({"asset_id": 2**31}, "asset_id"),
        ({"asset_id": "P-101"}, "asset_id"),
    ],
)
def test_bad_query_parameters_are_422_naming_them(
    client: TestClient, tenant_a: TenantWorld, params: dict[str, object], field: str
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    response = fetch(client, headers, **params)
    assert response.status_code == 422
    assert ["query", field] in [error["loc"] for error in response.json()["detail"]]


# --- /api/blackbox/incidents -----------------------------------------------------------------


def add_incidents(
    factory: sessionmaker[Session], world: TenantWorld, event_ids: list[int] | None = None
) -> dict[str, int]:
    with tenant_session(factory, world.tenant.id) as session:
        incidents = {
            "closed": BlackBoxIncident(
                asset_id=world.assets[0].id,
                title=f"{world.tenant.code} trip, resolved",
                severity="CRITICAL",
                status="closed",
                opened_at=T0,
                acknowledged_at=T0 + timedelta(minutes=3),
                closed_at=T0 + timedelta(hours=2),
                event_count=4,
            ),
            "acknowledged": BlackBoxIncident(
                asset_id=world.assets[1].id,
                title=f"{world.tenant.code} high vibration",
                severity="WARNING",
                status="acknowledged",
                opened_at=T0 + timedelta(hours=1),
                acknowledged_at=T0 + timedelta(hours=1, minutes=5),
                event_count=2,
            ),
            "open": BlackBoxIncident(
                asset_id=None,
                title=f"{world.tenant.code} historian unreachable",
                severity="WARNING",
                status="open",
                opened_at=T0 - timedelta(days=1),
                first_event_id=event_ids[0] if event_ids else None,
                last_event_id=event_ids[-1] if event_ids else None,
                event_count=len(event_ids or []),
            ),
        }
        session.add_all(incidents.values())
        session.commit()
        return {status: incident.id for status, incident in incidents.items()}


def test_incidents_list_open_first_with_utc_times(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world,  # type: ignore[no-untyped-def]
    tenant_b: TenantWorld,
) -> None:
    tenant_a, events_a, _ = world
    tenant_b_incidents = add_incidents(session_factory, tenant_b)
    ids = add_incidents(session_factory, tenant_a, [events_a[0]["id"], events_a[2]["id"]])
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    response = client.get("/api/blackbox/incidents", headers=headers)
    assert response.status_code == 200
    incidents = response.json()["incidents"]
    assert [i["id"] for i in incidents] == [ids["open"], ids["acknowledged"], ids["closed"]]
    assert not set(tenant_b_incidents.values()) & {i["id"] for i in incidents}
    assert tenant_b.tenant.code not in response.text
    by_status = {i["status"]: i for i in incidents}
    closed = by_status["closed"]
    assert closed["opened_at"] == "2025-03-01T08:00:00Z"
    assert closed["acknowledged_at"] == "2025-03-01T08:03:00Z"
    assert closed["closed_at"] == "2025-03-01T10:00:00Z"
    assert closed["severity"] == "CRITICAL" and closed["event_count"] == 4
    assert closed["asset_id"] == tenant_a.assets[0].id
    opened = by_status["open"]
    assert opened["acknowledged_at"] is None and opened["closed_at"] is None
    assert (opened["first_event_id"], opened["last_event_id"]) == (
        events_a[0]["id"],
        events_a[2]["id"],
    )
    for incident in incidents:
        for key in ("opened_at", "acknowledged_at", "closed_at"):
            assert incident[key] is None or ISO_UTC.match(incident[key]), incident[key]


def test_incidents_empty_list(client: TestClient, tenant_a: TenantWorld) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    assert client.get("/api/blackbox/incidents", headers=headers).json() == {"incidents": []}


# --- /blackbox page --------------------------------------------------------------------------


def vary(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {part.strip() for part in response.headers.get("vary", "").split(",")}


def rows(html: str, role: str) -> list:  # type: ignore[type-arg]
    return BeautifulSoup(html, "html.parser").select(f"[data-role={role}]")


def event_ids_shown(html: str) -> list[int]:
    return [int(row["data-event-id"]) for row in rows(html, "event-row")]


def test_blackbox_page_shows_incidents_and_events(
    client: TestClient,
    session_factory: sessionmaker[Session],
    world,  # type: ignore[no-untyped-def]
) -> None:
    tenant_a, events_a, events_b = world
    ids = add_incidents(session_factory, tenant_a)
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/blackbox")
    assert response.status_code == 200
    assert "HX-Request" in vary(response)
    assert "<html" in response.text
    incident_rows = rows(response.text, "incident-row")
    assert [int(r["data-incident-id"]) for r in incident_rows] == [
        ids["open"],
        ids["acknowledged"],
        ids["closed"],
    ]
    assert "TENANT_A historian unreachable" in incident_rows[0].get_text()
    shown = event_ids_shown(response.text)
    assert [i for i in shown if i in {e["id"] for e in events_a}] == newest_first(events_a)
    assert not {e["id"] for e in events_b} & set(shown)
    assert "TENANT_B" not in response.text
    # The first of them carries its UTC instant; the text shows the plant's time (UTC+3).
    row = next(
        r for r in rows(response.text, "event-row") if int(r["data-event-id"]) == events_a[0]["id"]
    )
    time_tag = row.select_one("time")
    assert time_tag["datetime"] == "2025-03-01T08:00:00Z"
    assert "11:00" in time_tag.get_text()


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("category=SENSOR", lambda e: e["category"] == "SENSOR"),
        ("severity=WARNING", lambda e: e["severity"] == "WARNING"),
        (
            "category=SENSOR&severity=WARNING",
            lambda e: e["category"] == "SENSOR" and e["severity"] == "WARNING",
        ),
        ("category=ALARM&severity=CRITICAL", lambda e: e["category"] == "ALARM"),
    ],
)
def test_blackbox_page_filters_events(client: TestClient, world, query: str, keep) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get(f"/blackbox?{query}")
    assert response.status_code == 200
    assert event_ids_shown(response.text) == newest_first([e for e in events_a if keep(e)])
    soup = BeautifulSoup(response.text, "html.parser")
    for pair in query.split("&"):
        name, value = pair.split("=")
        selected = soup.select_one(f'select[name="{name}"] option[selected]')
        assert selected is not None and selected["value"] == value


def test_blackbox_page_unknown_filter_means_all(client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/blackbox?category=&severity=NOPE")
    assert response.status_code == 200
    shown = event_ids_shown(response.text)
    assert set(newest_first(events_a)) <= set(shown)


def test_blackbox_htmx_request_gets_only_the_events_block(client: TestClient, world) -> None:  # type: ignore[no-untyped-def]
    tenant_a, events_a, _ = world
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/blackbox?severity=WARNING", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in vary(response)
    assert "<html" not in response.text.lower() and "<body" not in response.text.lower()
    assert rows(response.text, "incident-row") == []
    assert 'id="blackbox-events"' not in response.text  # the block goes *inside* the target
    assert event_ids_shown(response.text) == newest_first(
        [e for e in events_a if e["severity"] == "WARNING"]
    )
    # A history restore gets the whole page again.
    restore = client.get(
        "/blackbox?severity=WARNING",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text


def test_blackbox_page_when_empty(client: TestClient, tenant_a: TenantWorld) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/blackbox?category=ALARM")
    assert response.status_code == 200
    assert rows(response.text, "event-row") == []
    assert rows(response.text, "incident-row") == []
