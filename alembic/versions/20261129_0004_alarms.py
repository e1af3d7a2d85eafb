"""alarms: limits and alarm occurrences

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:10:00.000000

DESIGN.md §14: the alarm_limit table (tenant-owned: row-level security like every other), and
the alarm columns of blackbox_incident (an occurrence is an incident), with a partial unique
index allowing one not-closed occurrence per limit. The app role may update the incident
columns the alarm lifecycle moves — and nothing else of the BlackBox — and may never delete a
limit (deactivate it instead).

Additive only: a new table, nullable columns, constraints, an index, grants. downgrade() raises.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import webapp.db
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_MATCHES = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::int"
# What acknowledging, clearing, re-activating and closing an occurrence changes.
INCIDENT_LIFECYCLE_COLUMNS = (
    'status', 'acknowledged_at', 'acknowledged_by', 'cleared_at', 'closed_at',
    'first_event_id', 'last_event_id', 'event_count',
)
OPEN_ALARM = "closed_at IS NULL AND alarm_limit_id IS NOT NULL"


def upgrade() -> None:
    op.create_table('alarm_limit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mapping_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('deadband', sa.Float(), nullable=False),
    sa.Column('on_delay_seconds', sa.Integer(), nullable=False),
    sa.Column('off_delay_seconds', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('out_of_service', sa.Boolean(), nullable=False),
    sa.Column('shelved_until', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('shelve_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("deadband >= 0", name=op.f('ck_alarm_limit_deadband')),
    sa.CheckConstraint("level IN ('hihi', 'hi', 'lo', 'lolo')", name=op.f('ck_alarm_limit_level')),
    sa.CheckConstraint("on_delay_seconds BETWEEN 0 AND 3600 AND off_delay_seconds BETWEEN 0 AND 3600", name=op.f('ck_alarm_limit_delays')),
    sa.CheckConstraint("priority IN ('high', 'medium', 'low')", name=op.f('ck_alarm_limit_priority')),
    sa.ForeignKeyConstraint(['mapping_id'], ['external_signal_mapping.id'], name=op.f('fk_alarm_limit_mapping_id_external_signal_mapping')),
    sa.ForeignKeyConstraint(['tenant_id', 'mapping_id'], ['external_signal_mapping.tenant_id', 'external_signal_mapping.id'], name='fk_alarm_limit_mapping_id_same_tenant'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_alarm_limit_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alarm_limit')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_alarm_limit_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'mapping_id', 'level', name=op.f('uq_alarm_limit_tenant_id_mapping_id_level'))
    )
    with op.batch_alter_table('alarm_limit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alarm_limit_mapping_id'), ['mapping_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alarm_limit_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('blackbox_incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alarm_limit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('trigger_value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('cleared_at', webapp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_blackbox_incident_alarm_limit_id'), ['alarm_limit_id'], unique=False)
        batch_op.create_index('uq_blackbox_incident_open_alarm', ['alarm_limit_id'], unique=True, postgresql_where=sa.text(OPEN_ALARM), sqlite_where=sa.text(OPEN_ALARM))
        batch_op.create_foreign_key(batch_op.f('fk_blackbox_incident_alarm_limit_id_alarm_limit'), 'alarm_limit', ['alarm_limit_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_blackbox_incident_acknowledged_by_user'), 'user', ['acknowledged_by'], ['id'])
        batch_op.create_foreign_key('fk_blackbox_incident_alarm_limit_id_same_tenant', 'alarm_limit', ['tenant_id', 'alarm_limit_id'], ['tenant_id', 'id'])
        batch_op.create_foreign_key('fk_blackbox_incident_acknowledged_by_same_tenant', 'user', ['tenant_id', 'acknowledged_by'], ['tenant_id', 'id'])

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE alarm_limit ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE alarm_limit FORCE ROW LEVEL SECURITY')
        op.execute(
            f'CREATE POLICY tenant_isolation ON alarm_limit '
            f'USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})'
        )
        op.execute('GRANT SELECT, INSERT, UPDATE ON alarm_limit TO optria_app')
        op.execute('GRANT USAGE, SELECT ON SEQUENCE alarm_limit_id_seq TO optria_app')
        op.execute(
            f'GRANT UPDATE ({", ".join(INCIDENT_LIFECYCLE_COLUMNS)}) ON blackbox_incident '
            'TO optria_app'
        )


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
