"""Invitations and fission (裂变, part 9): invite leaderboard, referral commission, campaigns with progress."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.errors import BadInput, GroupNotFound, InvalidState, ResourceNotFound
from membership.models import Campaign, CampaignCreate, CampaignProgress, ChatGroup, Community, LedgerEntry, Membership
from membership.models.invite import Leaderboard, LeaderboardRow
from membership.models.member import LIVE_STATUSES
from membership.service.events import request_chat_action
from qunzhu_common.events.contracts.chat import mention_token
from qunzhu_common.events.contracts.membership import CampaignChanged, CampaignWinner

COUNTED = (*LIVE_STATUSES, "expired")  # joins that happened and were not undone (refund, removal)


def period_bounds(period: str, now: datetime, tz: str, start: datetime | None = None,
                  end: datetime | None = None) -> tuple[datetime, datetime]:
    """The current day / week (Monday) / month in the community's zone, or a custom [start, end)."""
    if period == "custom":
        if start is None or end is None or end <= start:
            raise BadInput("a custom period needs start < end")
        return start, end
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    if period == "day":
        first, last = today, today + timedelta(days=1)
    elif period == "week":
        first = today - timedelta(days=today.weekday())
        last = first + timedelta(days=7)
    elif period == "month":
        first = today.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1)
    else:
        raise BadInput(f"unknown period {period!r}")
    return (datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC),
            datetime.combine(last, time(0), tzinfo=zone).astimezone(UTC))


async def leaderboard_rows(session: AsyncSession, *, community_id: str, start: datetime, end: datetime,
                           limit: int = 50) -> list[LeaderboardRow]:
    invites = dict((await session.execute(
        select(Membership.referrer_id, func.count())
        .where(Membership.community_id == community_id, Membership.referrer_id.is_not(None),
               Membership.status.in_(COUNTED), Membership.joined_at >= start, Membership.joined_at < end)
        .group_by(Membership.referrer_id)
    )).all())
    commission = dict((await session.execute(
        select(LedgerEntry.beneficiary_id, func.sum(LedgerEntry.amount_fen))
        .where(LedgerEntry.community_id == community_id, LedgerEntry.account == "referrer",
               LedgerEntry.occurred_at >= start, LedgerEntry.occurred_at < end)
        .group_by(LedgerEntry.beneficiary_id)
    )).all())
    people = set(invites) | {p for p, v in commission.items() if v}
    ranked = sorted(people, key=lambda p: (-int(invites.get(p, 0)), -int(commission.get(p) or 0), p))
    return [LeaderboardRow(rank=i + 1, member_id=p, invites=int(invites.get(p, 0)),
                           commission_fen=int(commission.get(p) or 0)) for i, p in enumerate(ranked[:limit])]


async def leaderboard(session: AsyncSession, *, community: Community, period: str, now: datetime,
                      start: datetime | None, end: datetime | None, limit: int) -> Leaderboard:
    first, last = period_bounds(period, now, community.timezone, start, end)
    rows = await leaderboard_rows(session, community_id=community.id, start=first, end=last, limit=limit)
    return Leaderboard(community_id=community.id, period=period, starts_at=first, ends_at=last,
                       timezone=community.timezone, data=rows)


async def _progress(session: AsyncSession, campaign: Campaign) -> int:
    if campaign.kind != "member_goal":
        return 0
    if campaign.group_id:
        group = await session.get(ChatGroup, campaign.group_id)
        return group.member_count if group is not None else 0
    return int(await session.scalar(select(func.count()).select_from(Membership).where(
        Membership.community_id == campaign.community_id, Membership.status.in_(LIVE_STATUSES)
    )) or 0)


async def _payload(session: AsyncSession, ctx: MembershipContext, campaign: Campaign) -> CampaignChanged:
    return CampaignChanged(
        community_id=campaign.community_id, campaign_id=campaign.id, kind=campaign.kind,  # type: ignore[arg-type]
        title=campaign.title, reward=campaign.reward, goal=campaign.goal, progress=await _progress(session, campaign),
        group_id=campaign.group_id, starts_at=campaign.starts_at, ends_at=campaign.ends_at,
        state=campaign.state, winners=[CampaignWinner(**w) for w in campaign.winners],  # type: ignore[arg-type]
        changed_at=ctx.now(),
    )


async def create_campaign(session: AsyncSession, *, ctx: MembershipContext, community: Community,
                          creator_id: str, data: CampaignCreate) -> Campaign:
    if data.group_id is not None:
        group = await session.get(ChatGroup, data.group_id)
        if group is None or group.community_id != community.id:
            raise GroupNotFound(f"chat group {data.group_id} is not a group of this community")
    if data.kind == "invite_contest" and data.ends_at is not None and data.ends_at <= ctx.now():
        raise BadInput("the contest would already be over")
    campaign = Campaign(community_id=community.id, kind=data.kind, title=data.title, reward=data.reward,
                        goal=data.goal, group_id=data.group_id, places=data.places, starts_at=data.starts_at,
                        ends_at=data.ends_at, created_by=creator_id, created_at=ctx.now())
    session.add(campaign)
    await session.flush()
    await ctx.outbox.emit(session, type="campaign.created", community_id=community.id,
                          data=await _payload(session, ctx, campaign))
    return campaign


