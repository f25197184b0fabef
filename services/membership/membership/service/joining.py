"""Join flows: apply → review → pay → active; invite codes; referrals; trials; the blacklist at the door."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from membership import permissions
from membership.context import MembershipContext
from membership.errors import (
    Blacklisted,
    CommunityDissolved,
    EntryRefused,
    InvalidState,
    InviteInvalid,
    PermissionDenied,
    PlanNotFound,
    RulesNotAccepted,
)
from membership.models import Community, Invite, InviteCreate, InviteRedemption, JoinRequest, Membership, Plan
from membership.service.access import find_membership, get_membership
from membership.service.events import emit_member
from membership.service.lifecycle import admit, is_blacklisted
from membership.service.terms import anniversary_of, replay
from qunzhu_common.events.contracts.membership import InviteChanged, InviteRedeemed

# A person already on the way in (or in) joining again gets their membership back unchanged.
IN_PROGRESS = frozenset({"applied", "pending_payment", "pending_ritual", "active", "expired"})


async def _check_door(session: AsyncSession, *, community: Community, person_id: str,
                      member: Membership | None) -> None:
    if community.status == "dissolved":
        raise CommunityDissolved("this community was dissolved and takes no new members")
    if (member is not None and member.status == "blacklisted") or await is_blacklisted(
        session, owner_id=community.owner_id, person_id=person_id
    ):
        raise Blacklisted("you are on the owner's blacklist and cannot join any of the owner's communities")


async def valid_referrer(session: AsyncSession, *, community_id: str, referrer_id: str | None,
                         person_id: str) -> str | None:
    """The referrer when they are a member in good standing (not the person themself); else None."""
    if not referrer_id or referrer_id == person_id:
        return None
    referrer = await find_membership(session, community_id, referrer_id)
    if referrer is None or not permissions.in_good_standing(referrer.role, referrer.status):
        return None
    return referrer_id


async def join(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, person_id: str, data: JoinRequest
) -> tuple[Membership, bool]:
    """Ask to join; returns (membership, created). The entry policy decides the resulting status:
    `application` → applied; `paid` → pending_payment; otherwise the person is admitted at once."""
    member = await find_membership(session, community.id, person_id, for_update=True)
    await _check_door(session, community=community, person_id=person_id, member=member)
    if member is not None and member.status in IN_PROGRESS:
        return member, False
    if member is not None and member.status == "paused":  # left every chat group; back through the website
        await admit(session, ctx, community=community, member=member, reason="back", prior_status="paused")
        return member, False
    if community.rules_version and data.accepted_rules_version != community.rules_version:
        raise RulesNotAccepted(
            f"accept the current rules (version {community.rules_version}) to join",
            current_version=community.rules_version,
        )
    policies = set(community.entry_policies)
    if data.plan_id is not None:
        plan = await session.get(Plan, data.plan_id)
        if plan is None or plan.community_id != community.id or not plan.active:
            raise PlanNotFound(f"plan {data.plan_id} is not an active plan of this community")
    invite = None
    if data.invite_code:
        invite = await redeem_invite(session, ctx=ctx, community=community, code=data.invite_code,
                                     invitee_id=person_id)
    elif "invite_only" in policies:
        raise EntryRefused("this community is invitation-only: an invite code is required", reason="invite_required")
    asked_referrer = invite.inviter_id if invite is not None else data.referrer_id
    referrer = await valid_referrer(session, community_id=community.id, referrer_id=asked_referrer,
                                    person_id=person_id)
    if asked_referrer and referrer is None:
        raise EntryRefused(f"{asked_referrer} is not a member in good standing who can refer you",
                           reason="referrer_invalid")
    if "referral_required" in policies and referrer is None:
        raise EntryRefused("joining needs the referral of a member (referrer_id or an invite code)",
                           reason="referral_required")
    prior = member.status if member is not None else "new"
    if member is None:
        member = Membership(community_id=community.id, member_id=person_id, status="new", created_at=ctx.now(),
                                changed_at=ctx.now())
        session.add(member)
    member.role, member.comp = "member", False
    member.referrer_id = referrer
    member.invite_id = invite.id if invite is not None else None
    member.accepted_rules_version = community.rules_version
    member.application_text = data.application_text
    member.display_name = data.display_name or member.display_name
    member.contact = data.contact or member.contact
    member.plan_id = data.plan_id
    member.reviewed_by = member.reviewed_at = None
    if "application" in policies:
        member.status, member.status_reason = "applied", ""
        await emit_member(session, ctx, "member.applied", member)
    elif "paid" in policies:
        member.status, member.status_reason = "pending_payment", ""
        await emit_member(session, ctx, "member.joined", member, reason="awaiting payment")
    else:
        await admit(session, ctx, community=community, member=member, reason="joined", prior_status=prior)
    return member, True


async def review_application(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, member_id: str, approve: bool,
    reason: str, reviewer_id: str,
) -> Membership:
    member = await get_membership(session, community.id, member_id, for_update=True)
    if member.status != "applied":
        raise InvalidState(f"{member_id} has no application waiting (status {member.status})")
    if not approve and not reason.strip():
        raise EntryRefused("a rejection needs a reason", reason="reason_required")
    await _check_door(session, community=community, person_id=member_id, member=member)
    member.reviewed_by, member.reviewed_at = reviewer_id, ctx.now()
    if not approve:
        member.status, member.status_reason = "rejected", reason
        await emit_member(session, ctx, "member.rejected", member, reason=reason)
    elif "paid" in community.entry_policies:
        member.status, member.status_reason = "pending_payment", reason or "approved"
        await emit_member(session, ctx, "member.joined", member, reason="approved; awaiting payment")
    else:
        await admit(session, ctx, community=community, member=member, reason=reason or "approved",
                    prior_status="applied")
    return member


async def list_applications(session: AsyncSession, *, community_id: str, offset: int, limit: int):
    where = (Membership.community_id == community_id, Membership.status == "applied")
    rows = (await session.execute(
        select(Membership).where(*where).order_by(Membership.created_at, Membership.id).offset(offset).limit(limit)
    )).scalars().all()
    count = await session.scalar(select(func.count()).select_from(Membership).where(*where))
    return list(rows), int(count or 0)


async def start_trial(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, person_id: str, plan_id: str
) -> Membership:
    """A free trial of a plan, once per person and community. Gates (application, invite, referral) apply
    first: only someone who could pay may try."""
    plan = await session.get(Plan, plan_id)
    if plan is None or plan.community_id != community.id or not plan.active:
        raise PlanNotFound(f"plan {plan_id} is not an active plan of this community")
    if plan.trial_days <= 0:
        raise InvalidState(f"plan {plan.name} has no trial")
    member = await find_membership(session, community.id, person_id, for_update=True)
    await _check_door(session, community=community, person_id=person_id, member=member)
    gated = {"application", "invite_only", "referral_required"} & set(community.entry_policies)
    if member is None and gated:
        raise EntryRefused(f"join first ({', '.join(sorted(gated))})", reason="join_first")
    if member is not None and member.trial_used:
        raise InvalidState("the trial was already used")
    if member is not None and member.status not in ("pending_payment", "removed", "rejected"):
        raise InvalidState(f"a trial is for people about to pay (status {member.status})")
    if member is not None and member.status == "rejected" and gated:
        raise EntryRefused("your application was rejected", reason="rejected")
    prior = member.status if member is not None else "new"
    if member is None:
        member = Membership(community_id=community.id, member_id=person_id, status="new", created_at=ctx.now(),
                                changed_at=ctx.now())
        session.add(member)
    now = ctx.now()
    member.trial_used = True
    member.trial_expires_at = now + _days(plan.trial_days)
    member.tier, member.plan_id = plan.tier, plan.id
    member.expires_at = await membership_end(session, community=community, member=member)
    await admit(session, ctx, community=community, member=member, reason="trial", prior_status=prior)
    return member


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


async def membership_end(session: AsyncSession, *, community: Community, member: Membership):
    """Replay the member's granted payments (and trial) into the end of their membership."""
    from membership.models import Payment
    from membership.service.terms import Grant

    rows = (await session.execute(
        select(Payment).where(
            Payment.community_id == community.id, Payment.payer_id == member.member_id, Payment.outcome == "granted"
        )
    )).scalars().all()
    grants = [Grant(p.payment_id, p.paid_at, p.term_type, p.duration_days) for p in rows]  # type: ignore[arg-type]
    anniversary = anniversary_of(community.created_at, community.timezone, community.term_anniversary)
    return replay(grants, anniversary=anniversary, tz=community.timezone, trial_expires_at=member.trial_expires_at)


