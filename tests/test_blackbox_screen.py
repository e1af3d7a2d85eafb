"""The BlackBox screen (DESIGN.md §18): rows name their asset, a SENSOR read is one row per asset,
metric and 10 minutes unless the operator asks for every read, and logins (AUTH) are for tenant
admins only — on the screen and in `/api/blackbox/events`, which still lists single events.

Events are written through the real writers: the series API with a demo integration, the login
endpoint, or `record_event` with the fields a series read writes (§6) at chosen times. Expected
rows are worked out here from those times; interval boundaries are whole 10 minutes since 1970.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup, Tag
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import add_integration, add_mapping, events
from webapp.blackbox import service
from webapp.blackbox.service import record_event
from webapp.db import tenant_session

# 08:00:00 UTC is a whole 10-minute interval since 1970 (1740816000 = 2900360 × 600).
T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
assert int(T0.timestamp()) % 600 == 0
VIB = "vibration_rms"
TEMP = "temperature"
NON_ADMIN_ROLES = ("viewer", "operator", "engineer")


# --- writing events --------------------------------------------------------------------------


def record_reads(
    factory: sessionmaker[Session],
    world: TenantWorld,
    times: list[datetime],
    *,
    asset: int = 0,
    metric: str = VIB,
    severity: str = "INFO",
) -> list[int]:
    """Series reads as `record_series_read` writes them (§6), at the given times; their ids."""
    code = world.assets[asset].code
    with tenant_session(factory, world.tenant.id) as session:
        recorded = [
            record_event(
                session,
                tenant_id=world.tenant.id,
                asset_id=world.assets[asset].id,
                source_system="OPTRIA_TWIN",
                source_type="TAG_READING",
                event_category="SENSOR",
                severity=severity,
                summary=f"Time-series fetched for {metric} via Digital Twin",
                payload={
                    "metric": metric, "points_count": 100, "integration_type": "demo",
                    "external_tag": f"PI:{code}.VIB", "source": "live", "user_id": None,
                },
                event_time=moment,
            )
            for moment in times
        ]
        session.commit()
        return [item.id for item in recorded]


def record_other(
    factory: sessionmaker[Session],
    world: TenantWorld,
    at: datetime,
    *,
    category: str,
    asset: int | None = 0,
    severity: str = "INFO",
) -> int:
    with tenant_session(factory, world.tenant.id) as session:
        item = record_event(
            session,
            tenant_id=world.tenant.id,
            asset_id=None if asset is None else world.assets[asset].id,
            source_system="TEST_RIG",
            source_type="UNIT",
            event_category=category,
            severity=severity,
            summary=f"{world.tenant.code} {category} event",
            payload={"tenant": world.tenant.code},
            event_time=at,
        )
        session.commit()
        return item.id


def minutes(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(minutes=offset) for offset in offsets]


def demo_series_url(factory: sessionmaker[Session], world: TenantWorld, asset: int = 0) -> str:
    """The world's asset's vibration mapped to a demo integration: its series API URL."""
    integration_id = add_integration(factory, world.tenant.id, type="demo", name="Demo", config={})
    add_mapping(
        factory, world.tenant.id, asset_id=world.assets[asset].id,
        integration_id=integration_id, metric=VIB, tag=f"PI:{world.assets[asset].code}.VIB",
        unit="mm/s",
    )
    return f"/api/twins/assets/{world.assets[asset].id}/metrics/{VIB}/series"


def fail_login(client: TestClient, email: str) -> None:
    response = client.post("/api/auth/token", data={"username": email, "password": "wrong-one"})
    assert response.status_code == 401


# --- reading the screen ----------------------------------------------------------------------


def screen(client: TestClient, **params: str) -> BeautifulSoup:
    response = client.get("/blackbox", params=params)
    assert response.status_code == 200, response.text
    return BeautifulSoup(response.text, "html.parser")


def event_rows(soup: BeautifulSoup) -> list[Tag]:
    return soup.select("[data-role=event-row]")


def asset_code(row: Tag) -> str:
    cell = row.select_one("[data-role=event-asset]")
    assert cell is not None, row
    return cell.get_text(strip=True)


def shown_count(row: Tag) -> int:
    """The count a grouped row states, in its attribute and in its words."""
    assert row.get("data-grouped") == "true", row
    words = row.select_one("[data-role=event-count]")
    assert words is not None and row["data-count"] in words.get_text(), row
    return int(row["data-count"])


def row_time(row: Tag) -> str:
    time_tag = row.select_one("time")
    assert time_tag is not None
    return str(time_tag["datetime"])


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def interval(moment: datetime) -> int:
    return int(moment.timestamp()) // 600


def login_as(client: TestClient, world: TenantWorld, role: str) -> None:
    browser_login(client, world.users[role].email)


# --- asset codes -----------------------------------------------------------------------------


def test_rows_show_the_code_of_their_asset(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    pump, compressor = tenant_a.assets
    alarm_id = record_other(session_factory, tenant_a, T0, category="ALARM", asset=1)
    read_id = record_reads(session_factory, tenant_a, minutes(1))[0]
    loose_id = record_other(session_factory, tenant_a, T0, category="CONNECTOR", asset=None)
    # The other tenant has an asset with the same code, and events of its own.
    foreign = record_reads(session_factory, tenant_b, minutes(1, 2))
    login_as(client, tenant_a, "viewer")

    soup = screen(client, reads="all")
    by_id = {int(row["data-event-id"]): row for row in event_rows(soup)}
    assert asset_code(by_id[alarm_id]) == compressor.code == "C-301"
    assert asset_code(by_id[read_id]) == pump.code == "P-101"
    assert by_id[read_id]["data-asset-id"] == str(pump.id)
    link = by_id[read_id].select_one("[data-role=event-asset] a")
    assert link is not None and link["href"] == f"/twins/assets/{pump.id}"
    # An event without an asset says so, and is not given one.
    assert asset_code(by_id[loose_id]) == "—"
    assert not by_id[loose_id].has_attr("data-asset-id")
    assert not set(foreign) & set(by_id)
    for row in event_rows(soup):
        assert asset_code(row) in {"P-101", "C-301", "—"}
    assert {row.get("data-asset-id") for row in event_rows(soup)} <= {
        str(pump.id), str(compressor.id), None
    }


@pytest.fixture
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL the app sends while the test runs."""
    sent: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = app.state.engine
    event.listen(engine, "before_cursor_execute", remember)
    yield sent
    event.remove(engine, "before_cursor_execute", remember)


