"""Alarms end to end (DESIGN.md §14), both backends: limits through the API, readings written to a
real SQL historian that the live hub polls, the app's own scanner turning them into
occurrences, and the lifecycle an operator drives — every state, every BlackBox event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import add_integration, add_mapping, events, make_sql_historian
from tests.test_live_streams import read_events
from webapp.alarms.evaluation import Transition
from webapp.alarms.models import AlarmLimit
from webapp.alarms.service import apply_transition, get_limit
from webapp.blackbox.service import record_event
from webapp.db import tenant_session, utcnow
from webapp.scanner import Leadership, Scanner
from webapp.series import datetime_to_ns

DEADLINE_SECONDS = 8.0


@dataclass
class Plant:
    """One mapped signal of tenant A's first asset on an SQLite historian the test writes to."""

    client: TestClient
    world: TenantWorld
    historian: Engine
    integration_id: int
    mapping_id: int
    headers: dict[str, dict[str, str]]  # by role
    tag: str = "P-101.VIB"

    def write(self, value: float | None, quality: str = "good") -> None:
        """A new reading in the historian; returns once the scanner has evaluated it (when a
        limit watches the signal), so no reading is skipped by writing the next too soon."""
        moment = datetime.now(UTC)
        with self.historian.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO historian (tag, ts, value, quality) VALUES (:t, :ts, :v, :q)"),
                {"t": self.tag, "ts": moment.replace(tzinfo=None), "v": value, "q": quality},
            )
        feed = self.client.app.state.scanner.feeds.get((self.integration_id, self.tag))
        if feed is None:
            return
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (feed.last_ns or 0) < datetime_to_ns(moment):
            assert time.monotonic() < deadline, "the hub never polled the reading"
            time.sleep(0.02)
        self.scanner_ticks(1)

    def limit(self, role: str = "engineer", **fields: Any) -> dict[str, Any]:
        """Create a limit and return once the scanner watches its signal."""
        body = {"mapping_id": self.mapping_id, "priority": "high", **fields}
        response = self.client.post("/api/alarm-limits", json=body, headers=self.headers[role])
        assert response.status_code == 201, response.text
        scanner, deadline = self.client.app.state.scanner, time.monotonic() + DEADLINE_SECONDS
        while (self.integration_id, self.tag) not in scanner.feeds:
            assert time.monotonic() < deadline, "the scanner never took up the limit"
            time.sleep(0.02)
        self.scanner_ticks(1)
        return response.json()

    def alarms(self, role: str = "viewer", **query: Any) -> list[dict[str, Any]]:
        response = self.client.get("/api/alarms", params=query, headers=self.headers[role])
        assert response.status_code == 200, response.text
        return response.json()["alarms"]

    def await_alarms(
        self, check: Callable[[list[dict[str, Any]]], bool], **query: Any
    ) -> list[dict[str, Any]]:
        """Until the listed alarms satisfy `check` (the scanner works on its own tick)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            alarms = self.alarms(**query)
            if check(alarms):
                return alarms
            assert time.monotonic() < deadline, f"alarms never got there: {alarms}"
            time.sleep(0.05)

    def scanner_ticks(self, count: int) -> None:
        """Until the app's scanner has completed `count` more ticks."""
        scanner = self.client.app.state.scanner
        target, deadline = scanner.ticks + count, time.monotonic() + DEADLINE_SECONDS
        while scanner.ticks < target:
            assert time.monotonic() < deadline, "the scanner stopped ticking"
            time.sleep(0.02)


@pytest.fixture
def plant(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tmp_path: Path,
) -> Iterator[Plant]:
    url = make_sql_historian(tmp_path / "historian.db", [("P-101.VIB", utcnow(), 1.0, "good")])
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql",
                                  name="historian", config={"url": url, "table": "historian"})
    mapping = add_mapping(session_factory, tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
                          integration_id=integration, metric="vibration_rms", tag="P-101.VIB",
                          unit="mm/s")
    headers = {role: bearer_headers(client, user.email) for role, user in tenant_a.users.items()}
    historian = sa.create_engine(url)
    yield Plant(client, tenant_a, historian, integration, mapping, headers)
    historian.dispose()


def alarm_events(engine: Engine, tenant_id: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e["source_type"], e["payload"]) for e in events(engine, tenant_id=tenant_id,
                                                              category="ALARM")]


