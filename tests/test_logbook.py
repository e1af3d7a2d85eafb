"""The shift logbook (DESIGN.md §18), both backends: the JSON API (roles, validation, another
tenant's ids, newest first, `since` and `limit`), append-only entries (no route edits or
deletes; on PostgreSQL the app role cannot), one OPERATOR BlackBox event per entry, and the
/logbook screen read through its data-role hooks — the form for operators, the shift summary
counted from real alarm occurrences made by the alarm service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import add_integration, add_mapping, events
from tests.test_ui_shell import (
    test_no_external_host_anywhere as assert_no_external_host,
)
from tests.test_ui_shell import (
    test_no_inline_script_handlers_or_styles_on_any_page as assert_csp_safe_markup,
)
from webapp.alarms import service as alarm_service
from webapp.alarms.evaluation import Transition
from webapp.alarms.schemas import LimitCreate
from webapp.db import tenant_session
from webapp.logbook.models import LogbookEntry

HTMX = {"HX-Request": "true"}
PLANT_ZONE = ZoneInfo("Asia/Riyadh")  # the test tenants' timezone (UTC+3, no DST)


def now_utc() -> datetime:
    return datetime.now(UTC)


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.text, "html.parser")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def entry_rows(owner_engine: Engine) -> list[dict[str, Any]]:
    """What is really stored, seen by the owner role."""
    with owner_engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                sa.text("SELECT * FROM logbook_entry ORDER BY id")
            ).mappings()
        ]


def operator_events(owner_engine: Engine) -> list[dict[str, Any]]:
    return events(owner_engine, category="OPERATOR")


def insert_entry(
    factory: sessionmaker[Session], world: TenantWorld, *, text: str, at: datetime,
    asset_id: int | None = None, role: str = "operator",
) -> int:
    """An entry written at a chosen time (the API stamps now), through the app's own session."""
    with tenant_session(factory, world.tenant.id) as session:
        entry = LogbookEntry(
            author_id=world.users[role].id, text=text, created_at=at, asset_id=asset_id
        )
        session.add(entry)
        session.commit()
        return entry.id


def set_shift_starts(owner_engine: Engine, world: TenantWorld, value: str) -> None:
    with owner_engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE tenant SET shift_starts = :value WHERE id = :id"),
            {"value": value, "id": world.tenant.id},
        )


@pytest.fixture
def headers(client: TestClient, tenant_a: TenantWorld) -> dict[str, dict[str, str]]:
    """Bearer headers of tenant A's users, by role."""
    return {role: bearer_headers(client, user.email) for role, user in tenant_a.users.items()}


# --- alarm occurrences, made by the alarm service -------------------------------------------


@dataclass
class AlarmSignal:
    """One signal of a tenant's first asset with alarm limits. Its integration is switched
    off, so the app's scanner leaves it alone: the test alone decides when alarms happen."""

    factory: sessionmaker[Session]
    tenant_id: int
    mapping_id: int

    def limit(self, level: str, threshold: float) -> int:
        with tenant_session(self.factory, self.tenant_id) as session:
            view = alarm_service.create_limit(
                session,
                LimitCreate(mapping_id=self.mapping_id, level=level, threshold=threshold,
                            priority="high"),
                actor_id=None,
            )
            return view.limit.id

    def transition(self, limit_id: int, transition: Transition, value: float, at: datetime) -> int:
        with tenant_session(self.factory, self.tenant_id) as session:
            view = alarm_service.get_limit(session, limit_id)
            occurrence = alarm_service.open_occurrence(session, limit_id)
            occurrence = alarm_service.apply_transition(
                session, view, occurrence, transition, value=value, at=at
            )
            session.commit()
            assert occurrence is not None
            return occurrence.id

    def acknowledge(self, alarm_id: int, user_id: int, at: datetime) -> None:
        with tenant_session(self.factory, self.tenant_id) as session:
            alarm_service.acknowledge(session, alarm_id, actor_id=user_id, comment=None, now=at)


