"""The egress policy at connect time (DESIGN.md §16), against real peers: each network
connector resolves the host in its own pool, checks every address, and connects to an address
it checked — or sends nothing at all. A TCP listener on loopback stands in for the host an
attacker would point an integration at, and records every connection it accepts."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from webapp.connectors.base import Connector, ConnectorError
from webapp.connectors.egress import EgressPolicy, EgressRefused
from webapp.connectors.opcua import OPCUAConnector
from webapp.connectors.pi_web_api import PIWebAPIConnector
from webapp.connectors.sql import SQLHistorianConnector

from .conftest import (
    LOCAL_PEERS,
    LOOPBACK_PEERS,
    FakeDNS,
    OPCUAFixture,
    PIFixture,
    assert_series_equal,
    free_port,
    historian_url,
    run,
    run_closing,
)
from .fake_pi import DATA_SERVER, PASSWORD, USERNAME
from .net_peers import (
    PasswordAskingPostgres,
    TLSPeer,
    redirecting_server,
    self_signed_certificate,
    tcp_peer,
)

KINDS = ("pi", "opcua", "sql")
TAGS = {"pi": "PI:P-101.VIB", "opcua": "ns=2;s=P-101.VIB", "sql": "P-101.VIB"}
ALLOW_SETTING = "OPTRIA_CONNECTOR_ALLOW"
OPC_CLIENT_URI = "urn:example.org:FreeOpcUa:opcua-asyncio"  # asyncua's client application URI


def connector_for(
    kind: str, host: str, port: int, egress: EgressPolicy | None = None, timeout: float = 2.0
) -> Connector:
    """A connector of `kind` aimed at host:port (no policy given: the connector's default)."""
    if kind == "pi":
        config: dict[str, Any] = {
            "base_url": f"http://{host}:{port}/piwebapi",
            "data_server": "PISRV01",
            "username": "pi-reader",
            "password": "pi-secret",
        }
        return PIWebAPIConnector(config, timeout=timeout, egress=egress)
    if kind == "opcua":
        return OPCUAConnector(
            {"endpoint": f"opc.tcp://{host}:{port}/optria/"}, timeout=timeout, egress=egress
        )
    url = f"postgresql+psycopg2://reader:sql-secret@{host}:{port}/historian"
    return SQLHistorianConnector({"url": url, "table": "historian"}, timeout=timeout, egress=egress)


def opc_port(opcua: OPCUAFixture) -> int:
    return int(opcua.endpoint.split(":")[2].split("/")[0])


def call(connector: Connector, kind: str, method: str) -> Any:
    coro = connector.test_connection() if method == "test" else connector.fetch_latest(TAGS[kind])
    return run_closing(connector, coro)


# --- refused: nothing is sent -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["read", "test"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_default_policy_sends_nothing_to_loopback(kind: str, host: str, method: str) -> None:
    with tcp_peer() as attacker:
        connector = connector_for(kind, host, attacker.port)  # no policy: the strictest
        with pytest.raises(EgressRefused) as refused:
            call(connector, kind, method)
        assert attacker.accepted() == 0
    message = str(refused.value)
    assert f":{attacker.port} is refused by the egress policy: loopback is refused" in message
    assert f"{ALLOW_SETTING} can allow it" in message
    assert "secret" not in message and "reader" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_demo_mode_still_refuses_cloud_metadata_before_connecting(kind: str) -> None:
    connector = connector_for(kind, "169.254.169.254", 80, egress=LOCAL_PEERS, timeout=3.0)
    started = time.monotonic()
    with pytest.raises(EgressRefused) as refused:
        call(connector, kind, "read")
    assert time.monotonic() - started < 1.0  # refused at once, not a connect that timed out
    assert "link-local (cloud metadata) addresses are never allowed" in str(refused.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_is_refused_when_any_of_its_addresses_is(kind: str, fake_dns: FakeDNS) -> None:
    with tcp_peer() as attacker:
        fake_dns.answers["mixed.optria.test"] = ["127.0.0.1,169.254.169.254"]
        connector = connector_for(kind, "mixed.optria.test", attacker.port, egress=LOCAL_PEERS)
        with pytest.raises(EgressRefused) as refused:
            call(connector, kind, "read")
        assert attacker.accepted() == 0
    assert f"mixed.optria.test → 169.254.169.254:{attacker.port} is refused" in str(refused.value)


# --- allowed: the connection goes to the address that was checked -----------------------------


def assert_looked_up_only_by_the_connector(dns: FakeDNS, name: str, kind: str) -> None:
    """The name was resolved once per connection, each time in the connector's own pool
    (a lookup by the client library itself would show another thread, or a second answer)."""
    assert dns.lookups, "the connector resolved the name"
    assert {looked_up for looked_up, _ in dns.lookups} == {name}
    for _, thread in dns.lookups:
        assert thread.startswith(f"connector-{kind}-{name}_"), thread


@pytest.mark.parametrize("kind", ["pi", "opcua", pytest.param("sql", marks=pytest.mark.postgres)])
def test_the_allowed_addresses_of_a_name_are_tried_in_turn(
    kind: str, fake_dns: FakeDNS, request: pytest.FixtureRequest
) -> None:
    """The first address refuses the connection (nothing listens on 127.0.0.3); the second
    is the real peer."""
    fake_dns.answers["twice.optria.test"] = ["127.0.0.3,127.0.0.1"]
    if kind == "pi":
        port = request.getfixturevalue("pi").server.port
        config: dict[str, Any] = {
            "base_url": f"http://twice.optria.test:{port}/piwebapi",
            "data_server": DATA_SERVER,
            "username": USERNAME,
            "password": PASSWORD,
        }
    elif kind == "opcua":
        port = opc_port(request.getfixturevalue("opcua"))
        config = {"endpoint": f"opc.tcp://twice.optria.test:{port}/optria/"}
    else:
        url = historian_url(request.getfixturevalue("pg_historian"), host="twice.optria.test")
        config = {"url": url, "table": "historian"}
    connector_class = {"pi": PIWebAPIConnector, "opcua": OPCUAConnector}.get(
        kind, SQLHistorianConnector
    )
    connector = connector_class(config, timeout=3.0, egress=LOOPBACK_PEERS)
    assert len(call(connector, kind, "read")) == 1
    assert_looked_up_only_by_the_connector(fake_dns, "twice.optria.test", kind)


def test_pi_connects_to_the_checked_address_of_a_name(pi: PIFixture, fake_dns: FakeDNS) -> None:
    port = pi.server.port
    with tcp_peer("127.0.0.2", port) as rebound:
        # Any lookup after the connector's would be answered with the rebound address.
        fake_dns.answers["pi.optria.test"] = ["127.0.0.1", "127.0.0.2"]
        base_url = f"http://pi.optria.test:{port}/piwebapi"
        connector = PIWebAPIConnector(
            pi.config(base_url=base_url), timeout=2.0, egress=LOOPBACK_PEERS
        )
        assert_series_equal(
            run_closing(connector, connector.fetch_latest(TAGS["pi"])), pi.expected.tail(1)
        )
        assert rebound.accepted() == 0
    assert len(fake_dns.lookups) == 1  # one keep-alive connection served both requests
    assert_looked_up_only_by_the_connector(fake_dns, "pi.optria.test", "pi")


def test_pi_tls_names_and_verifies_the_host_while_connecting_to_its_checked_address(
    tmp_path: Path, fake_dns: FakeDNS
) -> None:
    cert, key = self_signed_certificate("pi.optria.test", tmp_path)
    peer = TLSPeer(cert, key)
    fake_dns.answers["pi.optria.test"] = ["127.0.0.1"]
    config = {"base_url": f"https://pi.optria.test:{peer.port}/piwebapi", "data_server": "S"}
    try:
        checked = PIWebAPIConnector(config, timeout=2.0, egress=LOOPBACK_PEERS)
        with pytest.raises(ConnectorError, match="certificate verify failed"):
            run_closing(checked, checked.test_connection())  # a certificate nobody trusts
        unchecked = PIWebAPIConnector(
            {**config, "verify_tls": False}, timeout=2.0, egress=LOOPBACK_PEERS
        )
        with pytest.raises(ConnectorError, match="unreachable"):  # the peer serves no HTTP
            run_closing(unchecked, unchecked.test_connection())
    finally:
        peer.close()
    assert peer.server_names == ["pi.optria.test", "pi.optria.test"]  # SNI: the name
    assert peer.handshakes[1] == "ok"


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("http://127.0.0.1:{target}/piwebapi/", "http://127.0.0.1:{target}"),
        ("http://u:pw@127.0.0.1:{target}/piwebapi/?token=t0ken", "http://127.0.0.1:{target}"),
        ("https://localhost:{target}/x", "https://localhost:{target}"),
        ("http://[::1]:{target}/", "http://[::1]:{target}"),
        ("/elsewhere/piwebapi/", "http://127.0.0.1:{redirector}"),
    ],
)
def test_pi_does_not_follow_a_redirect(location: str, shown: str) -> None:
    with tcp_peer() as target:
        with redirecting_server(location.format(target=target.port)) as (port, asked):
            connector = PIWebAPIConnector(
                {"base_url": f"http://127.0.0.1:{port}/piwebapi", "data_server": "S"},
                timeout=2.0,
                egress=LOOPBACK_PEERS,
            )
            with pytest.raises(ConnectorError) as info:
                run_closing(connector, connector.test_connection())
        assert target.accepted() == 0
    assert asked == ["/piwebapi/"]  # one request, to the configured server only
    assert str(info.value) == (
        f"PI Web API at http://127.0.0.1:{port} answered a redirect to "
        f"{shown.format(target=target.port, redirector=port)}; connectors do not follow redirects"
    )


