"""login codes remember the community whose connector delivered them (community-scoped tokens)

Revision ID: b3d5f0a1c2e4
Revises: 7c07c77e7205
Create Date: 2026-12-07 04:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import sqlmodel


revision: str = 'b3d5f0a1c2e4'
down_revision: str | None = '7c07c77e7205'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('login_code', schema=None) as batch_op:
        batch_op.drop_column('community_id')
