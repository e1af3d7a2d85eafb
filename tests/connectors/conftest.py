"""Real peers for the connector tests: a PI Web API look-alike over HTTP, an asyncua server
with populated history, and historian tables in SQLite and PostgreSQL; the egress policies the
tests rely on, and a resolver for `*.optria.test` names (net_peers.py has the other peers).

Tests drive connectors with `asyncio.run` (each test its own loop) while the servers run in
their own threads, so nothing depends on an async pytest plugin.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pytest
import sqlalchemy as sa
from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.history import HistoryDict

from tests.conftest import postgres_server_url, temporary_postgres_database
from webapp.connectors.base import Connector
from webapp.connectors.egress import EgressPolicy
from webapp.series import QUALITY_BAD, QUALITY_GOOD, QUALITY_UNCERTAIN, datetime_to_ns

from .fake_pi import FakePIServer, FakePoint, pi_timestamp
from .net_peers import TEST_DOMAIN, FakeDNS

T = TypeVar("T")

END = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # newest sample of every fixture series
MINUTE_NS = 60_000_000_000

logging.getLogger("asyncua").setLevel(logging.ERROR)

# The suite's peers live on this machine. A connector's default policy refuses loopback and
# local files (DESIGN.md §16), so each test names what it relies on, as demo mode would allow.
LOOPBACK_PEERS = EgressPolicy(allow_loopback=True)
LOCAL_PEERS = EgressPolicy(allow_loopback=True, allow_local_files=True)  # + SQLite files


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def run_closing(connector: Connector, coro: Awaitable[T]) -> T:
    """Run one connector call on a fresh loop, then close the connector on that same loop
    (HTTP pools and OPC UA sessions belong to the loop that opened them)."""

    async def go() -> T:
        try:
            return await coro
        finally:
            await connector.aclose()

    return asyncio.run(go())


@dataclass
class Expected:
    """What a source holds for one tag, as the connector must return it."""

    timestamps: np.ndarray
    values: np.ndarray  # NaN where bad
    quality: np.ndarray

    def window(self, from_ns: int | None, to_ns: int) -> Expected:
        lo = 0 if from_ns is None else int(np.searchsorted(self.timestamps, from_ns, "left"))
        hi = int(np.searchsorted(self.timestamps, to_ns, "right"))
        return Expected(self.timestamps[lo:hi], self.values[lo:hi], self.quality[lo:hi])

    def tail(self, n: int) -> Expected:
        return Expected(self.timestamps[-n:], self.values[-n:], self.quality[-n:])


def assert_series_equal(series: Any, expected: Expected) -> None:
    """Bit-exact: timestamps and values identical (NaN where bad), quality codes identical."""
    np.testing.assert_array_equal(series.timestamps, expected.timestamps)
    np.testing.assert_array_equal(series.quality, expected.quality)
    assert series.values.dtype == np.float64
    np.testing.assert_array_equal(
        series.values.view(np.uint64)[~np.isnan(series.values)],
        expected.values.view(np.uint64)[~np.isnan(expected.values)],
    )
    np.testing.assert_array_equal(np.isnan(series.values), np.isnan(expected.values))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PI Web API ------------------------------------------------------------------------------

PI_COUNT = 3000


@dataclass
class PIFixture:
    server: FakePIServer
    expected: Expected  # for PI:P-101.VIB
    dup_expected: Expected  # for PI:P-101.DUP (repeated timestamps)

    def config(self, **overrides: Any) -> dict[str, Any]:
        from .fake_pi import DATA_SERVER, PASSWORD, USERNAME

        config = {
            "base_url": self.server.base_url,
            "data_server": DATA_SERVER,
            "username": USERNAME,
            "password": PASSWORD,
            "verify_tls": False,
        }
        config.update(overrides)
        return config


def _pi_vib_items() -> tuple[list[dict[str, Any]], Expected]:
    rng = np.random.default_rng(20261127)
    values = rng.normal(3.0, 1.2, PI_COUNT)  # full-precision float64s
    end_ns = datetime_to_ns(END)
    ns = end_ns - (PI_COUNT - 1 - np.arange(PI_COUNT, dtype=np.int64)) * MINUTE_NS
    ns[1::2] -= 876_543_300  # odd samples carry 7 fractional digits (…59.1234567Z)
    quality = np.zeros(PI_COUNT, dtype=np.uint8)
    items: list[dict[str, Any]] = []
    for i in range(PI_COUNT):
        items.append(
            {
                "Timestamp": pi_timestamp(int(ns[i]), 7 if i % 2 else 0),
                "Value": float(values[i]),
                "UnitsAbbreviation": "mm/s",
                "Good": True,
                "Questionable": False,
                "Substituted": False,
                "Annotated": False,
            }
        )
    specials: dict[int, tuple[dict[str, Any], int]] = {
        PI_COUNT - 10: ({"Questionable": True}, QUALITY_UNCERTAIN),
        PI_COUNT - 9: ({"Substituted": True}, QUALITY_UNCERTAIN),
        PI_COUNT - 8: ({"Good": False}, QUALITY_BAD),
        PI_COUNT - 7: (
            {"Good": False, "Value": {"Name": "I/O Timeout", "Value": 246, "IsSystem": True}},
            QUALITY_BAD,
        ),
        PI_COUNT - 6: (
            {"Value": {"Name": "Shutdown", "Value": 254, "IsSystem": True}},
            QUALITY_BAD,
        ),
    }
    for i, (change, code) in specials.items():
        items[i].update(change)
        quality[i] = code
    values = values.copy()
    values[quality == QUALITY_BAD] = np.nan
    return items, Expected(ns, values, quality)


def _pi_dup_items() -> tuple[list[dict[str, Any]], Expected]:
    """Ten points where pairs share a timestamp, to test paging across equal times."""
    base = datetime_to_ns(END)
    ns = base - np.array([9, 8, 8, 7, 6, 6, 5, 4, 4, 3], dtype=np.int64) * MINUTE_NS
    values = np.arange(10, dtype=np.float64) + 0.5
    items = [
        {"Timestamp": pi_timestamp(int(t), 0), "Value": float(v), "Good": True}
        for t, v in zip(ns, values, strict=True)
    ]
    return items, Expected(ns, values, np.zeros(10, dtype=np.uint8))


@pytest.fixture(scope="session")
def pi() -> Iterator[PIFixture]:
    vib_items, vib_expected = _pi_vib_items()
    dup_items, dup_expected = _pi_dup_items()
    server = FakePIServer(
        [
            FakePoint("P-101.VIB", "F1DPvibWebId", vib_items),
            FakePoint("P-101.DUP", "F1DPdupWebId", dup_items),
        ]
    ).start()
    yield PIFixture(server, vib_expected, dup_expected)
    server.stop()


# --- OPC UA ----------------------------------------------------------------------------------

OPC_NS_URI = "urn:optria:test"
OPC_SMALL = 500  # P-101.VIB history length
OPC_BIG = 25_000  # P-101.BIG: more than the server's 10,000-values page


@dataclass
class OPCUAFixture:
    endpoint: str
    expected: dict[str, Expected]  # by tag
    latest: dict[str, float]


class ForwardOnlyHistory(HistoryDict):
    """History that, for P-101.FWD only, ignores the newest-first convention (StartTime after
    EndTime) like some servers do, so the connector's forward fallback meets a real peer."""

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        if node_id.Identifier == "P-101.FWD" and start and end and start > end:
            start, end = end, start
        return await super().read_node_history(node_id, start, end, nb_values)


