"""mapping ranges: each signal's engineering range for its trend axis

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:30:00.000000

DESIGN.md §18: external_signal_mapping.range_low and range_high (nullable floats, scaled
units); unset ends come from the alarm limits or the 7-day history. A check keeps a stored
pair in order (low < high); a NULL end passes.

Additive only: nullable columns and a check constraint. downgrade() raises.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('external_signal_mapping', schema=None) as batch_op:
        batch_op.add_column(sa.Column('range_low', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('range_high', sa.Float(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f('ck_external_signal_mapping_range_order'), 'range_low < range_high'
        )


def downgrade() -> None:
    raise RuntimeError("migrations are additive only; roll forward with a new revision")
