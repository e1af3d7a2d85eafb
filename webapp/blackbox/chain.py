"""The tamper-evident BlackBox (DESIGN.md §16): each tenant's events form a SHA-256 hash chain.

Pure functions, no database. An event's hash covers every stored field but `hash` itself,
including its `id`, `tenant_id` and `prev_hash`, so an edited, deleted, inserted or reordered
row breaks the chain at (or right after) that row.

The canonical form is a contract: stored hashes were computed with it, so it never changes.
It is JSON with sorted keys, no whitespace, UTF-8 text (not \\u escapes) and no NaN, with two
normalisations that make a payload hash alike before storage and after reading it back from
either backend (PostgreSQL's JSONB rewrites numbers and reorders keys):
- datetimes are UTC strings `YYYY-MM-DDTHH:MM:SS.ffffffZ`;
- numbers are exact normalised decimals: integral values as plain integers (`1e20` and
  `100000000000000000000` are one number, as are `0`, `0.0` and `-0.0`), others as the
  decimal's shortest string (`1.5`, `0.001`, `1E-7`). They stay JSON numbers, so the string
  `"1"` and the number `1` hash differently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "id",
    "tenant_id",
    "asset_id",
    "source_system",
    "source_type",
    "event_category",
    "event_time",
    "severity",
    "summary",
    "payload",
    "created_at",
    "prev_hash",
)


@dataclass(frozen=True, slots=True)
class ChainVerification:
    ok: bool
    events_checked: int
    first_bad_id: int | None
    # The newest event's hash when the whole chain holds; None when it is empty or broken.
    head_hash: str | None


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash is computed over (every field of HASHED_FIELDS, no other)."""
    document = _canonical({name: event[name] for name in HASHED_FIELDS})
    # A lone surrogate (possible in a JSON request body) is kept, not a reason to lose the event.
    return document.encode("utf-8", "surrogatepass")


def event_hash(event: Mapping[str, Any]) -> str:
    """SHA-256, hex, of the canonical form."""
    return hashlib.sha256(canonical_event(event)).hexdigest()


def verify(events: Iterable[Mapping[str, Any]]) -> ChainVerification:
    """Check one tenant's events, given in ascending id order; stops at the first bad one.

    An event is bad when its id does not ascend, its `prev_hash` is not the previous event's
    hash (GENESIS_HASH for the first) or its `hash` is not the hash of its content. A deleted
    row is therefore reported as the row after it; a deleted newest row is not detectable from
    the rows alone (compare `head_hash` with one kept elsewhere for that).
    """
    expected_prev_hash = GENESIS_HASH
    previous_id: int | None = None
    checked = 0
    for event in events:
        checked += 1
        if not _is_intact(event, expected_prev_hash, previous_id):
            return ChainVerification(False, checked, event["id"], None)
        expected_prev_hash, previous_id = event["hash"], event["id"]
    return ChainVerification(True, checked, None, expected_prev_hash if checked else None)


def _is_intact(event: Mapping[str, Any], expected_prev_hash: str, previous_id: int | None) -> bool:
    if previous_id is not None and not event["id"] > previous_id:
        return False
    if event["prev_hash"] != expected_prev_hash:
        return False
    try:
        return event["hash"] == event_hash(event)
    except (TypeError, ValueError):
        return False  # content no genuine event can have (a NaN, a naive time): tampered


# --- canonical JSON ------------------------------------------------------------------------


# Exactly what json.dumps(text, ensure_ascii=False) writes for a str, without the encoder's
# set-up on every call (a BlackBox event has a dozen strings to hash).
_quote = json.encoder.encode_basestring


def _canonical(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return _quote(value)
    if type(value) is int:
        return str(value)  # what _number gives a plain int, without the Decimal round trip
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        return json.dumps(_timestamp(value))
    if isinstance(value, Mapping):
        members = sorted(((_key(key), item) for key, item in value.items()), key=_first)
        body = ",".join(f"{_quote(k)}:{_canonical(v)}" for k, v in members)
        return "{" + body + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    raise TypeError(f"a {type(value).__name__} has no canonical JSON form")


def _first(member: tuple[str, Any]) -> str:
    return member[0]


def _key(key: Any) -> str:
    # Stored JSON turns scalar keys into strings exactly like json.dumps does: mirror it.
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, int | float):
        return json.dumps(key)
    raise TypeError(f"a {type(key).__name__} cannot be a JSON object key")


def _number(value: int | float) -> str:
    # repr() is the float's shortest round-trip decimal, which is what JSON storage keeps.
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact.is_finite():
        raise ValueError("NaN and infinity have no JSON form")
    if exact.is_zero():
        return "0"  # JSONB has no negative zero
    # A context as wide as the number: the default one would round to 28 digits.
    normal = exact.normalize(Context(prec=len(exact.as_tuple().digits)))
    exponent = normal.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return str(int(normal)) if exponent >= 0 else str(normal)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime in an event: BlackBox times are UTC")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