def test_pi_ignores_proxy_settings_in_the_environment(
    pi: PIFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tcp_peer() as proxy:
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        connector = PIWebAPIConnector(pi.config(), timeout=2.0, egress=LOOPBACK_PEERS)
        latest = run_closing(connector, connector.fetch_latest(TAGS["pi"]))
        assert proxy.accepted() == 0
    assert_series_equal(latest, pi.expected.tail(1))


def test_opcua_connects_to_the_checked_address_of_a_name(
    opcua: OPCUAFixture, fake_dns: FakeDNS
) -> None:
    port = opc_port(opcua)
    with tcp_peer("127.0.0.2", port) as rebound:
        fake_dns.answers["plc.optria.test"] = ["127.0.0.1", "127.0.0.2"]
        connector = OPCUAConnector(
            {"endpoint": f"opc.tcp://plc.optria.test:{port}/optria/"},
            timeout=3.0,
            egress=LOOPBACK_PEERS,
        )
        latest = run_closing(connector, connector.fetch_latest(TAGS["opcua"]))
        assert rebound.accepted() == 0
    assert latest.values.tolist() == [opcua.latest[TAGS["opcua"]]]
    assert len(fake_dns.lookups) == 1
    assert_looked_up_only_by_the_connector(fake_dns, "plc.optria.test", "opcua")


def test_opcua_secure_endpoint_discovery_stays_at_the_checked_address(
    tmp_path: Path, fake_dns: FakeDNS
) -> None:
    """Without a server certificate in `security_policy`, asyncua first asks the endpoint for
    its endpoints (a second connection): it too goes to the checked address, with no lookup of
    its own, and the client's certificate files are read by the connector."""
    port = free_port()
    client_cert, client_key = tmp_path / "client-cert.der", tmp_path / "client-key.pem"
    server_cert, server_key = tmp_path / "server-cert.der", tmp_path / "server-key.pem"
    fake_dns.answers["secure.optria.test"] = ["127.0.0.1", "127.0.0.2"]

    async def scenario() -> list[float]:
        for key, cert, uri, use in (
            (server_key, server_cert, "urn:optria:test:server", ExtendedKeyUsageOID.SERVER_AUTH),
            (client_key, client_cert, OPC_CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH),
        ):
            await setup_self_signed_certificate(key, cert, uri, "localhost", [use], {})
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/secure/")
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        await server.load_certificate(str(server_cert))
        await server.load_private_key(str(server_key))
        index = await server.register_namespace("urn:optria:test:secure")
        pump = await server.nodes.objects.add_object(index, "P-101")
        await pump.add_variable(ua.NodeId("P-101.VIB", index), "P-101.VIB", 4.25)
        connector = OPCUAConnector(
            {
                "endpoint": f"opc.tcp://secure.optria.test:{port}/secure/",
                "security_policy": (
                    f"Basic256Sha256,SignAndEncrypt,{client_cert.name},{client_key.name}"
                ),
            },
            timeout=5.0,
            egress=replace(LOOPBACK_PEERS, certificate_dir=str(tmp_path)),
        )
        async with server:
            try:
                latest = await connector.fetch_latest(f"ns={index};s=P-101.VIB")
            finally:
                await connector.aclose()
        return latest.values.tolist()

    with tcp_peer("127.0.0.2", port) as rebound:
        assert run(scenario()) == [4.25]
        assert rebound.accepted() == 0
    assert len(fake_dns.lookups) == 1  # one lookup served discovery and the session
    assert_looked_up_only_by_the_connector(fake_dns, "secure.optria.test", "opcua")


# --- SQL --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_sql_connects_to_the_checked_address_of_a_name(
    pg_historian: sa.URL, fake_dns: FakeDNS
) -> None:
    """libpq resolves names in C, where the fake resolver can't help it: reaching the
    historian by this name proves libpq connected to the address the connector checked."""
    port = pg_historian.port or 5432
    with tcp_peer("127.0.0.2", port) as rebound:
        fake_dns.answers["historian.optria.test"] = ["127.0.0.1", "127.0.0.2"]
        url = historian_url(pg_historian, host="historian.optria.test")
        connector = SQLHistorianConnector(
            {"url": url, "table": "historian"}, timeout=3.0, egress=LOOPBACK_PEERS
        )
        latest = run_closing(connector, connector.fetch_latest(TAGS["sql"]))
        assert rebound.accepted() == 0
    assert latest.values.tolist() == [3.25]
    assert_looked_up_only_by_the_connector(fake_dns, "historian.optria.test", "sql")


