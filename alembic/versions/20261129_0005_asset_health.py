"""asset health: ISO 20816-3 classification, scores that may say "no data"

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:10:00.000000

DESIGN.md §15: asset.machine_group (1|2) and asset.foundation (rigid|flexible), nullable with
defaults applied by the health model; asset_ai_score.score becomes nullable (a NULL score is
"no data") — a widening, additive change; an index for an asset's score history.

Additive only: nullable columns, constraints, an index, a NOT NULL dropped. downgrade() raises.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('asset', schema=None) as batch_op:
        batch_op.add_column(sa.Column('machine_group', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('foundation', sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_asset_machine_group'), 'machine_group IN (1, 2)')
        batch_op.create_check_constraint(batch_op.f('ck_asset_foundation'), "foundation IN ('rigid', 'flexible')")
    with op.batch_alter_table('asset_ai_score', schema=None) as batch_op:
        batch_op.alter_column('score', existing_type=sa.Float(), nullable=True)
        batch_op.create_index('ix_asset_ai_score_asset_id_computed_at', ['asset_id', 'computed_at'], unique=False)


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
