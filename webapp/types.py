"""Input types shared by every API: integer ids and UTC datetimes, validated once (→ 422)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
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


def _storable_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refused here (422) rather than failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Free text a user types (names, tags, reasons): any characters but NUL.
Text = Annotated[str, AfterValidator(_storable_text)]


def storable_json(value: Any, path: str = "") -> str | None:
    """Where a JSON document holds what a JSON column cannot store (a NUL character, a
    number that is not finite); None if it is storable."""
    if isinstance(value, str):
        return path or "(value)" if "\x00" in value else None
    if isinstance(value, float):
        return path or "(value)" if not math.isfinite(value) else None
    items: Any = ()
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and "\x00" in key:
                return f"{path}.{key!r}" if path else repr(key)
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    for item_path, item in items:
        found = storable_json(item, item_path)
        if found:
            return found
    return None
