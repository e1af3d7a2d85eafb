"""The BlackBox: the tenant's flight recorder. `record_event` is THE one writer of events.

Each tenant's events form a hash chain (webapp.blackbox.chain, DESIGN.md §16). Appending is
serialised per tenant: the writer takes the tenant's chain lock, then reads the head, so two
transactions can never link to the same predecessor. The lock lasts until the caller's
transaction ends, which is why callers commit soon after recording.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    and_,
    extract,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from webapp.assets.models import Asset
from webapp.blackbox.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainVerification,
    event_hash,
    verify,
)
from webapp.blackbox.models import BlackBoxEvent, BlackBoxIncident
from webapp.db import TenantScopeError, bound_tenant_id, transaction_lock, utcnow

# First key of pg_advisory_xact_lock(namespace, tenant_id): keeps the chain locks apart from
# any other advisory lock of the deployment. b"BBOX" as an int4; never change it while
# processes of two versions may run side by side.
CHAIN_LOCK_NAMESPACE = 0x42424F58
VERIFY_BATCH_SIZE = 1000

_EVENT_TABLE = BlackBoxEvent.__table__
_CHAIN_COLUMNS = [getattr(BlackBoxEvent, name) for name in (*HASHED_FIELDS, "hash")]


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it joins the chain: everything but its id, times and hashes."""

    tenant_id: int
    asset_id: int | None
    source_system: str
    source_type: str
    event_category: str
    severity: str
    summary: str
    payload: dict[str, Any]
    event_time: datetime | None = None


def record_event(
    session: Session,
    *,
    tenant_id: int,
    asset_id: int | None,
    source_system: str,
    source_type: str,
    event_category: str,
    severity: str,
    summary: str,
    payload: dict[str, Any],
    event_time: datetime | None = None,
) -> BlackBoxEvent:
    """Append one event to its tenant's chain; the caller's transaction decides when it lands."""
    draft = EventDraft(
        tenant_id=tenant_id, asset_id=asset_id, source_system=source_system,
        source_type=source_type, event_category=event_category, severity=severity,
        summary=summary, payload=payload, event_time=event_time,
    )
    # A copy of what was stored, for its id (not in the session: the row is written already).
    return BlackBoxEvent(**_append_rows(session, [draft])[0])


def append_events(session: Session, drafts: Sequence[EventDraft]) -> list[int]:
    """Append drafts, in order, to the bound tenant's chain: one lock, one id query, one head
    read, one INSERT for the lot (the group commit's batch, DESIGN.md §17). The caller
    commits. Returns their ids."""
    return [row["id"] for row in _append_rows(session, drafts)]


def _append_rows(session: Session, drafts: Sequence[EventDraft]) -> list[dict[str, Any]]:
    tenant_id = bound_tenant_id(session)
    if not drafts:
        return []
    if tenant_id is None or any(draft.tenant_id != tenant_id for draft in drafts):
        # Checked now, not at flush: the lock and the head below are the bound tenant's.
        raise TenantScopeError("cannot record an event for a tenant the session is not bound to")
    # Transaction-scoped: released by the caller's commit or rollback. On SQLite this is the
    # database's write lock, taken before the head is read.
    transaction_lock(session, CHAIN_LOCK_NAMESPACE, tenant_id)
    # Events recorded earlier in this transaction come first in the chain: write them now.
    session.flush()
    now = utcnow()
    previous_hash, event_ids = _chain_head_and_next_ids(session, tenant_id, len(drafts))
    rows: list[dict[str, Any]] = []
    for event_id, draft in zip(event_ids, drafts, strict=True):
        fields: dict[str, Any] = {
            "id": event_id,
            "tenant_id": tenant_id,
            "asset_id": draft.asset_id,
            "source_system": draft.source_system,
            "source_type": draft.source_type,
            "event_category": draft.event_category,
            "event_time": draft.event_time or now,
            "severity": draft.severity,
            "summary": draft.summary[:500],
            # Hashed and inserted in this call: no later change of the caller's dict can come
            # between the two.
            "payload": draft.payload,
            "created_at": now,
            "prev_hash": previous_hash,
        }
        previous_hash = fields["hash"] = event_hash(fields)
        rows.append(fields)
    # One multi-row INSERT, not the unit of work: a group commit's batch is hundreds of rows.
    # Core, so each row's tenant is the one checked above (row-level security checks it too).
    session.connection().execute(_EVENT_TABLE.insert(), rows)
    return rows