READS_ASSET_TABLE = re.compile(r"\b(FROM|JOIN)\s+\"?asset\"?(\s|$)", re.IGNORECASE)


@pytest.mark.parametrize("reads", ["grouped", "all"])
def test_asset_codes_cost_the_same_queries_for_two_rows_or_sixty(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    statements: list[str], reads: str,
) -> None:
    login_as(client, tenant_a, "viewer")

    def asset_queries() -> int:
        statements.clear()
        screen(client, reads=reads)
        # (The alarm banner of every page reads assets too: not the events' business.)
        return sum(
            1 for sql in statements if READS_ASSET_TABLE.search(sql) and "blackbox_event" in sql
        )

    for index in range(2):
        record_other(session_factory, tenant_a, T0, category="ALARM", asset=index)
    few = asset_queries()
    for number in range(58):
        record_other(
            session_factory, tenant_a, T0 + timedelta(minutes=number), category="ALARM",
            asset=number % 2,
        )
    assert len(event_rows(screen(client, reads=reads))) >= 60
    assert asset_queries() == few <= 1


# --- grouped sensor reads --------------------------------------------------------------------


def test_reads_of_one_metric_within_ten_minutes_are_one_row_with_their_count(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    times = minutes(0.5, 3, 5, 7.25, 9.9)
    ids = record_reads(session_factory, tenant_a, times)
    login_as(client, tenant_a, "operator")

    (row,) = event_rows(screen(client, category="SENSOR"))
    assert shown_count(row) == 5
    assert asset_code(row) == "P-101"
    assert row["data-metric"] == VIB
    assert int(row["data-event-id"]) == max(ids)
    # The row's time is its newest read; it also says when the first one was.
    assert row_time(row) == iso_z(times[-1])
    first = row.select_one("[data-role=read-span] time")
    assert first is not None and first["datetime"] == iso_z(times[0])
    assert "5 reads" in row.get_text(" ", strip=True)
    assert "Vibration RMS" in row.get_text(" ", strip=True)


def test_reads_in_two_intervals_are_two_rows_newest_first(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    # 08:09:59 and 08:10:00 are one second apart but in two intervals.
    record_reads(session_factory, tenant_a, minutes(2, 9 + 59 / 60, 10, 14, 19))
    login_as(client, tenant_a, "viewer")

    rows = event_rows(screen(client, category="SENSOR"))
    assert [shown_count(row) for row in rows] == [3, 2]
    assert [row_time(row) for row in rows] == [
        "2025-03-01T08:19:00Z",
        "2025-03-01T08:09:59Z",
    ]
    assert [row.select_one("[data-role=read-span] time")["datetime"] for row in rows] == [
        "2025-03-01T08:10:00Z",
        "2025-03-01T08:02:00Z",
    ]


def test_each_asset_and_metric_has_its_own_group(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    record_reads(session_factory, tenant_a, minutes(1, 2, 3), asset=0, metric=VIB)
    record_reads(session_factory, tenant_a, minutes(4, 5), asset=0, metric=TEMP)
    record_reads(session_factory, tenant_a, minutes(6), asset=1, metric=VIB)
    login_as(client, tenant_a, "viewer")

    rows = event_rows(screen(client, category="SENSOR"))
    assert sorted((asset_code(r), r["data-metric"], shown_count(r)) for r in rows) == [
        ("C-301", VIB, 1),
        ("P-101", TEMP, 2),
        ("P-101", VIB, 3),
    ]
    # A group of one still says it counted one read.
    single = next(r for r in rows if asset_code(r) == "C-301")
    assert "1 read" in single.get_text(" ", strip=True)
    assert single.select_one("[data-role=read-span]") is None


def test_other_events_keep_their_own_rows_between_groups(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    reads = record_reads(session_factory, tenant_a, minutes(1, 2, 8))
    alarm = record_other(session_factory, tenant_a, T0 + timedelta(minutes=5), category="ALARM")
    connector = record_other(
        session_factory, tenant_a, T0 + timedelta(minutes=9), category="CONNECTOR",
        severity="WARNING",
    )
    # A SENSOR event that is not a routine read (here: a warning) is never folded away.
    odd = record_reads(session_factory, tenant_a, minutes(3), severity="WARNING")[0]
    login_as(client, tenant_a, "viewer")

    rows = [
        row for row in event_rows(screen(client))
        if row_time(row).startswith("2025-03-01T08:0")
    ]
    assert [(int(row["data-event-id"]), row.get("data-count")) for row in rows] == [
        (connector, None),  # 08:09
        (max(reads), "3"),  # newest read 08:08
        (alarm, None),  # 08:05
        (odd, None),  # 08:03
    ]


def test_every_read_on_request_and_the_toggle_keeps_the_filters(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    ids = record_reads(session_factory, tenant_a, minutes(1, 2, 3, 4))
    login_as(client, tenant_a, "viewer")

    grouped = screen(client, category="SENSOR", severity="INFO")
    assert len(event_rows(grouped)) == 1
    options = {link["data-reads"]: link for link in grouped.select("[data-role=reads-option]")}
    assert set(options) == {"grouped", "all"}
    assert options["grouped"].get("aria-current") == "true"
    assert not options["all"].has_attr("aria-current")
    every = urlsplit(options["all"]["href"])
    assert every.path == "/blackbox"
    assert parse_qs(every.query) == {"category": ["SENSOR"], "severity": ["INFO"], "reads": ["all"]}
    assert options["all"]["hx-get"] == options["all"]["href"]

    all_reads = screen(client, **{k: v[0] for k, v in parse_qs(every.query).items()})
    rows = event_rows(all_reads)
    assert [int(row["data-event-id"]) for row in rows] == sorted(ids, reverse=True)
    assert not any(row.has_attr("data-grouped") for row in rows)
    options = {link["data-reads"]: link for link in all_reads.select("[data-role=reads-option]")}
    assert options["all"].get("aria-current") == "true"
    assert not options["grouped"].has_attr("aria-current")
    assert parse_qs(urlsplit(options["grouped"]["href"]).query)["category"] == ["SENSOR"]
    # The filter form sends the current choice along when a filter changes.
    state = all_reads.select_one("[data-role=reads-state]")
    assert state is not None and state["name"] == "reads" and state["value"] == "all"
    assert all_reads.select_one(f"form#{state['form']}") is not None
    # The selects stay as chosen.
    assert all_reads.select_one('select[name="category"] option[selected]')["value"] == "SENSOR"


def test_unknown_reads_value_means_grouped(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    record_reads(session_factory, tenant_a, minutes(1, 2))
    login_as(client, tenant_a, "viewer")
    soup = screen(client, category="SENSOR", reads="everything")
    assert [shown_count(row) for row in event_rows(soup)] == [2]


def test_htmx_swap_brings_the_toggle_with_the_rows(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    record_reads(session_factory, tenant_a, minutes(1, 2))
    login_as(client, tenant_a, "viewer")
    response = client.get(
        "/blackbox", params={"category": "SENSOR", "reads": "all"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "<html" not in response.text.lower()
    fragment = BeautifulSoup(response.text, "html.parser")
    assert len(event_rows(fragment)) == 2
    current = fragment.select_one("[data-role=reads-option][aria-current=true]")
    assert current is not None and current["data-reads"] == "all"
    assert fragment.select_one("[data-role=reads-state]")["value"] == "all"


def test_reads_through_the_series_api_are_grouped_on_the_screen_but_not_in_the_api(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    owner_engine: Engine,
) -> None:
    url = demo_series_url(session_factory, tenant_a)
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    for _ in range(6):
        assert client.get(url, params={"limit": 5}, headers=headers).status_code == 200
    written = events(owner_engine, tenant_id=tenant_a.tenant.id, category="SENSOR")
    assert len(written) == 6
    # Six reads take well under a second, but may straddle an interval boundary.
    expected = Counter(interval(row["event_time"]) for row in written)

    api = client.get("/api/blackbox/events", params={"category": "SENSOR"}, headers=headers)
    assert [e["id"] for e in api.json()["events"]] == [row["id"] for row in reversed(written)]

    login_as(client, tenant_a, "viewer")
    rows = event_rows(screen(client, category="SENSOR"))
    assert sorted(shown_count(row) for row in rows) == sorted(expected.values())
    assert {asset_code(row) for row in rows} == {"P-101"}
    assert len(event_rows(screen(client, category="SENSOR", reads="all"))) == 6


# --- limits ----------------------------------------------------------------------------------


def test_two_hundred_rows_at_most_and_a_note_when_more_exist(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    # 250 reads in one interval: one grouped row, but 250 rows when every read is asked for.
    times = [T0 + timedelta(seconds=2 * number) for number in range(250)]
    record_reads(session_factory, tenant_a, times)
    login_as(client, tenant_a, "viewer")

    grouped = screen(client, category="SENSOR")
    assert [shown_count(row) for row in event_rows(grouped)] == [250]
    assert grouped.select_one("[data-role=events-truncated]") is None

    every = screen(client, category="SENSOR", reads="all")
    rows = event_rows(every)
    assert len(rows) == 200
    assert row_time(rows[0]) == iso_z(times[-1])
    assert every.select_one("[data-role=events-truncated]") is not None


def test_grouped_rows_past_the_limit_show_the_note(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    # 205 intervals with two reads each: 205 groups, 200 shown.
    times = [T0 + timedelta(minutes=10 * n + offset) for n in range(205) for offset in (1, 2)]
    record_reads(session_factory, tenant_a, times)
    login_as(client, tenant_a, "viewer")
    soup = screen(client, category="SENSOR")
    rows = event_rows(soup)
    assert len(rows) == 200
    assert {shown_count(row) for row in rows} == {2}
    assert soup.select_one("[data-role=events-truncated]") is not None


def test_a_bounded_grouping_window_never_counts_a_group_short(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """However few events the screen scans, its oldest group is whole and it says more exist."""
    # Intervals 08:00, 08:10, 08:20 with 4 reads each; scanning the newest 6 events reaches
    # into 08:10's interval, which must then be read whole.
    record_reads(session_factory, tenant_a, minutes(1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24))
    monkeypatch.setattr(service, "GROUPING_SCAN_EVENTS", 6)
    login_as(client, tenant_a, "viewer")
    soup = screen(client, category="SENSOR")
    rows = event_rows(soup)
    assert [(row_time(row), shown_count(row)) for row in rows[:2]] == [
        ("2025-03-01T08:24:00Z", 4),
        ("2025-03-01T08:14:00Z", 4),
    ]
    assert all(shown_count(row) == 4 for row in rows)
    assert soup.select_one("[data-role=events-truncated]") is not None


# --- logins are for tenant admins ------------------------------------------------------------


@pytest.fixture
def logins(client: TestClient, tenant_a: TenantWorld, tenant_b: TenantWorld) -> dict[str, str]:
    """A failed login in each tenant (the login endpoint writes the AUTH events)."""
    fail_login(client, tenant_a.users["viewer"].email)
    fail_login(client, tenant_b.users["operator"].email)
    return {"a": tenant_a.users["viewer"].email, "b": tenant_b.users["operator"].email}


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_api_lists_no_logins_for_non_admins_and_refuses_asking_for_them(
    client: TestClient, tenant_a: TenantWorld, logins: dict[str, str], owner_engine: Engine,
    role: str,
) -> None:
    headers = bearer_headers(client, tenant_a.users[role].email)
    # Their own login and the failed one are recorded...
    assert len(events(owner_engine, tenant_id=tenant_a.tenant.id, category="AUTH")) == 2
    # ...but not listed for them.
    listed = client.get("/api/blackbox/events", params={"limit": 1000}, headers=headers)
    assert listed.status_code == 200
    assert listed.json()["events"], "other events are listed"
    assert {e["event_category"] for e in listed.json()["events"]} == {"CONFIG"}
    assert "Login" not in listed.text
    for params in ({"category": "AUTH"}, {"category": "AUTH", "severity": "WARNING"}):
        refused = client.get("/api/blackbox/events", params=params, headers=headers)
        assert refused.status_code == 403
        assert "tenant admin" in refused.json()["detail"]
        assert "Login" not in refused.text


def test_api_lists_logins_for_the_tenant_admin_only_of_their_tenant(
    client: TestClient, tenant_a: TenantWorld, logins: dict[str, str]
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    auth = client.get("/api/blackbox/events", params={"category": "AUTH"}, headers=headers)
    assert auth.status_code == 200
    assert [(e["severity"], e["payload"]["email"]) for e in auth.json()["events"]] == [
        ("INFO", tenant_a.admin.email),
        ("WARNING", logins["a"]),
    ]
    unfiltered = client.get("/api/blackbox/events", headers=headers).json()["events"]
    assert {"AUTH", "CONFIG"} == {e["event_category"] for e in unfiltered}
    assert logins["b"] not in str(unfiltered)


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_screen_shows_no_logins_to_non_admins(
    client: TestClient, tenant_a: TenantWorld, logins: dict[str, str], role: str
) -> None:
    login_as(client, tenant_a, role)
    for params in ({}, {"category": "AUTH"}, {"reads": "all"}, {"severity": "WARNING"}):
        soup = screen(client, **params)
        assert soup.select_one('select[name="category"] option[value="AUTH"]') is None
        assert not soup.select('[data-role=event-row][data-category="AUTH"]')
        assert event_rows(soup) or params.get("severity"), "other events are shown"
        assert not [row for row in event_rows(soup) if "Login" in row.get_text()]
        assert soup.select_one("[data-role=logins-hidden]") is not None
    # Asking for AUTH on the screen is like an unknown filter: no category is chosen.
    soup = screen(client, category="AUTH")
    assert soup.select_one('select[name="category"] option[selected]') is None


def test_screen_shows_logins_to_the_tenant_admin(
    client: TestClient, tenant_a: TenantWorld, logins: dict[str, str]
) -> None:
    login_as(client, tenant_a, "tenant_admin")
    soup = screen(client, category="AUTH")
    assert soup.select_one('select[name="category"] option[value="AUTH"][selected]') is not None
    rows = event_rows(soup)
    assert {row["data-category"] for row in rows} == {"AUTH"}
    texts = [row.get_text(" ", strip=True) for row in rows]
    assert any(f"Login failed for {logins['a']}" in text for text in texts)
    assert any(f"Login succeeded for {tenant_a.admin.email}" in text for text in texts)
    assert all(asset_code(row) == "—" for row in rows)
    assert logins["b"] not in soup.get_text()
    assert soup.select_one("[data-role=logins-hidden]") is None
    assert [r["data-category"] for r in event_rows(screen(client))].count("AUTH") == len(rows)


# --- tenants ---------------------------------------------------------------------------------


def test_another_tenants_reads_never_join_a_group_or_show(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld,
) -> None:
    # Same asset code, same metric, same interval in both tenants.
    mine = record_reads(session_factory, tenant_a, minutes(1, 2))
    theirs = record_reads(session_factory, tenant_b, minutes(1, 2, 3, 4, 5))
    theirs_alarm = record_other(session_factory, tenant_b, T0, category="ALARM")
    for role in ("viewer", "tenant_admin"):
        login_as(client, tenant_a, role)
        for reads in ("grouped", "all"):
            soup = screen(client, reads=reads)
            shown = {int(row["data-event-id"]) for row in event_rows(soup)}
            assert not shown & {*theirs, theirs_alarm}
            assert "TENANT_B" not in soup.get_text()
            sensor = [row for row in event_rows(soup) if row["data-category"] == "SENSOR"]
            if reads == "grouped":
                assert [shown_count(row) for row in sensor] == [2]
                assert int(sensor[0]["data-event-id"]) == max(mine)
            else:
                assert [int(row["data-event-id"]) for row in sensor] == sorted(mine, reverse=True)
            assert {row["data-asset-id"] for row in sensor} == {str(tenant_a.assets[0].id)}


# --- Arabic ----------------------------------------------------------------------------------


def test_grouped_rows_and_toggle_in_arabic(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld
) -> None:
    record_reads(session_factory, tenant_a, minutes(1, 2))
    login_as(client, tenant_a, "viewer")
    soup = screen(client, category="SENSOR", lang="ar")
    assert soup.html is not None and soup.html["dir"] == "rtl"
    (row,) = event_rows(soup)
    assert row.select_one("[data-role=event-count]").get_text(strip=True) == "قراءتان"
    assert "أول قراءة عند" in row.select_one("[data-role=read-span]").get_text()
    assert asset_code(row) == "P-101"
    labels = [link.get_text(strip=True) for link in soup.select("[data-role=reads-option]")]
    assert labels == ["مجمّعة لكل 10 دقائق", "كل قراءة"]
    assert "لمسؤولي المؤسسة" in soup.select_one("[data-role=logins-hidden]").get_text()

