"""Events produced by the membership service on membership.events.v1 (owned by membership).

Every state change of the membership service emits one of these through its outbox. Member events carry
the whole membership (`MemberChanged`), so a consumer can keep a projection with "newest `changed_at`
wins" and never needs to apply deltas in order. Money is in fen (integers); timestamps are aware (UTC).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import GroupId, PersonId, Platform
from qunzhu_common.events.registry import EventSpec
from qunzhu_common.events.topics import MEMBERSHIP_EVENTS

EntryPolicy = Literal["free", "paid", "invite_only", "application", "referral_required"]
CommunityTemplate = Literal["learning", "resource_sharing", "skills_course", "networking", "product_sales"]
ChatJoinPolicy = Literal["admit", "flag", "ignore"]
_CHAT_JOIN_POLICY = ("What a chat join by someone without a live membership does, as in force (an unset policy "
                     "shows the default it stands for); absent in events older than the field.")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommunityCreated(_Payload):
    """A community was created; every service keeps its own copy of what it needs."""

    community_id: str
    name: str = Field(min_length=1, max_length=100)
    positioning: str = Field(min_length=1, max_length=280)
    owner_id: str
    timezone: str = "Asia/Shanghai"
    entry_policies: list[EntryPolicy] = Field(default_factory=lambda: ["free"])
    created_at: AwareDatetime
    template: CommunityTemplate | None = None
    rules_version: int = Field(default=0, ge=0, description="Current rules (群规) version; 0 = no rules yet.")
    chat_join_policy: ChatJoinPolicy | None = Field(default=None, description=_CHAT_JOIN_POLICY)


class CommunityUpdated(_Payload):
    """The community's public face or settings changed (or it was dissolved); carries the whole state."""

    community_id: str
    name: str = Field(min_length=1, max_length=100)
    positioning: str = Field(min_length=1, max_length=280)
    owner_id: str
    timezone: str
    entry_policies: list[EntryPolicy]
    status: Literal["active", "dissolved"]
    rules_version: int = Field(ge=0)
    reading_limit_days: int | None = Field(default=None, ge=7, le=100)
    member_list_visible: bool = False
    contact_visible: bool = False
    ritual_enabled: bool = False
    chat_join_policy: ChatJoinPolicy | None = Field(default=None, description=_CHAT_JOIN_POLICY)
    changed_at: AwareDatetime


class RulesPublished(_Payload):
    """A new version of the community rules (群规); members joining from now on accept this one."""

    community_id: str
    version: int = Field(ge=1)
    text: str = Field(max_length=20000)
    published_by: str = Field(max_length=200)
    published_at: AwareDatetime


class ScoringRulePreset(_Payload):
    """A default scoring rule for the engagement service (editable there)."""

    action: str = Field(max_length=50, description="checkin, homework, message, reply, reaction, red_packet, intro…")
    points: int
    daily_cap: int | None = Field(default=None, ge=0)


class ContentSlotPreset(_Payload):
    """A default fixed-time content slot for the content service (editable there)."""

    title: str = Field(max_length=200)
    kind: str = Field(max_length=50, description="post, topic, sharing_session, checkin_prompt, welfare_night…")
    weekdays: list[int] = Field(default_factory=list, description="ISO weekdays 1–7; empty = every day.")
    local_time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM in the community's zone.")
    duration_minutes: int | None = Field(default=None, ge=1)


class CommunityTemplateApplied(_Payload):
    """A community was created from a template: defaults for the other services (every preset stays editable)."""

    community_id: str
    template: CommunityTemplate
    scoring_rules: list[ScoringRulePreset]
    content_rhythm: list[ContentSlotPreset]
    applied_at: AwareDatetime


class GroupChanged(_Payload):
    """A chat group of the community, as registered (capacity counts assigned members)."""

    community_id: str
    group_id: GroupId
    platform: Platform
    external_id: str = Field(max_length=200)
    name: str = Field(default="", max_length=200)
    capacity: int = Field(ge=1)
    role: Literal["A", "B"] = Field(description="A = open group, B = core group.")
    paid: bool = Field(description="Only members with an active paid membership may stay.")
    active: bool = True
    changed_at: AwareDatetime


TermType = Literal["fixed_term", "fixed_duration"]


