"""The one permission matrix: which role may do what. Every route and the gateway use it.

An action is allowed when the actor's role is listed for it and the actor is in good standing
(owner always; staff unless removed or blacklisted; members only while `active`). Some member rights
depend on a community setting (`conditional`): e.g. members see the member list only when the owner
made it visible. Actions on another member name the target's role (`member.remove.admin`), so
"only the owner removes admins" is a row of the matrix, not an `if` in a route.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES: tuple[str, ...] = ("owner", "admin", "guest", "member")
ROLE_RANK = {"member": 0, "guest": 1, "admin": 2, "owner": 3}

OWNER = frozenset({"owner"})
STAFF = frozenset({"owner", "admin"})
SPEAKERS = frozenset({"owner", "admin", "guest"})
EVERYONE = frozenset(ROLES)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    description: str
    # role → name of the community setting (a bool) that must be on for that role
    conditional: dict[str, str] = field(default_factory=dict)


MATRIX: dict[str, Rule] = {
    # community
    "community.update": Rule(STAFF, "Edit name, positioning, rules, ritual, privacy and paywall settings."),
    "community.billing": Rule(OWNER, "Plans, prices, refund windows, commission rates, term anniversary."),
    "community.dissolve": Rule(OWNER, "Dissolve the community (解散)."),
    "group.manage": Rule(STAFF, "Register chat groups, set capacity and role, move members between groups."),
    "mention.all": Rule(OWNER, "@-mention everyone (@所有人)."),
    # content (enforced by the content service and the gateway with this matrix)
    "content.post": Rule(SPEAKERS, "Publish posts."),
    "content.ask": Rule(EVERYONE, "Ask questions."),
    "content.comment": Rule(EVERYONE, "Comment."),
    "content.delete": Rule(STAFF, "Delete other people's content."),
    # members
    "member.view": Rule(SPEAKERS | {"member"}, "See the member list.",
                        conditional={"member": "member_list_visible"}),
    "member.view_contact": Rule(STAFF | {"guest", "member"}, "See members' contact details.",
                                conditional={"guest": "contact_visible", "member": "contact_visible"}),
    "member.review": Rule(STAFF, "Approve or reject applications; decide queued removals."),
    "member.remove.member": Rule(STAFF, "Remove a member."),
    "member.remove.guest": Rule(STAFF, "Remove a guest."),
    "member.remove.admin": Rule(OWNER, "Remove an admin (only the owner)."),
    "member.blacklist.member": Rule(STAFF, "Blacklist a member (no rejoining any of the owner's communities)."),
    "member.blacklist.guest": Rule(STAFF, "Blacklist a guest."),
    "member.blacklist.admin": Rule(OWNER, "Blacklist an admin."),
    "blacklist.manage": Rule(OWNER, "See and lift the owner's blacklist."),
    "role.grant.admin": Rule(OWNER, "Make someone an admin."),
    "role.revoke.admin": Rule(OWNER, "Demote an admin."),
    "role.grant.guest": Rule(STAFF, "Make someone a guest (嘉宾), within the guest limit."),
    "role.revoke.guest": Rule(STAFF, "Demote a guest."),
    "member.view_status": Rule(STAFF, "See another member's status, term and payments-related state."),
    # growth
    "invite.create": Rule(EVERYONE, "Create invite codes (the inviter is recorded)."),
    "invite.manage": Rule(STAFF, "See and revoke everyone's invite codes."),
    "campaign.manage": Rule(STAFF, "Create and cancel fission campaigns."),
    "leaderboard.view": Rule(EVERYONE, "See the invite leaderboard and campaign progress."),
    # money
    "ledger.view": Rule(OWNER, "See payments, refunds and the revenue/commission ledger."),
    "paywall.check": Rule(STAFF, "Ask the paywall about another member."),
    "reconciliation.view": Rule(STAFF, "See people flagged in paid groups without a membership."),
}

# Statuses in which a plain member may act at all.
MEMBER_ACTIVE_STATUSES = frozenset({"active"})
STAFF_BLOCKED_STATUSES = frozenset({"removed", "blacklisted"})


def in_good_standing(role: str, status: str) -> bool:
    if role == "owner":
        return True
    if role in ("admin", "guest"):
        return status not in STAFF_BLOCKED_STATUSES
    return status in MEMBER_ACTIVE_STATUSES


def role_allows(action: str, role: str, settings: dict[str, bool] | None = None) -> bool:
    """Whether the matrix gives `role` the `action` (ignoring standing)."""
    rule = MATRIX.get(action)
    if rule is None or role not in rule.roles:
        return False
    condition = rule.conditional.get(role)
    return condition is None or bool((settings or {}).get(condition, False))


def allowed(action: str, *, role: str, status: str, settings: dict[str, bool] | None = None) -> bool:
    return in_good_standing(role, status) and role_allows(action, role, settings)


def allowed_actions(*, role: str, status: str, settings: dict[str, bool] | None = None) -> list[str]:
    return [a for a in MATRIX if allowed(a, role=role, status=status, settings=settings)]


def matrix_document() -> dict:
    """The matrix as data (GET /permissions), so the gateway and the front ends need no copy of it."""
    return {
        "roles": list(ROLES),
        "standing": {
            "owner": "always",
            "admin": "unless removed or blacklisted",
            "guest": "unless removed or blacklisted",
            "member": "only while status is active",
        },
        "actions": {
            name: {
                "roles": [r for r in ROLES if r in rule.roles],
                "conditional": dict(rule.conditional),
                "description": rule.description,
            }
            for name, rule in MATRIX.items()
        },
    }
