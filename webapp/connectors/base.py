"""Connector contract and the shared columnar helpers every connector builds on.

A connector turns one historian's protocol into a `Series`: three parallel numpy arrays.
Plant windows reach hundreds of thousands of points, so nothing here creates a Python object
per point beyond what the source's client library already hands us.
"""

from __future__ import annotations

import asyncio
import math
import numbers
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import numpy as np

from webapp.series import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_NAMES,
    QUALITY_UNCERTAIN,
    Series,
    datetime_to_ns,
)
from webapp.timeseries.downsample import downsample

from .egress import EgressPolicy, ip_literal
from .errors import ConnectorError

_T = TypeVar("_T")

# Large enough for any window the API allows (366 days of 1 s samples is ~32 M) while still
# fitting the 32-bit count fields some protocols use (OPC UA NumValuesPerNode is UInt32).
WHOLE_WINDOW = 2**31 - 1

_QUALITY_BY_NAME = {name: code for code, name in enumerate(QUALITY_NAMES)}


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a config sends its requests and credentials (DESIGN.md §16): a stored secret may
    only ever go back to the same destination."""

    scheme: str
    host: str | None  # None: a local file (an SQLite historian)
    port: int | None
    user: str | None = None
    database: str | None = None  # the database, or PI's data server
    # How the channel is protected (TLS verification, sslmode, OPC UA security): a stored
    # password must not be sent again over a weaker channel either.
    security: str | None = None

    def shown(self) -> str:
        """scheme://host[:port]/database — how messages name it (never user or password)."""
        if self.host is None:
            return f"{self.scheme} file"
        return f"{self.origin()}/{self.database or ''}"

    def origin(self) -> str:
        """scheme://host[:port], for sources whose URL names no database (PI, OPC UA)."""
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host or ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{host}{port}"


