"""Red-packet and goal campaigns: "group reaches 400 → ¥500 red packet", check-in streaks, first answer.

A triggered campaign records a reward (amount in fen) for the operator to pay out and mark paid;
Qunzhu never moves money. Rewards are unique per (campaign, recipient) and handed out under the
campaign's row lock, so `max_rewards` holds under concurrency and a redelivered event adds nothing.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities.common import (
    completed,
    get_community,
    open_in_transaction,
    post,
    require_aware,
    zone_of,
)
from engagement.activities.schemas import CampaignCreate
from engagement.checkins.service import streaks
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import Activity, Campaign, CampaignReward, GroupMember, MemberCopy
from engagement.scoring.engine import score_queued_now
from qunzhu_common.events.contracts.chat import mention_token
from qunzhu_common.events.contracts.engagement import CampaignRewardRecorded
from qunzhu_common.timeutil import utcnow

_NOT_WORD = re.compile(r"[\W_]+")


def normalise_answer(text: str) -> str:
    """Answers compare without case, spaces or punctuation ("  B。" == "b")."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text)).casefold()


def yuan(fen: int) -> str:
    return f"¥{fen // 100}" + (f".{fen % 100:02d}" if fen % 100 else "")


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: CampaignCreate
                 ) -> Campaign:
    await get_community(session, community_id)
    require_aware(data.starts_at, "starts_at")
    require_aware(data.ends_at, "ends_at")
    now = utcnow()
    campaign = Campaign(**data.model_dump(exclude={"starts_at"}), starts_at=data.starts_at or now,
                        community_id=community_id, created_at=now)
    session.add(campaign)
    await session.flush()
    goal = {"group_size": f"群人数达到 {campaign.threshold}", "checkin_streak": f"连续打卡 {campaign.threshold} 天",
            "first_answer": "第一个答对"}[campaign.trigger]
    await post(session, ctx, community_id=community_id, group_id=campaign.group_id, announce=True,
               action_id=f"campaign:{campaign.id}:opened",
               text=f"🧧 {campaign.title}：{goal}，奖励 {campaign.reward_text or yuan(campaign.reward_fen)}！")
    if campaign.trigger == "group_size":
        await check_group_size(session, ctx, campaign=campaign, at=now)
    return campaign


async def get(session: AsyncSession, *, community_id: str, campaign_id: str) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None or campaign.community_id != community_id:
        raise ThingNotFound(f"campaign {campaign_id} does not exist in community {community_id}")
    return campaign


def _running(campaign: Campaign, at: datetime) -> bool:
    return campaign.starts_at <= at and (campaign.ends_at is None or at < campaign.ends_at)


async def reward(
    session: AsyncSession, ctx: EngagementContext, *, campaign: Campaign, recipient_id: str, recipient_kind: str,
    reason: str, at: datetime,
) -> CampaignReward | None:
    """Record a reward once per recipient while rewards remain; None when none is left or it exists."""
    campaign = await session.get(Campaign, campaign.id, with_for_update=True, populate_existing=True)
    assert campaign is not None
    if campaign.rewards_count >= campaign.max_rewards:
        return None
    inserted = await insert_ignore(session, CampaignReward, {
        "id": str(uuid.uuid4()), "campaign_id": campaign.id, "community_id": campaign.community_id,
        "recipient_id": recipient_id, "recipient_kind": recipient_kind, "amount_fen": campaign.reward_fen,
        "reason": reason[:300], "status": "pending", "created_at": at, "payout_ref": "",
    })
    if not inserted:
        return None
    campaign.rewards_count += 1
    campaign.triggered_at = campaign.triggered_at or at
    row = (await session.execute(select(CampaignReward).where(
        CampaignReward.campaign_id == campaign.id, CampaignReward.recipient_id == recipient_id))).scalar_one()
    await ctx.emit(session, type="campaign.reward_recorded", community_id=campaign.community_id,
                   data=CampaignRewardRecorded(
                       community_id=campaign.community_id, campaign_id=campaign.id, title=campaign.title,
                       trigger=campaign.trigger, reward_id=row.id, recipient_id=recipient_id,
                       recipient_kind=recipient_kind, amount_fen=row.amount_fen,  # type: ignore[arg-type]
                       reward_text=campaign.reward_text, recorded_at=at))
    completed(session, ctx, "campaign")
    who = "全群" if recipient_kind == "group" else mention_token(recipient_id)  # named by the gateway
    await post(session, ctx, community_id=campaign.community_id, group_id=campaign.group_id, announce=True,
               action_id=f"campaign:{campaign.id}:reward:{recipient_id}",
               text=f"🎉 {campaign.title}：{reason}，{who} 获得 {campaign.reward_text or yuan(campaign.reward_fen)}！")
    return row


