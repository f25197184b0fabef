"""the door's projection: a community's entry and chat join policies, its groups' paid flag (#17)

Revision ID: e5b1c8d3a7f2
Revises: d7e2a9c4f1b3
Create Date: 2026-12-07 06:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from qunzhu_common.db.types import AwareDateTime

revision: str = 'e5b1c8d3a7f2'
down_revision: str | None = 'd7e2a9c4f1b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'community_door',
        sa.Column('community_id', _text(100), nullable=False),
        sa.Column('entry_policies', sa.JSON(), nullable=False),
        sa.Column('chat_join_policy', _text(10), nullable=True),
        sa.Column('status', _text(20), nullable=False),
        sa.Column('changed_at', AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('community_id', name=op.f('pk_community_door')),
    )
    op.create_table(
        'door_group',
        sa.Column('group_id', _text(200), nullable=False),
        sa.Column('community_id', _text(100), nullable=False),
        sa.Column('paid', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('changed_at', AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('group_id', name=op.f('pk_door_group')),
    )


def downgrade() -> None:
    op.drop_table('door_group')
    op.drop_table('community_door')
