"""OPC UA connector (type "opcua") on asyncua.

One connected client per integration, opened lazily and re-opened on the next call after the
link dropped. History uses the low-level HistoryRead service with continuation points because
asyncua's `read_raw_history` stops after the first page when given a value count, and servers
cap pages (asyncua's own server at 10,000 values).

Security: `security_policy` absent, empty or "None" means an unsecured channel. Otherwise it is
"Policy,Mode,client_cert,client_key[,server_cert]" (Policy one of Basic256Sha256,
Aes128Sha256RsaOaep, Aes256Sha256RsaPss; Mode Sign or SignAndEncrypt). The three are file names
in the deployment's certificate directory (OPTRIA_OPCUA_PKI_DIR), never paths of the host: a
tenant admin must not make the server read — or sign with — any file it can reach. The key's
passphrase, if any, is `private_key_password` (a secret: sealed, masked). The files are read in
the connector's own pool (asyncua would use anyio's shared threads), regular files of at most
64 KiB only.

Egress: the endpoint's host is resolved in the connector's pool and every address checked
against the policy before anything is sent; `_PinnedClient` then opens its sockets to those
addresses only. asyncua opens sockets solely through `Client.connect_socket` — for the
session, for endpoint discovery when no server certificate is configured, and for
reconnects — always to the configured endpoint; the EndpointUrls a server advertises are
only matched against the security settings, never connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.crypto import security_policies
from asyncua.crypto.uacrypto import CertProperties

from webapp.series import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_UNCERTAIN,
    Series,
    datetime_to_ns,
    datetimes_to_ns,
)

from .base import (
    Connector,
    ConnectorError,
    Destination,
    describe_error,
    make_series,
    optional_str,
    require_str,
    to_float_array,
)
from .egress import EgressPolicy

logger = logging.getLogger(__name__)

_SECURE_POLICIES = ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
_CERTIFICATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_CERTIFICATE_BYTES = 64 * 1024
_SECURE_MODES = ("Sign", "SignAndEncrypt")
# Reverse reads need a real end time: asyncua servers treat an unspecified (1601) bound as
# "no bound" and then ignore the other one.
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
# Errors from the socket, the protocol stack or a status code the server returned.
_SOURCE_ERRORS = (ua.UaError, OSError, TimeoutError, EOFError, ConnectionError)


def quality_from_status(code: int) -> int:
    """OPC UA StatusCode severity bits (top two): 00 good, 01 uncertain, 10/11 bad."""
    severity = (int(code) >> 30) & 0b11
    if severity == 0:
        return QUALITY_GOOD
    return QUALITY_UNCERTAIN if severity == 1 else QUALITY_BAD


class _PinnedClient(Client):
    """An asyncua Client whose sockets go only to addresses the egress policy checked (tried
    in order), never to a fresh lookup of the endpoint's name. Hello, CreateSession and
    friends still carry the endpoint URL as configured."""

    def __init__(self, url: str, addresses: Sequence[str], port: int, timeout: float) -> None:
        super().__init__(url, timeout=timeout)
        self._addresses = tuple(addresses)
        self._port = port

    async def connect_socket(self) -> None:
        failure: OSError | None = None
        for address in self._addresses:
            try:
                await self.uaclient.connect_socket(address, self._port)
                return
            except OSError as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address or raises
        raise failure


class OPCUAConnector(Connector):
    """OPC UA client; tags are NodeId strings such as `ns=2;s=P-101.VIB`."""

    type = "opcua"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        timeout: float = 5.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        super().__init__(config, timeout=timeout, egress=egress)
        self.endpoint: str = self.config["endpoint"]
        self._destination = self.destination(self.config)
        # For messages: opc.tcp://host:port only, never userinfo, path or query.
        self._shown_endpoint = self._destination.origin()
        self._client: Client | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = super().validate_config(config)
        endpoint = require_str(cfg, "endpoint")
        parts = urlsplit(endpoint)
        if parts.scheme != "opc.tcp" or not parts.hostname:
            raise ValueError('config key "endpoint" must look like opc.tcp://host:port[/path]')
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise ValueError('config key "endpoint" has an invalid port') from None
        cfg["endpoint"] = endpoint
        optional_str(cfg, "username")
        optional_str(cfg, "password")
        optional_str(cfg, "private_key_password")
        policy = optional_str(cfg, "security_policy")
        if policy is not None and policy.strip() not in ("", "None"):
            fields = [f.strip() for f in policy.split(",")]
            if (
                len(fields) not in (4, 5)
                or fields[0] not in _SECURE_POLICIES
                or fields[1] not in _SECURE_MODES
                or not all(fields[2:])
            ):
                raise ValueError(
                    'config key "security_policy" must be "None" or '
                    '"Policy,Mode,client_cert,client_key[,server_cert]" with '
                    f"Policy in {', '.join(_SECURE_POLICIES)} and Mode in Sign, SignAndEncrypt"
                )
            for name in fields[2:]:
                if "::" in name:
                    raise ValueError(
                        'config key "security_policy" names a key with its passphrase: put '
                        'the passphrase in config key "private_key_password"'
                    )
                if not _CERTIFICATE_NAME.fullmatch(name):
                    raise ValueError(
                        'config key "security_policy" must name certificate and key files '
                        "of the deployment's certificate directory (plain file names such as "
                        "client-cert.der), not paths"
                    )
        return cfg

    @classmethod
    def destination(cls, config: Mapping[str, Any]) -> Destination:
        parts = urlsplit(config["endpoint"])
        return Destination(
            "opc.tcp", parts.hostname, parts.port or 4840,
            config.get("username") or parts.username or None,
            security=(config.get("security_policy") or "None").strip(),
        )

    # --- session handling --------------------------------------------------------------------

    async def _connected(self, deadline: float) -> Client:
        """The integration's connected client; connects (again) when needed, by `deadline`."""
        loop = asyncio.get_running_loop()
        if self._usable(self._client, loop):
            return self._client  # type: ignore[return-value]
        if self._lock_loop is not loop:
            # asyncio locks belong to one loop; a caller on a new loop gets a fresh one.
            self._lock, self._lock_loop = asyncio.Lock(), loop
        try:
            async with asyncio.timeout_at(deadline), self._lock:
                if self._usable(self._client, loop):
                    return self._client  # type: ignore[return-value]
                await self._drop_client()
                host, port = self._destination.host, self._destination.port
                assert host is not None and port is not None  # validate_config requires them
                addresses = await self.resolve(host, port)  # EgressRefused: nothing was sent
                client = _PinnedClient(self.endpoint, addresses, port, self.timeout)
                if self.config.get("username"):
                    client.set_user(self.config["username"])
                    client.set_password(self.config.get("password") or "")
                try:
                    policy = (self.config.get("security_policy") or "").strip()
                    if policy not in ("", "None"):
                        await self._secure(client, policy)
                    await client.connect()
                except BaseException:
                    with contextlib.suppress(Exception):
                        client.disconnect_socket()
                    raise
                self._client, self._client_loop = client, loop
                return client
        except (*_SOURCE_ERRORS, ValueError) as exc:
            raise ConnectorError(self._connect_failure(exc)) from None

    async def _secure(self, client: Client, policy: str) -> None:
        """asyncua's `set_security_string`, with the files read in the connector's pool from
        the deployment's certificate directory only."""
        name, mode, *files = (f.strip() for f in policy.split(","))
        server = files[2:]
        key_password = self.config.get("private_key_password")
        paths = [Path(file) for file in files]
        contents = await self.run_blocking(lambda: [self._certificate(path) for path in paths])

        def loaded(index: int, password: str | None = None) -> CertProperties:
            # asyncua tells PEM from DER by the extension, which bytes no longer carry.
            extension = paths[index].suffix.lstrip(".").lower() or None
            return CertProperties(contents[index], extension=extension, password=password)

        await client.set_security(
            getattr(security_policies, f"SecurityPolicy{name}"),
            loaded(0),
            loaded(1, key_password or None),
            server_certificate=loaded(2) if server else None,
            mode=getattr(ua.MessageSecurityMode, mode),
        )

    def _certificate(self, name: Path) -> bytes:
        """A certificate or key file of the certificate directory: inside it once links are
        resolved, a regular file, small. Anything else is a ConnectorError, never a read."""
        directory = self.egress.certificate_dir
        if directory is None:
            raise ConnectorError(
                "secured OPC UA needs the deployment's certificate directory "
                "(OPTRIA_OPCUA_PKI_DIR); it is not set"
            )
        root = Path(directory).resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ConnectorError(
                f"OPC UA certificate or key {name.name!r} is not a file of the certificate "
                "directory (OPTRIA_OPCUA_PKI_DIR)"
            )
        with path.open("rb") as handle:
            content = handle.read(MAX_CERTIFICATE_BYTES + 1)
        if len(content) > MAX_CERTIFICATE_BYTES:
            raise ConnectorError(f"OPC UA certificate or key {name.name!r} is too large")
        return content

    def _usable(self, client: Client | None, loop: asyncio.AbstractEventLoop) -> bool:
        return (
            client is not None
            and self._client_loop is loop
            and client.uaclient.state is UaClientState.CONNECTED
        )

    def _connect_failure(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return (
                f"OPC UA server at {self._shown_endpoint} did not answer within {self.timeout:g} s"
            )
        if isinstance(exc, ua.UaStatusCodeError) and getattr(exc, "code", None) in _AUTH_REFUSED:
            return f"OPC UA server at {self._shown_endpoint} rejected the user credentials"
        return f"cannot connect to OPC UA server at {self._shown_endpoint} ({describe_error(exc)})"

    async def _drop_client(self) -> None:
        """Forget the current client, closing it politely when its link is still up."""
        client, self._client = self._client, None
        if client is None:
            return
        if self._client_loop is asyncio.get_running_loop():
            alive = client.uaclient.state is UaClientState.CONNECTED
            with contextlib.suppress(Exception):
                if alive:
                    async with asyncio.timeout(self.timeout):
                        await client.disconnect()
                else:
                    # A dead link can't close its session; just stop the background tasks.
                    await client.close_session()
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    @contextlib.asynccontextmanager
    async def _session(self, tag: str) -> AsyncIterator[Client]:
        """A connected client for one operation; source failures become ConnectorError.

        Connecting and the operation share one `timeout` budget.
        """
        deadline = asyncio.get_running_loop().time() + self.timeout
        client = await self._connected(deadline)
        try:
            async with asyncio.timeout_at(deadline):
                yield client
        except ConnectorError:
            raise
        except ua.UaStatusCodeError as exc:
            raise ConnectorError(_status_message(tag, exc)) from None
        except TimeoutError:
            # The link may be half-dead: make the next call reconnect.
            client.uaclient.notify_transport_lost()
            raise ConnectorError(
                f"OPC UA server at {self._shown_endpoint} did not answer within "
                f"{self.timeout:g} s reading {tag!r}"
            ) from None
        except _SOURCE_ERRORS as exc:
            raise ConnectorError(
                f"OPC UA read of {tag!r} from {self._shown_endpoint} failed ({describe_error(exc)})"
            ) from None

    def _node_id(self, tag: str) -> ua.NodeId:
        try:
            return ua.NodeId.from_string(tag)
        except (ua.UaError, ValueError):
            raise ConnectorError(
                f"tag {tag!r} is not an OPC UA NodeId (expected e.g. ns=2;s=P-101.VIB)"
            ) from None

    # --- reads -------------------------------------------------------------------------------

    async def fetch_timeseries(
        self, tag: str, from_time: datetime | None, to_time: datetime, limit: int = 100
    ) -> Series:
        if limit <= 0:
            return Series.empty()
        node_id = self._node_id(tag)
        start = from_time if from_time is not None else _FAR_PAST
        async with self._session(tag) as client:
            # Per OPC UA Part 11, StartTime after EndTime asks for values newest first.
            values = await self._history_read(client, node_id, to_time, start, limit)
            if len(values) > 1 and _ascending(values):
                # The server ignored the reverse request: walk the window forward and keep
                # the newest values instead.
                values = (await self._history_read(client, node_id, start, to_time, 0))[-limit:]
            else:
                values.reverse()  # newest first → ascending
            if not values:
                await self._require_node(client, node_id, tag)
        series = _series_from_datavalues(values)
        return series.window(
            None if from_time is None else datetime_to_ns(from_time), datetime_to_ns(to_time)
        ).tail(limit)

    async def _history_read(
        self,
        client: Client,
        node_id: ua.NodeId,
        start: datetime,
        end: datetime,
        count: int,
    ) -> list[ua.DataValue]:
        """HistoryRead raw, following continuation points until `count` values (0: all)."""
        details = ua.ReadRawModifiedDetails(
            IsReadModified=False,
            StartTime=start,
            EndTime=end,
            NumValuesPerNode=0,
            ReturnBounds=False,
        )
        collected: list[ua.DataValue] = []
        continuation: bytes | None = None
        while True:
            if count:
                details.NumValuesPerNode = count - len(collected)
            result = await self._history_call(client, node_id, details, continuation)
            result.StatusCode.check()
            collected.extend(result.HistoryData.DataValues or [])
            previous, continuation = continuation, result.ContinuationPoint
            done = count and len(collected) >= count
            if not continuation or continuation == previous or done:
                break
        if continuation and continuation != previous:
            # We stopped early: let the server free the continuation point it holds for us.
            with contextlib.suppress(*_SOURCE_ERRORS):
                await self._history_call(client, node_id, details, continuation, release=True)
        return collected[:count] if count else collected

    @staticmethod
    async def _history_call(
        client: Client,
        node_id: ua.NodeId,
        details: ua.ReadRawModifiedDetails,
        continuation: bytes | None,
        *,
        release: bool = False,
    ) -> ua.HistoryReadResult:
        params = ua.HistoryReadParameters()
        params.HistoryReadDetails = details
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        params.ReleaseContinuationPoints = release
        params.NodesToRead.append(
            ua.HistoryReadValueId(NodeId=node_id, IndexRange="", ContinuationPoint=continuation)
        )
        return (await client.uaclient.history_read(params))[0]

    async def _require_node(self, client: Client, node_id: ua.NodeId, tag: str) -> None:
        """Empty history: tell "no data in the window" apart from "no such node"."""
        result = await client.uaclient.read_attributes([node_id], ua.AttributeIds.NodeClass)
        if result[0].StatusCode.is_bad():
            raise ConnectorError(f"OPC UA node {tag!r} not found ({result[0].StatusCode.name})")

    async def fetch_latest(self, tag: str) -> Series:
        node_id = self._node_id(tag)
        async with self._session(tag) as client:
            result = await client.uaclient.read_attributes([node_id], ua.AttributeIds.Value)
        dv = result[0]
        if dv.StatusCode is not None and dv.StatusCode.value in _MISSING_NODE:
            raise ConnectorError(f"OPC UA node {tag!r} not found ({dv.StatusCode.name})")
        return _series_from_datavalues([dv], now_fallback=True)

    async def test_connection(self) -> None:
        async with self._session("Server.ServerStatus.State") as client:
            await client.nodes.server_state.read_value()

    async def aclose(self) -> None:
        await self._drop_client()
        await super().aclose()


_AUTH_REFUSED = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
    }
)
_MISSING_NODE = frozenset({ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid})