def one(alarms: list[dict[str, Any]]) -> bool:
    return len(alarms) == 1


# --- the lifecycle through every state --------------------------------------------------------


def test_an_alarm_through_every_state(plant: Plant, owner_engine: Engine) -> None:
    a = plant.world.tenant.id
    limit = plant.limit(level="hi", threshold=10.0)
    assert alarm_events(owner_engine, a) == []

    plant.write(12.5)
    (alarm,) = plant.await_alarms(one)
    assert alarm == {
        "id": alarm["id"], "limit_id": limit["id"], "asset_id": plant.world.assets[0].id,
        "asset_code": "P-101", "metric": "vibration_rms", "level": "hi", "priority": "high",
        "state": "unack_active", "suppressed": None, "threshold": 10.0, "trigger_value": 12.5,
        "activated_at": alarm["activated_at"], "acknowledged_at": None, "acknowledged_by": None,
        "cleared_at": None, "closed_at": None,
    }
    assert alarm["activated_at"].endswith("Z")
    ((kind, payload),) = alarm_events(owner_engine, a)
    assert kind == "ACTIVATED"
    assert payload == {
        "alarm_id": alarm["id"], "limit_id": limit["id"], "metric": "vibration_rms",
        "level": "hi", "priority": "high", "threshold": 10.0, "value": 12.5, "user_id": None,
    }
    (event,) = events(owner_engine, tenant_id=a, category="ALARM")
    assert (event["severity"], event["asset_id"], event["source_system"]) == (
        "CRITICAL", plant.world.assets[0].id, "OPTRIA_ALARMS"
    )

    # unack_active → ack_active
    operator = plant.world.users["operator"]
    acked = plant.client.post(f"/api/alarms/{alarm['id']}/ack", json={"comment": "on it"},
                              headers=plant.headers["operator"])
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "ack_active"
    assert acked.json()["acknowledged_by"] == operator.id
    again = plant.client.post(f"/api/alarms/{alarm['id']}/ack", headers=plant.headers["operator"])
    assert again.status_code == 409

    # ack_active → closed when the value returns to normal
    plant.write(4.0)
    plant.await_alarms(lambda alarms: alarms == [])
    (closed,) = plant.alarms(state="closed")
    assert closed["state"] == "closed" and closed["cleared_at"] and closed["closed_at"]
    assert [kind for kind, _ in alarm_events(owner_engine, a)] == [
        "ACTIVATED", "ACKNOWLEDGED", "CLEARED", "CLOSED",
    ]
    ack_payload = alarm_events(owner_engine, a)[1][1]
    assert (ack_payload["user_id"], ack_payload["comment"]) == (operator.id, "on it")
    assert plant.client.post(f"/api/alarms/{alarm['id']}/ack",
                             headers=plant.headers["operator"]).status_code == 409

    # A new occurrence: unack_active → rtn_unack → (returns) unack_active again, same id
    plant.write(11.0)
    (second,) = plant.await_alarms(one)
    assert second["id"] != alarm["id"] and second["state"] == "unack_active"
    plant.write(3.0)
    plant.await_alarms(lambda alarms: alarms and alarms[0]["state"] == "rtn_unack")
    plant.write(15.0)
    (back,) = plant.await_alarms(lambda alarms: alarms and alarms[0]["state"] == "unack_active")
    assert back["id"] == second["id"], "the condition returned: the same occurrence"
    plant.write(3.0)
    plant.await_alarms(lambda alarms: alarms and alarms[0]["state"] == "rtn_unack")

    # rtn_unack → closed by acknowledging
    done = plant.client.post(f"/api/alarms/{second['id']}/ack", headers=plant.headers["operator"])
    assert done.status_code == 200 and done.json()["state"] == "closed"
    assert [kind for kind, _ in alarm_events(owner_engine, a)][4:] == [
        "ACTIVATED", "CLEARED", "ACTIVATED", "CLEARED", "ACKNOWLEDGED", "CLOSED",
    ]
    assert plant.alarms() == []

    # The incident keeps its events' count and ends.
    with owner_engine.connect() as connection:
        incident = connection.execute(
            sa.text("SELECT first_event_id, last_event_id, event_count, title FROM "
                    "blackbox_incident WHERE id = :id"), {"id": second["id"]}
        ).one()
    ids = [e["id"] for e in events(owner_engine, tenant_id=a, category="ALARM")]
    assert (incident.first_event_id, incident.last_event_id, incident.event_count) == (
        ids[4], ids[-1], 6,
    )
    assert incident.title == "P-101 Vibration RMS high (11 mm/s ≥ 10)"
    kpis = plant.client.get("/api/alarms/kpis", headers=plant.headers["viewer"]).json()
    assert kpis["activations"] == 3