def verify_chain(session: Session, *, batch_size: int = VERIFY_BATCH_SIZE) -> ChainVerification:
    """Check the bound tenant's chain, reading it in id order one batch at a time."""
    return verify(_events_in_chain_order(session, batch_size))


def _chain_head_and_next_ids(
    session: Session, tenant_id: int, count: int
) -> tuple[str, list[int]]:
    """The tenant's newest event hash (GENESIS_HASH for a new chain) and `count` fresh event
    ids, ascending; read under the chain lock, so the ids follow the head. On PostgreSQL one
    statement (which the lock and the tenant setting ride on: one round trip)."""
    connection = session.connection()
    newest_hash = (
        select(_EVENT_TABLE.c.hash)
        .where(_EVENT_TABLE.c.tenant_id == tenant_id)
        .order_by(_EVENT_TABLE.c.id.desc())
        .limit(1)
        .scalar_subquery()
        .correlate(None)
    )
    if connection.dialect.name == "postgresql":
        head, ids = connection.execute(
            select(newest_hash, _NEXT_EVENT_IDS), {"count": count}
        ).one()
        return head or GENESIS_HASH, sorted(ids)
    # Ids are global, so this statement reads past the tenant scope on purpose; under the
    # write lock no other transaction can take the same ids.
    head, newest_id = connection.execute(
        select(newest_hash, func.max(_EVENT_TABLE.c.id))
    ).one()
    newest_id = newest_id or 0
    return head or GENESIS_HASH, list(range(newest_id + 1, newest_id + 1 + count))


_NEXT_EVENT_IDS = text(
    "ARRAY(SELECT nextval(pg_get_serial_sequence('blackbox_event', 'id')) "
    "FROM generate_series(1, :count))"
)


def _events_in_chain_order(session: Session, batch_size: int) -> Iterator[RowMapping]:
    # Keyset batches: a tenant's whole history never sits in memory at once.
    last_id = 0
    while True:
        batch = (
            session.execute(
                select(*_CHAIN_COLUMNS)
                .where(BlackBoxEvent.id > last_id)
                .order_by(BlackBoxEvent.id)
                .limit(batch_size)
            )
            .mappings()
            .all()
        )
        yield from batch
        if len(batch) < batch_size:
            return
        last_id = batch[-1]["id"]


def list_events(
    session: Session,
    *,
    category: str | None = None,
    severity: str | None = None,
    asset_id: int | None = None,
    since: datetime | None = None,
    hidden_categories: Collection[str] = (),
    limit: int = 100,
) -> Sequence[BlackBoxEvent]:
    """Newest first by (event_time, id); `since` inclusive; never a `hidden_categories` event."""
    statement = select(BlackBoxEvent).where(
        *_event_filters(
            category=category, severity=severity, asset_id=asset_id, since=since,
            hidden_categories=hidden_categories,
        )
    )
    return session.scalars(statement.order_by(*_NEWEST_FIRST).limit(limit)).all()


# --- the BlackBox screen: asset codes, grouped sensor reads (DESIGN.md §18) ------------------

SENSOR_CATEGORY = "SENSOR"
# What every successful series fetch writes (§6): routine, and the bulk of a busy BlackBox.
READ_SOURCE_TYPE = "TAG_READING"
READ_GROUP_SECONDS = 600
# A grouped screen looks at no more than this many of the newest matching events (see
# `_grouping_window_start`), so its cost does not grow with the tenant's history.
GROUPING_SCAN_EVENTS = 20_000

_NEWEST_FIRST = (BlackBoxEvent.event_time.desc(), BlackBoxEvent.id.desc())


