"""Each connector runs its blocking work — DNS lookups, DB-API connects and queries — in its own
small pool (DESIGN.md §16, abuse limits). A historian that hangs holds only its own workers:
another integration's reads, and the loop's default executor (where the live hub runs its
revocation check through `asyncio.to_thread`), carry on at once, and each hung read still ends
in a ConnectorError within its timeout."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import sqlalchemy as sa

from webapp.connectors.base import Connector, ConnectorError
from webapp.connectors.opcua import OPCUAConnector
from webapp.connectors.pi_web_api import PIWebAPIConnector
from webapp.connectors.sql import SQLHistorianConnector

from .conftest import LOOPBACK_PEERS, FakeDNS, PIFixture, historian_url, run
from .net_peers import STALL, tcp_peer

# asyncio's default executor is a ThreadPoolExecutor of its default size.
DEFAULT_EXECUTOR_WORKERS = min(32, (os.cpu_count() or 1) + 4)
HUNG_READS = DEFAULT_EXECUTOR_WORKERS + 6  # enough to fill that executor, and then some
POOL_WORKERS = 4  # a connector's own pool: "a few" workers
TIMEOUT = 2.0
PROMPT = 1.0  # a read or thread hop that nothing holds up finishes well within this
PI_TAG, SQL_TAG = "PI:P-101.VIB", "P-101.VIB"


async def timed(work: Any) -> tuple[float, Any]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        result = await work
    except ConnectorError as exc:
        result = exc
    return loop.time() - started, result


async def probes(pi: PIFixture, pg_historian: sa.URL) -> dict[str, tuple[float, Any]]:
    """What must stay prompt while a historian hangs: a read of another connector of each
    kind that uses a pool (PI by name: its lookup runs in its pool), and a default-executor
    thread hop like the hub's revocation check."""
    others: dict[str, Connector] = {
        "sql": SQLHistorianConnector(
            {"url": historian_url(pg_historian), "table": "historian"},
            timeout=TIMEOUT,
            egress=LOOPBACK_PEERS,
        ),
        "pi": PIWebAPIConnector(
            pi.config(base_url=f"http://localhost:{pi.server.port}/piwebapi"),
            timeout=TIMEOUT,
            egress=LOOPBACK_PEERS,
        ),
    }
    try:
        return {
            "to_thread": await timed(asyncio.to_thread(sum, (1, 2))),
            "sql": await timed(others["sql"].fetch_latest(SQL_TAG)),
            "pi": await timed(others["pi"].fetch_latest(PI_TAG)),
        }
    finally:
        for connector in others.values():
            await connector.aclose()


def assert_prompt(results: dict[str, tuple[float, Any]]) -> None:
    assert {name: elapsed < PROMPT for name, (elapsed, _) in results.items()} == {
        "to_thread": True,
        "sql": True,
        "pi": True,
    }, results
    assert results["to_thread"][1] == 3
    assert results["sql"][1].values.tolist() == [3.25]
    assert len(results["pi"][1]) == 1


def assert_each_failed_within_the_timeout(reads: list[tuple[float, Any]], reason: str) -> None:
    for elapsed, outcome in reads:
        assert isinstance(outcome, ConnectorError), outcome
        assert reason in str(outcome), outcome
        assert elapsed < TIMEOUT + 1.0, elapsed


@pytest.mark.postgres
def test_a_silent_sql_historian_holds_only_its_own_workers(
    pi: PIFixture, pg_historian: sa.URL
) -> None:
    async def scenario() -> tuple[int, dict[str, Any], list[Any], float]:
        loop = asyncio.get_running_loop()
        with tcp_peer() as silent:  # accepts every connection, never answers
            hung = SQLHistorianConnector(
                {"url": f"postgresql+psycopg2://reader@127.0.0.1:{silent.port}/h", "table": "h"},
                timeout=TIMEOUT,
                egress=LOOPBACK_PEERS,
            )
            reads = [
                asyncio.create_task(timed(hung.fetch_latest(SQL_TAG))) for _ in range(HUNG_READS)
            ]
            # Every worker of the hung connector's pool is now stuck in a connect.
            await asyncio.wait_for(silent.connections.reach(POOL_WORKERS), TIMEOUT)
            prompt = await probes(pi, pg_historian)
            reached = silent.accepted()  # the other reads wait in the pool, not at the peer
            outcomes = await asyncio.gather(*reads)
            started = loop.time()
            await hung.aclose()  # workers may still be stuck: closing doesn't wait for them
            closing = loop.time() - started
        return reached, prompt, outcomes, closing

    reached, prompt, outcomes, closing = run(scenario())
    assert_prompt(prompt)
    assert reached == POOL_WORKERS
    assert_each_failed_within_the_timeout(outcomes, "did not answer within 2 s")
    assert closing < 0.5


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["pi", "opcua", "sql"])
def test_a_hanging_name_lookup_holds_only_the_connectors_own_workers(
    kind: str, pi: PIFixture, pg_historian: sa.URL, fake_dns: FakeDNS
) -> None:
    """The resolver itself hangs (a dead DNS server): lookups run in the connector's pool, so
    the default executor stays free, and the reads give up within the timeout."""
    fake_dns.answers["stuck.optria.test"] = [STALL]
    hung: Connector = {
        "pi": lambda: PIWebAPIConnector(
            {"base_url": "http://stuck.optria.test:8080/piwebapi", "data_server": "S"},
            timeout=TIMEOUT,
            egress=LOOPBACK_PEERS,
        ),
        "opcua": lambda: OPCUAConnector(
            {"endpoint": "opc.tcp://stuck.optria.test:4840/"},
            timeout=TIMEOUT,
            egress=LOOPBACK_PEERS,
        ),
        "sql": lambda: SQLHistorianConnector(
            {"url": "postgresql+psycopg2://reader@stuck.optria.test/h", "table": "h"},
            timeout=TIMEOUT,
            egress=LOOPBACK_PEERS,
        ),
    }[kind]()
    tag = {"pi": PI_TAG, "opcua": "ns=2;s=P-101.VIB", "sql": SQL_TAG}[kind]
    # OPC UA opens one session at a time, so only one of its reads is ever looking up.
    stalled = {"pi": POOL_WORKERS, "opcua": 1, "sql": POOL_WORKERS}[kind]

    async def scenario() -> tuple[dict[str, Any], list[Any]]:
        reads = [asyncio.create_task(timed(hung.fetch_latest(tag))) for _ in range(HUNG_READS)]
        await asyncio.wait_for(fake_dns.stalled.reach(stalled), TIMEOUT)
        prompt = await probes(pi, pg_historian)
        outcomes = await asyncio.gather(*reads)
        await hung.aclose()
        return prompt, outcomes

    prompt, outcomes = run(scenario())
    assert_prompt(prompt)
    assert_each_failed_within_the_timeout(outcomes, "within 2 s")
    stuck = [thread for name, thread in fake_dns.lookups if name == "stuck.optria.test"]
    assert stalled <= len(stuck) <= POOL_WORKERS  # the rest never left the pool's queue
    assert all(thread.startswith(f"connector-{kind}-stuck.optria.test_") for thread in stuck)