class Connector(ABC):
    """One historian integration. Instances hold the client session; see registry.get_connector.

    Blocking work (DNS lookups, DB-API calls) runs in the instance's own small thread pool,
    never in the loop's default executor or anyio's shared threads: a hung historian then
    holds only its own workers, while other integrations, logins (sync endpoints run on
    anyio's threads) and the hub's `asyncio.to_thread` checks carry on (DESIGN.md §16).
    """

    type: ClassVar[str]
    # Enough for a few concurrent reads of one source; more would only queue at the source.
    workers: ClassVar[int] = 4

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        timeout: float = 5.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.config: dict[str, Any] = self.validate_config(config)
        self.timeout = float(timeout)
        # The strictest policy unless the deployment's is given: fail closed.
        self.egress = egress if egress is not None else EgressPolicy()
        self._executor: ThreadPoolExecutor | None = None  # created on first blocking call

    async def run_blocking(self, work: Callable[..., _T], *args: Any) -> _T:
        """`work(*args)` in this connector's own pool. Cancelling the await (a timeout) drops
        the job if it has not started; a started one finishes in its thread, unawaited."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix=self._thread_name()
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _thread_name(self) -> str:
        destination = type(self).destination(self.config)
        where = destination.host if destination is not None and destination.host else "local"
        return f"connector-{self.type}-{re.sub(r'[^A-Za-z0-9_.:-]', '_', where)}"

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of host:port the egress policy allows, to connect to as they are
        (EgressRefused, or ConnectorError when unresolvable). The lookup blocks, so it runs
        in the connector's pool; a literal IP needs no lookup."""
        if ip_literal(host) is not None:
            return self.egress.resolve(host, port)
        return await self.run_blocking(self.egress.resolve, host, port)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Checks shared by every type; subclasses extend it and call super() first."""
        if not isinstance(config, Mapping):
            raise ValueError("config must be a JSON object")
        cfg = dict(config)
        if "fallback" in cfg and cfg["fallback"] != "synthetic":
            raise ValueError('config key "fallback" must be "synthetic" when present')
        return cfg

    @classmethod
    def destination(cls, config: Mapping[str, Any]) -> Destination | None:
        """Where a validated config connects; None for a source that needs no network."""
        return None

    @abstractmethod
    async def fetch_timeseries(
        self, tag: str, from_time: datetime | None, to_time: datetime, limit: int = 100
    ) -> Series:
        """The latest `limit` points with from_time <= t <= to_time, ascending.

        With from_time None: the latest `limit` points at or before to_time.
        """
        ...

    async def fetch_plot(
        self, tag: str, from_time: datetime, to_time: datetime, max_points: int
    ) -> Series:
        """The window reduced to <= max_points (MinMaxLTTB keeping global min and max)."""
        series = await self.fetch_timeseries(tag, from_time, to_time, limit=WHOLE_WINDOW)
        return downsample(series, max_points)

    @abstractmethod
    async def fetch_latest(self, tag: str) -> Series:
        """0 or 1 point: the newest reading."""
        ...

    @abstractmethod
    async def test_connection(self) -> None:
        """Raise ConnectorError with a clear message when the source is not usable."""
        ...

    async def aclose(self) -> None:
        """Release clients/sessions; subclasses release theirs, then call this.

        The pool is shut down without waiting: a thread stuck on a dead source ends on its
        own (driver timeouts). Work already queued still runs, since its callers await it
        (each within its timeout). A later call on this instance starts a fresh pool.
        """
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


# --- config helpers -------------------------------------------------------------------------


def require_str(cfg: Mapping[str, Any], key: str) -> str:
    value = cfg.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'config key "{key}" is required and must be a non-empty string')
    return value.strip()


def optional_str(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f'config key "{key}" must be a string')
    return value


def optional_bool(cfg: Mapping[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f'config key "{key}" must be true or false')
    return value


# --- time helpers ---------------------------------------------------------------------------


def parse_iso_timestamps(texts: Sequence[str]) -> np.ndarray:
    """ISO 8601 UTC strings ('...Z', up to 9 fractional digits) to int64 ns, vectorised.

    Strings with an explicit offset fall back to per-item parsing.
    """
    if not texts:
        return np.empty(0, dtype=np.int64)
    try:
        if all(t[-1] in "Zz" for t in texts):
            return np.array([t[:-1] for t in texts], dtype="datetime64[ns]").view(np.int64)
    except (ValueError, TypeError, IndexError):
        pass
    try:
        return np.fromiter(
            (datetime_to_ns(datetime.fromisoformat(t)) for t in texts),
            dtype=np.int64,
            count=len(texts),
        )
    except (ValueError, TypeError) as exc:
        raise ConnectorError(f"the source sent an unreadable timestamp ({exc})") from None


# --- value / quality helpers ----------------------------------------------------------------


def quality_from_label(label: Any) -> int:
    """A quality as historians store it: None → good; 'good'/'uncertain'/'bad' text;
    or an OPC DA integer (>= 192 good, 64–191 uncertain, else bad)."""
    if label is None:
        return QUALITY_GOOD
    if isinstance(label, str):
        text = label.strip().lower()
        if text in _QUALITY_BY_NAME:
            return _QUALITY_BY_NAME[text]
        try:
            label = int(text)
        except ValueError:
            return QUALITY_BAD  # unknown wording: don't present it as trustworthy
    if isinstance(label, bool):
        return QUALITY_GOOD if label else QUALITY_BAD
    if isinstance(label, int | float) and math.isfinite(label):
        code = int(label)
        if code >= 192:
            return QUALITY_GOOD
        return QUALITY_UNCERTAIN if code >= 64 else QUALITY_BAD
    return QUALITY_BAD


def qualities_from_labels(labels: Sequence[Any]) -> np.ndarray:
    """quality_from_label over a column; memoised since a column holds few distinct labels."""
    memo: dict[Any, int] = {}

    def code(label: Any) -> int:
        if label not in memo:
            memo[label] = quality_from_label(label)
        return memo[label]

    return np.fromiter((code(v) for v in labels), dtype=np.uint8, count=len(labels))


def to_float_array(values: Sequence[Any]) -> np.ndarray:
    """Values to float64; anything non-numeric (None, text, dicts) becomes NaN.

    Numbers (bool, int, float, Decimal, numpy scalars) convert exactly as float() does.
    """
    if not len(values):
        return np.empty(0, dtype=np.float64)
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":  # the common all-numeric column: one vectorised cast
        return arr.astype(np.float64)
    return np.fromiter(
        (float(v) if isinstance(v, numbers.Real | Decimal) else math.nan for v in values),
        dtype=np.float64,
        count=len(values),
    )


def make_series(
    timestamps: np.ndarray | Sequence[int],
    values: np.ndarray | Sequence[float],
    quality: np.ndarray | Sequence[int] | None = None,
    *,
    presorted: bool = False,
) -> Series:
    """Build a Series enforcing its invariants.

    Non-finite values become bad quality, bad points get NaN values, and the points are
    sorted by time (stable) unless the caller guarantees ascending order.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    vals = np.array(values, dtype=np.float64)  # copy: we write NaNs into it
    if quality is None:
        q = np.zeros(ts.shape[0], dtype=np.uint8)
    else:
        q = np.array(quality, dtype=np.uint8)
    if not (ts.shape == vals.shape == q.shape) or ts.ndim != 1:
        raise ConnectorError("the source answered with mismatched timestamp/value counts")
    q[~np.isfinite(vals)] = QUALITY_BAD
    vals[q == QUALITY_BAD] = np.nan
    if not presorted and ts.shape[0] > 1 and np.any(ts[1:] < ts[:-1]):
        order = np.argsort(ts, kind="stable")
        ts, vals, q = ts[order], vals[order], q[order]
    return Series(ts, vals, q)


def describe_error(exc: BaseException) -> str:
    """One-line description of a library exception for an operator-facing message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