@pytest.mark.postgres
def test_sql_url_options_sslmode_and_connect_timeout_are_honoured(pg_historian: sa.URL) -> None:
    url = historian_url(pg_historian, query={"sslmode": "disable", "connect_timeout": "2"})
    connector = SQLHistorianConnector(
        {"url": url, "table": "historian"}, timeout=3.0, egress=LOOPBACK_PEERS
    )
    assert len(run_closing(connector, connector.fetch_latest(TAGS["sql"]))) == 1
    demanding = historian_url(pg_historian, query={"sslmode": "require"})
    connector = SQLHistorianConnector(
        {"url": demanding, "table": "historian"}, timeout=3.0, egress=LOOPBACK_PEERS
    )
    with pytest.raises(ConnectorError, match="SSL"):  # the test server speaks no TLS
        run_closing(connector, connector.fetch_latest(TAGS["sql"]))


def test_sql_offers_no_credential_of_the_servers_own_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq would take a password from PGPASSWORD or a passfile (PGPASSFILE, ~/.pgpass):
    the app's own credentials, offered to a tenant's server. Only the URL's password goes."""
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:from-the-passfile\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    server = PasswordAskingPostgres()
    try:
        for password in (None, "tenant-password"):
            url = sa.URL.create(
                "postgresql+psycopg2", "reader", password, "127.0.0.1", server.port, "historian"
            ).render_as_string(hide_password=False)
            connector = SQLHistorianConnector(
                {"url": url, "table": "historian"}, timeout=2.0, egress=LOOPBACK_PEERS
            )
            with pytest.raises(ConnectorError, match="password"):
                run_closing(connector, connector.test_connection())
    finally:
        server.close()
    assert [startup["user"] for startup in server.startups] == ["reader", "reader"]
    assert server.passwords == ["tenant-password"]


