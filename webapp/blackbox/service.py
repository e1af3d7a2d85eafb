"""The BlackBox: the tenant's flight recorder. `record_event` is THE one writer of events.

Each tenant's events form a hash chain (webapp.blackbox.chain, DESIGN.md §16). Appending is
serialised per tenant: the writer takes the tenant's chain lock, then reads the head, so two
transactions can never link to the same predecessor. The lock lasts until the caller's
transaction ends, which is why callers commit soon after recording.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, func, select, text
from sqlalchemy.orm import Session

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
    if bound_tenant_id(session) != tenant_id:
        # Checked now, not at flush: the lock and the head below are the bound tenant's.
        raise TenantScopeError("cannot record an event for a tenant the session is not bound to")
    # Transaction-scoped: released by the caller's commit or rollback. On SQLite this is the
    # database's write lock, taken before the head is read.
    transaction_lock(session, CHAIN_LOCK_NAMESPACE, tenant_id)
    # Events recorded earlier in this transaction come first in the chain: write them now.
    session.flush()
    now = utcnow()
    fields: dict[str, Any] = {
        "id": _next_event_id(session),
        "tenant_id": tenant_id,
        "asset_id": asset_id,
        "source_system": source_system,
        "source_type": source_type,
        "event_category": event_category,
        "event_time": event_time or now,
        "severity": severity,
        "summary": summary[:500],
        # Our own copy: a caller changing its dict before the flush would break the hash.
        "payload": copy.deepcopy(payload),
        "created_at": now,
        "prev_hash": _chain_head(session),
    }
    event = BlackBoxEvent(**fields, hash=event_hash(fields))
    session.add(event)
    return event


def verify_chain(session: Session, *, batch_size: int = VERIFY_BATCH_SIZE) -> ChainVerification:
    """Check the bound tenant's chain, reading it in id order one batch at a time."""
    return verify(_events_in_chain_order(session, batch_size))


def _next_event_id(session: Session) -> int:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return connection.execute(
            text("SELECT nextval(pg_get_serial_sequence('blackbox_event', 'id'))")
        ).scalar_one()
    # Ids are global, so this Core statement reads past the tenant scope on purpose; under
    # the write lock no other transaction can take the same id.
    return (connection.execute(select(func.max(_EVENT_TABLE.c.id))).scalar() or 0) + 1


def _chain_head(session: Session) -> str | None:
    """The newest event's hash (the tenant scope applies); GENESIS_HASH for a new chain."""
    newest = session.execute(
        select(BlackBoxEvent.hash).order_by(BlackBoxEvent.id.desc()).limit(1)
    ).first()
    return GENESIS_HASH if newest is None else newest.hash


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
    limit: int = 100,
) -> Sequence[BlackBoxEvent]:
    """Newest first by (event_time, id); `since` inclusive."""
    statement = select(BlackBoxEvent)
    if category:
        statement = statement.where(BlackBoxEvent.event_category == category)
    if severity:
        statement = statement.where(BlackBoxEvent.severity == severity)
    if asset_id is not None:
        statement = statement.where(BlackBoxEvent.asset_id == asset_id)
    if since is not None:
        statement = statement.where(BlackBoxEvent.event_time >= since)
    statement = statement.order_by(BlackBoxEvent.event_time.desc(), BlackBoxEvent.id.desc())
    return session.scalars(statement.limit(limit)).all()


def list_incidents(session: Session, *, limit: int = 200) -> Sequence[BlackBoxIncident]:
    """Open first, then acknowledged, then closed; newest first within each."""
    statement = select(BlackBoxIncident).order_by(
        BlackBoxIncident.closed_at.is_not(None),
        BlackBoxIncident.acknowledged_at.is_not(None),
        BlackBoxIncident.opened_at.desc(),
        BlackBoxIncident.id.desc(),
    )
    return session.scalars(statement.limit(limit)).all()
