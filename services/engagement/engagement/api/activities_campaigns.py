"""Red-packet and goal campaigns: triggers, the reward records, marking a reward paid."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select

from engagement.activities import campaigns as service
from engagement.activities.schemas import CampaignCreate, CampaignPublic, PaidBody, RewardPublic
from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.models import Campaign, CampaignReward
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/campaigns", tags=["activities"])


async def _public(session: SessionDep, campaign: Campaign) -> CampaignPublic:
    progress = await service.group_size(session, campaign=campaign) if campaign.trigger == "group_size" else None
    return CampaignPublic(**campaign.model_dump(), progress=progress)


@router.post("", response_model=CampaignPublic, status_code=status.HTTP_201_CREATED)
async def create_campaign(community_id: str, caller: StaffOf, body: CampaignCreate, session: SessionDep,
                          ctx: ContextDep) -> CampaignPublic:
    """Start a campaign: group size reaches N, a check-in streak of N days, or the first right answer."""
    return await _public(session, await service.create(session, ctx, community_id=community_id, data=body))


@router.get("", response_model=list[CampaignPublic])
async def list_campaigns(community_id: str, caller: MemberOf, session: SessionDep) -> list[CampaignPublic]:
    """Campaigns, newest first, with the group size so far for group-size ones."""
    rows = await session.execute(select(Campaign).where(Campaign.community_id == community_id)
                                 .order_by(Campaign.created_at.desc()))
    return [await _public(session, row) for row in rows.scalars()]


@router.get("/{campaign_id}", response_model=CampaignPublic)
async def get_campaign(community_id: str, campaign_id: str, caller: MemberOf, session: SessionDep) -> CampaignPublic:
    """One campaign."""
    return await _public(session, await service.get(session, community_id=community_id, campaign_id=campaign_id))


@router.get("/{campaign_id}/rewards", response_model=list[RewardPublic])
async def rewards(community_id: str, campaign_id: str, caller: StaffOf, session: SessionDep) -> list[CampaignReward]:
    """The rewards to pay out (and those paid), in the order they were earned (owner/admin)."""
    campaign = await service.get(session, community_id=community_id, campaign_id=campaign_id)
    rows = await session.execute(select(CampaignReward).where(CampaignReward.campaign_id == campaign.id)
                                 .order_by(CampaignReward.created_at, CampaignReward.id))
    return list(rows.scalars())


@router.post("/{campaign_id}/rewards/{reward_id}/paid", response_model=RewardPublic)
async def mark_paid(community_id: str, campaign_id: str, reward_id: str, caller: StaffOf, body: PaidBody,
                    session: SessionDep) -> CampaignReward:
    """Record that the operator paid this reward (Qunzhu never moves money); again changes nothing."""
    campaign = await service.get(session, community_id=community_id, campaign_id=campaign_id)
    return await service.mark_paid(session, campaign=campaign, reward_id=reward_id, paid_by=body.paid_by,
                                   payout_ref=body.payout_ref)
