"""The role projection: membership.events.v1 → member_role, read by authorization on every route.

Member events carry the whole membership, so the newest `changed_at` wins and an older event arriving
late changes nothing. The owner named by community.created (and community.updated) holds the owner role.
The same events, and group.registered / group.updated, feed the door's projection (community_door,
door_group): what a QQ join request needs to be decided — and replayed — without asking membership.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import CommunityDoor, DoorGroup, MemberRole
from qunzhu_common.db.upsert import upsert
from qunzhu_common.events.contracts.membership import (
    MEMBERSHIP_SPECS,
    CommunityCreated,
    GroupChanged,
    MemberChanged,
)
from qunzhu_common.inbox import Event, Handler


async def _project(
    session: AsyncSession, *, community_id: str, member_id: str, role: str, status: str, changed_at: datetime,
    status_reason: str = "",
) -> None:
    current = await session.get(MemberRole, (community_id, member_id))
    if current is not None and current.changed_at > changed_at:
        return
    await upsert(session, MemberRole.__table__, dict(  # type: ignore[attr-defined]
        community_id=community_id, member_id=member_id, role=role, status=status, changed_at=changed_at,
        status_reason=status_reason[:500],
    ), key=("community_id", "member_id"))


async def _project_door(session: AsyncSession, *, data: Any, status: str, changed_at: datetime) -> None:
    current = await session.get(CommunityDoor, data.community_id)
    if current is not None and current.changed_at > changed_at:
        return
    await upsert(session, CommunityDoor.__table__, dict(  # type: ignore[attr-defined]
        community_id=data.community_id, entry_policies=list(data.entry_policies),
        chat_join_policy=getattr(data, "chat_join_policy", None), status=status, changed_at=changed_at,
    ), key=("community_id",))


async def on_group_changed(session: AsyncSession, event: Event[GroupChanged]) -> None:
    data = event.data
    current = await session.get(DoorGroup, data.group_id)
    if current is not None and current.changed_at > data.changed_at:
        return
    await upsert(session, DoorGroup.__table__, dict(  # type: ignore[attr-defined]
        group_id=data.group_id, community_id=data.community_id, paid=data.paid, active=data.active,
        changed_at=data.changed_at,
    ), key=("group_id",))


async def on_community_created(session: AsyncSession, event: Event[CommunityCreated]) -> None:
    data = event.data
    await _project(session, community_id=data.community_id, member_id=data.owner_id, role="owner",
                   status="active", changed_at=data.created_at)
    await _project_door(session, data=data, status="active", changed_at=data.created_at)


async def on_community_changed(session: AsyncSession, event: Event[Any]) -> None:
    """community.updated / community.dissolved carry the whole community, owner included."""
    data = event.data
    status = "active" if getattr(data, "status", "active") == "active" else "dissolved"
    changed_at = getattr(data, "changed_at", event.envelope.occurred_at)
    await _project(session, community_id=data.community_id, member_id=data.owner_id, role="owner",
                   status=status, changed_at=changed_at)
    await _project_door(session, data=data, status=status, changed_at=changed_at)


async def on_member_changed(session: AsyncSession, event: Event[MemberChanged]) -> None:
    data = event.data
    await _project(session, community_id=data.community_id, member_id=data.member_id, role=data.role,
                   status=data.status, changed_at=data.changed_at, status_reason=data.reason)


def _handlers() -> dict[str, Handler]:
    handlers: dict[str, Handler] = {"community.created": on_community_created}
    for spec in MEMBERSHIP_SPECS:
        if spec.payload is MemberChanged:  # every member.* event, whatever membership adds later
            handlers[spec.type] = on_member_changed
        elif spec.type in ("community.updated", "community.dissolved"):
            handlers[spec.type] = on_community_changed
        elif spec.payload is GroupChanged:
            handlers[spec.type] = on_group_changed
    return handlers


HANDLERS = _handlers()