@pytest.mark.parametrize(
    ("query", "option"),
    [
        ("password=hunter2", "password"),
        ("host=/var/run/postgresql", "host"),
        ("hostaddr=10.9.9.9", "hostaddr"),
        ("options=-c%20role%3Dpostgres", "options"),
        ("passfile=/root/.pgpass", "passfile"),
        ("sslkey=/etc/ssl/private/app.key", "sslkey"),
        ("service=production", "service"),
        ("sslmode=require&application_name=x", "application_name"),
    ],
)
def test_sql_url_query_options_other_than_sslmode_and_connect_timeout_are_refused(
    query: str, option: str
) -> None:
    value = query.rpartition("=")[2]
    config = {"url": f"postgresql+psycopg2://u@db.plant:5432/h?{query}", "table": "historian"}
    with pytest.raises(ValueError, match='config key "url"') as bad:
        SQLHistorianConnector.validate_config(config)
    message = str(bad.value)
    assert repr(option) in message and "sslmode and connect_timeout" in message
    assert value not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg2://u@db.plant/h?sslmode=sometimes", "sslmode"),
        ("postgresql+psycopg2://u@db.plant/h?connect_timeout=0", "connect_timeout"),
        ("postgresql+psycopg2://u@db.plant/h?connect_timeout=soon", "connect_timeout"),
        ("postgresql+psycopg2://u@db.plant/h?sslmode=require&sslmode=disable", "more than once"),
        ("sqlite:///historian.db?mode=ro", "'mode'"),
        ("postgresql+psycopg2://u@/h", "must name the database server's host"),
        ("postgresql+psycopg2:///h", "must name the database server's host"),
        ("postgresql://u@%2Fvar%2Frun%2Fpostgresql/h", "neither a host name nor an IP address"),
        ("postgresql://u@db1,db2/h", "neither a host name nor an IP address"),
    ],
)
def test_sql_urls_that_could_reach_around_the_policy_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match='config key "url"') as bad:
        SQLHistorianConnector.validate_config({"url": url, "table": "historian"})
    assert problem in str(bad.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://u:p@db.plant:6432/h?sslmode=verify-full&connect_timeout=3",
        "postgresql://u@[fd00::5]/h",
        "postgresql://u@10.0.0.5/h",
        "sqlite:///var/historian.db",  # valid; the policy decides whether it may be opened
    ],
)
def test_sql_urls_within_the_rules_are_valid(url: str) -> None:
    assert SQLHistorianConnector.validate_config({"url": url, "table": "h"})["url"] == url


