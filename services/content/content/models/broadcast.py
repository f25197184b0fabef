"""Broadcasts (多群同步): one message for many groups, tracked per group."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field

from content.models.base import ContentModel, json_column, new_id, seq_column
from qunzhu_common.db.types import AwareDateTime


class Broadcast(ContentModel, table=True):
    __tablename__ = "broadcast"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    community_id: str = Field(max_length=100, index=True)
    action: str = Field(max_length=20)  # send_message | announce | relay
    text: str = Field(max_length=20000)
    mention_all: bool = False
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    source: str = Field(max_length=20)  # manual | schedule | session | relay | ritual | digest
    source_ref: str | None = Field(default=None, max_length=100)
    # A fired occurrence makes at most one broadcast, whatever happens to the scheduler.
    occurrence_id: str | None = Field(default=None, max_length=36, unique=True)
    relay_of_message_id: str | None = Field(default=None, max_length=200)
    origin_sent_at: datetime | None = Field(default=None, sa_type=AwareDateTime, description="Relayed message's time.")
    # sending | delivered (every group confirmed) | partially_delivered | failed (see broadcasts.service)
    status: str = Field(default="sending", max_length=20)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=AwareDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=AwareDateTime)  # when every group answered


class BroadcastDelivery(ContentModel, table=True):
    """One group's copy of a broadcast. `seq` is the global fan-out order (stable, insertion order)."""

    __tablename__ = "broadcast_delivery"
    __table_args__ = (Index("ix_broadcast_delivery_status_next_attempt_at", "status", "next_attempt_at"),)

    seq: int | None = Field(default=None, sa_column=seq_column())
    broadcast_id: str = Field(max_length=36, foreign_key="broadcast.id", index=True)
    community_id: str = Field(max_length=100)
    group_id: str = Field(max_length=200)
    platform: str = Field(max_length=20)
    position: int
    status: str = Field(default="pending", max_length=20)  # pending | sent | confirmed | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=AwareDateTime)  # pending: when to send; sent: when to give up
    action_id: str | None = Field(default=None, max_length=200, unique=True)
    last_error: str = Field(default="", max_length=2000)
    sent_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