# -- invites ---------------------------------------------------------------------------------------------

async def _emit_invite(session: AsyncSession, ctx: MembershipContext, invite: Invite, type_: str) -> None:
    await ctx.outbox.emit(
        session, type=type_, community_id=invite.community_id,
        data=InviteChanged(community_id=invite.community_id, invite_id=invite.id, inviter_id=invite.inviter_id,
                           max_uses=invite.max_uses, uses=invite.uses, expires_at=invite.expires_at,
                           revoked=invite.revoked_at is not None, changed_at=ctx.now()),
    )


async def create_invite(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, inviter_id: str, data: InviteCreate
) -> Invite:
    if community.status == "dissolved":
        raise CommunityDissolved("this community was dissolved")
    if data.expires_at is not None and data.expires_at <= ctx.now():
        raise InviteInvalid("expires_at must be in the future")
    invite = Invite(code=secrets.token_urlsafe(9), community_id=community.id, inviter_id=inviter_id,
                    max_uses=data.max_uses, expires_at=data.expires_at, created_at=ctx.now())
    session.add(invite)
    await session.flush()
    await _emit_invite(session, ctx, invite, "invite.created")
    return invite


async def redeem_invite(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, code: str, invitee_id: str
) -> Invite:
    """Use one use of an invite code (a conditional UPDATE: uses never exceed max_uses, even concurrently)."""
    invite = (await session.execute(select(Invite).where(Invite.code == code))).scalar_one_or_none()
    if invite is None or invite.community_id != community.id:
        raise InviteInvalid("unknown invite code", reason="unknown")
    if invite.revoked_at is not None:
        raise InviteInvalid("this invite code was revoked", reason="revoked")
    if invite.expires_at is not None and invite.expires_at <= ctx.now():
        raise InviteInvalid("this invite code has expired", reason="expired")
    if invite.inviter_id == invitee_id:
        raise InviteInvalid("you cannot use your own invite code", reason="own_code")
    inviter = await find_membership(session, community.id, invite.inviter_id)
    if inviter is None or not permissions.in_good_standing(inviter.role, inviter.status):
        raise InviteInvalid("the inviter is no longer a member in good standing", reason="inviter_gone")
    if await session.get(InviteRedemption, (invite.id, invitee_id)) is not None:
        return invite  # the same person coming back with the same code does not use it twice
    result = await session.execute(
        update(Invite).where(Invite.id == invite.id, Invite.uses < Invite.max_uses, Invite.revoked_at.is_(None))
        .values(uses=Invite.uses + 1).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InviteInvalid("this invite code has been used up", reason="used_up")
    await session.refresh(invite, ["uses"])
    session.add(InviteRedemption(invite_id=invite.id, invitee_id=invitee_id, redeemed_at=ctx.now()))
    await session.flush()
    await ctx.outbox.emit(
        session, type="invite.redeemed", community_id=community.id,
        data=InviteRedeemed(community_id=community.id, invite_id=invite.id, inviter_id=invite.inviter_id,
                            invitee_id=invitee_id, redeemed_at=ctx.now()),
    )
    return invite


async def list_invites(session: AsyncSession, *, community_id: str, inviter_id: str | None, offset: int,
                       limit: int) -> tuple[list[Invite], int]:
    where = [Invite.community_id == community_id]
    if inviter_id is not None:
        where.append(Invite.inviter_id == inviter_id)
    rows = (await session.execute(
        select(Invite).where(*where).order_by(Invite.created_at.desc(), Invite.id).offset(offset).limit(limit)
    )).scalars().all()
    count = await session.scalar(select(func.count()).select_from(Invite).where(*where))
    return list(rows), int(count or 0)


async def revoke_invite(
    session: AsyncSession, *, ctx: MembershipContext, community: Community, invite_id: str, actor: Membership,
) -> Invite:
    from membership.errors import ResourceNotFound
    from membership.service.access import can

    invite = await session.get(Invite, invite_id)
    if invite is None or invite.community_id != community.id:
        raise ResourceNotFound(f"invite {invite_id} not found in this community")
    if invite.inviter_id != actor.member_id and not can(actor, community, "invite.manage"):
        raise PermissionDenied("only the inviter or an admin may revoke this invite", action="invite.manage")
    if invite.revoked_at is None:
        invite.revoked_at = ctx.now()
        await session.flush()
        await _emit_invite(session, ctx, invite, "invite.revoked")
    return invite
