"""Abuse limits (DESIGN.md §16): login throttling that holds under concurrency, a cap on open
streams per user, and Last-Event-ID values that cannot silence or flood a stream. Both
backends; the concurrency test runs the app on a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import PASSWORD, TenantWorld, bearer_headers, browser_login
from tests.connectors.conftest import fake_dns
from tests.connectors.net_peers import STALL, FakeDNS, tcp_peer
from tests.peers import add_integration, add_mapping, events, served
from tests.test_live_streams import Mapped, mapped, read_events
from webapp.db import utcnow
from webapp.integrations.service import RESOLVE_SECONDS
from webapp.tenancy.models import LoginFailure

__all__ = ["fake_dns", "mapped"]  # other suites' fixtures, used here
PARALLEL_ATTEMPTS = 20
EMAIL_LIMIT = 5  # DESIGN.md §5


def test_twenty_wrong_passwords_at_once_get_at_most_five_answers_other_than_429(
    app, tenant_a: TenantWorld, owner_engine: Engine  # type: ignore[no-untyped-def]
) -> None:
    email = tenant_a.users["viewer"].email
    with served(app) as base_url, ThreadPoolExecutor(PARALLEL_ATTEMPTS) as pool:

        def attempt(index: int) -> int:
            response = httpx.post(
                f"{base_url}/api/auth/token",
                data={"username": email, "password": f"wrong-{index}"},
                timeout=60,
            )
            return response.status_code

        statuses = Counter(pool.map(attempt, range(PARALLEL_ATTEMPTS)))
        after = httpx.post(
            f"{base_url}/api/auth/token", data={"username": email, "password": PASSWORD}
        )
    assert set(statuses) <= {401, 429}
    assert 1 <= statuses[401] <= EMAIL_LIMIT, statuses
    assert statuses[401] + statuses[429] == PARALLEL_ATTEMPTS
    assert after.status_code == 429, "even the right password waits out the window"
    assert int(after.headers["retry-after"]) > 0
    # Only the processed attempts were checked against the password: one AUTH event each.
    failures = events(owner_engine, tenant_id=tenant_a.tenant.id, category="AUTH")
    assert len(failures) == statuses[401]
    with owner_engine.connect() as connection:
        counted = connection.execute(
            select(func.count()).select_from(LoginFailure).where(LoginFailure.email == email)
        ).scalar_one()
    assert counted == statuses[401]


# --- streams per user -----------------------------------------------------------------------


def test_a_user_may_hold_twenty_streams_open_and_no_more(
    client: TestClient, tenant_a: TenantWorld, mapped: Mapped, owner_engine: Engine
) -> None:
    viewer = bearer_headers(client, tenant_a.users["viewer"].email)
    html_client = TestClient(client.app)
    browser_login(html_client, tenant_a.users["viewer"].email)
    with ExitStack() as open_streams:
        for index in range(20):  # JSON and HTML streams count together
            if index % 2:
                response = open_streams.enter_context(html_client.stream("GET", mapped.html_stream))
            else:
                response = open_streams.enter_context(
                    client.stream("GET", mapped.json_stream, headers=viewer)
                )
            assert response.status_code == 200, index
        sensor_before = len(events(owner_engine, category="SENSOR"))
        refused = client.get(mapped.json_stream, headers=viewer)
        assert refused.status_code == 429
        assert "OPTRIA_STREAMS_PER_USER" in refused.json()["detail"]
        assert html_client.get(mapped.html_stream).status_code == 429
        assert len(events(owner_engine, category="SENSOR")) == sensor_before, "refused: unread"
        # Another user is not affected by this one's streams.
        admin = bearer_headers(client, tenant_a.admin.email)
        with client.stream("GET", mapped.json_stream, headers=admin) as other:
            assert other.status_code == 200
    # Closing streams gives the slots back.
    with client.stream("GET", mapped.json_stream, headers=viewer) as again:
        assert again.status_code == 200
        assert read_events(again.iter_lines(), 1)[0]["event"] == "point"


# --- Last-Event-ID --------------------------------------------------------------------------


def first_point_time(client: TestClient, mapped: Mapped, headers: dict[str, str]) -> datetime:
    with client.stream("GET", mapped.json_stream, headers=headers) as response:
        assert response.status_code == 200
        (event,) = read_events(response.iter_lines(), 1)
    return datetime.fromisoformat(event["id"].replace("Z", "+00:00"))


def test_a_last_event_id_in_the_future_does_not_silence_the_stream(
    client: TestClient, tenant_a: TenantWorld, mapped: Mapped
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    future = "2099-01-01T00:00:00.000000Z"
    sent = first_point_time(client, mapped, {**headers, "Last-Event-ID": future})
    assert utcnow() - timedelta(minutes=1) < sent <= utcnow(), "starts from now"


def test_a_last_event_id_beyond_the_longest_window_does_not_replay_history(
    client: TestClient, tenant_a: TenantWorld, mapped: Mapped
) -> None:
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    ancient = (utcnow() - timedelta(days=367)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sent = first_point_time(client, mapped, {**headers, "Last-Event-ID": ancient})
    assert sent > utcnow() - timedelta(minutes=1), "starts from now, not from a year ago"
    # Within the window, resuming still works (the contract of §5).
    recent = (utcnow() - timedelta(minutes=10)).replace(second=0, microsecond=0)
    resumed = first_point_time(
        client, mapped, {**headers, "Last-Event-ID": recent.strftime("%Y-%m-%dT%H:%M:%SZ")}
    )
    assert resumed == recent + timedelta(minutes=1)


# --- a hung historian stays its own problem -------------------------------------------------


def test_a_hung_sql_historian_delays_no_login_no_other_source_and_no_revocation(
    app, session_factory: sessionmaker[Session], tenant_a: TenantWorld  # type: ignore[no-untyped-def]
) -> None:
    """A silent peer as a PostgreSQL historian (it accepts, never answers) holds every worker
    of its own connector's pool; meanwhile a login, a read of another source and the streams'
    revocation check (the default executor) go on as if nothing happened."""
    tenant_id, asset_id = tenant_a.tenant.id, tenant_a.assets[0].id
    hanging = 16  # well past the connector's pool and the default executor
    with tcp_peer() as silent:
        dead = add_integration(
            session_factory, tenant_id, type="sql", name="hung historian",
            config={"url": f"postgresql://reader@127.0.0.1:{silent.port}/h", "table": "h"},
        )
        healthy = add_integration(session_factory, tenant_id, type="demo", name="d", config={})
        for metric, integration_id in (("hung", dead), ("healthy", healthy)):
            add_mapping(session_factory, tenant_id, asset_id=asset_id,
                        integration_id=integration_id, metric=metric, tag="PI:P-101.VIB")
        base = f"/api/twins/assets/{asset_id}/metrics"

        async def scenario(base_url: str) -> dict[str, float]:
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

                async def token() -> dict[str, str]:
                    response = await http.post("/api/auth/token", data={
                        "username": tenant_a.users["viewer"].email, "password": PASSWORD,
                    })
                    assert response.status_code == 200, response.text
                    return {"Authorization": f"Bearer {response.json()['access_token']}"}

                headers, streamer = await token(), await token()
                stuck = [asyncio.create_task(http.get(f"{base}/hung/series", headers=headers))
                         for _ in range(hanging)]
                await silent.connections.reach(1)  # the historian is now holding threads
                timings: dict[str, float] = {}
                started = time.monotonic()
                await token()
                timings["login"] = time.monotonic() - started
                started = time.monotonic()
                healthy_read = await http.get(f"{base}/healthy/series", headers=headers)
                timings["other source"] = time.monotonic() - started
                assert healthy_read.status_code == 200
                async with http.stream("GET", f"{base}/healthy/stream",
                                       headers=streamer) as stream:
                    lines = stream.aiter_lines()
                    while not (await anext(lines)).startswith("event: point"):
                        pass
                    started = time.monotonic()
                    revoked = await http.post("/api/auth/revoke", headers=streamer)
                    assert revoked.status_code == 200
                    async for line in lines:
                        if line == "event: close":
                            break
                    timings["revocation"] = time.monotonic() - started
                statuses = {response.status_code for response in await asyncio.gather(*stuck)}
                assert statuses == {503}
                return timings

        with served(app) as base_url:
            timings = asyncio.run(scenario(base_url))
        # Its pool's few threads took turns; reads that gave up in the queue never connected.
        assert silent.accepted() < hanging
    interval = app.state.settings.stream_interval_seconds
    assert timings["login"] < 1.0 and timings["other source"] < 1.0, timings
    assert timings["revocation"] < 2 * interval + 0.5, timings


def test_a_slow_name_server_holds_no_thread_a_login_needs(
    app, tenant_a: TenantWorld, fake_dns: FakeDNS  # type: ignore[no-untyped-def]
) -> None:
    """Saving a config resolves its host; a tenant admin's name server that never answers
    ties up only the few threads of that check (bounded in time), never the threads that
    serve logins and every other synchronous request."""
    fake_dns.answers["slow.optria.test"] = [STALL]
    body = {"type": "pi", "name": "slow", "config": {
        "base_url": "https://slow.optria.test/piwebapi", "data_server": "S"}}
    attempts = 45  # more than the server's worker threads (40)
    try:
        with served(app) as base_url, ThreadPoolExecutor(attempts) as pool:
            token = httpx.post(f"{base_url}/api/auth/token", data={
                "username": tenant_a.admin.email, "password": PASSWORD}).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            saves = [pool.submit(httpx.post, f"{base_url}/api/integrations", json=body,
                                 headers=headers, timeout=30) for _ in range(attempts)]
            deadline = time.monotonic() + 10
            while fake_dns.stalled.count < 4:  # every resolver thread is now stuck
                assert time.monotonic() < deadline, "no lookup ever stalled"
                time.sleep(0.02)
            started = time.monotonic()
            login = httpx.post(f"{base_url}/api/auth/token", data={
                "username": tenant_a.users["viewer"].email, "password": PASSWORD}, timeout=30)
            login_seconds = time.monotonic() - started
            # Answered while every save still waits on its stalled name server: the login did
            # not queue behind them (a queued login would get a thread only once a lookup gave
            # up, after RESOLVE_SECONDS, and with the saves).
            saves_done_at_login = sum(save.done() for save in saves)
            statuses = {save.result().status_code for save in saves}
    finally:
        fake_dns.release.set()
    assert login.status_code == 200
    assert saves_done_at_login == 0
    assert login_seconds < RESOLVE_SECONDS, login_seconds  # not a speed target: the bound
    assert statuses == {201}, "a name not resolved in time is not refused: connecting checks it"
