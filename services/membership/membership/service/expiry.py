"""Expiry and reminders, run by the scheduler (jobs.py) in small claimed batches.

Multi-replica safety: each batch claims its rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL (another
replica skips them), changes their state in the same transaction, and the reminder log has a unique key,
so a due membership is expired once and a reminder is sent once whatever the number of replicas.
On SQLite (embedded mode: one process) writers are serialised anyway.

Misfire policy (the service was down when something fell due):
- expiry: caught up at the next pass: every membership past its end (+ grace) is expired;
- reminders: only the most imminent due reminder is sent; older ones that were missed are skipped
  (no "7 days left" after "1 day left").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.models import Community, MemberReminder, Membership, Seat
from membership.models.member import LIVE_STATUSES
from membership.service.events import emit_member, request_chat_action
from membership.service.groups import apply_deferred_seat_counts, defer_seat_counts, remove_from_groups
from membership.service.lifecycle import end_membership
from membership.service.schedule import reminder_dues, schedule_reminders
from membership.service.terms import format_local
from qunzhu_common.events.contracts.chat import mention_token
from qunzhu_common.events.contracts.membership import MemberReminded


def _claim(query, session: AsyncSession):  # type: ignore[no-untyped-def]
    return query.with_for_update(skip_locked=True, of=Membership)


@dataclass(frozen=True)
class Batch:
    """What one scheduler transaction did: rows it claimed (drives draining) and effects (reported)."""

    claimed: int
    done: int


async def expire_due(session: AsyncSession, ctx: MembershipContext, *, limit: int) -> int:
    """Expire one batch of memberships past their end plus the community's grace period."""
    now = ctx.now()
    graces = (await session.execute(select(Community.grace_period_days).distinct())).scalars().all()
    defer_seat_counts(session)
    done = 0
    for grace in graces:
        if done >= limit:
            break
        rows = (await session.execute(_claim(
            select(Membership, Community).join(Community, Community.id == Membership.community_id).where(
                Community.grace_period_days == grace, Membership.status.in_(LIVE_STATUSES),
                Membership.comp.is_(False), Membership.expires_at.is_not(None),
                Membership.expires_at <= now - timedelta(days=grace),
            ).order_by(Membership.expires_at, Membership.id).limit(limit - done), session,
        ))).all()
        for member, community in rows:
            assert member.expires_at is not None
            late = (now - member.expires_at - timedelta(days=grace)).total_seconds()
            ctx.metrics.after_commit(session, lambda late=late: ctx.metrics.scheduler_lateness.set(late))
            if "paid" not in community.entry_policies:
                await end_paid_tier(session, ctx, community=community, member=member)
            else:
                await end_membership(
                    session, ctx, community=community, member=member, status="expired",
                    reason=f"membership ended {format_local(member.expires_at, community.timezone)}",
                    code="expired", cause=f"expire:{member.id}:{member.expires_at.isoformat()}",
                    paid_groups_only=True,
                )
            ctx.metrics.after_commit(session, ctx.metrics.expirations.inc)
            done += 1
    await apply_deferred_seat_counts(session)
    return done


async def end_paid_tier(session: AsyncSession, ctx: MembershipContext, *, community: Community,
                         member: Membership) -> None:
    """Entry is free here: what ran out is only the paid tier (or trial); the membership itself stays."""
    ended = format_local(member.expires_at, community.timezone)  # type: ignore[arg-type]
    member.tier, member.plan_id, member.expires_at = "", None, None
    await remove_from_groups(session, ctx=ctx, member=member, paid_only=True, reason=f"paid tier ended {ended}",
                             cause=f"tier-end:{member.id}:{ended}")
    await emit_member(session, ctx, "member.expired", member,
                      reason=f"paid tier ended {ended}; the free membership continues")


async def send_due_reminders(session: AsyncSession, ctx: MembershipContext, *, limit: int) -> Batch:
    now = ctx.now()
    rows = (await session.execute(_claim(
        select(Membership, Community).join(Community, Community.id == Membership.community_id)
        .where(Membership.next_reminder_at.is_not(None), Membership.next_reminder_at <= now)
        .order_by(Membership.next_reminder_at, Membership.id).limit(limit), session,
    ))).all()
    sent = 0
    for member, community in rows:
        dues = reminder_dues(member, community, ctx.settings.ritual_reminder_hours)
        past = [(at, key) for at, key in dues if at <= now]
        if past:
            _, key = past[-1]  # the most imminent one; missed older ones are skipped
            exists = (await session.execute(select(MemberReminder.id).where(
                MemberReminder.membership_id == member.id, MemberReminder.due_key == key
            ))).first()
            if exists is None:
                await _send(session, ctx, member=member, community=community, key=key)
                sent += 1
        upcoming = [at for at, _ in dues if at > now]
        member.next_reminder_at = min(upcoming) if upcoming else None
    await session.flush()
    return Batch(claimed=len(rows), done=sent)


async def _send(session: AsyncSession, ctx: MembershipContext, *, member: Membership, community: Community,
                key: str) -> None:
    kind = key.split(":", 1)[0]
    session.add(MemberReminder(membership_id=member.id, community_id=member.community_id, kind=kind, due_key=key,
                               sent_at=ctx.now()))
    await session.flush()  # the unique key: a concurrent sender fails here and its batch is retried
    group_ids = (await session.execute(
        select(Seat.group_id).where(Seat.community_id == member.community_id, Seat.member_id == member.member_id)
        .order_by(Seat.group_id)
    )).scalars().all()
    # The person is a placeholder: the gateway writes the name the platform last reported for them in that
    # group, as a real mention (never the raw id; membership's own copy of the name may be stale).
    name = mention_token(member.member_id)
    if kind == "renewal":
        assert member.expires_at is not None
        days = int(key.rsplit(":", 1)[1])
        text = (f"{name} 你在「{community.name}」的会员将于 {format_local(member.expires_at, community.timezone)} "
                f"到期（还有 {days} 天），续费后可继续留在群里。")
    else:
        fields = " / ".join(community.intro_fields)
        text = (f"{name} 欢迎加入「{community.name}」！请按格式发自我介绍（{fields}），"
                f"并把群昵称改为「{community.nickname_pattern}」。")
    group = group_ids[0] if group_ids else None
    if group is not None:
        await request_chat_action(session, ctx, community_id=member.community_id, action="send_message",
                                  group_id=group, member_id=member.member_id, text=text, reason=f"{kind} reminder",
                                  action_id=f"membership:remind:{member.id}:{key}")
    await ctx.outbox.emit(
        session, type="member.reminded", community_id=member.community_id,
        data=MemberReminded(
            community_id=member.community_id, member_id=member.member_id, kind=kind,  # type: ignore[arg-type]
            expires_at=member.expires_at if kind == "renewal" else None,
            days_before=int(key.rsplit(":", 1)[1]) if kind == "renewal" else None,
            group_id=group, reminded_at=ctx.now(),
        ),
    )
    ctx.metrics.after_commit(session, lambda: ctx.metrics.reminders.labels(kind).inc())


async def reschedule_community(session: AsyncSession, ctx: MembershipContext, *, community: Community) -> None:
    """Reminder settings or the time zone changed: recompute every live member's next reminder."""
    rows = (await session.execute(select(Membership).where(
        Membership.community_id == community.id, Membership.status.in_(LIVE_STATUSES)
    ))).scalars().all()
    now = ctx.now()
    for member in rows:
        schedule_reminders(member, community, ctx.settings.ritual_reminder_hours, now)
    await session.flush()
