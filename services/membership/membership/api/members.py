"""Joining, applications, the member directory, a member's state for the gateway, roles, removal, blacklist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from membership import permissions
from membership.deps import ActorDep, CtxDep, PageDep, PersonDep, SessionDep
from membership.errors import PermissionDenied
from membership.models import JoinRequest, MemberPublic, SeatAssign
from membership.models.member import (
    ApplicationPublic,
    ApplicationsPage,
    BlacklistPublic,
    BlacklistRequest,
    DirectoryPage,
    ProfileUpdate,
    RemovalRequest,
    ReviewDecision,
    RoleChange,
    TrialRequest,
)
from membership.service import joining, members
from membership.service.access import (
    acting_member,
    authorize,
    community_flags,
    find_membership,
    get_membership,
    load_community,
)
from membership.service.groups import assign_to_group, get_group
from membership.service.lifecycle import lift_blacklist
from qunzhu_common.events.contracts.identity import PersonId

router = APIRouter(tags=["members"])

# The person may not be a member, so nothing looked them up: the path must already be what
# blacklist.changed carries (a 422 here, not a 500 when the event is written).
BLACKLISTED = "`<platform>:<user id>` of the person, no whitespace or control characters (as in blacklist.changed)."


@router.post("/communities/{community_id}/join", response_model=MemberPublic,
             responses={200: {"description": "Already on the way in: the membership as it is"},
                        201: {"description": "Created"}})
async def join(community_id: str, body: JoinRequest, session: SessionDep, ctx: CtxDep, actor: PersonDep,
               response: Response) -> MemberPublic:
    """Join as the acting person (`X-Actor-Id`). The entry policy decides what happens:
    `application` → `applied` (awaits review); `paid` → `pending_payment`; `invite_only` needs `invite_code`;
    `referral_required` needs a member's `referrer_id` or an invite; otherwise the person is admitted at once
    (`pending_ritual` when the community has a joining ritual). The current rules version must be accepted.
    Blacklisted people are refused. Role, tier, status and expiry cannot be sent (422)."""
    community = await load_community(session, community_id)
    member, created = await joining.join(session, ctx=ctx, community=community, person_id=actor.id, data=body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return members.public_view(member, community)


@router.post("/communities/{community_id}/trials", status_code=201, response_model=MemberPublic)
async def start_trial(community_id: str, body: TrialRequest, session: SessionDep, ctx: CtxDep,
                      actor: PersonDep) -> MemberPublic:
    """Start a plan's free trial (once per person and community). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    member = await joining.start_trial(session, ctx=ctx, community=community, person_id=actor.id,
                                       plan_id=body.plan_id)
    return members.public_view(member, community)


@router.get("/communities/{community_id}/applications", response_model=ApplicationsPage)
async def list_applications(community_id: str, session: SessionDep, actor: ActorDep, page: PageDep) -> ApplicationsPage:
    """Applications awaiting review (`member.review`: owner, admins). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="member.review")
    rows, count = await joining.list_applications(session, community_id=community.id, offset=page.offset,
                                                  limit=page.limit)
    return ApplicationsPage(data=[ApplicationPublic.model_validate(m, from_attributes=True) for m in rows],
                            count=count)


@router.post("/communities/{community_id}/applications/{member_id}/decision", response_model=MemberPublic)
async def decide_application(community_id: str, member_id: str, body: ReviewDecision, session: SessionDep,
                             ctx: CtxDep, actor: PersonDep) -> MemberPublic:
    """Approve (→ pending_payment for paid entry, else admitted) or reject with a reason (`member.review`).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="member.review")
    member = await joining.review_application(session, ctx=ctx, community=community, member_id=member_id,
                                              approve=body.decision == "approve", reason=body.reason,
                                              reviewer_id=actor.recorded_as)
    return members.public_view(member, community)