class _EpochBucket(FunctionElement[int]):
    """floor(seconds since 1970 / width) of a UTC timestamp column: the number of its interval."""

    type = Integer()
    inherit_cache = True
    name = "epoch_bucket"


@compiles(_EpochBucket)
def _epoch_bucket_unsupported(element: _EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"no time bucket expression for {compiler.dialect.name}")


@compiles(_EpochBucket, "postgresql")
def _epoch_bucket_postgresql(element: _EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, width = element.clauses
    seconds = compiler.process(extract("epoch", column), **kw)
    # EXTRACT(epoch ...) is numeric with fractions: floor, not a cast (which would round).
    return f"floor({seconds} / {compiler.process(width, **kw)})"


@compiles(_EpochBucket, "sqlite")
def _epoch_bucket_sqlite(element: _EpochBucket, compiler: SQLCompiler, **kw: Any) -> str:
    column, width = element.clauses
    # CAST(strftime('%s', ...) AS INTEGER): whole seconds; integer division floors them (all
    # stored times are after 1970). SQLite has no floor() unless built with its math functions.
    seconds = compiler.process(extract("epoch", column), **kw)
    return f"({seconds} / {compiler.process(width, **kw)})"


def time_bucket(column: ColumnElement[datetime], seconds: int) -> ColumnElement[int]:
    """The `seconds`-wide UTC interval (counted from 1970) a timestamp falls in, in SQL, on
    PostgreSQL and SQLite alike. The width is inlined: one constant, one cached statement."""
    return _EpochBucket(column, literal_column(str(int(seconds))))


def bucket_start(moment: datetime, seconds: int) -> datetime:
    """The start of the interval `time_bucket` puts `moment` in, in Python."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


@dataclass(frozen=True, slots=True)
class EventRow:
    """A row of the BlackBox screen: one event, or one asset's reads of a metric in an interval."""

    event: BlackBoxEvent  # the event itself; for a group, its newest read
    asset_code: str | None
    time: datetime  # for a group, its newest read's
    read_count: int | None = None  # set for a group of reads (1 or more)
    first_time: datetime | None = None  # for a group, its oldest read's

    @property
    def is_group(self) -> bool:
        return self.read_count is not None


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[EventRow]
    has_more: bool  # older matching events exist that no row shows


def list_event_rows(
    session: Session,
    *,
    category: str | None = None,
    severity: str | None = None,
    hidden_categories: Collection[str] = (),
    group_reads: bool = True,
    limit: int = 200,
) -> EventPage:
    """The screen's rows, newest first, each with its asset's code (one query, joined, scoped by
    the tenant hook). With `group_reads`, the SENSOR reads of one asset's metric in one
    10-minute interval are one row counting them; every other event keeps a row of its own."""
    filters = _event_filters(
        category=category, severity=severity, hidden_categories=hidden_categories
    )
    if not group_reads:
        found = session.execute(
            _with_asset_code(select(BlackBoxEvent, Asset.code))
            .where(*filters)
            .order_by(*_NEWEST_FIRST)
            .limit(limit + 1)
        ).all()
        rows = [EventRow(event, code, event.event_time) for event, code in found[:limit]]
        return EventPage(rows, has_more=len(found) > limit)

    # Grouping happens in SQL, over a bounded window: about the newest GROUPING_SCAN_EVENTS
    # matching events (an index range on (tenant_id, event_time)), in whole intervals so no
    # group is counted short. Bounded, because grouping a tenant's whole history costs what
    # the history weighs (300,000 reads on PostgreSQL: 1 s, against 40 ms windowed). In SQL,
    # because grouping in Python would load every read of the window (payload and all) to
    # show 200 rows; the database returns only the rows shown.
    window_start = _grouping_window_start(session, filters)
    in_window = (
        filters if window_start is None else [*filters, BlackBoxEvent.event_time >= window_start]
    )
    is_read = and_(
        BlackBoxEvent.event_category == SENSOR_CATEGORY,
        BlackBoxEvent.source_type == READ_SOURCE_TYPE,
        # A read is always INFO (§6); anything else stands out on a row of its own.
        BlackBoxEvent.severity == "INFO",
    )
    groups = (
        select(
            func.max(BlackBoxEvent.id).label("newest_id"),
            func.count().label("read_count"),
            func.min(BlackBoxEvent.event_time).label("first_time"),
            func.max(BlackBoxEvent.event_time).label("last_time"),
        )
        .where(*in_window, is_read)
        .group_by(
            BlackBoxEvent.asset_id,
            BlackBoxEvent.payload["metric"].as_string(),
            time_bucket(BlackBoxEvent.event_time, READ_GROUP_SECONDS),
        )
        .subquery("read_group")
    )
    found = session.execute(
        _with_asset_code(
            select(
                BlackBoxEvent, Asset.code, groups.c.read_count, groups.c.first_time,
                groups.c.last_time,
            )
        )
        .outerjoin(groups, groups.c.newest_id == BlackBoxEvent.id)
        .where(*in_window, or_(not_(is_read), groups.c.newest_id.is_not(None)))
        .order_by(
            func.coalesce(groups.c.last_time, BlackBoxEvent.event_time).desc(),
            BlackBoxEvent.id.desc(),
        )
        .limit(limit + 1)
    ).all()
    rows = [
        EventRow(event, code, last_time or event.event_time, read_count, first_time)
        for event, code, read_count, first_time, last_time in found[:limit]
    ]
    has_more = len(found) > limit or (
        window_start is not None and _any_before(session, filters, window_start)
    )
    return EventPage(rows, has_more=has_more)


def _event_filters(
    *,
    category: str | None = None,
    severity: str | None = None,
    asset_id: int | None = None,
    since: datetime | None = None,
    hidden_categories: Collection[str] = (),
) -> list[ColumnElement[bool]]:
    """WHERE conditions of a listing; the tenant is the scoping hook's business, not ours."""
    conditions: list[ColumnElement[bool]] = []
    if category:
        conditions.append(BlackBoxEvent.event_category == category)
    if hidden_categories:
        conditions.append(BlackBoxEvent.event_category.not_in(list(hidden_categories)))
    if severity:
        conditions.append(BlackBoxEvent.severity == severity)
    if asset_id is not None:
        conditions.append(BlackBoxEvent.asset_id == asset_id)
    if since is not None:
        conditions.append(BlackBoxEvent.event_time >= since)
    return conditions


def _with_asset_code(statement: Any) -> Any:
    # An outer join: events without an asset (logins, configuration of users) keep their row.
    return statement.outerjoin(Asset, Asset.id == BlackBoxEvent.asset_id)


def _grouping_window_start(
    session: Session, filters: Sequence[ColumnElement[bool]]
) -> datetime | None:
    """Where a grouped screen starts reading: None when at most GROUPING_SCAN_EVENTS events
    match (it reads them all), else the start of the interval holding the newest event past
    them, so the window is whole intervals and no group is counted short."""
    oldest_scanned = session.scalar(
        select(BlackBoxEvent.event_time)
        .where(*filters)
        .order_by(BlackBoxEvent.event_time.desc())
        .offset(GROUPING_SCAN_EVENTS)
        .limit(1)
    )
    if oldest_scanned is None:
        return None
    return bucket_start(oldest_scanned, READ_GROUP_SECONDS)


def _any_before(
    session: Session, filters: Sequence[ColumnElement[bool]], moment: datetime
) -> bool:
    return (
        session.scalar(
            select(BlackBoxEvent.id).where(*filters, BlackBoxEvent.event_time < moment).limit(1)
        )
        is not None
    )


def list_incidents(session: Session, *, limit: int = 200) -> Sequence[BlackBoxIncident]:
    """Open first, then acknowledged, then closed; newest first within each."""
    statement = select(BlackBoxIncident).order_by(
        BlackBoxIncident.closed_at.is_not(None),
        BlackBoxIncident.acknowledged_at.is_not(None),
        BlackBoxIncident.opened_at.desc(),
        BlackBoxIncident.id.desc(),
    )
    return session.scalars(statement.limit(limit)).all()