@pytest.mark.parametrize(
    ("egress", "opens"), [(None, False), (LOOPBACK_PEERS, False), (LOCAL_PEERS, True)]
)
def test_sql_opens_an_sqlite_file_only_when_local_files_are_allowed(
    tmp_path: Path, egress: EgressPolicy | None, opens: bool
) -> None:
    path = tmp_path / "historian.db"
    connector = SQLHistorianConnector(
        {"url": f"sqlite:///{path}", "table": "historian"}, egress=egress
    )
    if opens:
        with pytest.raises(ConnectorError, match="table 'historian' not found"):
            run_closing(connector, connector.test_connection())
        assert path.exists()  # SQLite created the file it was asked to open
        return
    with pytest.raises(EgressRefused) as refused:
        run_closing(connector, connector.test_connection())
    assert str(refused.value) == (
        "SQLite historian files are allowed in demo mode only (OPTRIA_DEMO_MODE); "
        "OPTRIA_CONNECTOR_ALLOW opens network destinations, never local files"
    )
    assert not path.exists()  # never opened (opening would have created it)


# --- messages ---------------------------------------------------------------------------------


def test_messages_name_a_source_by_scheme_host_port_and_database_only() -> None:
    port = free_port()  # nothing listens: connecting is refused at once
    secrets = ("the-user", "the-password", "t0ken", "sslmode", "connect_timeout", "piwebapi")
    cases = [
        (
            PIWebAPIConnector(
                {
                    "base_url": f"http://the-user:the-password@127.0.0.1:{port}/piwebapi?k=t0ken",
                    "data_server": "S",
                },
                timeout=1.0,
                egress=LOOPBACK_PEERS,
            ),
            f"PI Web API at http://127.0.0.1:{port} is unreachable (",
        ),
        (
            OPCUAConnector(
                {"endpoint": f"opc.tcp://the-user:the-password@127.0.0.1:{port}/a?k=t0ken"},
                timeout=1.0,
                egress=LOOPBACK_PEERS,
            ),
            f"cannot connect to OPC UA server at opc.tcp://127.0.0.1:{port} (",
        ),
        (
            SQLHistorianConnector(
                {
                    "url": f"postgresql+psycopg2://the-user:the-password@127.0.0.1:{port}"
                    "/historian?sslmode=disable&connect_timeout=1",
                    "table": "historian",
                },
                timeout=1.0,
                egress=LOOPBACK_PEERS,
            ),
            f"SQL historian postgresql://127.0.0.1:{port}/historian failed: ",
        ),
    ]
    for connector, opening in cases:
        with pytest.raises(ConnectorError) as info:
            run_closing(connector, connector.test_connection())
        message = str(info.value)
        assert message.startswith(opening), message
        assert not [secret for secret in secrets if secret in message], message