class PlanChanged(_Payload):
    community_id: str
    plan_id: str
    name: str = Field(max_length=100)
    price_fen: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    term_type: TermType
    duration_days: int | None = Field(default=None, ge=1)
    trial_days: int = Field(default=0, ge=0)
    renewal_price_fen: int | None = Field(default=None, ge=0)
    refund_window_hours: int = Field(ge=0)
    tier: str = Field(max_length=50)
    active: bool
    changed_at: AwareDatetime


Role = Literal["owner", "admin", "guest", "member"]
MemberStatus = Literal[
    "applied", "rejected", "pending_payment", "pending_ritual", "active", "expired", "removed", "blacklisted",
    "paused",  # left every chat group of a community whose chat leave policy is `pause`; no access until back
]


class MemberChanged(_Payload):
    """The state of one membership after a change; every member.* event carries it whole."""

    community_id: str
    member_id: PersonId
    display_name: str = Field(default="", max_length=200)
    role: Role
    status: MemberStatus
    tier: str = Field(default="", max_length=50, description="Plan tier used by the paywall; '' when free.")
    joined_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=500, description="Why (removal, rejection, expiry…).")
    changed_at: AwareDatetime
    # Added later (optional, so not breaking):
    group_ids: list[GroupId] = Field(default_factory=list, description="Chat groups the member is assigned to.")
    referrer_id: PersonId | None = None
    plan_id: str | None = Field(default=None, max_length=100)


RefundReasonCode = Literal[
    "self_service", "blacklisted", "not_eligible", "amount_mismatch", "currency_mismatch", "unknown_plan",
    "community_dissolved",
]


class RefundRequested(_Payload):
    """A command for the payments side (gateway): refund this payment. Membership revokes on `payment.refunded`."""

    request_id: str = Field(max_length=100, description="Idempotency key of the refund command.")
    community_id: str
    payment_id: str = Field(max_length=200)
    provider: Literal["stripe", "wechatpay", "manual"]
    payer_id: PersonId
    amount_fen: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    reason_code: RefundReasonCode
    reason: str = Field(default="", max_length=500)
    requested_at: AwareDatetime


class RevenueRecorded(_Payload):
    """Ledger entries written for one payment or one refund; the parts always add up to `amount_fen`.

    For a refund every part is the (positive) amount taken back from that account.
    """

    community_id: str
    payment_id: str = Field(max_length=200)
    refund_id: str | None = Field(default=None, max_length=200)
    kind: Literal["payment", "refund"]
    amount_fen: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    owner_fen: int
    platform_fee_fen: int
    referral_commission_fen: int
    suspense_fen: int = Field(description="Money of a payment that could not be applied (refund requested).")
    referrer_id: PersonId | None = None
    occurred_at: AwareDatetime


class InviteChanged(_Payload):
    """An invite code was created or revoked (the code itself, a bearer secret, is not published)."""

    community_id: str
    invite_id: str
    inviter_id: PersonId
    max_uses: int = Field(ge=1)
    uses: int = Field(ge=0)
    expires_at: AwareDatetime | None = None
    revoked: bool = False
    changed_at: AwareDatetime


class InviteRedeemed(_Payload):
    community_id: str
    invite_id: str
    inviter_id: PersonId
    invitee_id: PersonId
    redeemed_at: AwareDatetime


class BlacklistChanged(_Payload):
    """The owner's blacklist (it covers all of the owner's communities) gained or lost a person."""

    community_id: str = Field(description="The community where it was decided.")
    owner_id: str
    person_id: PersonId
    listed: bool
    reason: str = Field(default="", max_length=500)
    decided_by: str = Field(max_length=200)
    changed_at: AwareDatetime


class UnpaidJoinChanged(_Payload):
    """Someone joined a paid chat group without an active membership (reconciliation)."""

    community_id: str
    flag_id: str
    group_id: GroupId
    person_id: PersonId
    joined_at: AwareDatetime
    policy: Literal["flag", "remove"]
    state: Literal["open", "cleared", "removed", "dismissed"]
    changed_at: AwareDatetime
    decided_by: str | None = Field(default=None, max_length=200, description=(
        "Who decided (`apikey:<id> for <person>` when an operator acted for them); null: automatic."))


class RemovalReviewChanged(_Payload):
    """A removal waits for review (policy `review`) or the review was decided."""

    community_id: str
    review_id: str
    member_id: PersonId
    reason: str = Field(max_length=500)
    source: Literal["engagement", "admin"]
    state: Literal["pending", "approved", "dismissed"]
    decided_by: str | None = Field(default=None, max_length=200)
    changed_at: AwareDatetime


