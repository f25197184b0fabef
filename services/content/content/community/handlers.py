"""Projection of membership.events.v1: communities and who holds which role (who may author)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from content.community.service import record_presence
from content.context import ContentContext
from content.models import ChatGroup, CommunityCopy, CommunityMember
from qunzhu_common.db.bulk import bulk_insert
from qunzhu_common.db.upsert import insert_many_if_absent
from qunzhu_common.events.contracts.chat import ChatMemberJoined, ChatMemberLeft
from qunzhu_common.events.contracts.membership import MEMBERSHIP_SPECS, CommunityCreated, MemberChanged
from qunzhu_common.inbox import Event
from qunzhu_common.unit_of_work import defer, deferrable, take_deferred

_COPY = CommunityCopy.__table__  # type: ignore[attr-defined]
_MEMBER = CommunityMember.__table__  # type: ignore[attr-defined]
_CREATED = "content.community.created"  # the rows of a batch's community.created events, written at its end


async def _write_created(session: AsyncSession) -> None:
    """The communities of a consumed batch (and their owners) in two multi-row statements."""
    copies, owners = session.info.pop(_CREATED, ([], []))
    if not copies:
        return
    # A plain insert on purpose: a second application of the event would violate the primary key.
    # The inbox, not the handler, makes redelivery harmless.
    await bulk_insert(session, _COPY, copies, fallback=insert(_COPY))
    # The owner may author from the start, before any member.* event names them. A newer member.*
    # event may have arrived first: never overwrite it (and no read-before-write).
    await insert_many_if_absent(session, _MEMBER, owners, returning="member_id")


async def written_communities(session: AsyncSession) -> None:
    """Write the communities queued by this transaction now: a handler about to read or write
    community_member rows must see the owners of the communities created earlier in its batch."""
    work = take_deferred(session, _CREATED)
    if work is not None:
        await work(session)


def community_handlers(ctx: ContentContext) -> dict:
    async def on_community_created(session: AsyncSession, event: Event[CommunityCreated]) -> None:
        # Core rows, not ORM objects, queued for the batch's end (unit_of_work): per event only two dicts.
        data = event.data
        copies, owners = session.info.setdefault(_CREATED, ([], []))
        copies.append(dict(
            id=data.community_id, name=data.name, positioning=data.positioning, timezone=data.timezone,
            created_at=data.created_at, synced_at=ctx.clock.now(),
        ))
        owners.append(dict(
            community_id=data.community_id, member_id=data.owner_id, display_name="", role="owner",
            status="active", tier="", changed_at=data.created_at, level=None,
        ))
        if deferrable(session):
            defer(session, _CREATED, _write_created)
        else:
            await _write_created(session)

    async def on_member_changed(session: AsyncSession, event: Event[MemberChanged]) -> None:
        # Every member.* event carries the whole state; the newest (by changed_at) wins, so an event
        # delivered late never rolls a membership back.
        data = event.data
        await written_communities(session)
        row = await session.get(CommunityMember, (data.community_id, data.member_id))
        if row is None:
            session.add(
                CommunityMember(
                    community_id=data.community_id,
                    member_id=data.member_id,
                    display_name=data.display_name,
                    role=data.role,
                    status=data.status,
                    tier=data.tier,
                    changed_at=data.changed_at,
                )
            )
        elif data.changed_at >= row.changed_at:
            row.display_name, row.role, row.status, row.tier = data.display_name, data.role, data.status, data.tier
            row.changed_at = data.changed_at

    async def on_member_joined(session: AsyncSession, event: Event[ChatMemberJoined]) -> None:
        await record_presence(
            session,
            community_id=event.community_id,
            group_id=event.data.group_id,
            person_id=event.data.member_id,
            present=True,
            at=event.data.joined_at,
        )

    async def on_member_left(session: AsyncSession, event: Event[ChatMemberLeft]) -> None:
        await record_presence(
            session,
            community_id=event.community_id,
            group_id=event.data.group_id,
            person_id=event.data.member_id,
            present=False,
            at=event.data.left_at,
        )

    async def on_group_changed(session: AsyncSession, event: Event[Any]) -> None:
        # Membership owns the groups: its group.registered / group.updated replace the interim
        # registration route (PUT /communities/{id}/groups) and win over it.
        data = event.data
        group = await session.get(ChatGroup, data.group_id)
        if group is None:
            session.add(
                ChatGroup(
                    group_id=data.group_id,
                    community_id=data.community_id,
                    platform=data.platform,
                    role=data.role,
                    title=data.name[:100],
                    active=data.active,
                    registered_by="membership",
                    registered_at=data.changed_at,
                )
            )
        else:
            group.community_id, group.role, group.title = data.community_id, data.role, data.name[:100]
            group.active = data.active

    async def on_level_reached(session: AsyncSession, event: Event[Any]) -> None:
        await written_communities(session)
        row = await session.get(CommunityMember, (event.data.community_id, event.data.person_id))
        if row is not None:
            row.level = max(row.level or 0, event.data.level)

    # Every event type carrying a whole membership (member.joined, .activated, .role_changed, …).
    member_types = [spec.type for spec in MEMBERSHIP_SPECS if spec.payload is MemberChanged]
    return {
        "community.created": on_community_created,
        "chat.member.joined": on_member_joined,
        "chat.member.left": on_member_left,
        "group.registered": on_group_changed,
        "group.updated": on_group_changed,
        "level.reached": on_level_reached,
        **{t: on_member_changed for t in member_types},
    }
