"""Live streams: the shared hub, SSE framing, resume, revocation, and tenant safety."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers, browser_login
from tests.peers import (
    add_integration,
    add_mapping,
    event_count,
    make_sql_historian,
    test_sources,
)
from webapp.connectors.demo import DemoConnector, demo_values
from webapp.db import utcnow
from webapp.live.buffer import BUFFER_SECONDS
from webapp.live.hub import LiveHub
from webapp.series import Series, datetime_to_ns
from webapp.tenancy.models import UserSession
from webapp.timeseries.service import SeriesMode, SeriesWindow, Signal
from webapp.twin.live_charts import LiveCharts

TAG = "PI:P-101.VIB"


@dataclass
class Mapped:
    asset_id: int
    metric: str = "vibration_rms"
    mapping_id: int = 0
    integration_id: int = 0

    @property
    def json_stream(self) -> str:
        return f"/api/twins/assets/{self.asset_id}/metrics/{self.metric}/stream"

    @property
    def html_stream(self) -> str:
        return f"/twins/assets/{self.asset_id}/metrics/{self.metric}/stream"


def map_demo_signal(factory: sessionmaker[Session], world: TenantWorld) -> Mapped:
    integration_id = add_integration(
        factory, world.tenant.id, type="demo", name="Demo", config={"mode": "demo"}
    )
    mapping_id = add_mapping(
        factory, world.tenant.id, asset_id=world.assets[0].id, integration_id=integration_id,
        metric="vibration_rms", tag=TAG, unit="mm/s",
    )
    return Mapped(world.assets[0].id, mapping_id=mapping_id, integration_id=integration_id)


@pytest.fixture
def mapped(session_factory: sessionmaker[Session], tenant_a: TenantWorld) -> Mapped:
    return map_demo_signal(session_factory, tenant_a)


def read_events(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    """Parse `count` SSE events (comments and heartbeats skipped) from a line iterator."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        current[field] = current[field] + "\n" + value if field in current else value
    return events


def sensor_events(owner_engine: Engine, tenant_id: int) -> int:
    return event_count(owner_engine, tenant_id=tenant_id, category="SENSOR")


# --- the JSON point stream -----------------------------------------------------------------


