"""unpaid_join_flag.decided_by (#17): who decided a flag (an operator acting for the owner is named as such)

Revision ID: d81b0c4e7a25
Revises: c3f1a7d92e64
Create Date: 2026-12-07 06:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'd81b0c4e7a25'
down_revision: str | None = 'c3f1a7d92e64'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('unpaid_join_flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('unpaid_join_flag', schema=None) as batch_op:
        batch_op.drop_column('decided_by')