def test_a_bad_reading_or_a_dead_source_changes_no_state(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0)
    plant.write(99.0, quality="bad")
    plant.write(None)
    assert plant.alarms() == []
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    assert alarm["trigger_value"] == 12.0
    with plant.historian.begin() as connection:  # the historian's table is gone: reads fail
        connection.execute(sa.text("DROP TABLE historian"))
    feed = plant.client.app.state.scanner.feeds[(plant.integration_id, plant.tag)]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while feed.error is None:
        assert time.monotonic() < deadline, "the hub never noticed the dead source"
        time.sleep(0.02)
    plant.scanner_ticks(3)
    assert [x["state"] for x in plant.alarms()] == ["unack_active"]
    assert [kind for kind, _ in alarm_events(owner_engine, plant.world.tenant.id)] == [
        "ACTIVATED"
    ]


def test_levels_are_independent_and_deactivating_a_limit_closes_its_occurrence(
    plant: Plant, owner_engine: Engine
) -> None:
    hi = plant.limit(level="hi", threshold=10.0, priority="medium")
    hihi = plant.limit(level="hihi", threshold=20.0, priority="high")
    plant.write(25.0)
    alarms = plant.await_alarms(lambda found: len(found) == 2)
    assert [(x["level"], x["priority"]) for x in alarms] == [("hihi", "high"), ("hi", "medium")]
    patched = plant.client.patch(f"/api/alarm-limits/{hihi['id']}", json={"is_active": False},
                                 headers=plant.headers["engineer"])
    assert patched.status_code == 200 and patched.json()["is_active"] is False
    (left,) = plant.alarms()
    assert left["limit_id"] == hi["id"]
    (closed,) = plant.alarms(state="closed")
    assert closed["limit_id"] == hihi["id"]
    kinds = [kind for kind, _ in alarm_events(owner_engine, plant.world.tenant.id)]
    assert kinds.count("CLOSED") == 1 and kinds.count("ACTIVATED") == 2


# --- suppression ------------------------------------------------------------------------------


def test_shelving_and_out_of_service_suppress_without_stopping_the_record(
    plant: Plant, owner_engine: Engine
) -> None:
    a = plant.world.tenant.id
    limit = plant.limit(level="hi", threshold=10.0)
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    shelved = plant.client.post(f"/api/alarm-limits/{limit['id']}/shelve",
                                json={"minutes": 30, "reason": "sensor being recalibrated"},
                                headers=plant.headers["operator"])
    assert shelved.status_code == 200, shelved.text
    until = datetime.fromisoformat(shelved.json()["shelved_until"].replace("Z", "+00:00"))
    assert timedelta(minutes=29) < until - utcnow() <= timedelta(minutes=30)
    assert shelved.json()["shelve_reason"] == "sensor being recalibrated"
    assert plant.alarms() == []
    (suppressed,) = plant.alarms(state="suppressed")
    assert (suppressed["id"], suppressed["suppressed"]) == (alarm["id"], "shelved")
    # Suppressed occurrences still clear and close, and are recorded.
    plant.write(2.0)
    plant.await_alarms(lambda found: found and found[0]["state"] == "rtn_unack",
                       state="suppressed")
    unshelved = plant.client.post(f"/api/alarm-limits/{limit['id']}/unshelve",
                                  headers=plant.headers["operator"])
    assert unshelved.status_code == 200 and unshelved.json()["shelved_until"] is None
    assert [x["state"] for x in plant.alarms()] == ["rtn_unack"]

    out = plant.client.patch(f"/api/alarm-limits/{limit['id']}",
                             json={"out_of_service": True}, headers=plant.headers["engineer"])
    assert out.status_code == 200 and out.json()["out_of_service"] is True
    assert plant.alarms() == []
    assert plant.alarms(state="suppressed")[0]["suppressed"] == "out_of_service"
    kinds = [kind for kind, _ in alarm_events(owner_engine, a)]
    assert kinds == ["ACTIVATED", "SHELVED", "CLEARED", "UNSHELVED", "OUT_OF_SERVICE"]
    shelve_payload = alarm_events(owner_engine, a)[1][1]
    assert shelve_payload["user_id"] == plant.world.users["operator"].id
    assert shelve_payload["reason"] == "sensor being recalibrated"
    config = [e for e in events(owner_engine, tenant_id=a, category="CONFIG")
              if e["source_type"].startswith("ALARM_LIMIT")]
    assert [e["source_type"] for e in config] == ["ALARM_LIMIT_CREATED", "ALARM_LIMIT_UPDATED"]
    assert config[1]["payload"]["changes"] == {"out_of_service": [False, True]}


