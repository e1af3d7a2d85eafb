"""Historian connectors: one class per integration type behind the Connector contract."""

from .base import (
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_NAMES,
    QUALITY_UNCERTAIN,
    Connector,
    ConnectorError,
    Series,
)

__all__ = [
    "QUALITY_BAD",
    "QUALITY_GOOD",
    "QUALITY_NAMES",
    "QUALITY_UNCERTAIN",
    "Connector",
    "ConnectorError",
    "Series",
]