def test_point_stream_sends_new_readings_with_timestamp_ids(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    with client.stream("GET", mapped.json_stream, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-content-type-options"] == "nosniff", "start went through"
        events = read_events(response.iter_lines(), 3)
    assert [event["event"] for event in events] == ["point"] * 3
    points = [json.loads(event["data"]) for event in events]
    assert [event["id"] for event in events] == [point["timestamp"] for point in points]
    stamps = [point["timestamp"] for point in points]
    assert stamps == sorted(set(stamps)), "each push is newer than the last"
    for point in points:
        assert set(point) == {"timestamp", "value", "unit", "quality"}
        assert point["unit"] == "mm/s" and point["quality"] == "good"
        assert point["timestamp"].endswith("Z")
        moment = datetime_to_ns(_parse(point["timestamp"]))
        assert point["value"] == float(demo_values(TAG, [moment])[0])
    assert sensor_events(owner_engine, tenant_a.tenant.id) == 1, "one event per opened stream"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_last_event_id_resumes_from_the_buffer_without_gaps_or_duplicates(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    with client.stream("GET", mapped.json_stream, headers=headers) as response:
        first = read_events(response.iter_lines(), 4)
    resume_from = first[0]["id"]
    with client.stream(
        "GET", mapped.json_stream, headers={**headers, "Last-Event-ID": resume_from}
    ) as response:
        resumed = read_events(response.iter_lines(), 4)
    resumed_ids = [event["id"] for event in resumed]
    assert resumed_ids[:3] == [event["id"] for event in first[1:]], "buffered points, in order"
    assert resume_from not in resumed_ids
    assert resumed_ids == sorted(set(resumed_ids))


def test_an_id_older_than_the_buffer_resumes_from_history(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    since = (utcnow() - timedelta(minutes=30)).replace(second=0, microsecond=0)
    with client.stream(
        "GET", mapped.json_stream,
        headers={**headers, "Last-Event-ID": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
    ) as response:
        events = read_events(response.iter_lines(), 5)
    stamps = [_parse(event["id"]) for event in events]
    assert stamps[0] == since + timedelta(minutes=1), "history resumes right after the id"
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(stamps))


def test_other_tenants_stream_is_404_and_writes_nothing(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tenant_b: TenantWorld, owner_engine: Engine,
) -> None:
    theirs = map_demo_signal(session_factory, tenant_b)
    headers = bearer_headers(client, tenant_a.admin.email)
    before = event_count(owner_engine, category="SENSOR")
    for url in (theirs.json_stream, theirs.html_stream):
        response = client.get(url, headers=headers)
        assert response.status_code == 404
        assert "PI:" not in response.text
    assert event_count(owner_engine, category="SENSOR") == before


def test_unknown_metric_stream_is_404(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld
) -> None:
    headers = bearer_headers(client, tenant_a.admin.email)
    unknown = Mapped(mapped.asset_id, "no_such_metric")
    assert client.get(unknown.json_stream, headers=headers).status_code == 404


# --- the HTML fragment stream --------------------------------------------------------------


def test_fragment_stream_swaps_latest_and_chart(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    with client.stream("GET", mapped.html_stream) as response:
        assert response.status_code == 200
        events = read_events(response.iter_lines(), 5)
    # The current state, then each newer reading; the chart (a sample a minute) waits for its
    # next sample unless a minute boundary passed meanwhile.
    names = [event["event"] for event in events]
    assert names[:4] == ["latest", "chart", "table", "latest"]
    assert names[4] in ("latest", "chart")
    assert events[0]["id"] == events[1]["id"] == events[2]["id"] < events[3]["id"]
    table = BeautifulSoup(events[2]["data"], "html.parser").select_one("[data-role=chart-table]")
    times = [cell["datetime"] for cell in table.select("tbody time")]
    assert len(times) == 100 and times == sorted(times, reverse=True), "newest first"
    latest = BeautifulSoup(events[3]["data"], "html.parser")
    assert latest.select_one("[data-role=unit]").text == "mm/s"
    value = latest.select_one("[data-role=latest-value]").text
    assert value and value != "—"
    time = latest.select_one("[data-role=latest-time]")
    assert time["datetime"].endswith("Z")
    chart = BeautifulSoup(events[1]["data"], "html.parser").select_one("svg[data-role=chart]")
    assert int(chart["data-points"]) == 100
    for marker in ("chart-min", "chart-max", "chart-last"):
        assert chart.select_one(f"[data-role={marker}]") is not None
    assert "mm/s" in [label.text for label in chart.select("[data-role=axis-label]")]
    assert sensor_events(owner_engine, tenant_a.tenant.id) == 1


def test_the_chart_is_sent_again_only_when_a_new_sample_completes(
    client: TestClient, session_factory: sessionmaker[Session], tenant_a: TenantWorld,
    tmp_path: Path,
) -> None:
    """A historian with a sample every 10 s: readings inside the current 10 s move only the
    latest value; the reading that completes the next sample brings the redrawn chart, which
    is still 100 samples (its window does not shrink) and ends at that sample."""
    now = utcnow().replace(microsecond=0)
    newest = now - timedelta(seconds=12)  # both readings written below are in the past
    rows = [("H.VIB", newest - timedelta(seconds=10 * i), 1.0 + i % 7, "good")
            for i in range(120)]
    url = make_sql_historian(tmp_path / "historian.db", rows)
    integration = add_integration(session_factory, tenant_a.tenant.id, type="sql", name="hist",
                                  config={"url": url, "table": "historian"})
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=tenant_a.assets[0].id,
                integration_id=integration, metric="vibration_rms", tag="H.VIB", unit="mm/s")
    historian = sa.create_engine(url)

    def write(at: datetime, value: float) -> None:
        with historian.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO historian (tag, ts, value, quality) VALUES ('H.VIB', :ts, :v, 'good')"
            ), {"ts": at.replace(tzinfo=None), "v": value})

    browser_login(client, tenant_a.users["viewer"].email)
    stream = f"/twins/assets/{tenant_a.assets[0].id}/metrics/vibration_rms/stream"
    try:
        with client.stream("GET", stream) as response:
            lines = response.iter_lines()
            opening = read_events(lines, 3)
            write(newest + timedelta(seconds=3), 2.5)  # within the current sample period
            within = read_events(lines, 1)
            write(newest + timedelta(seconds=10), 9.5)  # the next sample is complete
            completed = read_events(lines, 3)
    finally:
        historian.dispose()

    assert [e["event"] for e in opening] == ["latest", "chart", "table"]
    assert [e["event"] for e in within] == ["latest"]
    assert [e["event"] for e in completed] == ["latest", "chart", "table"]
    assert within[0]["id"] < completed[0]["id"] == completed[1]["id"]

    def drawn(event: dict[str, str]) -> tuple[int, float]:
        chart = BeautifulSoup(event["data"], "html.parser").select_one("svg[data-role=chart]")
        last = chart.select_one("[data-role=chart-last]")["data-value"]
        return int(chart["data-points"]), float(last)

    assert drawn(opening[1]) == (100, 1.0)  # the sample at `newest`: 1.0 + 0 % 7
    assert drawn(completed[1]) == (100, 9.5)
    newest_row = BeautifulSoup(completed[2]["data"], "html.parser").select_one("tbody time")
    assert newest_row["datetime"] == (newest + timedelta(seconds=10)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def test_revoked_session_ends_the_stream_with_close(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld, owner_engine: Engine
) -> None:
    browser_login(client, tenant_a.users["viewer"].email)
    with client.stream("GET", mapped.html_stream) as response:
        lines = response.iter_lines()
        assert read_events(lines, 2)[0]["event"] == "latest"
        with owner_engine.begin() as connection:
            connection.execute(update(UserSession).values(revoked_at=utcnow()))
        remaining = read_events(lines, 50)
    assert remaining[-1]["event"] == "close"
    assert len(remaining) < 50, "the stream ended after the revocation"


@pytest.mark.parametrize("edit", ["mapping", "integration"])
def test_editing_a_mapping_or_its_integration_ends_its_open_streams(
    client: TestClient, mapped: Mapped, tenant_a: TenantWorld, edit: str
) -> None:
    """Open streams do not keep serving old settings: they end (no close event, so the
    client reconnects) and the reconnect sees the edit, here a 404 for a deactivated one."""
    headers = bearer_headers(client, tenant_a.admin.email)
    url = (f"/api/mappings/{mapped.mapping_id}" if edit == "mapping"
           else f"/api/integrations/{mapped.integration_id}")
    with client.stream("GET", mapped.json_stream, headers=headers) as response:
        lines = response.iter_lines()
        assert read_events(lines, 1)[0]["event"] == "point"
        edited = client.patch(url, json={"is_active": False}, headers=headers)
        assert edited.status_code == 200, edited.text
        remaining = read_events(lines, 50)
    assert len(remaining) < 50, "the stream ended after the edit"
    assert all(event["event"] == "point" for event in remaining), "ended, not revoked"
    assert client.get(mapped.json_stream, headers=headers).status_code == 404


# --- the hub itself ------------------------------------------------------------------------


def demo_signal(integration_id: int, mapping_id: int = 1, scale: float = 1.0) -> Signal:
    return Signal(
        tenant_id=1, asset_id=1, mapping_id=mapping_id, metric="vibration_rms", unit="mm/s",
        external_tag=TAG, scaling_factor=scale, offset_value=0.0,
        integration_id=integration_id, integration_type="demo",
        integration_config={"mode": "demo"},
    )


class Collector:
    """A viewer's connection: the hub writes ASGI body messages to `send`."""

    def __init__(self, wanted: int) -> None:
        self.bodies: list[bytes] = []
        self.wanted = wanted
        self.enough = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.bodies.append(message["body"])
        if len(self.bodies) >= self.wanted:
            self.enough.set()


def encode_values(batch: Series) -> bytes:
    return json.dumps(list(zip(batch.timestamps.tolist(), batch.values.tolist(),
                               strict=True))).encode()


async def watch_until_enough(
    hub: LiveHub, signal: Signal, collector: Collector, variant: object = "values",
    encode: Callable[[Series], bytes] = encode_values,
) -> None:
    stream = asyncio.create_task(hub.stream(signal, collector.send, variant=variant,
                                            encode=encode))
    await collector.enough.wait()
    stream.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stream


def readings(collector: Collector) -> list[list[float]]:
    return [reading for body in collector.bodies for reading in json.loads(body)]


def test_one_poll_per_tick_serves_every_viewer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = DemoConnector.fetch_latest

    async def counting_fetch_latest(self: DemoConnector, tag: str) -> Series:
        calls.append(tag)
        return await original(self, tag)

    monkeypatch.setattr(DemoConnector, "fetch_latest", counting_fetch_latest)
    viewers, wanted = 300, 4

    async def scenario() -> tuple[list[Collector], int, list[bytes]]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        signal = demo_signal(integration_id=900_001)
        collectors = [Collector(wanted) for _ in range(viewers)]
        await asyncio.wait_for(
            asyncio.gather(*(watch_until_enough(hub, signal, c) for c in collectors)), 20
        )
        polls = hub.feeds[signal.source_key].polls
        await hub.aclose()
        return collectors, polls

    collectors, polls = asyncio.run(scenario())
    first = readings(collectors[0])[:wanted]
    assert len(first) == wanted
    assert all(readings(c)[:wanted] == first for c in collectors), "every viewer, same readings"
    stamps = [stamp for stamp, _value in first]
    assert stamps == sorted(set(stamps)), "in order, no duplicates"
    assert len(calls) == polls, "each poll is exactly one connector call"
    # One poll per tick, however many viewers: nowhere near one per viewer (timing-tolerant).
    assert polls < viewers // 10, f"{polls} polls for {viewers} viewers of {wanted} readings"


def test_ticks_keep_their_rate_when_the_fan_out_takes_time() -> None:
    """The poll and the fan-out come out of the interval: one poll per interval, not one
    per (interval + fan-out time)."""
    interval, fan_out = 0.1, 0.06

    async def scenario() -> tuple[int, float]:
        hub = LiveHub(interval=interval, sources=test_sources())
        signal = demo_signal(900_006)

        def slow_encode(batch: Series) -> bytes:
            time.sleep(fan_out)  # a fan-out to many viewers blocks the loop this long
            return encode_values(batch)

        collector = Collector(10**9)
        stream = asyncio.create_task(hub.stream(signal, collector.send, variant="slow",
                                                encode=slow_encode))
        await asyncio.sleep(0.2)
        feed = hub.feeds[signal.source_key]
        polls_before, started = feed.polls, time.monotonic()
        await asyncio.sleep(1.5)
        polls, elapsed = feed.polls - polls_before, time.monotonic() - started
        stream.cancel()
        await hub.aclose()
        return polls, elapsed

    polls, elapsed = asyncio.run(scenario())
    # Fixed rate gives elapsed / 0.1 = 15 polls; waiting a full interval after each fan-out
    # would give elapsed / 0.16 ≈ 9. The bound sits between, with room for a loaded machine.
    assert polls > elapsed / (interval + fan_out / 2), f"{polls} polls in {elapsed:.2f} s"


def test_each_viewer_sees_its_own_scaling_of_one_shared_poll() -> None:
    async def scenario() -> tuple[Collector, Collector]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        raw, doubled = demo_signal(900_002, 1), demo_signal(900_002, 2, scale=2.0)
        collectors = Collector(1), Collector(1)
        await asyncio.wait_for(asyncio.gather(
            watch_until_enough(hub, raw, collectors[0]),
            watch_until_enough(hub, doubled, collectors[1]),
        ), 10)
        await hub.aclose()
        return collectors

    raw, doubled = asyncio.run(scenario())
    raw_values = [value for _stamp, value in readings(raw)[:1]]
    doubled_values = [value for _stamp, value in readings(doubled)[:1]]
    assert raw_values and doubled_values == [value * 2.0 for value in raw_values]


def test_a_full_connection_neither_stalls_the_others_nor_misses_readings() -> None:
    """One viewer's writes block (its client stopped reading); the rest keep getting each
    tick, and once it drains it catches up from the buffer, in order, without gaps."""

    async def scenario() -> tuple[Collector, Collector, int]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        signal = demo_signal(900_005)
        blocked = asyncio.Event()
        stalled, healthy = Collector(8), Collector(8)
        stalled_send = stalled.send

        async def slow_send(message: dict) -> None:
            await blocked.wait()  # the connection's buffer is full until this is set
            await stalled_send(message)

        stalled.send = slow_send  # type: ignore[method-assign]
        slow = asyncio.create_task(watch_until_enough(hub, signal, stalled))
        await asyncio.wait_for(watch_until_enough(hub, signal, healthy), 10)
        writes_while_stalled = len(stalled.bodies)
        blocked.set()
        await asyncio.wait_for(slow, 10)
        await hub.aclose()
        return stalled, healthy, writes_while_stalled

    stalled, healthy, writes_while_stalled = asyncio.run(scenario())
    assert writes_while_stalled == 0, "the stalled viewer got nothing while it was stalled"
    assert len(readings(healthy)) >= 8, "the others kept getting every tick"
    caught_up = [stamp for stamp, _value in readings(stalled)]
    assert caught_up == sorted(set(caught_up)), "in order, no duplicates"
    assert len(stalled.bodies) < len(caught_up), "it caught up in batches, not one per tick"
    # It opened first, so it must hold every reading the other one got.
    assert {stamp for stamp, _value in readings(healthy)} <= set(caught_up), "nothing lost"


def test_a_viewer_stalled_longer_than_the_buffer_is_ended_to_resume_from_history() -> None:
    async def scenario() -> tuple[bool, int]:
        hub = LiveHub(interval=0.05, sources=test_sources())
        signal = demo_signal(900_007)
        blocked = asyncio.Event()
        collector = Collector(10**9)

        async def stuck_send(message: dict) -> None:
            await blocked.wait()
            await collector.send(message)

        stream = asyncio.create_task(hub.stream(signal, stuck_send, variant="values",
                                                encode=encode_values))
        await asyncio.sleep(0.3)  # its first write is stuck; readings keep coming
        feed = hub.feeds[signal.source_key]
        feed.trim(feed.timestamps[-1] + 1 + BUFFER_SECONDS * 1_000_000_000)  # time passes
        blocked.set()
        revoked = await asyncio.wait_for(stream, 5)
        await hub.aclose()
        return revoked, len(collector.bodies)

    revoked, writes = asyncio.run(scenario())
    assert revoked is False, "ended as a failed connection, not a revocation: no close event"
    assert writes == 1, "only the write that was stuck went out; nothing after the gap"


def test_fragments_render_once_per_tick_per_variant() -> None:
    renders: list[int] = []

    async def scenario() -> None:
        hub = LiveHub(interval=0.05, sources=test_sources())
        signal = demo_signal(900_003)
        now = utcnow()
        history = await DemoConnector({}).fetch_timeseries(TAG, now - timedelta(hours=3), now, 100)
        key = (1, "100")
        window = SeriesWindow(None, now, 100, SeriesMode.raw)
        charts = LiveCharts(hub)
        charts.seed(key, history, signal=signal, window=lambda: window, plot=False)

        def render(_batch: Series) -> bytes:
            series = charts.chart_for(key)
            renders.append(len(series))
            return f"chart of {len(series)}".encode()

        await asyncio.wait_for(asyncio.gather(*(
            watch_until_enough(hub, signal, Collector(3), ("fragments", key, "en"), render)
            for _ in range(50)
        )), 10)
        await hub.aclose()

    asyncio.run(scenario())
    assert 3 <= len(renders) <= 5, f"{len(renders)} renders for 50 viewers over 3 ticks"
    assert all(count == 100 for count in renders), "the chart keeps its 100 samples"


def test_closing_the_hub_stops_every_feed_promptly() -> None:
    async def scenario() -> tuple[int, int, bool]:
        hub = LiveHub(interval=0.005, sources=test_sources())
        feed = hub.attach(demo_signal(900_004))
        await asyncio.sleep(0.1)
        await asyncio.wait_for(hub.aclose(), 2)  # a hung close would fail here
        polls_at_close = feed.polls
        await asyncio.sleep(0.1)
        assert feed.task is not None
        return polls_at_close, feed.polls, feed.task.done()

    for _ in range(20):  # the cancellation race was intermittent
        polls_at_close, polls_later, done = asyncio.run(scenario())
        assert done and polls_later == polls_at_close
