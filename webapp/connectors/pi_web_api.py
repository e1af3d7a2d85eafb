"""AVEVA/OSIsoft PI Web API connector (type "pi").

REST over HTTPS with Basic auth. A tag `PI:NAME` (or bare `NAME`) is the PI point
`\\\\{data_server}\\NAME`; its WebId is resolved once through `points?path=` and cached.
Raw reads use `streams/{webId}/recorded` asking newest-first (startTime after endTime), which
PI answers in reverse chronological order, so "latest N of a window" is one bounded call
(paged when N exceeds the server's per-call cap).

Every connection goes through `_EgressBackend`: the host name is resolved in the connector's
own pool, each address is checked against the egress policy, and the socket is opened to a
checked address, while TLS still verifies (and sends SNI for) the host name. Redirects are
never followed and proxy variables in the environment are ignored, so nothing routes a request
around the policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import numpy as np

from webapp.series import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_UNCERTAIN,
    Series,
    datetime_to_ns,
    ns_to_iso,
)
from webapp.timeseries.downsample import downsample

from .base import (
    Connector,
    ConnectorError,
    Destination,
    describe_error,
    make_series,
    optional_bool,
    optional_str,
    parse_iso_timestamps,
    require_str,
    to_float_array,
)
from .egress import EgressPolicy, http_endpoint

# PI's archive starts at 1970; used as the open end of "latest N at or before to_time".
_FAR_PAST = "1970-01-01T00:00:00Z"
_FIELDS = ("Timestamp", "Value", "Good", "Questionable", "Substituted")
# selectedFields trims PI's answers (Links, UnitsAbbreviation…) to what we parse.
_VALUE_FIELDS = ";".join(_FIELDS)
_ITEMS_FIELDS = ";".join(f"Items.{f}" for f in _FIELDS)


class _PIHTTPError(ConnectorError):
    """PI answered with an HTTP error status (kept so callers can tell 404 from 401)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _point_name(tag: str) -> str:
    return tag[3:] if tag.upper().startswith("PI:") else tag


