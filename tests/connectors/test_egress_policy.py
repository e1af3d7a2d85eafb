"""The egress policy's rules (DESIGN.md §16) as tables: which addresses a tenant's integration
may reach, what `OPTRIA_CONNECTOR_ALLOW` entries mean, and what nothing can open."""

from __future__ import annotations

import ipaddress

import pytest

from webapp.config import Settings
from webapp.connectors.egress import (
    AllowRule,
    EgressPolicy,
    EgressRefused,
    database_endpoints,
    parse_allow_list,
)
from webapp.connectors.errors import ConnectorError

STRICT = EgressPolicy()
DEMO = EgressPolicy(allow_loopback=True, allow_local_files=True)

NEVER = "never allowed, not even by OPTRIA_CONNECTOR_ALLOW"
LOOPBACK = "loopback is refused; OPTRIA_CONNECTOR_ALLOW can allow it"
PRIVATE = "private and non-public ranges are refused; OPTRIA_CONNECTOR_ALLOW can allow them"
OWN_DATABASE = (
    "it is the application's own database; only OPTRIA_CONNECTOR_ALLOW naming this port opens it"
)

# (address, why the default policy refuses it — None: allowed, why demo mode refuses it)
ADDRESSES = [
    ("127.0.0.1", LOOPBACK, None),
    ("127.255.0.9", LOOPBACK, None),
    ("::1", LOOPBACK, None),
    ("::ffff:127.0.0.1", LOOPBACK, None),  # IPv4-mapped
    ("169.254.169.254", f"link-local (cloud metadata) addresses are {NEVER}", "same"),
    ("::ffff:169.254.169.254", f"link-local (cloud metadata) addresses are {NEVER}", "same"),
    ("64:ff9b::a9fe:a9fe", f"link-local (cloud metadata) addresses are {NEVER}", "same"),  # NAT64
    ("2002:a9fe:a9fe::1", f"link-local (cloud metadata) addresses are {NEVER}", "same"),  # 6to4
    ("169.254.0.1", f"link-local (cloud metadata) addresses are {NEVER}", "same"),
    ("fe80::1", f"link-local (cloud metadata) addresses are {NEVER}", "same"),
    ("0.0.0.0", f"unspecified addresses are {NEVER}", "same"),
    ("::", f"unspecified addresses are {NEVER}", "same"),
    ("224.0.0.251", f"multicast or reserved addresses are {NEVER}", "same"),
    ("ff02::1", f"multicast or reserved addresses are {NEVER}", "same"),
    ("255.255.255.255", f"multicast or reserved addresses are {NEVER}", "same"),
    ("240.0.0.1", f"multicast or reserved addresses are {NEVER}", "same"),
    ("10.1.2.3", PRIVATE, "same"),
    ("172.16.0.1", PRIVATE, "same"),
    ("192.168.1.20", PRIVATE, "same"),
    ("100.64.0.1", PRIVATE, "same"),  # carrier-grade NAT (shared address space)
    ("::ffff:10.1.2.3", PRIVATE, "same"),
    ("fd12:3456::1", PRIVATE, "same"),  # unique local
    ("8.8.8.8", None, None),
    ("93.184.215.14", None, None),
    ("2001:4860:4860::8888", None, None),
    ("::ffff:8.8.8.8", None, None),
    ("64:ff9b::808:808", None, None),  # NAT64 of a public address
    ("2002:808:808::1", None, None),  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "strict", "demo"), ADDRESSES)
def test_default_and_demo_policies(address: str, strict: str | None, demo: str | None) -> None:
    ip = ipaddress.ip_address(address)
    assert STRICT.refusal(None, ip, 443) == strict
    assert DEMO.refusal(None, ip, 443) == (strict if demo == "same" else demo)


def test_a_refusal_names_the_host_the_address_and_the_setting() -> None:
    with pytest.raises(EgressRefused) as refused:
        STRICT.check_address("historian.plant", "10.0.0.7", 5432)
    assert str(refused.value) == (
        f"the destination historian.plant → 10.0.0.7:5432 is refused by the egress policy: "
        f"{PRIVATE}"
    )
    with pytest.raises(EgressRefused) as refused:
        STRICT.check_address(None, "::1", 4840)
    assert str(refused.value) == (
        f"the destination [::1]:4840 is refused by the egress policy: {LOOPBACK}"
    )
    assert isinstance(refused.value, ConnectorError)  # a source failure, never a 500


