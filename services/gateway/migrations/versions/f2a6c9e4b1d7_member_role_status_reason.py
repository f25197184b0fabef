"""member_role.status_reason: why the membership is in its status (the door readmits who left every group)

Revision ID: f2a6c9e4b1d7
Revises: e5b1c8d3a7f2
Create Date: 2026-12-07 06:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'f2a6c9e4b1d7'
down_revision: str | None = 'e5b1c8d3a7f2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('member_role') as batch:
        batch.add_column(sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('member_role') as batch:
        batch.drop_column('status_reason')
