"""OPC UA connector against a real asyncua server with populated history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from webapp.connectors.base import WHOLE_WINDOW, ConnectorError
from webapp.connectors.opcua import OPCUAConnector
from webapp.series import QUALITY_BAD, QUALITY_GOOD, QUALITY_UNCERTAIN, ns_to_datetime

from .conftest import (
    END,
    LOOPBACK_PEERS,
    OPC_BIG,
    OPC_PASSWORD,
    OPC_USER,
    OPCUAFixture,
    OPCUAServerThread,
    assert_series_equal,
    free_port,
    run_closing,
)

VIB = "ns=2;s=P-101.VIB"
BIG = "ns=2;s=P-101.BIG"


@pytest.fixture
def connector(opcua: OPCUAFixture) -> Iterator[OPCUAConnector]:
    yield OPCUAConnector({"endpoint": opcua.endpoint}, timeout=3.0, egress=LOOPBACK_PEERS)


def test_latest_n_exact_with_status_quality(opcua: OPCUAFixture, connector: OPCUAConnector) -> None:
    series = run_closing(connector, connector.fetch_timeseries(VIB, None, END, limit=10))
    assert_series_equal(series, opcua.expected[VIB].tail(10))
    assert series.quality[-5:-3].tolist() == [QUALITY_UNCERTAIN, QUALITY_BAD]
    assert np.isnan(series.values[-4])


def test_window_is_inclusive(opcua: OPCUAFixture, connector: OPCUAConnector) -> None:
    expected = opcua.expected[VIB]
    lo, hi = int(expected.timestamps[100]), int(expected.timestamps[160])
    series = run_closing(
        connector, connector.fetch_timeseries(VIB, ns_to_datetime(lo), ns_to_datetime(hi))
    )
    assert_series_equal(series, expected.window(lo, hi))
    assert len(series) == 61


def test_latest_n_of_window_beyond_one_server_page(
    opcua: OPCUAFixture, connector: OPCUAConnector
) -> None:
    expected = opcua.expected[BIG]
    start = ns_to_datetime(int(expected.timestamps[1000]))
    series = run_closing(connector, connector.fetch_timeseries(BIG, start, END, limit=20_000))
    assert_series_equal(series, expected.tail(20_000))


def test_whole_history_pages_until_done(opcua: OPCUAFixture, connector: OPCUAConnector) -> None:
    series = run_closing(connector, connector.fetch_timeseries(BIG, None, END, WHOLE_WINDOW))
    assert len(series) == OPC_BIG
    assert_series_equal(series, opcua.expected[BIG])


def test_server_ignoring_reverse_order_still_gives_latest_n(
    opcua: OPCUAFixture, connector: OPCUAConnector
) -> None:
    tag = "ns=2;s=P-101.FWD"
    series = run_closing(connector, connector.fetch_timeseries(tag, None, END, limit=10))
    assert_series_equal(series, opcua.expected[tag].tail(10))


def test_plot_downsamples_the_window(opcua: OPCUAFixture, connector: OPCUAConnector) -> None:
    expected = opcua.expected[BIG]
    start = ns_to_datetime(int(expected.timestamps[0]))
    series = run_closing(connector, connector.fetch_plot(BIG, start, END, max_points=200))
    assert len(series) <= 200
    assert series.values.max() == expected.values.max()
    assert series.values.min() == expected.values.min()


def test_latest_reads_the_node_value(opcua: OPCUAFixture, connector: OPCUAConnector) -> None:
    before = time.time_ns()
    latest = run_closing(connector, connector.fetch_latest(VIB))
    assert latest.values.tolist() == [opcua.latest[VIB]]
    assert latest.quality.tolist() == [QUALITY_GOOD]
    assert abs(int(latest.timestamps[0]) - before) < 3_600 * 10**9  # source time, recent


def test_non_numeric_value_is_bad(connector: OPCUAConnector) -> None:
    latest = run_closing(connector, connector.fetch_latest("ns=2;s=P-101.STATE"))
    assert latest.quality.tolist() == [QUALITY_BAD] and np.isnan(latest.values[0])


def test_unknown_node_names_the_tag(connector: OPCUAConnector) -> None:
    with pytest.raises(ConnectorError, match=r"'ns=2;s=NOPE' not found"):
        run_closing(connector, connector.fetch_latest("ns=2;s=NOPE"))
    with pytest.raises(ConnectorError, match=r"'ns=2;s=NOPE' not found"):
        run_closing(connector, connector.fetch_timeseries("ns=2;s=NOPE", None, END))
    with pytest.raises(ConnectorError, match="not an OPC UA NodeId"):
        run_closing(connector, connector.fetch_latest("P-101.VIB"))


def test_one_session_serves_many_calls(connector: OPCUAConnector) -> None:
    async def calls() -> bool:
        await connector.fetch_latest(VIB)
        first = connector._client
        await connector.fetch_timeseries(VIB, None, END, limit=5)
        await connector.test_connection()
        return first is connector._client

    assert run_closing(connector, calls())


def test_reconnects_after_the_server_comes_back() -> None:
    server = OPCUAServerThread(free_port(), populate=False).start()
    connector = OPCUAConnector({"endpoint": server.endpoint}, timeout=1.0, egress=LOOPBACK_PEERS)

    async def scenario() -> None:
        assert len(await connector.fetch_latest(VIB)) == 1
        await asyncio.to_thread(server.stop)
        started = time.monotonic()
        with pytest.raises(ConnectorError):
            await connector.fetch_latest(VIB)
        assert time.monotonic() - started < 2.0
        await asyncio.to_thread(server.start)
        assert len(await connector.fetch_latest(VIB)) == 1  # a fresh session, no restart

    try:
        run_closing(connector, scenario())
    finally:
        server.close()


def test_user_credentials(opcua: OPCUAFixture) -> None:
    good = {"endpoint": opcua.endpoint, "username": OPC_USER, "password": OPC_PASSWORD}
    connector = OPCUAConnector(good, timeout=2.0, egress=LOOPBACK_PEERS)
    assert len(run_closing(connector, connector.fetch_latest(VIB))) == 1
    connector = OPCUAConnector({**good, "password": "wrong"}, timeout=2.0, egress=LOOPBACK_PEERS)
    with pytest.raises(ConnectorError, match="rejected the user credentials") as info:
        run_closing(connector, connector.fetch_latest(VIB))
    assert "wrong" not in str(info.value)


def assert_fails_fast(endpoint: str, match: str) -> None:
    connector = OPCUAConnector({"endpoint": endpoint}, timeout=0.5, egress=LOOPBACK_PEERS)
    started = time.monotonic()
    with pytest.raises(ConnectorError, match=match):
        run_closing(connector, connector.fetch_timeseries(VIB, None, END))
    assert time.monotonic() - started < 1.5


def test_unreachable_endpoint_fails_fast() -> None:
    assert_fails_fast(f"opc.tcp://127.0.0.1:{free_port()}/", "cannot connect")


def test_silent_endpoint_times_out(hanging_endpoint: str) -> None:
    assert_fails_fast(hanging_endpoint, r"did not answer within 0\.5 s")


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "endpoint"),
        ({"endpoint": "http://plc:4840"}, "endpoint"),
        ({"endpoint": "opc.tcp://plc:99999"}, "endpoint"),
        ({"endpoint": "opc.tcp://plc:4840", "username": 7}, "username"),
        ({"endpoint": "opc.tcp://plc:4840", "security_policy": "Basic128Rsa15"}, "security_policy"),
        ({"endpoint": "opc.tcp://plc:4840", "fallback": True}, "fallback"),
        # Files are names in the deployment's certificate directory, never host paths…
        ({"endpoint": "opc.tcp://plc:4840",
          "security_policy": "Basic256Sha256,Sign,/etc/optria/c.pem,/etc/optria/k.pem"},
         "security_policy"),
        ({"endpoint": "opc.tcp://plc:4840",
          "security_policy": "Basic256Sha256,Sign,../c.pem,k.pem"}, "security_policy"),
        ({"endpoint": "opc.tcp://plc:4840",
          "security_policy": "Basic256Sha256,Sign,c.pem,/dev/zero"}, "security_policy"),
        # …and a key's passphrase is a secret of its own key, not part of the policy string.
        ({"endpoint": "opc.tcp://plc:4840",
          "security_policy": "Basic256Sha256,Sign,c.pem,k.pem::hunter2"}, "private_key_password"),
    ],
)
def test_config_errors_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f'"{key}"'):
        OPCUAConnector.validate_config(config)


@pytest.mark.parametrize(
    "policy",
    [None, "", "None", "Basic256Sha256,SignAndEncrypt,client-cert.der,client-key.pem",
     "Aes256Sha256RsaPss,Sign,c.pem,k.pem,server.der"],
)
def test_supported_security_settings(policy: str | None) -> None:
    config = {"endpoint": "opc.tcp://plc:4840", "security_policy": policy}
    assert OPCUAConnector.validate_config(config)["endpoint"] == "opc.tcp://plc:4840"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: (d / "elsewhere.pem").symlink_to("/etc/hostname"), "not a file of"),
        (lambda d: (d / "elsewhere.pem").mkdir(), "not a file of"),
        (lambda d: (d / "elsewhere.pem").write_bytes(b"x" * (64 * 1024 + 1)), "too large"),
        (lambda d: None, "not a file of"),  # missing
    ],
)
def test_certificate_files_come_from_the_certificate_directory_only(
    tmp_path: Path, make: Any, words: str
) -> None:
    """Nothing outside the directory, nothing but a small regular file, is ever read: the
    connection attempt stops there (a closed port would otherwise answer "refused")."""
    (tmp_path / "key.pem").write_bytes(b"not really a key")
    make(tmp_path)
    connector = OPCUAConnector(
        {"endpoint": f"opc.tcp://127.0.0.1:{free_port()}",
         "security_policy": "Basic256Sha256,Sign,elsewhere.pem,key.pem"},
        timeout=1.0, egress=replace(LOOPBACK_PEERS, certificate_dir=str(tmp_path)),
    )
    with pytest.raises(ConnectorError, match=words):
        run_closing(connector, connector.test_connection())