def test_shelving_ends_by_itself(
    plant: Plant, session_factory: sessionmaker[Session], owner_engine: Engine
) -> None:
    limit = plant.limit(level="hi", threshold=10.0)
    with owner_engine.begin() as connection:
        connection.execute(
            sa.update(AlarmLimit.__table__)
            .where(AlarmLimit.__table__.c.id == limit["id"])
            .values(shelved_until=utcnow() + timedelta(milliseconds=300), shelve_reason="x")
        )
    # Changed behind the app's back: the scanner would see it within PLAN_SECONDS; now.
    plant.client.app.state.scanner.invalidate()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        listed = plant.client.get("/api/alarm-limits", headers=plant.headers["viewer"]).json()
        if listed["limits"][0]["shelved_until"] is None:
            break
        assert time.monotonic() < deadline, "the shelve never ended"
        time.sleep(0.05)
    kinds = [(k, p["user_id"]) for k, p in alarm_events(owner_engine, plant.world.tenant.id)]
    assert kinds == [("UNSHELVED", None)]


# --- roles and validation -----------------------------------------------------------------------


def test_roles(plant: Plant) -> None:
    limit_body = {"mapping_id": plant.mapping_id, "level": "hi", "threshold": 1, "priority": "low"}
    for role in ("viewer", "operator"):
        response = plant.client.post("/api/alarm-limits", json=limit_body,
                                     headers=plant.headers[role])
        assert response.status_code == 403, role
    limit = plant.limit(level="hi", threshold=10.0)
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    assert plant.client.post(f"/api/alarms/{alarm['id']}/ack",
                             headers=plant.headers["viewer"]).status_code == 403
    for action in ("shelve", "unshelve"):
        response = plant.client.post(f"/api/alarm-limits/{limit['id']}/{action}",
                                     json={"minutes": 5, "reason": "r"} if action == "shelve"
                                     else None, headers=plant.headers["viewer"])
        assert response.status_code == 403, action
    assert plant.client.patch(f"/api/alarm-limits/{limit['id']}", json={"threshold": 11},
                              headers=plant.headers["operator"]).status_code == 403
    for role in ("viewer", "operator", "engineer", "tenant_admin"):
        assert plant.client.get("/api/alarms", headers=plant.headers[role]).status_code == 200
    assert plant.client.get("/api/alarms").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"level": "high", "threshold": 1, "priority": "high"}, "level"),
        ({"level": "hi", "threshold": "x", "priority": "high"}, "threshold"),
        ({"level": "hi", "threshold": 1, "priority": "urgent"}, "priority"),
        ({"level": "hi", "threshold": 1, "priority": "high", "deadband": -0.1}, "deadband"),
        ({"level": "hi", "threshold": 1, "priority": "high", "on_delay_seconds": 3601},
         "on_delay_seconds"),
        ({"level": "hi", "threshold": 1, "priority": "high", "off_delay_seconds": -1},
         "off_delay_seconds"),
        ({"level": "hi", "priority": "high"}, "threshold"),
        ({"level": "hi", "threshold": 1, "priority": "high", "tenant_id": 1}, "tenant_id"),
    ],
)
def test_bad_limits_are_422_naming_the_field(plant: Plant, body: dict, field: str) -> None:
    response = plant.client.post("/api/alarm-limits", json={"mapping_id": plant.mapping_id,
                                                            **body},
                                 headers=plant.headers["engineer"])
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_limits_of_one_signal_must_keep_lolo_lo_hi_hihi(plant: Plant) -> None:
    plant.limit(level="hi", threshold=10.0)
    plant.limit(level="lo", threshold=2.0)
    engineer = plant.headers["engineer"]
    for level, threshold in (("hihi", 9.0), ("hihi", 10.0), ("lolo", 2.5)):
        response = plant.client.post(
            "/api/alarm-limits",
            json={"mapping_id": plant.mapping_id, "level": level, "threshold": threshold,
                  "priority": "high"},
            headers=engineer,
        )
        assert response.status_code == 422, (level, threshold)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "threshold"] and "lolo < lo < hi < hihi" in error["msg"]
    duplicate = plant.client.post(
        "/api/alarm-limits",
        json={"mapping_id": plant.mapping_id, "level": "hi", "threshold": 11, "priority": "low"},
        headers=engineer,
    )
    assert duplicate.status_code == 409
    (hi,) = [lim for lim in plant.client.get("/api/alarm-limits", headers=engineer)
             .json()["limits"] if lim["level"] == "hi"]
    moved = plant.client.patch(f"/api/alarm-limits/{hi['id']}", json={"threshold": 1.0},
                               headers=engineer)
    assert moved.status_code == 422, "below lo"
    # An inactive limit is out of the ordering: then it may move anywhere.
    off = plant.client.patch(f"/api/alarm-limits/{hi['id']}",
                             json={"is_active": False, "threshold": 1.0}, headers=engineer)
    assert off.status_code == 200, off.text