class _EgressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's socket layer, opening TCP only to addresses the egress policy allowed.

    httpcore hands `connect_tcp` the origin's host name and later starts TLS with
    `server_hostname=<that name>`, so certificate checks and SNI still use the name while
    the socket goes to the address that was checked: no second lookup that a DNS answer
    could rebind.
    """

    def __init__(self, resolve: Callable[[str, int], Awaitable[list[str]]]) -> None:
        self._resolve = resolve
        self._sockets = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in await self._resolve(host, port):  # all allowed; try them in order
            try:
                return await self._sockets.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address or raises
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("connectors reach sources over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._sockets.sleep(seconds)


class _EgressTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over `_EgressBackend`.

    httpx has no parameter for a network backend, so the connection pool it built is
    replaced by the same public httpcore pool with ours; the transport's request handling
    (httpx ↔ httpcore mapping, error translation) uses only that pool.
    """

    def __init__(self, *, verify: bool, backend: httpcore.AsyncNetworkBackend) -> None:
        # The operator's CA bundle (SSL_CERT_FILE / SSL_CERT_DIR) still counts: it decides
        # whom to trust, not where to connect.
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=True)
        super().__init__(verify=ssl_context, trust_env=False)
        limits = httpx.Limits()  # httpx's defaults, as a plain AsyncClient would use
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class PIWebAPIConnector(Connector):
    """PI Web API client: one httpx.AsyncClient and one WebId cache per integration."""

    type = "pi"
    # PI Web API's default MaxReturnedItemsPerCall; bigger requests are refused, so we page.
    max_count_per_call: int = 150_000

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        timeout: float = 5.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        super().__init__(config, timeout=timeout, egress=egress)
        self.base_url = self.config["base_url"].rstrip("/")
        self.data_server = self.config["data_server"]
        # For messages: scheme://host:port only, never userinfo, path or query.
        self._shown_url = self.destination(self.config).origin()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._web_ids: dict[str, str] = {}

    def _http(self) -> httpx.AsyncClient:
        """The integration's one HTTP client (keep-alive pool), opened on the running loop.

        httpx pools belong to the event loop that opened them; a caller on another loop
        (a CLI tool, a test client) gets a fresh client instead of a broken pool.
        """
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            username = self.config.get("username")
            self._client = httpx.AsyncClient(
                auth=httpx.BasicAuth(username, self.config.get("password") or "")
                if username
                else None,
                transport=_EgressTransport(
                    verify=self.config.get("verify_tls", True),
                    backend=_EgressBackend(self.resolve),
                ),
                timeout=httpx.Timeout(self.timeout),
                headers={"Accept": "application/json", "X-Requested-With": "optria-iq"},
                follow_redirects=False,
                event_hooks={"response": [self._refuse_redirect]},
                trust_env=False,  # no HTTP(S)_PROXY / ALL_PROXY detour
            )
            self._client_loop = loop
        return self._client

    async def _refuse_redirect(self, response: httpx.Response) -> None:
        """A 3xx is an error of its own: the policy checked this host, not the Location's.
        (A response hook runs before httpx even parses the Location.)"""
        if 300 <= response.status_code < 400:
            raise ConnectorError(
                f"PI Web API at {self._shown_url} answered a redirect"
                f"{_redirect_target(response)}; connectors do not follow redirects"
            )

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        cfg = super().validate_config(config)
        base_url = require_str(cfg, "base_url")
        try:
            parts = urlsplit(base_url)
            parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
        except ValueError as exc:
            raise ValueError(f'config key "base_url" has a bad host or port: {exc}') from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError('config key "base_url" must be an http(s) URL')
        cfg["base_url"] = base_url
        cfg["data_server"] = require_str(cfg, "data_server").lstrip("\\")
        optional_str(cfg, "username")
        optional_str(cfg, "password")
        cfg["verify_tls"] = optional_bool(cfg, "verify_tls", True)
        return cfg

    @classmethod
    def destination(cls, config: Mapping[str, Any]) -> Destination:
        parts = urlsplit(config["base_url"])
        host, port = http_endpoint(config["base_url"]) or (None, None)
        return Destination(
            parts.scheme,
            host,
            port,
            # Basic auth uses the config's user, else the one in the URL.
            config.get("username") or parts.username or None,
            config["data_server"],
            security=f"verify_tls={config.get('verify_tls', True)}",
        )

    # --- HTTP plumbing -----------------------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a PI Web API resource; any failure becomes a ConnectorError."""
        url = f"{self.base_url}/{path}"
        try:
            # httpx bounds each phase (connect, read…); this bounds the whole request.
            async with asyncio.timeout(self.timeout):
                response = await self._http().get(url, params=params)
        except (httpx.TimeoutException, TimeoutError):
            raise ConnectorError(
                f"PI Web API at {self._shown_url} did not answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"PI Web API at {self._shown_url} is unreachable ({describe_error(exc)})"
            ) from None
        if response.status_code == 401:
            raise _PIHTTPError(
                f"PI Web API rejected the credentials (HTTP 401) at {self._shown_url}; "
                "check username and password",
                401,
            )
        body = self._json(response)
        if response.status_code >= 400:
            raise _PIHTTPError(
                f"PI Web API answered HTTP {response.status_code}: {_errors_text(body, response)}",
                response.status_code,
            )
        if not isinstance(body, dict):
            raise ConnectorError("PI Web API answered an unexpected JSON shape (not an object)")
        return body

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 400:
                return None  # the status code alone still tells the operator something
            kind = response.headers.get("content-type", "unknown content type")
            raise ConnectorError(
                f"PI Web API at {self._shown_url} answered something that is not JSON ({kind}); "
                "check base_url points at .../piwebapi"
            ) from None

    async def _web_id(self, tag: str) -> str:
        name = _point_name(tag)
        if not name:
            raise ConnectorError(f"tag {tag!r} names no PI point")
        cached = self._web_ids.get(name)
        if cached is not None:
            return cached
        path = f"\\\\{self.data_server}\\{name}"
        try:
            body = await self._get("points", {"path": path, "selectedFields": "WebId;Name"})
        except _PIHTTPError as exc:
            if exc.status in (400, 404):
                message = f"PI point for tag {tag!r} ({path}) not found: {exc}"
                raise ConnectorError(message) from None
            raise
        web_id = body.get("WebId")
        if not isinstance(web_id, str) or not web_id:
            raise ConnectorError(f"PI Web API returned no WebId for tag {tag!r} ({path})")
        self._web_ids[name] = web_id
        return web_id

    async def _stream(self, tag: str, what: str, params: Mapping[str, Any]) -> Any:
        web_id = await self._web_id(tag)
        try:
            return await self._get(f"streams/{web_id}/{what}", params)
        except _PIHTTPError as exc:
            if exc.status == 404:
                # The point was deleted/recreated (new WebId): resolve it again next time.
                self._web_ids.pop(_point_name(tag), None)
            raise ConnectorError(f"reading PI tag {tag!r}: {exc}") from None

    # --- reads -------------------------------------------------------------------------------

    async def fetch_timeseries(
        self, tag: str, from_time: datetime | None, to_time: datetime, limit: int = 100
    ) -> Series:
        if limit <= 0:
            return Series.empty()
        # Newest first: startTime is the window's end, endTime its beginning.
        start_iso = ns_to_iso(datetime_to_ns(to_time))
        end_iso = _FAR_PAST if from_time is None else ns_to_iso(datetime_to_ns(from_time))
        pages: list[Series] = []  # newest page first, each ascending
        remaining = limit
        boundary: int | None = None  # start time (ns) of the current page, when paging
        overlap = 0  # points at `boundary` that earlier pages already returned
        while remaining > 0:
            want = min(remaining + overlap, self.max_count_per_call)
            body = await self._stream(
                tag,
                "recorded",
                {
                    "startTime": start_iso,
                    "endTime": end_iso,
                    "maxCount": want,
                    "selectedFields": _ITEMS_FIELDS,
                },
            )
            items = _items(body)
            page = _series_from_items(items[::-1])  # PI sent them newest first
            if overlap:
                # The page restarts at the boundary time (inclusive): drop what we already have.
                page = page.take(np.arange(len(page) - min(overlap, len(page))))
            page = page.tail(remaining)
            if len(page):
                pages.append(page)
                remaining -= len(page)
            if len(items) < want or not len(page):
                break  # window exhausted (or no progress possible)
            oldest = int(page.timestamps[0])
            held = int(np.count_nonzero(page.timestamps == oldest))
            overlap = held + (overlap if oldest == boundary else 0)
            boundary = oldest
            start_iso = ns_to_iso(oldest, digits=7)
        return Series.concat(pages[::-1])

    async def fetch_plot(
        self, tag: str, from_time: datetime, to_time: datetime, max_points: int
    ) -> Series:
        # PI's plot returns up to ~5 values per interval (first, last, min, max, exceptions).
        # One interval per wanted point over-fetches on purpose: downsample() then fills the
        # whole budget (keeping the global min and max), so callers can tell a reduced window
        # (more than the budget came back) from a whole one.
        body = await self._stream(
            tag,
            "plot",
            {
                "startTime": ns_to_iso(datetime_to_ns(from_time)),
                "endTime": ns_to_iso(datetime_to_ns(to_time)),
                "intervals": max(1, max_points),
                "selectedFields": _ITEMS_FIELDS,
            },
        )
        series = _series_from_items(_items(body))
        series = series.window(datetime_to_ns(from_time), datetime_to_ns(to_time))
        return downsample(_dedupe(series), max_points)

    async def fetch_latest(self, tag: str) -> Series:
        body = await self._stream(tag, "value", {"selectedFields": _VALUE_FIELDS})
        return _series_from_items([body])

    async def test_connection(self) -> None:
        await self._get("")
        try:
            await self._get("dataservers", {"path": f"\\\\{self.data_server}"})
        except ConnectorError as exc:
            raise ConnectorError(f"PI data server {self.data_server!r} not found: {exc}") from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()
        await super().aclose()