def alarm_signal(factory: sessionmaker[Session], world: TenantWorld) -> AlarmSignal:
    tenant_id = world.tenant.id
    integration_id = add_integration(
        factory, tenant_id, type="demo", name="Switched off", config={}, is_active=False
    )
    mapping_id = add_mapping(
        factory, tenant_id, asset_id=world.assets[0].id, integration_id=integration_id,
        metric="vibration_rms", tag="PI:P-101.VIB", unit="mm/s",
    )
    return AlarmSignal(factory, tenant_id, mapping_id)


@pytest.fixture
def b_alarm_id(session_factory: sessionmaker[Session], tenant_b: TenantWorld) -> int:
    signal = alarm_signal(session_factory, tenant_b)
    return signal.transition(signal.limit("hi", 10.0), Transition.activated, 12.0, now_utc())


# --- writing through the API -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "engineer", "tenant_admin"])
def test_operators_and_above_add_entries(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld, role: str
) -> None:
    asset = tenant_a.assets[1]
    before = now_utc()
    response = client.post(
        "/api/logbook",
        json={"text": "Changed over to standby pump", "asset_id": asset.id},
        headers=headers[role],
    )
    assert response.status_code == 201, response.text
    entry = response.json()
    assert set(entry) == {"id", "author", "created_at", "text", "asset_id", "alarm_id"}
    assert entry["author"] == tenant_a.users[role].email
    assert entry["text"] == "Changed over to standby pump"
    assert (entry["asset_id"], entry["alarm_id"]) == (asset.id, None)
    assert entry["created_at"].endswith("Z")
    created = datetime.fromisoformat(entry["created_at"])
    assert before - timedelta(seconds=1) <= created <= now_utc()


def test_a_viewer_may_read_but_not_write(
    client: TestClient, headers: dict[str, dict[str, str]], owner_engine: Engine
) -> None:
    events_before = operator_events(owner_engine)
    refused = client.post("/api/logbook", json={"text": "Viewer note"}, headers=headers["viewer"])
    assert refused.status_code == 403
    assert "operator" in refused.json()["detail"]
    assert entry_rows(owner_engine) == []
    assert operator_events(owner_engine) == events_before
    listed = client.get("/api/logbook", headers=headers["viewer"])
    assert listed.status_code == 200 and listed.json() == {"entries": []}


def test_without_credentials_it_is_401(client: TestClient, tenant_a: TenantWorld) -> None:
    assert client.post("/api/logbook", json={"text": "anonymous"}).status_code == 401
    assert client.get("/api/logbook").status_code == 401


def test_each_entry_writes_one_operator_event(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld,
    owner_engine: Engine, session_factory: sessionmaker[Session],
) -> None:
    signal = alarm_signal(session_factory, tenant_a)
    alarm_id = signal.transition(signal.limit("hi", 10.0), Transition.activated, 12.0, now_utc())
    asset_id = tenant_a.assets[0].id
    first = client.post(
        "/api/logbook",
        json={"text": "Vibration alarm on P-101: bearing noise, field check ordered",
              "asset_id": asset_id, "alarm_id": alarm_id},
        headers=headers["operator"],
    ).json()
    second = client.post(
        "/api/logbook", json={"text": "Handover done"}, headers=headers["engineer"]
    ).json()

    recorded = operator_events(owner_engine)
    assert len(recorded) == 2
    by_entry = {event["payload"]["entry_id"]: event for event in recorded}
    assert set(by_entry) == {first["id"], second["id"]}
    event = by_entry[first["id"]]
    assert event["tenant_id"] == tenant_a.tenant.id
    assert event["asset_id"] == asset_id
    assert event["severity"] == "INFO"
    assert event["source_system"] == "OPTRIA_LOGBOOK"
    assert event["payload"] == {
        "entry_id": first["id"],
        "user_id": tenant_a.users["operator"].id,
        "asset_id": asset_id,
        "alarm_id": alarm_id,
        "text": "Vibration alarm on P-101: bearing noise, field check ordered",
    }
    assert "operator@tenanta.example" in event["summary"] and "P-101" in event["summary"]
    other = by_entry[second["id"]]
    assert (other["asset_id"], other["payload"]["alarm_id"]) == (None, None)
    assert other["payload"]["user_id"] == tenant_a.users["engineer"].id
    # The events are links of the tenant's tamper-evident chain.
    verified = client.get("/api/blackbox/verify", headers=headers["tenant_admin"]).json()
    assert verified["ok"] is True


