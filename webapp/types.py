"""Input types shared by every API: integer ids and UTC datetimes, validated once (→ 422)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any

from pydantic import AfterValidator

from webapp.db import as_utc

MAX_DB_ID = 2**31 - 1
# Plant data lives well inside what int64 nanoseconds (the Series) can hold: 1677…2262.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _checked_utc(value: datetime) -> datetime:
    """Naive means UTC; anything outside 1900…2200 is refused instead of overflowing later."""
    try:
        moment = as_utc(value)
    except OverflowError:
        raise ValueError("datetime is out of range once converted to UTC") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError("datetime must be between 1900-01-01 and 2200-01-01 (UTC)")
    return moment


UTCDatetime = Annotated[datetime, AfterValidator(_checked_utc)]


def utc_from(value: datetime, zone: tzinfo) -> datetime:
    """`value` in UTC, checked like UTCDatetime; a naive one is read as `zone`'s wall clock
    (an offset it carries wins)."""
    return _checked_utc(value if value.tzinfo is not None else value.replace(tzinfo=zone))


def _storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refused here (422) rather than failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Free text a user types (names, tags, reasons): any characters but NUL.
Text = Annotated[str, AfterValidator(_storable_text)]


def first_path(value: Any, found: Callable[[Any], bool], path: str = "") -> str | None:
    """The path (`a.b[2]`) of the first key or leaf of a JSON document that `found` picks,
    or None."""
    items: Any = ()
    if isinstance(value, Mapping):
        for key in value:
            if found(key):
                return f"{path}.{key!r}" if path else repr(key)
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return (path or "(value)") if found(value) else None
    for item_path, item in items:
        at = first_path(item, found, item_path)
        if at:
            return at
    return None


def _unstorable(value: Any) -> bool:
    return (isinstance(value, str) and "\x00" in value) or (
        isinstance(value, float) and not math.isfinite(value)
    )


def storable_json(value: Any) -> str | None:
    """Where a JSON document holds what a JSON column cannot store (a NUL character, a
    number that is not finite); None if it is storable."""
    return first_path(value, _unstorable)