def _redirect_target(response: httpx.Response) -> str:
    """' to scheme://host:port' of a redirect's Location (never its userinfo, path or
    query), or the bare status when it names no usable URL."""
    location = response.headers.get("location")
    try:
        target = response.request.url.join(location) if location else None
    except httpx.InvalidURL:
        target = None
    endpoint = http_endpoint(str(target)) if target is not None else None
    if target is None or endpoint is None or target.scheme not in ("http", "https"):
        return f" (HTTP {response.status_code})"
    return f" to {Destination(target.scheme, *endpoint).origin()}"


def _errors_text(body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict):
        errors = body.get("Errors") or body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        if isinstance(body.get("Message"), str):
            return body["Message"]
    return response.reason_phrase or "error"


def _items(body: Mapping[str, Any]) -> list[Any]:
    items = body.get("Items")
    if not isinstance(items, list):
        raise ConnectorError("PI Web API answered without an Items list")
    return items


def _series_from_items(items: Sequence[Any]) -> Series:
    """PI stream values to a Series.

    Good=false or a digital-state object value ({"Name": "I/O Timeout", ...}) → bad (NaN);
    Questionable or Substituted → uncertain.
    """
    if not items:
        return Series.empty()
    try:
        stamps = [item["Timestamp"] for item in items]
        raw = [item.get("Value") for item in items]
        quality = np.fromiter(
            (
                QUALITY_BAD
                if item.get("Good", True) is False
                else QUALITY_UNCERTAIN
                if item.get("Questionable") or item.get("Substituted")
                else QUALITY_GOOD
                for item in items
            ),
            dtype=np.uint8,
            count=len(items),
        )
    except (TypeError, KeyError, AttributeError):
        raise ConnectorError("PI Web API answered items without Timestamp/Value") from None
    if not all(isinstance(s, str) and s for s in stamps):
        raise ConnectorError("PI Web API answered an empty or non-text Timestamp")
    # Objects (digital states) and text become NaN, which make_series marks bad.
    return make_series(parse_iso_timestamps(stamps), to_float_array(raw), quality)


def _dedupe(series: Series) -> Series:
    """Drop exact repeats (same time and value) that PI's plot emits for min/max/first/last."""
    if len(series) < 2:
        return series
    same = (np.diff(series.timestamps) == 0) & (
        (series.values[1:] == series.values[:-1])
        | (np.isnan(series.values[1:]) & np.isnan(series.values[:-1]))
    )
    if not same.any():
        return series
    return series.take(np.flatnonzero(np.concatenate(([True], ~same))))