@pytest.mark.parametrize(
    "body", [{"minutes": 0, "reason": "r"}, {"minutes": 721, "reason": "r"},
             {"minutes": 10}, {"minutes": 10, "reason": "  "}],
)
def test_a_shelve_needs_one_to_720_minutes_and_a_reason(plant: Plant, body: dict) -> None:
    limit = plant.limit(level="hi", threshold=10.0)
    response = plant.client.post(f"/api/alarm-limits/{limit['id']}/shelve", json=body,
                                 headers=plant.headers["operator"])
    assert response.status_code == 422


def test_unknown_and_other_tenants_ids_are_404_and_write_nothing(
    plant: Plant, session_factory: sessionmaker[Session], tenant_b: TenantWorld,
    owner_engine: Engine, tmp_path: Path,
) -> None:
    url = make_sql_historian(tmp_path / "b.db", [("B.VIB", utcnow(), 50.0, "good")])
    b_integration = add_integration(session_factory, tenant_b.tenant.id, type="sql", name="h",
                                    config={"url": url, "table": "historian"})
    b_mapping = add_mapping(session_factory, tenant_b.tenant.id, asset_id=tenant_b.assets[0].id,
                            integration_id=b_integration, metric="vibration_rms", tag="B.VIB")
    b_headers = bearer_headers(plant.client, tenant_b.users["engineer"].email)
    b_limit = plant.client.post(
        "/api/alarm-limits",
        json={"mapping_id": b_mapping, "level": "hi", "threshold": 10, "priority": "high"},
        headers=b_headers,
    ).json()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (b_alarms := plant.client.get("/api/alarms", headers=b_headers).json()["alarms"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    b_alarm = b_alarms[0]["id"]
    before = events(owner_engine, tenant_id=tenant_b.tenant.id)

    a_admin = plant.headers["tenant_admin"]
    requests = [
        ("GET", f"/api/alarms/{b_alarm}", None),
        ("POST", f"/api/alarms/{b_alarm}/ack", None),
        ("PATCH", f"/api/alarm-limits/{b_limit['id']}", {"threshold": 99}),
        ("POST", f"/api/alarm-limits/{b_limit['id']}/shelve", {"minutes": 5, "reason": "x"}),
        ("POST", f"/api/alarm-limits/{b_limit['id']}/unshelve", None),
        ("POST", "/api/alarm-limits", {"mapping_id": b_mapping, "level": "lo",
                                       "threshold": 1, "priority": "low"}),
        ("GET", "/api/alarms/999999", None),
    ]
    for method, url_path, body in requests:
        response = plant.client.request(method, url_path, json=body, headers=a_admin)
        assert response.status_code == 404, (method, url_path, response.text)
    assert plant.alarms() == [] and plant.alarms(state="all") == []
    listed = plant.client.get(f"/api/alarm-limits?mapping_id={b_mapping}", headers=a_admin)
    assert listed.json() == {"limits": []}
    assert events(owner_engine, tenant_id=tenant_b.tenant.id) == before
    assert plant.client.get(f"/api/alarms/{2**31}", headers=a_admin).status_code == 422


# --- restart and the stream -----------------------------------------------------------------


def test_a_restarted_scanner_resumes_from_the_database_without_duplicates(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0)
    plant.write(12.0)
    (alarm,) = plant.await_alarms(one)
    app = plant.client.app

    async def restart() -> None:
        """A new scanner, as after a process restart: no memory of delays or readings."""
        old = app.state.scanner
        await old.aclose()
        app.state.scanner = Scanner(
            session_factory=old.session_factory, hub=old.hub, interval=old.interval,
            leadership=Leadership(app.state.engine),
        )
        app.state.scanner.start()

    plant.client.portal.call(restart)  # type: ignore[union-attr]
    plant.scanner_ticks(1)
    plant.write(13.0)
    plant.write(14.0)
    assert [x["id"] for x in plant.alarms()] == [alarm["id"]]
    plant.write(3.0)
    plant.await_alarms(lambda found: found and found[0]["state"] == "rtn_unack")
    kinds = [kind for kind, _ in alarm_events(owner_engine, plant.world.tenant.id)]
    assert kinds == ["ACTIVATED", "CLEARED"]


def test_the_alarm_stream_sends_transitions_and_resumes_after_last_event_id(
    plant: Plant, owner_engine: Engine
) -> None:
    plant.limit(level="hi", threshold=10.0)
    headers = plant.headers["viewer"]
    with plant.client.stream("GET", "/api/alarms/stream", headers=headers) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        plant.write(12.0)
        (first,) = read_events(lines, 1)
        plant.write(2.0)
        (second,) = read_events(lines, 1)
    assert (first["event"], second["event"]) == ("alarm", "alarm")
    activated, cleared = json.loads(first["data"]), json.loads(second["data"])
    assert activated["trigger_value"] == 12.0 and activated["metric"] == "vibration_rms"
    assert cleared["state"] == "rtn_unack" and cleared["id"] == activated["id"]
    ids = [e["id"] for e in events(owner_engine, tenant_id=plant.world.tenant.id,
                                   category="ALARM")]
    assert [int(first["id"]), int(second["id"])] == ids

    with plant.client.stream("GET", "/api/alarms/stream",
                             headers={**headers, "Last-Event-ID": first["id"]}) as response:
        (replayed,) = read_events(response.iter_lines(), 1)
    assert replayed["id"] == second["id"]
    assert json.loads(replayed["data"])["state"] == "rtn_unack", "its current state"


def test_events_of_another_tenant_never_reach_the_stream(
    plant: Plant, session_factory: sessionmaker[Session], tenant_b: TenantWorld
) -> None:
    with tenant_session(session_factory, tenant_b.tenant.id) as session:
        record_event(session, tenant_id=tenant_b.tenant.id, asset_id=None,
                     source_system="OPTRIA_ALARMS", source_type="ACTIVATED",
                     event_category="ALARM", severity="CRITICAL", summary="B's",
                     payload={"alarm_id": 1})
        session.commit()
    plant.limit(level="hi", threshold=10.0)
    with plant.client.stream("GET", "/api/alarms/stream",
                             headers={**plant.headers["viewer"], "Last-Event-ID": "1"}) as response:
        lines = response.iter_lines()
        plant.write(12.0)
        (event,) = read_events(lines, 1)
    assert json.loads(event["data"])["asset_code"] == "P-101"


def test_apply_transition_opens_at_most_one_occurrence(
    plant: Plant, session_factory: sessionmaker[Session]
) -> None:
    """Two scanners racing (a failover in flight) cannot open two occurrences of one limit:
    the database refuses the second."""
    limit = plant.limit(level="hi", threshold=10.0)
    a = plant.world.tenant.id
    with tenant_session(session_factory, a) as first:
        view = get_limit(first, limit["id"])
        apply_transition(first, view, None, Transition.activated, value=11.0, at=utcnow())
        first.commit()
    with tenant_session(session_factory, a) as second:
        view = get_limit(second, limit["id"])
        with pytest.raises(sa.exc.IntegrityError):
            apply_transition(second, view, None, Transition.activated, value=12.0, at=utcnow())
