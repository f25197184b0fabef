"""Who may do what in a community (from the membership projection), and its chat groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.community.roles import authorizer
from content.errors import CommunityUnknown, GroupNotInCommunity, NotAllowed, UnknownGroup
from content.models import ChatGroup, ChatGroupRegister, CommunityCopy, CommunityMember, GroupMember
from qunzhu_common.actor import Actor
from qunzhu_common.events.contracts.identity import GroupId

STAFF = ("owner", "admin")
AUTHORS = ("owner", "admin", "guest")


class Audience(BaseModel):
    """Which groups get a broadcast: the whole community, its A or B groups, an explicit list, or the
    groups where members of some tiers are (from the chat membership content has seen)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["community", "role", "groups", "members"] = "community"
    role: Literal["A", "B"] | None = None
    group_ids: list[GroupId] = Field(default_factory=list, max_length=2000)
    tiers: list[str] = Field(default_factory=list, max_length=50, description="For kind 'members'.")
    min_level: int | None = Field(default=None, ge=1, description="For kind 'members': engagement level at least.")

    @model_validator(mode="after")
    def _complete(self) -> Audience:
        if self.kind == "role" and self.role is None:
            raise ValueError("audience of kind 'role' needs role 'A' or 'B'")
        if self.kind == "groups" and not self.group_ids:
            raise ValueError("audience of kind 'groups' needs group_ids")
        if self.kind == "members" and not self.tiers and self.min_level is None:
            raise ValueError("audience of kind 'members' needs tiers ('' is the free tier) or min_level")
        return self


async def get_community(session: AsyncSession, *, community_id: str) -> CommunityCopy:
    community = await session.get(CommunityCopy, community_id)
    if community is None:
        raise CommunityUnknown(f"content does not know community {community_id}")
    return community


async def member_of(session: AsyncSession, *, community_id: str, person_id: str) -> CommunityMember | None:
    return await session.get(CommunityMember, (community_id, person_id))


async def role_of(session: AsyncSession, *, community_id: str, actor: Actor) -> str | None:
    """The role `actor` acts with in the community: the platform operator as its owner, an API key with
    its own role in its community, a person with their role in content's projection; None without one."""
    return await authorizer.role_in(session, actor, community_id)


async def require_role(
    session: AsyncSession, *, community_id: str, actor: Actor, roles: Sequence[str], doing: str
) -> str:
    """The role of `actor` in a community content knows, provided it is one of `roles`; else 403."""
    await get_community(session, community_id=community_id)
    role = await role_of(session, community_id=community_id, actor=actor)
    if role not in roles:
        raise NotAllowed(f"{actor.id} may not {doing}: {role or 'no role'}; needs {' or '.join(roles)}")
    return role


async def register_group(
    session: AsyncSession, *, community_id: str, actor: Actor, data: ChatGroupRegister, now: datetime
) -> ChatGroup:
    await require_role(session, community_id=community_id, actor=actor, roles=STAFF, doing="register groups")
    group = await session.get(ChatGroup, data.group_id)
    if group is not None and group.community_id != community_id:
        raise GroupNotInCommunity(f"group {data.group_id} belongs to another community")
    if group is None:
        group = ChatGroup(
            group_id=data.group_id,
            community_id=community_id,
            platform=data.group_id.split(":", 1)[0],
            role=data.role,
            title=data.title,
            registered_by=actor.recorded_as,
            registered_at=now,
        )
        session.add(group)
    else:
        group.role, group.title, group.active = data.role, data.title, True
    await session.flush()
    return group


async def list_groups(session: AsyncSession, *, community_id: str) -> list[ChatGroup]:
    rows = await session.execute(
        select(ChatGroup).where(ChatGroup.community_id == community_id).order_by(ChatGroup.group_id)
    )
    return list(rows.scalars())


async def check_groups(session: AsyncSession, *, community_id: str, group_ids: Iterable[str]) -> list[str]:
    """The ids, de-duplicated in their given order, each an active group of this community."""
    ordered = list(dict.fromkeys(group_ids))
    known = {
        g.group_id: g
        for g in (await session.execute(select(ChatGroup).where(ChatGroup.group_id.in_(ordered)))).scalars()
    }
    for group_id in ordered:
        group = known.get(group_id)
        if group is not None and group.community_id != community_id:
            raise GroupNotInCommunity(f"group {group_id} belongs to another community")
        if group is None or not group.active:
            raise UnknownGroup(f"group {group_id} is not registered with community {community_id}")
    return ordered


async def resolve_audience(session: AsyncSession, *, community_id: str, audience: Audience) -> list[str]:
    """The audience's groups in a stable order (explicit lists keep theirs; otherwise by group id)."""
    if audience.kind == "groups":
        return await check_groups(session, community_id=community_id, group_ids=audience.group_ids)
    query = select(ChatGroup.group_id).where(ChatGroup.community_id == community_id, ChatGroup.active)
    if audience.kind == "role":
        query = query.where(ChatGroup.role == audience.role)
    if audience.kind == "members":
        holding = (
            select(GroupMember.group_id)
            .join(
                CommunityMember,
                (CommunityMember.community_id == GroupMember.community_id)
                & (CommunityMember.member_id == GroupMember.person_id),
            )
            .where(GroupMember.community_id == community_id, GroupMember.present, CommunityMember.status == "active")
        )
        if audience.tiers:
            holding = holding.where(CommunityMember.tier.in_(audience.tiers))
        if audience.min_level is not None:
            holding = holding.where(CommunityMember.level >= audience.min_level)
        query = query.where(ChatGroup.group_id.in_(holding))
    return list((await session.execute(query.order_by(ChatGroup.group_id))).scalars())


async def record_presence(
    session: AsyncSession, *, community_id: str, group_id: str, person_id: str, present: bool, at: datetime
) -> None:
    """Someone joined, left or spoke in a group; the newest fact wins (events may arrive late)."""
    row = await session.get(GroupMember, (group_id, person_id))
    if row is None:
        session.add(
            GroupMember(
                group_id=group_id, person_id=person_id, community_id=community_id, present=present, changed_at=at
            )
        )
    elif at >= row.changed_at:
        row.present, row.changed_at = present, at
