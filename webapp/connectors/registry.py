"""Connector types by integration type, and the process-wide connector cache.

One connector instance per integration keeps one client session per source (an OPC UA session,
a PI HTTP keep-alive pool and WebId cache, a SQL connection pool) instead of one per poll.
Editing an integration's config yields a fresh instance; the old one is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from .base import Connector, Destination
from .demo import DemoConnector
from .egress import LOCAL_FILES_REFUSED, EgressPolicy, EgressRefused
from .opcua import OPCUAConnector
from .pi_web_api import PIWebAPIConnector
from .sql import SQLHistorianConnector

logger = logging.getLogger(__name__)

CONNECTOR_TYPES: dict[str, type[Connector]] = {
    cls.type: cls
    for cls in (DemoConnector, PIWebAPIConnector, OPCUAConnector, SQLHistorianConnector)
}

# integration id → (cache key, connector); at most one live instance per integration.
_cache: dict[int, tuple[tuple[str, str, float, EgressPolicy | None], Connector]] = {}
_closing: set[asyncio.Task[None]] = set()  # strong refs so pending closes aren't collected


def _connector_class(integration_type: str) -> type[Connector]:
    try:
        return CONNECTOR_TYPES[integration_type]
    except (KeyError, TypeError):
        known = ", ".join(sorted(CONNECTOR_TYPES))
        raise ValueError(
            f"unknown integration type {integration_type!r} (expected one of: {known})"
        ) from None


def validate_integration_config(integration_type: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised config, or ValueError naming the unknown type or the bad key."""
    return _connector_class(integration_type).validate_config(config)


def destination_of(integration_type: str, config: Mapping[str, Any]) -> Destination | None:
    """Where a config connects (None: nowhere); ValueError when the config is invalid."""
    connector_class = _connector_class(integration_type)
    return connector_class.destination(connector_class.validate_config(config))


def check_egress(integration_type: str, config: Mapping[str, Any], egress: EgressPolicy) -> None:
    """EgressRefused when the policy refuses where this config connects (saving or testing an
    integration); ValueError when it is invalid. Blocking: it may resolve a host name."""
    destination = destination_of(integration_type, config)
    if destination is None:
        return
    if destination.host is None:
        if not egress.allow_local_files:
            raise EgressRefused(LOCAL_FILES_REFUSED)
        return
    egress.check_destination(destination.host, destination.port or 0)


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """Stable across processes and key order (unlike hash())."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_connector(
    integration_id: int,
    integration_type: str,
    config: Mapping[str, Any],
    *,
    timeout: float = 5.0,
    egress: EgressPolicy | None = None,
) -> Connector:
    """The cached connector for this integration, (re)built when its type, config, timeout or
    egress policy changed."""
    key = (integration_type, config_fingerprint(config), float(timeout), egress)
    cached = _cache.get(integration_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    connector = _connector_class(integration_type)(config, timeout=timeout, egress=egress)
    _cache[integration_id] = (key, connector)
    if cached is not None:
        _close_later(cached[1])
    return connector


def cached_integrations() -> set[int]:
    """The integrations whose connector is open in this process."""
    return set(_cache)


def discard_connector(integration_id: int) -> None:
    """Forget an integration's connector and close it (its integration changed)."""
    cached = _cache.pop(integration_id, None)
    if cached is not None:
        _close_later(cached[1])


def _close_later(connector: Connector) -> None:
    """Close a replaced connector without blocking the (sync) caller."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop to run it on; its resources go with garbage collection
    task = loop.create_task(_close_quietly(connector))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close_quietly(connector: Connector) -> None:
    try:
        await connector.aclose()
    except Exception:  # closing is best effort; a dead source must not break the caller
        logger.warning("closing %s connector failed", connector.type, exc_info=True)


async def close_all_connectors() -> None:
    """Close every cached connector (application shutdown, tests)."""
    connectors = [connector for _, connector in _cache.values()]
    _cache.clear()
    for connector in connectors:
        await _close_quietly(connector)
    if _closing:
        with contextlib.suppress(Exception):
            await asyncio.gather(*_closing, return_exceptions=True)
