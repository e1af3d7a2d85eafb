"""Registry: config validation per type, one cached connector per integration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from webapp.connectors.demo import DemoConnector
from webapp.connectors.egress import EgressPolicy
from webapp.connectors.opcua import OPCUAConnector
from webapp.connectors.pi_web_api import PIWebAPIConnector
from webapp.connectors.registry import (
    CONNECTOR_TYPES,
    close_all_connectors,
    get_connector,
    validate_integration_config,
)
from webapp.connectors.sql import SQLHistorianConnector

from .conftest import END, LOOPBACK_PEERS, PIFixture, run

PI_CONFIG = {"base_url": "https://pi.plant.local/piwebapi", "data_server": "PISRV01"}


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    run(close_all_connectors())
    yield
    run(close_all_connectors())


def test_types() -> None:
    assert {
        "demo": DemoConnector,
        "pi": PIWebAPIConnector,
        "opcua": OPCUAConnector,
        "sql": SQLHistorianConnector,
    } == CONNECTOR_TYPES


@pytest.mark.parametrize(
    ("integration_type", "config"),
    [
        ("demo", {"mode": "demo"}),
        ("demo", {"fallback": "synthetic"}),
        ("pi", {**PI_CONFIG, "username": "u", "password": "p", "verify_tls": False}),
        ("opcua", {"endpoint": "opc.tcp://plc.local:4840/", "security_policy": "None"}),
        ("sql", {"url": "sqlite:///var/historian.db", "table": "plant.history"}),
    ],
)
def test_valid_configs_pass(integration_type: str, config: dict[str, object]) -> None:
    assert validate_integration_config(integration_type, config)


@pytest.mark.parametrize(
    ("integration_type", "config", "names"),
    [
        ("modbus", {}, "modbus"),
        ("pi", {"data_server": "PISRV01"}, '"base_url"'),
        ("pi", {"base_url": "https://pi/piwebapi"}, '"data_server"'),
        ("opcua", {"endpoint": ""}, '"endpoint"'),
        ("sql", {"table": "history"}, '"url"'),
        ("sql", {"url": "sqlite://", "table": "1history"}, '"table"'),
        ("demo", {"fallback": "zeros"}, '"fallback"'),
        ("pi", {**PI_CONFIG, "fallback": None}, '"fallback"'),
        ("demo", ["not", "a", "mapping"], "JSON object"),
    ],
)
def test_invalid_configs_name_the_problem(
    integration_type: str, config: object, names: str
) -> None:
    with pytest.raises(ValueError, match=names):
        validate_integration_config(integration_type, config)  # type: ignore[arg-type]


def test_same_config_same_instance_changed_config_new_instance() -> None:
    first = get_connector(1, "pi", dict(PI_CONFIG))
    # Same content in another key order and another dict object: still the same instance.
    again = get_connector(1, "pi", {"data_server": "PISRV01", **PI_CONFIG})
    assert again is first
    assert get_connector(2, "pi", PI_CONFIG) is not first  # another integration

    changed = get_connector(1, "pi", {**PI_CONFIG, "data_server": "PISRV02"})
    assert changed is not first and changed.data_server == "PISRV02"
    assert get_connector(1, "pi", {**PI_CONFIG, "data_server": "PISRV02"}) is changed
    assert isinstance(get_connector(1, "demo", {}), DemoConnector)  # type changed too


def test_another_egress_policy_gives_another_instance() -> None:
    first = get_connector(11, "pi", PI_CONFIG, egress=EgressPolicy())
    assert get_connector(11, "pi", PI_CONFIG, egress=EgressPolicy()) is first  # an equal policy
    other = get_connector(11, "pi", PI_CONFIG, egress=LOOPBACK_PEERS)
    assert other is not first and other.egress == LOOPBACK_PEERS


def test_replaced_connector_is_closed(pi: PIFixture) -> None:
    async def scenario() -> bool:
        old = get_connector(7, "pi", pi.config(), egress=LOOPBACK_PEERS)
        assert isinstance(old, PIWebAPIConnector)
        await old.fetch_latest("PI:P-101.VIB")  # opens its HTTP client
        client = old._client
        assert client is not None and not client.is_closed
        get_connector(7, "pi", pi.config(verify_tls=True), egress=LOOPBACK_PEERS)
        await asyncio.sleep(0.05)  # the close runs as a task
        closed = client.is_closed
        await close_all_connectors()
        return closed

    assert run(scenario())


def test_invalid_config_raises_from_get_connector() -> None:
    with pytest.raises(ValueError, match='"endpoint"'):
        get_connector(3, "opcua", {"endpoint": "tcp://plc"})


def test_cached_demo_connector_serves_reads() -> None:
    connector = get_connector(5, "demo", {"mode": "demo"})
    assert len(run(connector.fetch_timeseries("PI:P-101.VIB", None, END, 10))) == 10