# --- OPTRIA_CONNECTOR_ALLOW entries -----------------------------------------------------------

ENTRIES = [
    ("10.0.0.0/8", AllowRule(network=ipaddress.ip_network("10.0.0.0/8"))),
    ("10.0.0.5", AllowRule(network=ipaddress.ip_network("10.0.0.5/32"))),
    ("10.0.0.0/8:5432", AllowRule(network=ipaddress.ip_network("10.0.0.0/8"), port=5432)),
    ("10.0.0.9/8", AllowRule(network=ipaddress.ip_network("10.0.0.0/8"))),  # host bits ignored
    ("historian.plant", AllowRule(host="historian.plant")),
    ("Historian.Plant.:8443", AllowRule(host="historian.plant", port=8443)),
    ("opc_ua-1.local", AllowRule(host="opc_ua-1.local")),
    ("fd00::/8", AllowRule(network=ipaddress.ip_network("fd00::/8"))),
    ("::1", AllowRule(network=ipaddress.ip_network("::1/128"))),
    ("[::1]", AllowRule(network=ipaddress.ip_network("::1/128"))),
    ("[fd00::/8]:4840", AllowRule(network=ipaddress.ip_network("fd00::/8"), port=4840)),
    ("[2001:db8::5]:443", AllowRule(network=ipaddress.ip_network("2001:db8::5/128"), port=443)),
    ("::ffff:10.0.0.0/104", AllowRule(network=ipaddress.ip_network("10.0.0.0/8"))),  # mapped
    ("0.0.0.0/0", AllowRule(network=ipaddress.ip_network("0.0.0.0/0"))),
]


@pytest.mark.parametrize(("entry", "rule"), ENTRIES)
def test_allow_entries(entry: str, rule: AllowRule) -> None:
    assert parse_allow_list(entry) == (rule,)


def test_an_allow_list_is_comma_separated_and_tolerates_blanks() -> None:
    assert parse_allow_list(" 10.0.0.0/8:5432 , ,historian.plant,") == (
        AllowRule(network=ipaddress.ip_network("10.0.0.0/8"), port=5432),
        AllowRule(host="historian.plant"),
    )
    assert parse_allow_list("") == ()


BAD_ENTRIES = [
    ("10.0.0.0/33", "is neither a CIDR, an IP address nor a host name"),
    ("10.0.0.300", "is neither a CIDR, an IP address nor a host name"),  # a mistyped address
    ("http://historian.plant", "has an invalid port"),
    ("historian plant", "is neither a CIDR, an IP address nor a host name"),
    ("/var/run/postgresql", "is neither a CIDR, an IP address nor a host name"),
    ("a:b:c", "is neither a CIDR, an IP address nor a host name"),
    ("historian.plant:", "has an invalid port"),
    ("historian.plant:0", "has an invalid port"),
    ("historian.plant:65536", "has an invalid port"),
    ("[fd00::/8]:http", "is neither a CIDR, an IP address nor a host name"),
    ("169.254.169.254", "can never be allowed"),
    ("169.254.0.0/16", "can never be allowed"),
    ("169.254.169.254:80", "can never be allowed"),
    ("::ffff:169.254.169.254", "can never be allowed"),
    ("fe80::/10", "can never be allowed"),
    ("[fe80::1]:4840", "can never be allowed"),
    ("0.0.0.0", "can never be allowed"),
    ("224.0.0.0/4", "can never be allowed"),
]


@pytest.mark.parametrize(("entry", "problem"), BAD_ENTRIES)
def test_bad_entries_are_refused_naming_the_entry(entry: str, problem: str) -> None:
    with pytest.raises(ValueError, match="OPTRIA_CONNECTOR_ALLOW") as bad:
        parse_allow_list(f"10.0.0.0/8, {entry}")
    assert repr(entry) in str(bad.value) and problem in str(bad.value)