def test_text_is_kept_as_typed_without_surrounding_blanks_and_with_plain_line_breaks(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    # A browser sends a textarea's line breaks as CRLF: 40 lines of 100 characters typed are
    # 4,000 characters, 4,040 bytes on the wire; one line break is the last character.
    typed = ("x" * 99 + "\r\n") * 40
    response = client.post("/api/logbook", json={"text": typed}, headers=headers["operator"])
    assert response.status_code == 201, response.text
    assert response.json()["text"] == ("x" * 99 + "\n") * 39 + "x" * 99
    exactly = client.post("/api/logbook", json={"text": "y" * 4000}, headers=headers["operator"])
    assert exactly.status_code == 201
    padded = client.post(
        "/api/logbook", json={"text": "\n  Tank farm quiet \t"}, headers=headers["operator"]
    )
    assert padded.json()["text"] == "Tank farm quiet"
    arabic = client.post(
        "/api/logbook", json={"text": "تم تبديل المضخة P-101"}, headers=headers["operator"]
    )
    assert arabic.json()["text"] == "تم تبديل المضخة P-101"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   \n\t  "}, "text"),
        ({"text": "z" * 4001}, "text"),
        ({"text": "nul \x00 inside"}, "text"),
        ({"text": 42}, "text"),
        ({"text": "ok", "asset_id": 0}, "asset_id"),
        ({"text": "ok", "asset_id": "P-101"}, "asset_id"),
        ({"text": "ok", "alarm_id": 2**31}, "alarm_id"),
        ({"text": "ok", "author": "someone@else.example"}, "author"),
    ],
)
def test_bad_entries_are_422_naming_the_field_and_write_nothing(
    client: TestClient, headers: dict[str, dict[str, str]], owner_engine: Engine,
    body: dict, field: str,
) -> None:
    events_before = operator_events(owner_engine)
    response = client.post("/api/logbook", json=body, headers=headers["operator"])
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]
    assert entry_rows(owner_engine) == []
    assert operator_events(owner_engine) == events_before