OPC_USER, OPC_PASSWORD = "operator", "opc-secret"


class OperatorUsers:
    """Anonymous sessions are allowed; a username must come with the right password."""

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, **_: Any
    ) -> User | None:
        if username is None or (username, password) == (OPC_USER, OPC_PASSWORD):
            return User(role=UserRole.User)
        return None


class OPCUAServerThread:
    """An asyncua Server on its own event loop in a daemon thread."""

    def __init__(self, port: int, *, populate: bool = True) -> None:
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/optria/"
        self.populate = populate
        self.expected: dict[str, Expected] = {}
        self.latest: dict[str, float] = {}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: Server | None = None
        self._running = False

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(factory(), self.loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> OPCUAServerThread:
        """Start the server (again, after stop(): same address space and history)."""
        if not self._thread.is_alive():
            self._thread.start()
        if self._server is None:
            self.call(self._start)
        else:
            self.call(self._server.start)
        self._running = True
        return self

    def stop(self) -> None:
        if self._server is not None and self._running:
            self.call(self._server.stop)
            self._running = False

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()

    async def _start(self) -> None:
        server = Server(user_manager=OperatorUsers())  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_security_IDs(["Anonymous", "Username"])
        server.iserver.history_manager.set_storage(ForwardOnlyHistory())
        idx = await server.register_namespace(OPC_NS_URI)
        pump = await server.nodes.objects.add_object(idx, "P-101")
        storage = server.iserver.history_manager.storage
        end_ns = datetime_to_ns(END)
        rng = np.random.default_rng(7)

        async def historized(name: str, count: int, statuses: dict[int, int]) -> None:
            node_id = ua.NodeId(name, idx)
            latest = float(rng.normal(50.0, 10.0))
            await pump.add_variable(node_id, name, latest, varianttype=ua.VariantType.Double)
            self.latest[f"ns={idx};s={name}"] = latest
            if not self.populate:
                return
            await storage.new_historized_node(node_id, None)
            ns = end_ns - (count - 1 - np.arange(count, dtype=np.int64)) * MINUTE_NS
            ns -= 1_000 * rng.integers(0, 1_000_000, count)  # µs jitter (OPC keeps 100 ns)
            values = rng.normal(50.0, 10.0, count)
            quality = np.zeros(count, dtype=np.uint8)
            for i in range(count):
                status = statuses.get(i, ua.StatusCodes.Good)
                stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
                    microseconds=int(ns[i]) // 1000
                )
                dv = ua.DataValue(
                    ua.Variant(float(values[i]), ua.VariantType.Double),
                    StatusCode=ua.StatusCode(status),
                    SourceTimestamp=stamp,
                    ServerTimestamp=stamp,
                )
                await storage.save_node_value(node_id, dv)
                quality[i] = (
                    QUALITY_GOOD
                    if status == ua.StatusCodes.Good
                    else QUALITY_UNCERTAIN
                    if status >> 30 == 1
                    else QUALITY_BAD
                )
            values = values.copy()
            values[quality == QUALITY_BAD] = np.nan
            self.expected[f"ns={idx};s={name}"] = Expected(ns, values, quality)

        await historized(
            "P-101.VIB",
            OPC_SMALL,
            {
                OPC_SMALL - 5: ua.StatusCodes.UncertainLastUsableValue,
                OPC_SMALL - 4: ua.StatusCodes.BadSensorFailure,
            },
        )
        await historized("P-101.BIG", OPC_BIG, {})
        await historized("P-101.FWD", 300, {})
        text_node = ua.NodeId("P-101.STATE", idx)
        await pump.add_variable(text_node, "P-101.STATE", "RUNNING")
        await server.start()
        self._server = server