async def get_campaign(session: AsyncSession, *, community_id: str, campaign_id: str) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.community_id != community_id:
        raise ResourceNotFound(f"campaign {campaign_id} not found in this community")
    return campaign


async def progress_view(session: AsyncSession, *, campaign: Campaign) -> CampaignProgress:
    progress = await _progress(session, campaign)
    leaders: list[LeaderboardRow] = []
    if campaign.kind == "invite_contest" and campaign.starts_at and campaign.ends_at:
        leaders = await leaderboard_rows(session, community_id=campaign.community_id, start=campaign.starts_at,
                                         end=campaign.ends_at, limit=max(10, campaign.places))
        progress = leaders[0].invites if leaders else 0
    return CampaignProgress(
        id=campaign.id, community_id=campaign.community_id, kind=campaign.kind,  # type: ignore[arg-type]
        title=campaign.title, reward=campaign.reward, goal=campaign.goal, group_id=campaign.group_id,
        places=campaign.places, starts_at=campaign.starts_at, ends_at=campaign.ends_at, state=campaign.state,
        progress=progress, percent=round(min(100.0, 100.0 * progress / campaign.goal), 1) if campaign.goal else None,
        reached_at=campaign.reached_at, leaders=leaders, winners=campaign.winners,
    )


async def list_campaigns(session: AsyncSession, *, community_id: str) -> list[Campaign]:
    return list((await session.execute(select(Campaign).where(Campaign.community_id == community_id)
                                       .order_by(Campaign.created_at.desc()).limit(200))).scalars().all())


async def cancel_campaign(session: AsyncSession, *, ctx: MembershipContext, campaign: Campaign) -> Campaign:
    if campaign.state != "open":
        raise InvalidState(f"campaign is {campaign.state}")
    campaign.state = "cancelled"
    await session.flush()
    await ctx.outbox.emit(session, type="campaign.finished", community_id=campaign.community_id,
                          data=await _payload(session, ctx, campaign))
    return campaign


async def _announce(session: AsyncSession, ctx: MembershipContext, campaign: Campaign, text: str) -> None:
    groups = [campaign.group_id] if campaign.group_id else list((await session.execute(
        select(ChatGroup.id).where(ChatGroup.community_id == campaign.community_id, ChatGroup.active.is_(True))
        .order_by(ChatGroup.id)
    )).scalars().all())
    for gid in groups:
        await request_chat_action(session, ctx, community_id=campaign.community_id, action="announce",
                                  group_id=gid, text=text, reason="campaign",
                                  action_id=f"membership:campaign:{campaign.id}:{campaign.state}:{gid}")


async def check_campaigns(session: AsyncSession, ctx: MembershipContext, *, limit: int) -> int:
    """Scheduler pass: goals reached, contests ended. Transitions are conditional UPDATEs (once only)."""
    now = ctx.now()
    changed = 0
    # Every open campaign is looked at on each pass (there are few; `limit` only bounds the changes).
    campaigns = (await session.execute(select(Campaign).where(Campaign.state == "open")
                                       .order_by(Campaign.created_at))).scalars().all()
    for campaign in campaigns:
        if campaign.kind == "member_goal":
            progress = await _progress(session, campaign)
            if campaign.goal is None or progress < campaign.goal:
                continue
            state, stamp = "goal_reached", {"reached_at": now}
        elif campaign.ends_at is not None and campaign.ends_at <= now:
            rows = await leaderboard_rows(session, community_id=campaign.community_id,
                                          start=campaign.starts_at or campaign.created_at, end=campaign.ends_at,
                                          limit=campaign.places)
            winners = [{"place": r.rank, "member_id": r.member_id, "invites": r.invites} for r in rows if r.invites]
            state, stamp = "finished", {"finished_at": now, "winners": winners}
        else:
            continue
        result = await session.execute(
            update(Campaign).where(Campaign.id == campaign.id, Campaign.state == "open")
            .values(state=state, **stamp).execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            continue  # another replica got there first
        await session.refresh(campaign)
        await ctx.outbox.emit(session, type=f"campaign.{state}", community_id=campaign.community_id,
                              data=await _payload(session, ctx, campaign))
        if state == "goal_reached":
            text = f"🎉 「{campaign.title}」达成目标 {campaign.goal} 人！奖励：{campaign.reward}"
        else:
            names = "、".join(f"第{w['place']}名 {mention_token(w['member_id'])}（{w['invites']} 人）"
                             for w in campaign.winners)  # the gateway writes each winner's name in the group
            text = f"🏆 「{campaign.title}」结束：{names or '无人上榜'}。奖励：{campaign.reward}"
        await _announce(session, ctx, campaign, text)
        changed += 1
        if changed >= limit:
            break
    return changed