def test_whitespace_only_is_refused_in_words(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.post("/api/logbook", json={"text": " \n "}, headers=headers["operator"])
    (error,) = response.json()["detail"]
    assert "whitespace" in error["msg"]


def test_another_tenants_or_unknown_asset_and_alarm_are_404_and_write_nothing(
    client: TestClient, headers: dict[str, dict[str, str]], owner_engine: Engine,
    tenant_a: TenantWorld, tenant_b: TenantWorld, b_alarm_id: int,
) -> None:
    events_before = events(owner_engine)
    missing = 2_000_000_000
    for body, named in (
        ({"asset_id": tenant_b.assets[0].id}, f"Asset {tenant_b.assets[0].id}"),
        ({"asset_id": missing}, f"Asset {missing}"),
        ({"alarm_id": b_alarm_id}, f"Alarm {b_alarm_id}"),
        ({"alarm_id": missing}, f"Alarm {missing}"),
        # Both given: the asset is ours, the alarm is not.
        ({"asset_id": tenant_a.assets[0].id, "alarm_id": b_alarm_id}, f"Alarm {b_alarm_id}"),
    ):
        response = client.post(
            "/api/logbook", json={"text": "Checked", **body}, headers=headers["operator"]
        )
        assert response.status_code == 404, body
        assert response.json() == {"detail": f"{named} not found"}
        assert tenant_b.tenant.code not in response.text
    assert entry_rows(owner_engine) == []
    assert events(owner_engine) == events_before


def test_an_incident_that_is_no_alarm_is_not_an_alarm_id(
    client: TestClient, headers: dict[str, dict[str, str]], owner_engine: Engine,
    tenant_a: TenantWorld,
) -> None:
    with owner_engine.begin() as connection:
        incident_id = connection.execute(
            sa.text(
                "INSERT INTO blackbox_incident (tenant_id, title, severity, status, opened_at, "
                "event_count) VALUES (:tenant, 'Connector down', 'WARNING', 'open', :at, 0) "
                "RETURNING id"
            ),
            {"tenant": tenant_a.tenant.id, "at": now_utc().replace(tzinfo=None)},
        ).scalar_one()
    response = client.post(
        "/api/logbook", json={"text": "x", "alarm_id": incident_id}, headers=headers["operator"]
    )
    assert response.status_code == 404


def test_cookie_posts_need_the_csrf_token(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    csrf = browser_login(client, tenant_a.users["operator"].email)
    without = client.post("/api/logbook", json={"text": "no token"})
    wrong = client.post("/api/logbook", json={"text": "wrong"}, headers={"X-CSRF-Token": "0" * 64})
    form = client.post("/logbook", data={"text": "no token"})
    assert (without.status_code, wrong.status_code, form.status_code) == (403, 403, 403)
    assert entry_rows(owner_engine) == []
    with_token = client.post("/api/logbook", json={"text": "token"}, headers={"X-CSRF-Token": csrf})
    assert with_token.status_code == 201


# --- reading through the API -----------------------------------------------------------------


@pytest.fixture
def three_entries(
    session_factory: sessionmaker[Session], tenant_a: TenantWorld, tenant_b: TenantWorld
) -> list[tuple[int, datetime]]:
    """Tenant A's entries at 08:00, 09:00 and 10:00 UTC on 2 Mar 2026 (the second about its
    first asset, the third by its engineer), and one of tenant B's in between."""
    day = datetime(2026, 3, 2, tzinfo=UTC)
    made = []
    for hour, asset_id, role in ((8, None, "operator"), (9, tenant_a.assets[0].id, "operator"),
                                 (10, None, "engineer")):
        at = day + timedelta(hours=hour)
        made.append((insert_entry(session_factory, tenant_a, text=f"at {hour}:00", at=at,
                                  asset_id=asset_id, role=role), at))
    insert_entry(session_factory, tenant_b, text="tenant B's own", at=day + timedelta(hours=9.5))
    return made


def listed(client: TestClient, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    response = client.get("/api/logbook", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def test_entries_come_newest_first_with_their_authors(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld,
    three_entries: list[tuple[int, datetime]],
) -> None:
    entries = listed(client, headers["viewer"])
    assert [entry["id"] for entry in entries] == [entry_id for entry_id, _ in three_entries][::-1]
    newest = entries[0]
    assert newest == {
        "id": three_entries[2][0],
        "author": tenant_a.users["engineer"].email,
        "created_at": "2026-03-02T10:00:00Z",
        "text": "at 10:00",
        "asset_id": None,
        "alarm_id": None,
    }
    assert "tenant B's own" not in str(entries)


def test_entries_at_the_same_instant_come_newest_id_first(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld,
    session_factory: sessionmaker[Session],
) -> None:
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    ids = [insert_entry(session_factory, tenant_a, text=f"same {n}", at=at) for n in range(3)]
    assert [entry["id"] for entry in listed(client, headers["viewer"])] == ids[::-1]


def test_since_is_inclusive_and_naive_means_utc(
    client: TestClient, headers: dict[str, dict[str, str]],
    three_entries: list[tuple[int, datetime]],
) -> None:
    _first, (second, _), (third, _) = three_entries
    viewer = headers["viewer"]
    for since in ("2026-03-02T09:00:00Z", "2026-03-02T09:00:00", "2026-03-02T12:00:00+03:00"):
        assert [entry["id"] for entry in listed(client, viewer, since=since)] == [third, second]
    just_after = listed(client, viewer, since="2026-03-02T09:00:00.000001Z")
    assert [entry["id"] for entry in just_after] == [third]
    assert listed(client, viewer, since="2026-03-02T10:00:01Z") == []


def test_limit_keeps_the_newest_and_asset_id_filters(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld,
    tenant_b: TenantWorld, three_entries: list[tuple[int, datetime]],
) -> None:
    viewer = headers["viewer"]
    assert [e["id"] for e in listed(client, viewer, limit=2)] == [
        three_entries[2][0], three_entries[1][0]
    ]
    assert len(listed(client, viewer, limit=1000)) == 3
    about_asset = listed(client, viewer, asset_id=tenant_a.assets[0].id)
    assert [e["id"] for e in about_asset] == [three_entries[1][0]]
    assert about_asset[0]["asset_id"] == tenant_a.assets[0].id
    # Another tenant's asset filters like a missing one: nothing.
    assert listed(client, viewer, asset_id=tenant_b.assets[0].id) == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2400-01-01T00:00:00Z"}, "since"),
        ({"asset_id": 0}, "asset_id"),
        ({"asset_id": 2**31}, "asset_id"),
    ],
)
def test_bad_queries_are_422_naming_the_parameter(
    client: TestClient, headers: dict[str, dict[str, str]], query: dict, parameter: str
) -> None:
    response = client.get("/api/logbook", params=query, headers=headers["viewer"])
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", parameter]]


# --- append-only -----------------------------------------------------------------------------


def test_no_route_edits_or_deletes_an_entry(
    client: TestClient, headers: dict[str, dict[str, str]], owner_engine: Engine
) -> None:
    created = client.post("/api/logbook", json={"text": "As written"}, headers=headers["operator"])
    entry_id = created.json()["id"]
    stored = entry_rows(owner_engine)
    methods = {
        method
        for route in client.app.routes
        if "logbook" in getattr(route, "path", "")
        for method in getattr(route, "methods", ())
    }
    assert methods <= {"GET", "HEAD", "POST"}
    admin = headers["tenant_admin"]
    for method in ("PATCH", "PUT", "DELETE"):
        for path in (f"/api/logbook/{entry_id}", "/api/logbook", f"/logbook/{entry_id}"):
            response = client.request(method, path, json={"text": "Rewritten"}, headers=admin)
            assert response.status_code in (404, 405), (method, path)
    assert entry_rows(owner_engine) == stored


def test_on_postgresql_the_app_role_cannot_update_or_delete_entries(
    backend: str, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    owner_engine: Engine,
) -> None:
    if backend != "postgresql":
        pytest.skip("table privileges are PostgreSQL's")
    insert_entry(session_factory, tenant_a, text="As written", at=now_utc())
    for statement in (
        "UPDATE logbook_entry SET text = 'Rewritten'",
        "DELETE FROM logbook_entry",
    ):
        with (
            tenant_session(session_factory, tenant_a.tenant.id) as session,
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
        ):
            session.execute(sa.text(statement))
    assert [row["text"] for row in entry_rows(owner_engine)] == ["As written"]


def test_on_postgresql_row_level_security_hides_other_tenants_entries(
    backend: str, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    if backend != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    insert_entry(session_factory, tenant_b, text="B's note", at=now_utc())
    with tenant_session(session_factory, tenant_a.tenant.id) as session:
        # Raw SQL, past the ORM's scoping hook: the database itself answers.
        assert session.execute(sa.text("SELECT text FROM logbook_entry")).all() == []


# --- the /logbook screen ---------------------------------------------------------------------


def entries_of(page: BeautifulSoup, role: str) -> list[Tag]:
    part = page.select_one(f"[data-role={role}]")
    return [] if part is None else part.select("[data-role=logbook-entry]")


def test_operators_get_the_form_viewers_do_not(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["operator"].email)
    page = soup(client.get("/logbook"))
    form = page.select_one("form[data-role=logbook-form]")
    assert form is not None
    assert (form["method"], form["action"], form["hx-post"]) == ("post", "/logbook", "/logbook")
    # Answers land beside the form, which keeps what was typed; the button waits meanwhile.
    status = page.select_one(form["hx-target"])
    assert status is not None and form in status.parents
    assert form.has_attr("hx-disabled-elt")
    textarea = form.select_one("textarea[name=text]")
    assert textarea["maxlength"] == "4000" and textarea.has_attr("required")
    assert not textarea.has_attr("autofocus")
    assert page.select_one(f"label[for={textarea['id']}]") is not None
    options = {option["value"]: option.get_text() for option in form.select("select option")}
    assert options.pop("") != ""
    assert set(options) == {str(asset.id) for asset in tenant_a.assets}
    assert all(tenant_b.tenant.code not in label for label in options.values())
    assert form.select_one("input[name=csrf_token]")["value"]

    browser_login(client, tenant_a.users["viewer"].email)
    page = soup(client.get("/logbook"))
    assert page.select_one("form[data-role=logbook-form]") is None
    assert page.select_one("textarea") is None
    assert page.select_one("[data-role=shift-summary]") is not None


def test_entries_show_author_plant_time_asset_and_escaped_text(
    client: TestClient, tenant_a: TenantWorld, session_factory: sessionmaker[Session]
) -> None:
    typed = "<script>alert('x')</script> & <b>not bold</b>\nsecond line"
    # 15:05 UTC is 18:05 in Riyadh.
    at = datetime(2026, 1, 15, 15, 5, tzinfo=UTC)
    entry_id = insert_entry(session_factory, tenant_a, text=typed, at=at,
                            asset_id=tenant_a.assets[0].id)
    browser_login(client, tenant_a.users["viewer"].email)
    response = client.get("/logbook")
    page = soup(response)
    (entry,) = entries_of(page, "earlier-entries")
    assert entry["data-entry-id"] == str(entry_id)
    time_element = entry.select_one("[data-role=entry-time]")
    assert time_element["datetime"] == "2026-01-15T15:05:00Z"
    assert time_element.get_text(strip=True) == "15 Jan 18:05"
    assert time_element.parent.name == "bdi"
    assert entry.select_one("[data-role=entry-author]").get_text() == tenant_a.users[
        "operator"
    ].email
    assert entry.select_one("[data-role=entry-asset]").get_text(strip=True) == "P-101"
    text = entry.select_one("[data-role=entry-text]")
    assert text.select_one("bdi").get_text() == typed
    assert entry.select("script") == [] and entry.select("b") == []
    assert "&lt;script&gt;" in response.text
    assert entries_of(page, "shift-summary") == []
    assert page.select_one("[data-role=shift-summary] [data-role=empty-state]") is not None


def test_the_nav_links_the_logbook_and_marks_it_current(
    client: TestClient, tenant_a: TenantWorld
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    on_logbook = soup(client.get("/logbook")).select_one("nav.main-nav")
    assert on_logbook.select_one("a[aria-current=page]")["href"] == "/logbook"
    elsewhere = soup(client.get("/alarms")).select_one("nav.main-nav")
    link = elsewhere.select_one("a[href='/logbook']")
    assert link is not None and not link.has_attr("aria-current")


def test_adding_from_the_form_with_htmx(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    csrf = browser_login(client, tenant_a.users["operator"].email)
    page = soup(client.get("/logbook"))
    feed = page.select_one("#logbook-feed")
    assert feed["hx-get"] == "/logbook" and "logbook-changed" in feed["hx-trigger"]

    response = client.post(
        "/logbook",
        data={"text": "Started flare header purge", "asset_id": str(tenant_a.assets[1].id)},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )
    assert response.status_code == 201, response.text
    assert "<html" not in response.text
    # A fresh form replaces the old one: the text cleared, the cursor back in it.
    assert response.headers["HX-Retarget"] == "#logbook-compose"
    assert response.headers["HX-Reswap"] == "innerHTML"
    fresh = soup(response)
    textarea = fresh.select_one("form[data-role=logbook-form] textarea[name=text]")
    assert textarea.get_text() == "" and textarea.has_attr("autofocus")
    assert fresh.select_one("[data-role=logbook-saved]") is not None
    # ...and the list refreshes itself on the event the response triggers.
    assert response.headers["HX-Trigger-After-Settle"] == "logbook-changed"
    fragment = client.get("/logbook", headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.headers["Vary"].startswith("HX-Request")
    (entry,) = entries_of(soup(fragment), "shift-summary")
    assert entry.select_one("[data-role=entry-text]").get_text() == "Started flare header purge"
    assert entry.select_one("[data-role=entry-asset]").get_text(strip=True) == "C-301"

    (row,) = entry_rows(owner_engine)
    assert row["author_id"] == tenant_a.users["operator"].id
    (event,) = operator_events(owner_engine)
    assert event["payload"]["entry_id"] == row["id"]


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"text": "   "}, 422),
        ({"text": "q" * 4001}, 422),
        ({"text": "ok", "asset_id": "pump"}, 422),
        ({"text": "ok", "asset_id": "2000000000"}, 404),
    ],
)
def test_a_refused_entry_says_why_beside_the_form(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine, form: dict, status: int
) -> None:
    csrf = browser_login(client, tenant_a.users["operator"].email)
    events_before = events(owner_engine)
    response = client.post("/logbook", data=form, headers={**HTMX, "X-CSRF-Token": csrf})
    assert response.status_code == status
    assert "<html" not in response.text
    message = soup(response).select_one("[data-role=error-message]")
    assert message is not None and message["role"] == "alert"
    assert message["data-status"] == str(status)
    assert message.get_text(strip=True)
    assert entry_rows(owner_engine) == []
    assert events(owner_engine) == events_before


def test_another_tenants_asset_from_the_form_is_404(
    client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld, owner_engine: Engine
) -> None:
    csrf = browser_login(client, tenant_a.users["operator"].email)
    response = client.post(
        "/logbook", data={"text": "ok", "asset_id": str(tenant_b.assets[0].id)},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )
    assert response.status_code == 404
    assert soup(response).select_one("[data-role=error-message]")["data-error"] == (
        "asset_not_found"
    )
    assert entry_rows(owner_engine) == []


def test_a_viewer_posting_the_form_is_refused(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    csrf = browser_login(client, tenant_a.users["viewer"].email)
    response = client.post("/logbook", data={"text": "note"},
                           headers={**HTMX, "X-CSRF-Token": csrf})
    assert response.status_code == 403
    assert soup(response).select_one("[data-role=error-message]") is not None
    assert entry_rows(owner_engine) == []


def test_without_javascript_the_form_still_works(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    csrf = browser_login(client, tenant_a.users["operator"].email)
    saved = client.post("/logbook", data={"text": "Plain post", "csrf_token": csrf},
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/logbook"
    too_long = "w" * 4001
    refused = client.post("/logbook", data={"text": too_long, "csrf_token": csrf,
                                            "asset_id": str(tenant_a.assets[0].id)})
    assert refused.status_code == 422
    page = soup(refused)
    assert page.html is not None, "the whole page"
    textarea = page.select_one("textarea[name=text]")
    assert textarea.get_text() == too_long, "what was typed is kept"
    assert textarea["aria-invalid"] == "true"
    selected = page.select_one("select[name=asset_id] option[selected]")
    assert selected["value"] == str(tenant_a.assets[0].id)
    assert page.select_one("[data-role=error-message]")["data-status"] == "422"
    assert [row["text"] for row in entry_rows(owner_engine)] == ["Plain post"]


def test_the_page_is_csp_safe_and_speaks_arabic(client: TestClient, tenant_a: TenantWorld) -> None:
    browser_login(client, tenant_a.users["operator"].email)
    pages = {"/logbook": client.get("/logbook").text,
             "feed": client.get("/logbook", headers=HTMX).text}
    assert_csp_safe_markup(pages)
    assert_no_external_host(pages)
    arabic = soup(client.get("/logbook?lang=ar"))
    assert (arabic.html["lang"], arabic.html["dir"]) == ("ar", "rtl")
    assert arabic.select_one("h1").get_text(strip=True) == "سجل الوردية"
    link = arabic.select_one("nav.main-nav a[href='/logbook']")
    assert link.get_text(strip=True) == "سجل الوردية"


# --- the shift summary -----------------------------------------------------------------------


@pytest.fixture
def shift_began(owner_engine: Engine, tenant_a: TenantWorld) -> Iterator[datetime]:
    """Tenant A's only shift start set to two hours ago on the plant's clock (whole minutes):
    the current shift began then, whatever the time of day the suite runs."""
    began = (now_utc() - timedelta(hours=2)).replace(second=0, microsecond=0)
    set_shift_starts(owner_engine, tenant_a, began.astimezone(PLANT_ZONE).strftime("%H:%M"))
    yield began


def figures(page: BeautifulSoup) -> dict[str, int]:
    summary = page.select_one("[data-role=shift-summary]")
    assert summary is not None
    return {
        figure["data-figure"]: int(figure["data-count"])
        for figure in summary.select("[data-role=shift-figure]")
    }


def test_the_summary_counts_this_shifts_alarms_and_entries(
    client: TestClient, headers: dict[str, dict[str, str]], tenant_a: TenantWorld,
    tenant_b: TenantWorld, session_factory: sessionmaker[Session], shift_began: datetime,
) -> None:
    now = now_utc()
    operator_id = tenant_a.users["operator"].id
    signal = alarm_signal(session_factory, tenant_a)
    # Before the shift: activated, never acknowledged, still active.
    carried_over = signal.limit("hihi", 20.0)
    signal.transition(carried_over, Transition.activated, 25.0, now - timedelta(hours=3))
    # This shift: activated, then acknowledged; still active.
    acknowledged = signal.limit("hi", 10.0)
    alarm = signal.transition(acknowledged, Transition.activated, 12.0, now - timedelta(minutes=60))
    signal.acknowledge(alarm, operator_id, now - timedelta(minutes=30))
    # This shift: activated, back to normal, acknowledged: closed.
    closed = signal.limit("lo", 1.0)
    alarm = signal.transition(closed, Transition.activated, 0.5, now - timedelta(minutes=50))
    signal.transition(closed, Transition.cleared, 5.0, now - timedelta(minutes=40))
    signal.acknowledge(alarm, operator_id, now - timedelta(minutes=20))
    # Another tenant's alarm this shift counts for nobody else.
    other = alarm_signal(session_factory, tenant_b)
    other_limit = other.limit("hi", 10.0)
    other.transition(other_limit, Transition.activated, 11.0, now - timedelta(minutes=5))
    # An entry before the shift and one now.
    earlier_id = insert_entry(session_factory, tenant_a, text="Night handover",
                              at=now - timedelta(hours=3))
    added = client.post("/api/logbook", json={"text": "Day shift: all pumps running"},
                        headers=headers["operator"])
    assert added.status_code == 201

    browser_login(client, tenant_a.users["viewer"].email)
    for page in (soup(client.get("/logbook")), soup(client.get("/logbook", headers=HTMX))):
        assert figures(page) == {
            "activated": 2, "acknowledged": 2, "still_active": 2, "entries": 1,
        }
        summary = page.select_one("[data-role=shift-summary]")
        assert summary.select_one("[data-role=shift-start]")["datetime"] == iso(shift_began)
        assert [e["data-entry-id"] for e in entries_of(page, "shift-summary")] == [
            str(added.json()["id"])
        ]
        assert [e["data-entry-id"] for e in entries_of(page, "earlier-entries")] == [
            str(earlier_id)
        ]
    # The same "still active" as the alarm banner on the page.
    counts = soup(client.get("/logbook")).select("[data-role=alarm-banner] [data-role=alarm-count]")
    assert sum(int(count["data-count"]) for count in counts) == 2


def test_a_malformed_shift_config_falls_back_to_the_default_shifts(
    client: TestClient, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    set_shift_starts(owner_engine, tenant_a, "whenever")
    browser_login(client, tenant_a.users["viewer"].email)
    start = soup(client.get("/logbook")).select_one("[data-role=shift-start]")
    began = datetime.fromisoformat(start["datetime"]).astimezone(PLANT_ZONE)
    assert (began.hour, began.minute) in {(6, 0), (18, 0)}
    assert timedelta(0) <= now_utc() - began <= timedelta(hours=12)


def test_new_tenants_get_the_default_shift_starts(
    owner_engine: Engine, tenant_a: TenantWorld
) -> None:
    with owner_engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT shift_starts FROM tenant WHERE id = :id"), {"id": tenant_a.tenant.id}
        ).scalar_one()
    assert stored == "06:00,18:00"
