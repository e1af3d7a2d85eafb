"""Input types shared by every API: integer ids and UTC datetimes, validated once (→ 422)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

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