def _status_message(tag: str, exc: ua.UaStatusCodeError) -> str:
    code = getattr(exc, "code", None)
    if code in _MISSING_NODE:
        return f"OPC UA node {tag!r} not found ({type(exc).__name__})"
    if code in (
        ua.StatusCodes.BadHistoryOperationUnsupported,
        ua.StatusCodes.BadHistoryOperationInvalid,
    ):
        return f"OPC UA node {tag!r} has no history on the server ({type(exc).__name__})"
    return f"OPC UA server refused reading {tag!r} ({describe_error(exc)})"


def _ascending(values: Sequence[ua.DataValue]) -> bool:
    first, last = _stamp(values[0]), _stamp(values[-1])
    return first is not None and last is not None and first < last


def _stamp(dv: ua.DataValue) -> datetime | None:
    return dv.SourceTimestamp or dv.ServerTimestamp


def _series_from_datavalues(
    values: Sequence[ua.DataValue], *, now_fallback: bool = False
) -> Series:
    """DataValues to a Series: SourceTimestamp (else ServerTimestamp, else now for live reads),
    status severity → quality, non-numeric values → bad."""
    if not values:
        return Series.empty()
    now = datetime.now(UTC)
    stamps: list[datetime] = []
    kept: list[ua.DataValue] = []
    for dv in values:
        stamp = _stamp(dv) or (now if now_fallback else None)
        if stamp is None:
            continue  # a historical value without any time can't be placed
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        stamps.append(stamp)
        kept.append(dv)
    raw = [_numeric(dv.Value.Value if dv.Value is not None else None) for dv in kept]
    quality = [
        quality_from_status(dv.StatusCode.value if dv.StatusCode is not None else 0) for dv in kept
    ]
    return make_series(datetimes_to_ns(stamps), to_float_array(raw), quality)


def _numeric(value: Any) -> Any:
    """Numbers pass through (exactly); anything else (text, arrays, structures) is NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return math.nan
