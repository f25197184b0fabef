"""chat directory: message-level dedupe keys, names per group, pending @-mentions by name (#17)

Revision ID: d7e2a9c4f1b3
Revises: d4e7a2c9f1b3
Create Date: 2026-12-07 06:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import sqlmodel

from qunzhu_common.db.types import AwareDateTime


revision: str = 'd7e2a9c4f1b3'
down_revision: str | None = 'd4e7a2c9f1b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'chat_message_seen',
        sa.Column('group_id', _text(200), nullable=False),
        sa.Column('message_id', _text(200), nullable=False),
        sa.Column('delivery_id', _text(200), nullable=False),
        sa.Column('received_at', AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('group_id', 'message_id', name=op.f('pk_chat_message_seen')),
    )
    op.create_table(
        'chat_name',
        sa.Column('group_id', _text(200), nullable=False),
        sa.Column('person_id', _text(200), nullable=False),
        sa.Column('community_id', _text(100), nullable=False),
        sa.Column('display_name', _text(200), nullable=False),
        sa.Column('username', _text(200), nullable=False),
        sa.Column('display_key', _text(200), nullable=False),
        sa.Column('username_key', _text(200), nullable=False),
        sa.Column('updated_at', AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('group_id', 'person_id', name=op.f('pk_chat_name')),
    )
    op.create_index('ix_chat_name_username', 'chat_name', ['community_id', 'username_key'], unique=False)
    op.create_index('ix_chat_name_display', 'chat_name', ['community_id', 'display_key'], unique=False)
    op.create_table(
        'chat_pending_mention',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', _text(100), nullable=False),
        sa.Column('group_id', _text(200), nullable=False),
        sa.Column('message_id', _text(200), nullable=False),
        sa.Column('sender_id', _text(200), nullable=False),
        sa.Column('name', _text(200), nullable=False),
        sa.Column('name_key', _text(200), nullable=False),
        sa.Column('created_at', AwareDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_pending_mention')),
    )
    op.create_index('ix_chat_pending_mention_name', 'chat_pending_mention', ['community_id', 'name_key'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_chat_pending_mention_name', table_name='chat_pending_mention')
    op.drop_table('chat_pending_mention')
    op.drop_index('ix_chat_name_display', table_name='chat_name')
    op.drop_index('ix_chat_name_username', table_name='chat_name')
    op.drop_table('chat_name')
    op.drop_table('chat_message_seen')
