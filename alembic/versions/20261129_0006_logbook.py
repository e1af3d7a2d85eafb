"""shift logbook: append-only entries, shift start times

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:30:00.000000

DESIGN.md §18: the logbook_entry table (tenant-owned: row-level security like every other; its
author, asset and alarm are tenant keys, §16, so blackbox_incident becomes a tenant parent with
UNIQUE (tenant_id, id)), and tenant.shift_starts ("06:00,18:00" on the plant's clock). The app
role may read and add entries, never edit or delete them: a correction is a new entry.

Additive only: a new table, a nullable column with a default, a constraint, indexes, grants.
downgrade() raises.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import webapp.db
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_MATCHES = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::int"
DEFAULT_SHIFT_STARTS = '06:00,18:00'


def upgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shift_starts', sa.String(length=64), nullable=True, server_default=DEFAULT_SHIFT_STARTS))

    # On SQLite this rebuilds the table, keeping its partial unique index (one open occurrence
    # per limit); env.py switches foreign keys off for the run and checks them all at the end.
    with op.batch_alter_table('blackbox_incident', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_blackbox_incident_tenant_id_id'), ['tenant_id', 'id'])

    op.create_table('logbook_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('text', sa.String(length=4000), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alarm_id'], ['blackbox_incident.id'], name=op.f('fk_logbook_entry_alarm_id_blackbox_incident')),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_logbook_entry_asset_id_asset')),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], name=op.f('fk_logbook_entry_author_id_user')),
    sa.ForeignKeyConstraint(['tenant_id', 'alarm_id'], ['blackbox_incident.tenant_id', 'blackbox_incident.id'], name='fk_logbook_entry_alarm_id_same_tenant'),
    sa.ForeignKeyConstraint(['tenant_id', 'asset_id'], ['asset.tenant_id', 'asset.id'], name='fk_logbook_entry_asset_id_same_tenant'),
    sa.ForeignKeyConstraint(['tenant_id', 'author_id'], ['user.tenant_id', 'user.id'], name='fk_logbook_entry_author_id_same_tenant'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_logbook_entry_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logbook_entry'))
    )
    with op.batch_alter_table('logbook_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logbook_entry_alarm_id'), ['alarm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logbook_entry_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logbook_entry_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logbook_entry_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_logbook_entry_tenant_id_created_at', ['tenant_id', 'created_at'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE logbook_entry ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE logbook_entry FORCE ROW LEVEL SECURITY')
        op.execute(
            f'CREATE POLICY tenant_isolation ON logbook_entry '
            f'USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})'
        )
        # Append-only for the app, like the BlackBox (0002): read and add, nothing else.
        op.execute('GRANT SELECT, INSERT ON logbook_entry TO optria_app')
        op.execute('REVOKE UPDATE, DELETE ON logbook_entry FROM optria_app')
        op.execute('GRANT USAGE, SELECT ON SEQUENCE logbook_entry_id_seq TO optria_app')


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