# (allow list, host, address, port, allowed?)
ALLOWED_BY_ENTRIES = [
    ("10.0.0.0/8", None, "10.1.2.3", 5432, True),
    ("10.0.0.0/8", None, "::ffff:10.1.2.3", 5432, True),  # mapped form of an allowed address
    ("10.0.0.0/8", None, "192.168.1.1", 5432, False),
    ("10.0.0.5:8443", None, "10.0.0.5", 8443, True),
    ("10.0.0.5:8443", None, "10.0.0.5", 443, False),
    ("historian.plant", "historian.plant", "10.0.0.7", 80, True),
    ("historian.plant", "HISTORIAN.plant.", "10.0.0.7", 80, True),
    ("historian.plant", "other.plant", "10.0.0.7", 80, False),
    ("historian.plant", None, "10.0.0.7", 80, False),  # an address alone matches no name
    ("[fd00::/8]:4840", None, "fd00::1", 4840, True),
    ("[fd00::/8]:4840", None, "fd00::1", 4841, False),
    ("127.0.0.1", None, "127.0.0.1", 8000, True),  # loopback outside demo mode
    ("::1", None, "127.0.0.1", 8000, False),  # a v6 rule doesn't match a v4 address
    # Nothing opens link-local: not a catch-all, nor a name resolving there.
    ("0.0.0.0/0", None, "169.254.169.254", 80, False),
    ("0.0.0.0/0", None, "8.8.8.8", 80, True),
    ("::/0", None, "fe80::1", 80, False),
    ("::/0", None, "::ffff:169.254.169.254", 80, False),
    ("::/0", None, "64:ff9b::a9fe:a9fe", 80, False),
    ("metadata.plant", "metadata.plant", "169.254.169.254", 80, False),
]


@pytest.mark.parametrize(("allow", "host", "address", "port", "allowed"), ALLOWED_BY_ENTRIES)
def test_what_entries_open(
    allow: str, host: str | None, address: str, port: int, allowed: bool
) -> None:
    policy = EgressPolicy(allow=parse_allow_list(allow))
    assert (policy.refusal(host, ipaddress.ip_address(address), port) is None) is allowed


# --- the application's own database ------------------------------------------------------------

DB = ipaddress.ip_address("10.0.0.5")


@pytest.mark.parametrize(
    ("allow", "address", "port", "refusal"),
    [
        ("10.0.0.0/8", "10.0.0.5", 5432, OWN_DATABASE),  # a broad range doesn't open it
        ("10.0.0.0/8", "::ffff:10.0.0.5", 5432, OWN_DATABASE),
        ("10.0.0.5", "10.0.0.5", 5432, OWN_DATABASE),  # nor its address without the port
        ("0.0.0.0/0", "10.0.0.5", 5432, OWN_DATABASE),
        ("10.0.0.0/8", "10.0.0.5", 5433, None),  # another port of that host
        ("10.0.0.0/8", "10.0.0.6", 5432, None),  # another host's PostgreSQL
        ("10.0.0.0/8:5432", "10.0.0.5", 5432, None),  # an entry naming the port does
        ("10.0.0.5:5432", "10.0.0.5", 5432, None),
        ("", "10.0.0.5", 5432, OWN_DATABASE),
    ],
)
def test_the_database_endpoint_opens_only_by_an_entry_naming_its_port(
    allow: str, address: str, port: int, refusal: str | None
) -> None:
    policy = EgressPolicy(allow=parse_allow_list(allow), protected=frozenset({(DB, 5432)}))
    assert policy.refusal(None, ipaddress.ip_address(address), port) == refusal


def test_demo_mode_does_not_open_its_own_database_on_loopback() -> None:
    local_db = frozenset({(ipaddress.ip_address("127.0.0.1"), 5432)})
    demo = EgressPolicy(allow_loopback=True, protected=local_db)
    assert demo.refusal(None, ipaddress.ip_address("127.0.0.1"), 5432) == OWN_DATABASE
    assert demo.refusal(None, ipaddress.ip_address("127.0.0.1"), 5433) is None
    opened = EgressPolicy(
        allow=parse_allow_list("127.0.0.1:5432"), allow_loopback=True, protected=local_db
    )
    assert opened.refusal(None, ipaddress.ip_address("127.0.0.1"), 5432) is None