async def group_size(session: AsyncSession, *, campaign: Campaign) -> int:
    if campaign.group_id:
        query = select(func.count()).select_from(GroupMember).where(
            GroupMember.community_id == campaign.community_id, GroupMember.group_id == campaign.group_id,
            GroupMember.left_at.is_(None))
    else:
        query = select(func.count()).select_from(MemberCopy).where(
            MemberCopy.community_id == campaign.community_id, MemberCopy.status == "active")
    return int(await session.scalar(query) or 0)


async def check_group_size(session: AsyncSession, ctx: EngagementContext, *, campaign: Campaign, at: datetime
                           ) -> CampaignReward | None:
    if campaign.rewards_count >= campaign.max_rewards or not _running(campaign, at):
        return None
    size = await group_size(session, campaign=campaign)
    if size < campaign.threshold:
        return None
    return await reward(session, ctx, campaign=campaign, recipient_id=campaign.group_id or campaign.community_id,
                        recipient_kind="group", reason=f"群人数达到 {size}", at=at)


async def _open(session: AsyncSession, community_id: str, trigger: str, at: datetime) -> list[Campaign]:
    async def load() -> list[Campaign]:
        return list((await session.execute(select(Campaign).where(
            Campaign.community_id == community_id, Campaign.rewards_count < Campaign.max_rewards))).scalars().all())

    rows = await open_in_transaction(session, f"campaign:{community_id}", load)
    return [row for row in rows if row.trigger == trigger and row.rewards_count < row.max_rewards
            and _running(row, at)]


async def has_open(session: AsyncSession, *, community_id: str, trigger: str, at: datetime) -> bool:
    return bool(await _open(session, community_id, trigger, at))


async def on_member_joined(session: AsyncSession, ctx: EngagementContext, *, community_id: str, group_id: str,
                           at: datetime) -> None:
    for campaign in await _open(session, community_id, "group_size", at):
        if campaign.group_id in ("", group_id):
            await check_group_size(session, ctx, campaign=campaign, at=at)


async def on_checkin(session: AsyncSession, ctx: EngagementContext, *, community_id: str, person_id: str,
                     at: datetime) -> None:
    """A check-in (not yet scored: it is this very event) extends the member's run of local days."""
    campaigns = await _open(session, community_id, "checkin_streak", at)
    if not campaigns:
        return
    zone = zone_of(await get_community(session, community_id))
    since = min(c.starts_at for c in campaigns)
    await score_queued_now(session)  # check-ins earlier in this batch are part of the run
    times = (await session.execute(select(Activity.occurred_at).where(
        Activity.community_id == community_id, Activity.person_id == person_id, Activity.kind == "checkin",
        Activity.occurred_at >= since, Activity.occurred_at <= at + timedelta(seconds=1)))).scalars().all()
    today = at.astimezone(zone).date()
    for campaign in campaigns:
        days = [t.astimezone(zone).date() for t in times if t >= campaign.starts_at] + [today]
        current, _ = streaks(days, today)
        if current >= campaign.threshold:
            await reward(session, ctx, campaign=campaign, recipient_id=person_id, recipient_kind="person",
                         reason=f"连续打卡 {current} 天", at=at)


async def on_message(session: AsyncSession, ctx: EngagementContext, *, community_id: str, group_id: str,
                     person_id: str, text: str, at: datetime) -> None:
    given = normalise_answer(text)
    if not given or len(text) > 200:
        return
    for campaign in await _open(session, community_id, "first_answer", at):
        if campaign.group_id in ("", group_id) and normalise_answer(campaign.answer) == given:
            await reward(session, ctx, campaign=campaign, recipient_id=person_id, recipient_kind="person",
                         reason="抢答正确", at=at)


async def mark_paid(session: AsyncSession, *, campaign: Campaign, reward_id: str, paid_by: str, payout_ref: str
                    ) -> CampaignReward:
    """Record that the operator paid the reward (marking it again changes nothing)."""
    row = await session.get(CampaignReward, reward_id)
    if row is None or row.campaign_id != campaign.id:
        raise ThingNotFound(f"reward {reward_id} does not exist in campaign {campaign.id}")
    if row.status != "paid":
        row.status, row.paid_at, row.paid_by, row.payout_ref = "paid", utcnow(), paid_by, payout_ref
        await session.flush()
    return row


async def check_due(session: AsyncSession, ctx: EngagementContext, *, now: datetime) -> int:
    """Group-size campaigns of the whole community grow with membership events: checked by the timer."""
    rows = (await session.execute(select(Campaign).where(
        Campaign.trigger == "group_size", Campaign.rewards_count < Campaign.max_rewards))).scalars().all()
    return sum([await check_group_size(session, ctx, campaign=row, at=now) is not None for row in rows])
