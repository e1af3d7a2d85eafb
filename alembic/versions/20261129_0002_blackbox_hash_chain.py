"""blackbox hash chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:12:40.518233

DESIGN.md §16, tamper-evident BlackBox: `prev_hash` and `hash` on blackbox_event,
UNIQUE (tenant_id, id), every existing event chained in id order per tenant, and (PostgreSQL)
the application role may only append BlackBox rows, never edit or delete them.

Additive only: new nullable columns, a constraint. downgrade() raises: we roll forward.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import webapp.db
from alembic import op
from webapp.blackbox.chain import GENESIS_HASH, HASHED_FIELDS, event_hash

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_SIZE = 1000

# The columns as of this revision (not the model, which may grow later).
blackbox_event = sa.table(
    'blackbox_event',
    sa.column('id', sa.Integer()),
    sa.column('tenant_id', sa.Integer()),
    sa.column('asset_id', sa.Integer()),
    sa.column('source_system', sa.String()),
    sa.column('source_type', sa.String()),
    sa.column('event_category', sa.String()),
    sa.column('event_time', webapp.db.UTCDateTime()),
    sa.column('severity', sa.String()),
    sa.column('summary', sa.String()),
    sa.column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')),
    sa.column('created_at', webapp.db.UTCDateTime()),
    sa.column('prev_hash', sa.String()),
    sa.column('hash', sa.String()),
)
tenant = sa.table('tenant', sa.column('id', sa.Integer()))


def upgrade() -> None:
    bind = op.get_bind()
    # On SQLite this rebuilds the table; env.py switches foreign keys off for the run (the
    # incidents point at events) and checks them all at the end.
    with op.batch_alter_table('blackbox_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_blackbox_event_tenant_id_id'), ['tenant_id', 'id'])

    _chain_existing_events(bind)

    if bind.dialect.name == 'postgresql':
        # Append-only for the app; later revisions grant UPDATE on the incident lifecycle
        # columns (acknowledged_at, closed_at, ...) when alarms need them.
        op.execute('REVOKE UPDATE, DELETE ON blackbox_event, blackbox_incident FROM optria_app')


def _chain_existing_events(bind: sa.Connection) -> None:
    """Link every tenant's events in id order, with the application's own hash function."""
    tenant_ids = bind.execute(sa.select(tenant.c.id).order_by(tenant.c.id)).scalars().all()
    store = (
        sa.update(blackbox_event)
        .where(blackbox_event.c.id == sa.bindparam('event_id'))
        .values(prev_hash=sa.bindparam('new_prev_hash'), hash=sa.bindparam('new_hash'))
    )
    for tenant_id in tenant_ids:
        if bind.dialect.name == 'postgresql':
            # FORCE ROW LEVEL SECURITY holds for a non-superuser owner too: show it the tenant.
            bind.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant_id, true)"),
                {'tenant_id': str(tenant_id)},
            )
        prev_hash = GENESIS_HASH
        for batch in _event_batches(bind, tenant_id):
            links = []
            for row in batch:
                new_hash = event_hash({**row, 'prev_hash': prev_hash})
                links.append({'event_id': row['id'], 'new_prev_hash': prev_hash, 'new_hash': new_hash})
                prev_hash = new_hash
            bind.execute(store, links)
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def _event_batches(bind: sa.Connection, tenant_id: int) -> Iterator[list[dict[str, Any]]]:
    columns = [blackbox_event.c[name] for name in HASHED_FIELDS if name != 'prev_hash']
    last_id = 0
    while True:
        batch = [
            dict(row)
            for row in bind.execute(
                sa.select(*columns)
                .where(blackbox_event.c.tenant_id == tenant_id, blackbox_event.c.id > last_id)
                .order_by(blackbox_event.c.id)
                .limit(BATCH_SIZE)
            ).mappings()
        ]
        if not batch:
            return
        yield batch
        last_id = batch[-1]['id']


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
