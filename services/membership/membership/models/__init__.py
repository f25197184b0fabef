"""Membership's tables and their API schemas, one module per entity (SQLModel family per entity)."""

from membership.models.base import Body, MembershipModel, inbox_table, metadata, outbox_table, registry
from membership.models.community import (
    CommunitiesPublic,
    Community,
    CommunityCreate,
    CommunityPublic,
    CommunityRules,
    CommunitySettingsPublic,
    CommunitySettingsUpdate,
    CommunityUpdate,
    RitualUpdate,
    RulesCreate,
    RulesPublic,
)
from membership.models.group import ChatGroup, GroupCreate, GroupPublic, GroupUpdate, Seat, SeatAssign
from membership.models.invite import Campaign, CampaignCreate, CampaignProgress, Invite, InviteCreate, InviteRedemption
from membership.models.member import BlacklistEntry, JoinRequest, MemberPublic, Membership
from membership.models.ops import MemberReminder, RemovalReview, UnpaidJoinFlag
from membership.models.payment import LedgerEntry, Payment, Refund, RefundRequest
from membership.models.plan import Plan, PlanCreate, PlanPublic, PlanUpdate

__all__ = [
    "BlacklistEntry", "Body", "Campaign", "CampaignCreate", "CampaignProgress", "ChatGroup", "CommunitiesPublic",
    "Community", "CommunityCreate", "CommunityPublic", "CommunityRules", "CommunitySettingsPublic",
    "CommunitySettingsUpdate", "CommunityUpdate", "GroupCreate", "GroupPublic", "GroupUpdate", "Invite",
    "InviteCreate", "InviteRedemption", "JoinRequest", "LedgerEntry", "MemberPublic", "MemberReminder",
    "Membership", "MembershipModel", "Payment", "Plan", "PlanCreate", "PlanPublic", "PlanUpdate", "Refund",
    "RefundRequest", "RemovalReview", "RitualUpdate", "RulesCreate", "RulesPublic", "Seat", "SeatAssign",
    "UnpaidJoinFlag", "inbox_table", "metadata", "outbox_table", "registry",
]
