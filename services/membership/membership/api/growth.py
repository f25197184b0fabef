"""Invite codes, the invite leaderboard and fission campaigns (裂变)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from membership.deps import ActorDep, CtxDep, PageDep, PersonDep, SessionDep
from membership.models import CampaignCreate, CampaignProgress, InviteCreate
from membership.models.invite import InvitePublic, InvitesPage, Leaderboard
from membership.service import fission, joining
from membership.service.access import acting_member, authorize, can, load_community

router = APIRouter(tags=["invitations and fission"])


@router.post("/communities/{community_id}/invites", status_code=status.HTTP_201_CREATED, response_model=InvitePublic)
async def create_invite(community_id: str, body: InviteCreate, session: SessionDep, ctx: CtxDep,
                        actor: PersonDep) -> InvitePublic:
    """Create an invite code (`invite.create`; single use by default, `max_uses` for more, optional expiry).
    The acting person is recorded as the inviter and referrer. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="invite.create")
    invite = await joining.create_invite(session, ctx=ctx, community=community, inviter_id=actor.id, data=body)
    return InvitePublic.model_validate(invite, from_attributes=True)


@router.get("/communities/{community_id}/invites", response_model=InvitesPage)
async def list_invites(community_id: str, session: SessionDep, actor: PersonDep, page: PageDep,
                       scope: Annotated[Literal["mine", "all"], Query()] = "mine") -> InvitesPage:
    """The actor's invite codes, or everyone's (`scope=all`, `invite.manage`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    member = await acting_member(session, community=community, actor=actor)
    if scope == "all":
        await authorize(session, community=community, actor=actor, action="invite.manage")
    rows, count = await joining.list_invites(session, community_id=community.id,
                                             inviter_id=None if scope == "all" else member.member_id,
                                             offset=page.offset, limit=page.limit)
    return InvitesPage(data=[InvitePublic.model_validate(i, from_attributes=True) for i in rows], count=count)


@router.delete("/communities/{community_id}/invites/{invite_id}", response_model=InvitePublic)
async def revoke_invite(community_id: str, invite_id: str, session: SessionDep, ctx: CtxDep,
                        actor: PersonDep) -> InvitePublic:
    """Revoke an invite code (its inviter, or `invite.manage`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    member = await acting_member(session, community=community, actor=actor)
    invite = await joining.revoke_invite(session, ctx=ctx, community=community, invite_id=invite_id, actor=member)
    return InvitePublic.model_validate(invite, from_attributes=True)


@router.get("/communities/{community_id}/leaderboard", response_model=Leaderboard)
async def leaderboard(
    community_id: str, session: SessionDep, ctx: CtxDep, actor: ActorDep,
    period: Annotated[Literal["day", "week", "month", "custom"], Query()] = "week",
    start: Annotated[AwareDatetime | None, Query()] = None,
    end: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Leaderboard:
    """Invite leaderboard: members who brought people in, with the referral commission they earned (fen),
    for the current day / week / month in the community's time zone or a custom [start, end)
    (`leaderboard.view`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="leaderboard.view")
    return await fission.leaderboard(session, community=community, period=period, now=ctx.now(), start=start,
                                     end=end, limit=limit)


@router.post("/communities/{community_id}/campaigns", status_code=201, response_model=CampaignProgress)
async def create_campaign(community_id: str, body: CampaignCreate, session: SessionDep, ctx: CtxDep,
                          actor: PersonDep) -> CampaignProgress:
    """A fission campaign (`campaign.manage`): `member_goal` ("the group reaches 400 members → ¥500 red
    packet") or `invite_contest` ("first place wins ¥10,000"). Progress is visible to members; reaching the
    goal or the end of a contest is announced in the groups. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="campaign.manage")
    campaign = await fission.create_campaign(session, ctx=ctx, community=community, creator_id=actor.recorded_as,
                                             data=body)
    return await fission.progress_view(session, campaign=campaign)


@router.get("/communities/{community_id}/campaigns", response_model=list[CampaignProgress])
async def list_campaigns(community_id: str, session: SessionDep, actor: ActorDep) -> list[CampaignProgress]:
    """Campaigns with their progress (`leaderboard.view`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="leaderboard.view")
    return [await fission.progress_view(session, campaign=c)
            for c in await fission.list_campaigns(session, community_id=community.id)]


@router.get("/communities/{community_id}/campaigns/{campaign_id}", response_model=CampaignProgress)
async def get_campaign(community_id: str, campaign_id: str, session: SessionDep, actor: ActorDep) -> CampaignProgress:
    """One campaign's progress ("46 of 50 reached", the contest's leaders). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="leaderboard.view")
    campaign = await fission.get_campaign(session, community_id=community.id, campaign_id=campaign_id)
    return await fission.progress_view(session, campaign=campaign)


@router.delete("/communities/{community_id}/campaigns/{campaign_id}", response_model=CampaignProgress)
async def cancel_campaign(community_id: str, campaign_id: str, session: SessionDep, ctx: CtxDep,
                          actor: PersonDep) -> CampaignProgress:
    """Cancel an open campaign (`campaign.manage`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="campaign.manage")
    campaign = await fission.get_campaign(session, community_id=community.id, campaign_id=campaign_id)
    await fission.cancel_campaign(session, ctx=ctx, campaign=campaign)
    return await fission.progress_view(session, campaign=campaign)


_ = can