@pytest.fixture(scope="session")
def opcua() -> Iterator[OPCUAFixture]:
    thread = OPCUAServerThread(free_port()).start()
    yield OPCUAFixture(thread.endpoint, thread.expected, thread.latest)
    thread.close()


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A TCP port that completes the handshake (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"opc.tcp://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    """Resolve `*.optria.test` names as the test says (see FakeDNS)."""
    dns = FakeDNS()
    system = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if not (isinstance(name, str) and name.endswith(TEST_DOMAIN)):
            return system(host, port, family, type, proto, flags)
        answer = dns.answer(name) if name in dns.answers else None
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number))
            for address in answer.split(",")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield dns
    dns.release.set()  # no lookup thread outlives the test


# --- PostgreSQL ------------------------------------------------------------------------------

PG_READINGS = ((0, 1.5), (1, 2.5), (2, 3.25))  # (minute after END's hour, value) of P-101.VIB


@pytest.fixture(scope="session")
def pg_historian() -> Iterator[sa.URL]:
    """A PostgreSQL historian table `historian` holding PG_READINGS; its URL."""
    with temporary_postgres_database(postgres_server_url()) as url:
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                sa.text("CREATE TABLE historian (tag text, ts timestamptz, value float8)")
            )
            connection.execute(
                sa.text("INSERT INTO historian VALUES (:tag, :ts, :value)"),
                [
                    {"tag": "P-101.VIB", "ts": END.replace(minute=minute), "value": value}
                    for minute, value in PG_READINGS
                ],
            )
        engine.dispose()
        yield sa.make_url(url)


def historian_url(url: sa.URL, **changes: Any) -> str:
    """`url` with some parts changed (host, query…), as a config would hold it."""
    return url.set(**changes).render_as_string(hide_password=False)
