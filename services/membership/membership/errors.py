"""Membership's domain errors (subclasses of common's AppError, mapped once to problem+json)."""

from qunzhu_common.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class CommunityNotFound(NotFound):
    slug, title = "community-not-found", "Community not found"


class MemberNotFound(NotFound):
    slug, title = "member-not-found", "Member not found"


class PlanNotFound(NotFound):
    slug, title = "plan-not-found", "Plan not found"


class GroupNotFound(NotFound):
    slug, title = "group-not-found", "Chat group not found"


class ResourceNotFound(NotFound):
    slug, title = "not-found", "Not found"


class ActorRequired(Unauthorized):
    slug, title = "actor-required", "X-Actor-Id required"


class PermissionDenied(Forbidden):
    slug, title = "permission-denied", "Not allowed"


class Blacklisted(Forbidden):
    slug, title = "blacklisted", "Blacklisted"


class EntryRefused(Forbidden):
    slug, title = "entry-refused", "Entry refused"


class CommunityDissolved(Conflict):
    slug, title = "community-dissolved", "Community dissolved"


class AlreadyExists(Conflict):
    slug, title = "already-exists", "Already exists"


class InvalidState(Conflict):
    slug, title = "invalid-state", "Not possible in the current state"


class RulesNotAccepted(Conflict):
    slug, title = "rules-not-accepted", "The current rules were not accepted"


class CapacityExhausted(Conflict):
    slug, title = "capacity-exhausted", "No seat left"


class GuestLimitReached(Conflict):
    slug, title = "guest-limit-reached", "Guest limit reached"


class InviteInvalid(Conflict):
    slug, title = "invite-invalid", "Invite code not usable"


class RefundWindowClosed(Conflict):
    slug, title = "refund-window-closed", "Self-service refund window closed"


class RefundNotPossible(Conflict):
    slug, title = "refund-not-possible", "Refund not possible"


class ConcurrentUpdate(Conflict):
    slug, title = "concurrent-update", "Concurrent update; retry"


class BadInput(InvalidInput):
    slug, title = "invalid-input", "Invalid input"


__all__ = [
    "ActorRequired", "AlreadyExists", "AppError", "BadInput", "Blacklisted", "CapacityExhausted",
    "CommunityDissolved", "CommunityNotFound", "ConcurrentUpdate", "EntryRefused", "GroupNotFound",
    "GuestLimitReached", "InvalidState", "InviteInvalid", "MemberNotFound", "PermissionDenied", "PlanNotFound",
    "RefundNotPossible", "RefundWindowClosed", "ResourceNotFound", "RulesNotAccepted",
]
