"""Tables of the chat directory (imported by gateway.app and by the migrations' env, so they share the
gateway's metadata without growing gateway/models.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from gateway.models import GatewayModel
from qunzhu_common.db.types import AwareDateTime
from qunzhu_common.timeutil import utcnow


class ChatMessageSeen(GatewayModel, table=True):
    """A platform message already turned into events, by (group, platform message id); the group id
    carries the platform (`telegram:-100…`). A copy re-sent under another delivery id (a bridge
    re-posting with a new webhook-id) finds its key here and has no second effect."""

    __tablename__ = "chat_message_seen"

    group_id: str = Field(primary_key=True, max_length=200)
    message_id: str = Field(primary_key=True, max_length=200)
    delivery_id: str = Field(max_length=200, description="The delivery that carried it first.")
    received_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class ChatName(GatewayModel, table=True):
    """The name the platform last reported for a person in a group (group card / nickname / display
    name) and their platform username, learned from every chat event that carries one."""

    __tablename__ = "chat_name"
    __table_args__ = (
        Index("ix_chat_name_username", "community_id", "username_key"),
        Index("ix_chat_name_display", "community_id", "display_key"),
    )

    group_id: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=200)
    community_id: str = Field(max_length=100)
    display_name: str = Field(default="", max_length=200)
    username: str = Field(default="", max_length=200, description="Telegram @username; '' when none.")
    display_key: str = Field(default="", max_length=200, description="display_name, case-folded.")
    username_key: str = Field(default="", max_length=200, description="username, case-folded.")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)


class ChatPendingMention(GatewayModel, table=True):
    """An @-name nobody in the community carried yet; resolved (and deleted) when the name is seen."""

    __tablename__ = "chat_pending_mention"
    __table_args__ = (Index("ix_chat_pending_mention_name", "community_id", "name_key"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: str = Field(max_length=100)
    group_id: str = Field(max_length=200)
    message_id: str = Field(max_length=200)
    sender_id: str = Field(max_length=200)
    name: str = Field(max_length=200, description="As written, without the @.")
    name_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime)
