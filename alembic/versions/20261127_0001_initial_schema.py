"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 14:02:16.121807

Additive only: new tables, nullable columns, indexes. downgrade() raises: we roll forward.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import webapp.db
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('attempted_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_client_attempted_at', ['client_address', 'attempted_at'], unique=False)
        batch_op.create_index('ix_login_failure_email_attempted_at', ['email', 'attempted_at'], unique=False)

    op.create_table('tenant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant')),
    sa.UniqueConstraint('code', name=op.f('uq_tenant_code'))
    )
    op.create_table('asset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('asset_type', sa.String(length=64), nullable=False),
    sa.Column('criticality', sa.String(length=16), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['asset.id'], name=op.f('fk_asset_parent_id_asset')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_asset_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_asset_tenant_id_code'))
    )
    with op.batch_alter_table('asset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_asset_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('tenant_integration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_tenant_integration_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_integration'))
    )
    with op.batch_alter_table('tenant_integration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tenant_integration_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_user_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email'))
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_api_token_tenant_id_tenant')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_api_token_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_token_user_id'), ['user_id'], unique=False)

    op.create_table('asset_ai_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('computed_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('score >= 0 AND score <= 100', name=op.f('ck_asset_ai_score_score_range')),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_asset_ai_score_asset_id_asset')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_asset_ai_score_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_asset_ai_score'))
    )
    with op.batch_alter_table('asset_ai_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_ai_score_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_asset_ai_score_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('blackbox_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('source_system', sa.String(length=64), nullable=False),
    sa.Column('source_type', sa.String(length=64), nullable=False),
    sa.Column('event_category', sa.String(length=32), nullable=False),
    sa.Column('event_time', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_blackbox_event_asset_id_asset')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_blackbox_event_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blackbox_event'))
    )
    with op.batch_alter_table('blackbox_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blackbox_event_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_blackbox_event_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_blackbox_event_tenant_id_event_time', ['tenant_id', 'event_time'], unique=False)

    op.create_table('external_signal_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('internal_metric_name', sa.String(length=64), nullable=False),
    sa.Column('external_tag', sa.String(length=512), nullable=False),
    sa.Column('scaling_factor', sa.Float(), nullable=False),
    sa.Column('offset_value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_external_signal_mapping_asset_id_asset')),
    sa.ForeignKeyConstraint(['integration_id'], ['tenant_integration.id'], name=op.f('fk_external_signal_mapping_integration_id_tenant_integration')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_external_signal_mapping_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_signal_mapping')),
    sa.UniqueConstraint('tenant_id', 'asset_id', 'internal_metric_name', name=op.f('uq_external_signal_mapping_tenant_id_asset_id_internal_metric_name'))
    )
    with op.batch_alter_table('external_signal_mapping', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_external_signal_mapping_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_external_signal_mapping_integration_id'), ['integration_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_external_signal_mapping_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_user_session_tenant_id_tenant')),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('session_hash', name=op.f('uq_user_session_session_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    op.create_table('blackbox_incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', webapp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', webapp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_event_id', sa.Integer(), nullable=True),
    sa.Column('last_event_id', sa.Integer(), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name=op.f('fk_blackbox_incident_asset_id_asset')),
    sa.ForeignKeyConstraint(['first_event_id'], ['blackbox_event.id'], name=op.f('fk_blackbox_incident_first_event_id_blackbox_event')),
    sa.ForeignKeyConstraint(['last_event_id'], ['blackbox_event.id'], name=op.f('fk_blackbox_incident_last_event_id_blackbox_event')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_blackbox_incident_tenant_id_tenant')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blackbox_incident'))
    )
    with op.batch_alter_table('blackbox_incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blackbox_incident_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_blackbox_incident_tenant_id'), ['tenant_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _row_level_security()



# Frozen with this revision: later tables get their policies in their own migration.
TENANT_OWNED_TABLES = (
    "user",
    "api_token",
    "user_session",
    "asset",
    "asset_ai_score",
    "tenant_integration",
    "external_signal_mapping",
    "blackbox_event",
    "blackbox_incident",
)
# Read before a tenant is known (login, session and token lookups), through the AUTH_LOOKUP path.
AUTH_LOOKUP_TABLES = ("user", "user_session", "api_token")
APP_TABLES = ("tenant", "login_failure", *TENANT_OWNED_TABLES)
TENANT_MATCHES = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::int"


def _row_level_security() -> None:
    """DESIGN.md §4: RLS on every tenant-owned table, enforced on the NOBYPASSRLS app role."""
    op.execute(
        """
        DO $$
        BEGIN
            CREATE ROLE optria_app NOLOGIN NOBYPASSRLS NOSUPERUSER;
        -- The role is cluster-wide: a concurrent migration of another database may create it
        -- first, which surfaces as unique_violation rather than duplicate_object.
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$
        """
    )
    # The connecting role must be able to SET ROLE optria_app (a superuser already can).
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT optria_app TO %I', current_user);
            END IF;
        END
        $$
        """
    )
    op.execute("GRANT USAGE ON SCHEMA public TO optria_app")
    for table in APP_TABLES:
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO optria_app')
        op.execute(f'GRANT USAGE, SELECT ON SEQUENCE "{table}_id_seq" TO optria_app')
    for table in TENANT_OWNED_TABLES:
        op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        op.execute(
            f'CREATE POLICY tenant_isolation ON "{table}" '
            f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        )
    for table in AUTH_LOOKUP_TABLES:
        op.execute(
            f'CREATE POLICY auth_lookup ON "{table}" FOR SELECT '
            "USING (current_setting('app.auth_lookup', true) = 'on')"
        )


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
