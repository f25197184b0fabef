"""chat join and leave policies (#17): who arrives from the chat, and who left every group

Revision ID: c3f1a7d92e64
Revises: a8abc3932e25
Create Date: 2026-12-07 06:05:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3f1a7d92e64'
down_revision: str | None = 'a8abc3932e25'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('community', schema=None) as batch_op:
        # NULL: the default for the community's entry policy (admit when free, else flag).
        batch_op.add_column(sa.Column('chat_join_policy', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('chat_leave_policy', sa.String(length=10), nullable=False,
                                      server_default='keep'))


def downgrade() -> None:
    with op.batch_alter_table('community', schema=None) as batch_op:
        batch_op.drop_column('chat_leave_policy')
        batch_op.drop_column('chat_join_policy')
