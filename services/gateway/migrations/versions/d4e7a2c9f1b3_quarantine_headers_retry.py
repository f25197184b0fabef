"""quarantined_webhook keeps the signature headers (replay re-verifies) and marks retry-requested rows

Revision ID: d4e7a2c9f1b3
Revises: 965b8c99bd08
Create Date: 2026-12-07 06:20:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e7a2c9f1b3'
down_revision: str | None = '965b8c99bd08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('quarantined_webhook') as batch:
        batch.add_column(sa.Column('headers', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('retry_requested', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('quarantined_webhook') as batch:
        batch.drop_column('retry_requested')
        batch.drop_column('headers')