class MemberReminded(_Payload):
    """A reminder was sent to a member through chat.actions.v1 (renewal or joining ritual)."""

    community_id: str
    member_id: PersonId
    kind: Literal["renewal", "ritual"]
    expires_at: AwareDatetime | None = None
    days_before: int | None = Field(default=None, ge=0)
    group_id: GroupId | None = None
    reminded_at: AwareDatetime


class CampaignWinner(_Payload):
    place: int = Field(ge=1)
    member_id: PersonId
    invites: int = Field(ge=0)


class CampaignChanged(_Payload):
    """A fission campaign (裂变): a member goal or an invite contest, with its progress."""

    community_id: str
    campaign_id: str
    kind: Literal["member_goal", "invite_contest"]
    title: str = Field(max_length=200)
    reward: str = Field(max_length=500)
    goal: int | None = Field(default=None, ge=1)
    progress: int = Field(default=0, ge=0)
    group_id: GroupId | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    state: Literal["open", "goal_reached", "finished", "cancelled"]
    winners: list[CampaignWinner] = Field(default_factory=list)
    changed_at: AwareDatetime


def _spec(type_: str, payload: type[BaseModel], description: str) -> EventSpec:
    return EventSpec(type=type_, version=1, topic=MEMBERSHIP_EVENTS, payload=payload, description=description)


def _member(type_: str, description: str) -> EventSpec:
    return _spec(type_, MemberChanged, description)


MEMBER_EVENT_TYPES: tuple[str, ...] = (
    "member.applied", "member.rejected", "member.joined", "member.activated", "member.renewed",
    "member.expired", "member.removed", "member.blacklisted", "member.role_changed", "member.groups_changed",
)

MEMBERSHIP_SPECS = (
    _spec("community.created", CommunityCreated, "A community was created by its owner."),
    _spec("community.updated", CommunityUpdated, "A community's public face or settings changed."),
    _spec("community.dissolved", CommunityUpdated, "The owner dissolved the community."),
    _spec("community.template_applied", CommunityTemplateApplied,
          "A community was created from a template: default scoring rules and content rhythm."),
    _spec("rules.published", RulesPublished, "A new version of the community rules (群规)."),
    _spec("group.registered", GroupChanged, "A chat group was added to a community."),
    _spec("group.updated", GroupChanged, "A chat group's capacity, role or paid flag changed."),
    _spec("plan.created", PlanChanged, "A paid plan was created."),
    _spec("plan.updated", PlanChanged, "A plan changed (applies to payments from now on)."),
    _member("member.applied", "Someone applied to join; awaits review."),
    _member("member.rejected", "An application was rejected (the reason says why)."),
    _member("member.joined", "A membership was created (may still await payment or the joining ritual)."),
    _member("member.activated", "A membership became active."),
    _member("member.renewed", "An active membership was extended."),
    _member("member.expired", "A membership ran out."),
    _member("member.removed", "A member was removed (the reason says why)."),
    _member("member.blacklisted", "A member was blacklisted and removed."),
    _member("member.role_changed", "A member's role changed (owner, admin, guest, member)."),
    _member("member.groups_changed", "A member was assigned to or released from chat groups."),
    _spec("refund.requested", RefundRequested, "Command: refund a payment (self-service or not applicable)."),
    _spec("revenue.recorded", RevenueRecorded, "Ledger entries for a payment or a refund (fen)."),
    _spec("invite.created", InviteChanged, "An invite code was created."),
    _spec("invite.revoked", InviteChanged, "An invite code was revoked."),
    _spec("invite.redeemed", InviteRedeemed, "Someone joined with an invite code."),
    _spec("blacklist.changed", BlacklistChanged, "The owner's blacklist gained or lost a person."),
    _spec("unpaid_join.flagged", UnpaidJoinChanged, "Someone is in a paid group without an active membership."),
    _spec("unpaid_join.resolved", UnpaidJoinChanged, "A flagged unpaid join was cleared, removed or dismissed."),
    _spec("removal.queued", RemovalReviewChanged, "A removal awaits review by the owner or an admin."),
    _spec("removal.reviewed", RemovalReviewChanged, "A queued removal was approved or dismissed."),
    _spec("member.reminded", MemberReminded, "A renewal or ritual reminder was sent."),
    _spec("campaign.created", CampaignChanged, "A fission campaign was created."),
    _spec("campaign.goal_reached", CampaignChanged, "A member-goal campaign reached its goal."),
    _spec("campaign.finished", CampaignChanged, "An invite contest ended; the winners are known."),
)