@router.get("/communities/{community_id}/members", response_model=DirectoryPage)
async def directory(community_id: str, session: SessionDep, actor: ActorDep, page: PageDep) -> DirectoryPage:
    """The member list (`member.view`: staff always; members only when the owner made it visible). Contact
    details only for readers allowed `member.view_contact`. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    reader = await authorize(session, community=community, actor=actor, action="member.view")
    rows, count = await members.directory(session, community=community, reader=reader, offset=page.offset,
                                          limit=page.limit)
    return DirectoryPage(data=rows, count=count)


@router.get("/communities/{community_id}/members/{member_id}", response_model=MemberPublic)
async def get_member(community_id: str, member_id: str, session: SessionDep, actor: ActorDep) -> MemberPublic:
    """A membership's role, status, tier, term, standing and resolved permissions — what the gateway
    authorizes with. Readable by the member themself, staff (`member.view_status`) and internal services
    (`X-Actor-Id: service:<name>`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    actor_member = None if actor.is_service else await find_membership(session, community.id, actor.id)
    return await members.view_member(session, community=community, actor=actor, member_id=member_id,
                                     actor_member=actor_member)


@router.get("/communities/{community_id}/authorize")
async def authorize_action(
    community_id: str, session: SessionDep, actor: ActorDep,
    member_id: Annotated[str, Query(min_length=3, max_length=200)],
    action: Annotated[str, Query(max_length=100)],
) -> dict:
    """May `member_id` do `action` in this community? (the matrix, the member's role and standing, and the
    community's settings). For the gateway and the member themself. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    if actor.id != member_id and not actor.is_service:
        await authorize(session, community=community, actor=actor, action="member.view_status")
    if action not in permissions.MATRIX:
        from membership.errors import BadInput

        raise BadInput(f"unknown action {action!r}; see GET /permissions")
    member = await find_membership(session, community.id, member_id)
    allowed = community.status == "active" and member is not None and permissions.allowed(
        action, role=member.role, status=member.status, settings=community_flags(community))
    return {"community_id": community.id, "member_id": member_id, "action": action, "allowed": allowed,
            "role": member.role if member else None, "status": member.status if member else None}


@router.patch("/communities/{community_id}/members/{member_id}", response_model=MemberPublic)
async def update_profile(community_id: str, member_id: str, body: ProfileUpdate, session: SessionDep,
                         ctx: CtxDep, actor: PersonDep) -> MemberPublic:
    """A member edits their own display name and contact (nothing else can be sent).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    if actor.id != member_id:
        raise PermissionDenied("members edit only their own profile")
    member = await get_membership(session, community.id, member_id, for_update=True)
    for key, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(member, key, value)
    return members.public_view(member, community)


@router.put("/communities/{community_id}/members/{member_id}/role", response_model=MemberPublic)
async def change_role(community_id: str, member_id: str, body: RoleChange, session: SessionDep, ctx: CtxDep,
                      actor: PersonDep) -> MemberPublic:
    """Make someone admin / guest or demote them. Only the owner grants or revokes admin; owner and admins
    manage guests (within the guest limit, default 50). Emits `member.role_changed`.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True, allow_dissolved=False)
    actor_member = await acting_member(session, community=community, actor=actor)
    member = await members.change_role(session, ctx=ctx, community=community, actor=actor_member,
                                       member_id=member_id, role=body.role)
    return members.public_view(member, community)


@router.post("/communities/{community_id}/members/{member_id}/removal", response_model=MemberPublic)
async def remove_member(community_id: str, member_id: str, body: RemovalRequest, session: SessionDep,
                        ctx: CtxDep, actor: PersonDep) -> MemberPublic:
    """Remove a member with a reason (`member.remove.<target role>`: admins remove members and guests, only the
    owner removes admins). Emits `member.removed` and a bot remove command per group.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True)
    actor_member = await acting_member(session, community=community, actor=actor)
    member = await members.remove_member(session, ctx=ctx, community=community, actor=actor_member,
                                         member_id=member_id, reason=body.reason)
    return members.public_view(member, community)


@router.post("/communities/{community_id}/members/{member_id}/blacklist", status_code=status.HTTP_204_NO_CONTENT)
async def blacklist(community_id: str, member_id: Annotated[PersonId, Path(description=BLACKLISTED)],
                    body: BlacklistRequest, session: SessionDep, ctx: CtxDep, actor: PersonDep) -> Response:
    """Blacklist a person (member or not) for all of the owner's communities and remove them here
    (`member.blacklist.<target role>`). `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, for_update=True)
    actor_member = await acting_member(session, community=community, actor=actor)
    await members.blacklist_member(session, ctx=ctx, community=community, actor=actor_member, person_id=member_id,
                                   reason=body.reason, decided_by=actor.recorded_as)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/communities/{community_id}/blacklist", response_model=list[BlacklistPublic])
async def list_blacklist(community_id: str, session: SessionDep, actor: ActorDep) -> list[BlacklistPublic]:
    """The owner's blacklist (all of the owner's communities; `blacklist.manage`). `X-Actor-Id`: the acting person."""
    from sqlalchemy import select

    from membership.models import BlacklistEntry

    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="blacklist.manage")
    rows = (await session.execute(select(BlacklistEntry).where(BlacklistEntry.owner_id == community.owner_id)
                                  .order_by(BlacklistEntry.created_at).limit(1000))).scalars().all()
    return [BlacklistPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/communities/{community_id}/blacklist/{person_id}", status_code=204)
async def unblacklist(community_id: str, person_id: str, session: SessionDep, ctx: CtxDep,
                      actor: PersonDep) -> Response:
    """Lift a blacklisting (`blacklist.manage`); the person may then join again. `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    await authorize(session, community=community, actor=actor, action="blacklist.manage")
    if not await lift_blacklist(session, ctx, community=community, person_id=person_id, decided_by=actor.recorded_as):
        from membership.errors import ResourceNotFound

        raise ResourceNotFound(f"{person_id} is not on the blacklist")
    return Response(status_code=204)


@router.put("/communities/{community_id}/members/{member_id}/groups", response_model=MemberPublic)
async def assign_group(community_id: str, member_id: str, body: SeatAssign, session: SessionDep, ctx: CtxDep,
                       actor: PersonDep) -> MemberPublic:
    """Seat a member in a given group, e.g. promote to a core (B) group (`group.manage`); capacity applies.
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id, allow_dissolved=False)
    await authorize(session, community=community, actor=actor, action="group.manage")
    group = await get_group(session, community_id=community.id, group_id=body.group_id)
    member = await get_membership(session, community.id, member_id, for_update=True)
    await assign_to_group(session, ctx=ctx, member=member, group=group)
    return members.public_view(member, community)


@router.get("/communities/{community_id}/members/{member_id}/referrals")
async def referrals(community_id: str, member_id: str, session: SessionDep, actor: ActorDep) -> dict:
    """The member's referral chain upwards and the people they referred (self or staff).
    `X-Actor-Id`: the acting person."""
    community = await load_community(session, community_id)
    if actor.id != member_id:
        await authorize(session, community=community, actor=actor, action="member.view_status")
    await get_membership(session, community.id, member_id)
    chain = await members.referral_chain(session, community_id=community.id, member_id=member_id)
    referred = await members.referred_by(session, community_id=community.id, referrer_id=member_id)
    return {"chain": chain, "referred": [{"member_id": m.member_id, "status": m.status, "joined_at": m.joined_at}
                                         for m in referred]}

