"""Emitting membership's events and bot actions through the outbox (same transaction as the change)."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import Community, Membership, Seat
from membership.service.schedule import schedule_reminders
from qunzhu_common.events.contracts.chat import ChatActionRequested
from qunzhu_common.events.contracts.membership import MemberChanged

log = logging.getLogger(__name__)

_PERSON = re.compile(r"^[a-z]+:.+$")
_TICK = timedelta(microseconds=1)


def touch(member: Membership, now: datetime) -> datetime:
    """Advance the membership's `changed_at`, strictly: consumers keep the newest state by it."""
    member.changed_at = max(now, member.changed_at + _TICK)
    return member.changed_at


async def group_ids_of(session: AsyncSession, member: Membership) -> list[str]:
    rows = await session.execute(
        select(Seat.group_id)
        .where(Seat.community_id == member.community_id, Seat.member_id == member.member_id)
        .order_by(Seat.group_id)
    )
    return list(rows.scalars().all())


async def emit_member(
    session: AsyncSession, ctx: MembershipContext, type_: str, member: Membership, *, reason: str | None = None
) -> None:
    """Emit a member.* event carrying the whole membership after the change."""
    if not _PERSON.match(member.member_id):
        # Owners created before authentication (free-form owner ids) have no person id to publish;
        # community.created already names them.
        log.info("not publishing %s for non-person id %r", type_, member.member_id)
        return
    touch(member, ctx.now())
    community = await session.get(Community, member.community_id)
    if community is not None:
        schedule_reminders(member, community, ctx.settings.ritual_reminder_hours, ctx.now())
    await session.flush()
    payload = MemberChanged(
        community_id=member.community_id,
        member_id=member.member_id,
        display_name=member.display_name,
        role=member.role,  # type: ignore[arg-type]
        status=member.status,  # type: ignore[arg-type]
        tier=member.tier,
        joined_at=member.joined_at,
        expires_at=member.expires_at,
        reason=(reason if reason is not None else member.status_reason)[:500],
        changed_at=member.changed_at,
        group_ids=await group_ids_of(session, member),
        referrer_id=member.referrer_id,
        plan_id=member.plan_id,
    )
    await ctx.outbox.emit(session, type=type_, data=payload, community_id=member.community_id)


def _bounded(action_id: str) -> str:
    """Action ids are idempotency keys: shorten long ones by hashing, never by cutting (no collisions)."""
    if len(action_id) <= 200:
        return action_id
    return action_id[:150] + ":" + hashlib.sha256(action_id.encode()).hexdigest()[:40]


async def request_chat_action(
    session: AsyncSession,
    ctx: MembershipContext,
    *,
    community_id: str,
    action_id: str,
    action: str,
    group_id: str,
    member_id: str | None = None,
    text: str = "",
    reason: str = "",
) -> None:
    """Ask the gateway's bot to act (chat.actions.v1, keyed by group). `action_id` is the idempotency key."""
    await ctx.outbox.emit(
        session,
        type="chat.action.requested",
        community_id=community_id,
        data=ChatActionRequested(
            action_id=_bounded(action_id),
            action=action,  # type: ignore[arg-type]
            group_id=group_id,
            member_id=member_id,
            text=text,
            reason=reason[:500],
            requested_by="membership",
        ),
    )