@pytest.mark.parametrize("address", ["127.0.0.2", "127.255.0.1", "::1", "::ffff:127.0.0.3"])
def test_a_database_on_loopback_is_protected_on_every_loopback_address(address: str) -> None:
    """PostgreSQL listening on localhost answers on ::1 too, and on every 127/8 address with
    listen_addresses='*': the same server by another address is still the database."""
    demo = EgressPolicy(
        allow_loopback=True, protected=frozenset({(ipaddress.ip_address("127.0.0.1"), 5432)})
    )
    assert demo.refusal(None, ipaddress.ip_address(address), 5432) == OWN_DATABASE
    assert demo.refusal(None, ipaddress.ip_address(address), 8080) is None


def test_deprecated_ipv6_site_local_is_not_public() -> None:
    assert EgressPolicy().refusal(None, ipaddress.ip_address("fec0::1"), 443) is not None


@pytest.mark.parametrize(
    ("database_url", "endpoints"),
    [
        ("postgresql+psycopg2://app:pw@10.0.0.5:6543/optria", {("10.0.0.5", 6543)}),
        ("postgresql://app@10.0.0.5/optria", {("10.0.0.5", 5432)}),
        ("postgresql://app@[::ffff:10.0.0.5]/optria", {("10.0.0.5", 5432)}),
        ("mysql://app@10.0.0.6/optria", {("10.0.0.6", 3306)}),
        ("postgresql://app@/optria?host=/var/run/postgresql", set()),  # a Unix socket
        ("sqlite:///var/optria.db", set()),
        ("not a url", set()),
    ],
)
def test_the_database_endpoints_come_from_its_url(
    database_url: str, endpoints: set[tuple[str, int]]
) -> None:
    assert database_endpoints(database_url) == {
        (ipaddress.ip_address(address), port) for address, port in endpoints
    }


def test_the_deployment_policy_comes_from_its_settings() -> None:
    production = EgressPolicy.from_settings(
        Settings(
            database_url="postgresql+psycopg2://app:pw@10.0.0.5:5432/optria",
            secret_key="k",
            connector_allow="10.0.0.0/8, historian.plant:8443",
            demo_mode=False,
        )
    )
    assert production.allow == (
        AllowRule(network=ipaddress.ip_network("10.0.0.0/8")),
        AllowRule(host="historian.plant", port=8443),
    )
    assert not production.allow_loopback and not production.allow_local_files
    assert production.refusal(None, DB, 5432) == OWN_DATABASE
    assert production.refusal(None, ipaddress.ip_address("127.0.0.1"), 80) == LOOPBACK

    demo = EgressPolicy.from_settings(
        Settings(
            database_url="sqlite:///x.db",
            secret_key="k",
            demo_mode=True,
            pi_base_url="https://pi.plant.local/piwebapi",
        )
    )
    assert demo.allow_loopback and demo.allow_local_files
    assert demo.allow == (AllowRule(host="pi.plant.local", port=443),)  # the seeded PI server
    assert demo.refusal(None, ipaddress.ip_address("169.254.169.254"), 80) is not None

    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        EgressPolicy.from_settings(
            Settings(database_url="sqlite:///x.db", secret_key="k", connector_allow="10.0.0.300")
        )


# --- resolving names --------------------------------------------------------------------------


def test_a_name_is_judged_by_the_addresses_it_resolves_to() -> None:
    with pytest.raises(EgressRefused, match=r"localhost → .* OPTRIA_CONNECTOR_ALLOW can allow it"):
        STRICT.resolve("localhost", 80)
    assert "127.0.0.1" in DEMO.resolve("localhost", 80)
    assert DEMO.resolve("[::1]", 80) == ["::1"]  # a literal is not looked up
    assert DEMO.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    with pytest.raises(EgressRefused, match="link-local"):
        DEMO.resolve("169.254.169.254", 80)


def test_an_unresolvable_name_is_a_plain_connector_error() -> None:
    with pytest.raises(ConnectorError) as info:
        STRICT.resolve("no-such-host.invalid", 80)
    assert str(info.value).startswith("cannot resolve host 'no-such-host.invalid'")
    assert not isinstance(info.value, EgressRefused)
    STRICT.check_destination("no-such-host.invalid", 80)  # saving it is not refused
