"""cache invalidation: PostgreSQL announces changes to what the caches hold

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 02:15:00.000000

DESIGN.md §17: every process caches principals (tenant, user, API token, browser session) and
signals (asset, integration, mapping) for a few seconds. Triggers send
`NOTIFY optria_invalidate, '<topic>:<tenant id>'` for every change of those rows, whoever makes
it — the app, the CLI or an operator's SQL — and PostgreSQL delivers it at commit (never for a
rolled-back change) to each process's listener. A browser session's activity clock
(`last_seen_at`, written every minute of use) does not fire; new sessions and tokens do not
either (nothing cached can be stale about them). SQLite serves one process and has no triggers
here: the app's own hooks cover it.

Additive only: a function and triggers. downgrade() raises.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, topic, the events that fire)
WATCHED = (
    ('tenant', 'principals', 'UPDATE OR DELETE'),
    ('user', 'principals', 'UPDATE OR DELETE'),
    ('api_token', 'principals', 'UPDATE OR DELETE'),
    ('user_session', 'principals', 'UPDATE OF user_id, tenant_id, revoked_at, expires_at OR DELETE'),
    ('asset', 'signals', 'INSERT OR UPDATE OR DELETE'),
    ('tenant_integration', 'signals', 'INSERT OR UPDATE OR DELETE'),
    ('external_signal_mapping', 'signals', 'INSERT OR UPDATE OR DELETE'),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION optria_announce_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
            tenant text := CASE WHEN TG_TABLE_NAME = 'tenant' THEN changed ->> 'id'
                                ELSE changed ->> 'tenant_id' END;
        BEGIN
            -- Identical notifications of one transaction are delivered once.
            PERFORM pg_notify('optria_invalidate', TG_ARGV[0] || ':' || tenant);
            RETURN NULL;
        END
        $$
        """
    )
    for table, topic, events in WATCHED:
        op.execute(
            f'CREATE OR REPLACE TRIGGER optria_announce_change AFTER {events} ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION optria_announce_change('{topic}')"
        )


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
