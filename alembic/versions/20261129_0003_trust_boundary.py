"""trust boundary: tenant keys, idle sessions, sealed integration secrets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 17:40:00.000000

DESIGN.md §16:
- Tenant keys: parents get UNIQUE (tenant_id, id) and children composite foreign keys
  (tenant_id, <ref>) → parent (tenant_id, id), so no row can point into another tenant. The
  single-column keys of 0001 stay (additive only).
- user_session.last_seen_at (nullable) for the idle timeout.
- Integration secrets already stored in clear are sealed with the deployment's key.

Additive only: new constraints, a nullable column, values sealed in place. downgrade() raises.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import webapp.db
from alembic import context, op
from webapp.config import get_settings
from webapp.integrations.secrets import SecretVault

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, parent): frozen with this revision.
TENANT_PARENTS = ('asset', 'tenant_integration', 'external_signal_mapping', 'user')
TENANT_REFERENCES = (
    ('asset', 'parent_id', 'asset'),
    ('asset_ai_score', 'asset_id', 'asset'),
    ('external_signal_mapping', 'asset_id', 'asset'),
    ('external_signal_mapping', 'integration_id', 'tenant_integration'),
    ('api_token', 'user_id', 'user'),
    ('user_session', 'user_id', 'user'),
    ('blackbox_event', 'asset_id', 'asset'),
    ('blackbox_incident', 'asset_id', 'asset'),
    ('blackbox_incident', 'first_event_id', 'blackbox_event'),
    ('blackbox_incident', 'last_event_id', 'blackbox_event'),
)

tenant_integration = sa.table(
    'tenant_integration',
    sa.column('id', sa.Integer()),
    sa.column('tenant_id', sa.Integer()),
    sa.column('config', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')),
)
tenant = sa.table('tenant', sa.column('id', sa.Integer()))


def upgrade() -> None:
    # First: without a key it fails here, before any schema change.
    _seal_stored_secrets(op.get_bind())
    for table in TENANT_PARENTS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_tenant_id_id'), ['tenant_id', 'id'])
    for table, column, parent in TENANT_REFERENCES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f'fk_{table}_{column}_same_tenant', parent, ['tenant_id', column], ['tenant_id', 'id']
            )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', webapp.db.UTCDateTime(timezone=True), nullable=True))


def _seal_stored_secrets(bind: sa.Connection) -> None:
    """Seal, tenant by tenant (FORCE ROW LEVEL SECURITY holds for a non-superuser owner), every
    secret still stored in clear. Needs the key only if there is something to seal."""
    settings = context.config.attributes.get('settings') or get_settings()
    vault = SecretVault.from_settings(settings)
    for tenant_id in bind.execute(sa.select(tenant.c.id).order_by(tenant.c.id)).scalars().all():
        if bind.dialect.name == 'postgresql':
            bind.execute(
                sa.text("SELECT set_config('app.tenant_id', :tenant_id, true)"),
                {'tenant_id': str(tenant_id)},
            )
        rows = bind.execute(
            sa.select(tenant_integration.c.id, tenant_integration.c.config)
            .where(tenant_integration.c.tenant_id == tenant_id)
        ).all()
        for integration_id, config in rows:
            sealed = vault.seal(config)
            if sealed != config:
                bind.execute(
                    sa.update(tenant_integration)
                    .where(tenant_integration.c.id == integration_id)
                    .values(config=sealed)
                )
    if bind.dialect.name == 'postgresql':
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
