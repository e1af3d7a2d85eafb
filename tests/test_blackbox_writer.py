"""The BlackBox group commit (DESIGN.md §17): concurrent requests' events share transactions,
each request returns only once its events are committed, the chain stays one line, and a
failure is reported to exactly the requests it concerns."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TenantWorld, bearer_headers
from tests.peers import add_integration, add_mapping, event_count, events
from webapp.blackbox.service import EventDraft, verify_chain
from webapp.blackbox.writer import EventsNotRecorded, EventWriter
from webapp.db import tenant_session


def draft(world: TenantWorld, number: int, **payload: object) -> EventDraft:
    return EventDraft(
        tenant_id=world.tenant.id, asset_id=world.assets[0].id, source_system="TEST",
        source_type="TAG_READING", event_category="SENSOR", severity="INFO",
        summary=f"read {number}", payload={"number": number, **payload},
    )


def written(engine: Engine, world: TenantWorld) -> list[dict[str, object]]:
    """The tenant's events these tests wrote (creating the tenant wrote audit events too)."""
    return [e for e in events(engine, tenant_id=world.tenant.id) if e["source_system"] == "TEST"]


def chain_holds(factory: sessionmaker[Session], world: TenantWorld) -> bool:
    with tenant_session(factory, world.tenant.id) as session:
        return verify_chain(session).ok


async def with_writer(factory: sessionmaker[Session], work):  # type: ignore[no-untyped-def]
    writer = EventWriter(factory)
    writer.start()
    try:
        return writer, await work(writer)
    finally:
        await writer.aclose()


def test_concurrent_requests_share_commits_and_each_keeps_its_events_together(
    session_factory: sessionmaker[Session], owner_engine: Engine,
    tenant_a: TenantWorld, tenant_b: TenantWorld,
) -> None:
    requests = 60

    async def work(writer: EventWriter) -> None:
        # Two events per request (a read and its warning), two tenants interleaved.
        await asyncio.gather(*(
            writer.record([draft(world, n, part=1), draft(world, n, part=2)])
            for n in range(requests)
            for world in (tenant_a, tenant_b)
        ))

    writer, _ = asyncio.run(with_writer(session_factory, work))

    for world in (tenant_a, tenant_b):
        rows = written(owner_engine, world)
        assert len(rows) == 2 * requests
        # A request's events are neighbours in the chain, in the order given.
        pairs = [rows[i : i + 2] for i in range(0, len(rows), 2)]
        for first, second in pairs:
            assert first["payload"]["number"] == second["payload"]["number"]
            assert (first["payload"]["part"], second["payload"]["part"]) == (1, 2)
        assert sorted(p[0]["payload"]["number"] for p in pairs) == list(range(requests))
        assert chain_holds(session_factory, world)
    # Grouped: far fewer transactions than the 120 requests (one per tenant per batch).
    assert writer.batches_committed < 2 * requests


def test_record_returns_only_once_the_events_are_committed(
    session_factory: sessionmaker[Session], owner_engine: Engine, tenant_a: TenantWorld,
) -> None:
    seen_after_return: list[int] = []

    async def work(writer: EventWriter) -> None:
        for number in range(3):
            await writer.record([draft(tenant_a, number)])
            # Another connection (the owner's) sees it at once: it is committed, not pending.
            seen_after_return.append(len(written(owner_engine, tenant_a)))

    asyncio.run(with_writer(session_factory, work))
    assert seen_after_return == [1, 2, 3]


def test_a_bad_event_fails_only_its_own_request(
    session_factory: sessionmaker[Session], owner_engine: Engine,
    tenant_a: TenantWorld, tenant_b: TenantWorld,
) -> None:
    async def work(writer: EventWriter) -> list[BaseException | None]:
        # NaN cannot be stored as JSON, so that event cannot join the chain.
        return await asyncio.gather(
            writer.record([draft(tenant_a, 1)]),
            writer.record([draft(tenant_a, 2, value=math.nan)]),
            writer.record([draft(tenant_a, 3)]),
            writer.record([draft(tenant_b, 4)]),
            return_exceptions=True,
        )

    _, outcomes = asyncio.run(with_writer(session_factory, work))
    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], EventsNotRecorded)
    assert [e["payload"]["number"] for e in written(owner_engine, tenant_a)] == [1, 3]
    assert len(written(owner_engine, tenant_b)) == 1
    assert chain_holds(session_factory, tenant_a)


def test_one_request_may_not_write_to_two_tenants(
    session_factory: sessionmaker[Session], owner_engine: Engine,
    tenant_a: TenantWorld, tenant_b: TenantWorld,
) -> None:
    async def work(writer: EventWriter) -> None:
        await writer.record([draft(tenant_a, 1), draft(tenant_b, 2)])

    with pytest.raises(EventsNotRecorded, match="exactly one tenant"):
        asyncio.run(with_writer(session_factory, work))
    assert written(owner_engine, tenant_a) == written(owner_engine, tenant_b) == []


def test_closing_commits_what_is_queued_then_refuses(
    session_factory: sessionmaker[Session], owner_engine: Engine, tenant_a: TenantWorld,
) -> None:
    async def scenario() -> None:
        writer = EventWriter(session_factory)
        writer.start()
        # gather starts its tasks in order: the five are queued before the close begins.
        await asyncio.gather(
            *(writer.record([draft(tenant_a, n)]) for n in range(5)), writer.aclose()
        )
        with pytest.raises(EventsNotRecorded, match="not running"):
            await writer.record([draft(tenant_a, 99)])

    asyncio.run(scenario())
    assert len(written(owner_engine, tenant_a)) == 5


def test_a_read_that_cannot_be_recorded_is_not_shown(
    app: FastAPI, client: TestClient, owner_engine: Engine,
    session_factory: sessionmaker[Session], tenant_a: TenantWorld,
) -> None:
    integration = add_integration(
        session_factory, tenant_a.tenant.id, type="demo", name="Demo", config={}
    )
    asset = tenant_a.assets[0]
    add_mapping(session_factory, tenant_a.tenant.id, asset_id=asset.id,
                integration_id=integration, metric="vibration_rms", tag="DEMO:P-101.VIB")
    headers = bearer_headers(client, tenant_a.users["viewer"].email)
    url = f"/api/twins/assets/{asset.id}/metrics/vibration_rms/series"
    assert client.get(url, headers=headers).status_code == 200

    client.portal.call(app.state.blackbox.aclose)  # the BlackBox can take no more events
    try:
        response = client.get(url, headers=headers)
        assert response.status_code == 503
        assert "could not be recorded in the BlackBox" in response.json()["detail"]
        assert "points" not in response.json()
        assert event_count(owner_engine, category="SENSOR") == 1
    finally:
        app.state.blackbox = EventWriter(session_factory)
        client.portal.call(app.state.blackbox.start)
        app.state.read_path = replace(app.state.read_path, blackbox=app.state.blackbox)
