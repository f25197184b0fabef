"""The paywall at the door: a request to join a QQ group (OneBot `request`, `sub_type: add`) is decided as the
community's own `chat_join_policy` would treat that person's chat join (membership's arrivals.py).

It reads the gateway's projections of membership.events.v1 — member_role for the person, community_door for the
community's entry and chat join policies (carried by community.created / community.updated), door_group for
whether the group is paid — so a decision, and the replay of a quarantined request, needs no live lookup:

- a member who may be in the groups (`active`, `pending_ritual`, or `paused` — left every group while still
  paid; approved, the chat join then makes them live again) is approved under every policy, and someone
  blacklisted is refused under every policy;
- `admit` (a free community): anyone else is approved, as membership admits them on joining — except into a
  paid group (admit never opens one, like membership's flag) and except the removed (unless for leaving
  every group) and the rejected;
- `flag`: anyone else is refused with a reason that links to checkout (the paid/invited/approved are active);
- `ignore`: anyone else is left undecided — membership's `ignore` means a chat join is not Qunzhu's business
  (it neither admits nor flags), so the group's own admins decide in QQ; nothing is recorded.

A community projected before its events carried `chat_join_policy` (or not projected at all) falls back to
its entry policies: `admit` when they are `free` alone, `flag` otherwise — membership's own default. Only with
no projection at all is membership asked for the public entry policies; unreachable: no decision (the request
stays pending in QQ, where an admin may still decide, or the person asks again). A decision is recorded as a
`chat.action.requested` of kind `decide_join` (approve, the request's flag, the reason) written with the
delivery, and carried out by the bot-action worker (`set_group_add_request`), rate-limited and retried.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.models import CommunityDoor, DoorGroup, MemberRole
from gateway.settings import GatewaySettings
from gateway.webhooks.adapters import ConnectorView
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import Staged, stage
from gateway.webhooks.onebot import JoinRequest
from qunzhu_common.events.registry import EventRegistry

# A membership in one of these lets its holder into the community's groups. An approved application in
# a free community is already active; in a paid one it waits for payment (pending_payment) at checkout.
# A paused member left every group but is still paid (their end date runs): asking again is coming back.
ADMITTED_STATUSES = ("active", "pending_ritual", "paused")
NOT_READMITTED = ("removed", "rejected", "blacklisted")  # as membership's arrivals.NOT_READMITTED
LEFT_EVERY_GROUP = "left every chat group"  # membership's reason for `end`: such a person may come back
DECISIONS = ("approved", "refused")
OPEN_POLICIES = ["free"]
log = logging.getLogger(__name__)

EntryPolicies = Callable[[str], Awaitable[list[str] | None]]
"""A community id → its entry policies, None when they cannot be learned now (membership unavailable)."""


class Undecided(Exception):
    """The decision needs membership, which did not answer."""


@dataclass(frozen=True)
class Decision:
    approve: bool
    why: str  # member, admit_policy, no_membership, <status>, paid_group; ignore_policy when left undecided
    staged: Staged | None  # None: left undecided (policy ignore), nothing recorded

    @property
    def outcome(self) -> str:
        return "undecided" if self.staged is None else DECISIONS[not self.approve]


def admits(row: MemberRole | None) -> tuple[bool, str]:
    if row is None:
        return False, "no_membership"
    if row.status in ADMITTED_STATUSES:
        return True, "member"
    return False, row.status


def default_policy(entry_policies: list[str]) -> str:
    """membership's effective_chat_join_policy for an unset policy."""
    return "admit" if sorted(set(entry_policies)) == OPEN_POLICIES else "flag"


def by_policy(policy: str, row: MemberRole | None, *, paid_group: bool) -> bool | None:
    """Approve (True), refuse (False) or leave undecided (None) someone who is not an admitted member."""
    if row is not None and row.status == "blacklisted":
        return False
    if policy == "ignore":
        return None
    if policy == "admit":
        return not paid_group and (row is None or row.status not in NOT_READMITTED
                                    or row.status_reason == LEFT_EVERY_GROUP)
    return False


def refusal(settings: GatewaySettings, community_id: str, why: str) -> str:
    """The text QQ shows the refused person (at most 500 characters)."""
    if why == "blacklisted":
        return "你不能加入这个群。"
    link = settings.join_checkout_url_template.replace("{community_id}", community_id)
    what = {"expired": "会员已到期，续费后再申请入群", "applied": "入群申请还在审核中，通过并付费后再申请入群",
            "pending_payment": "付费后再申请入群"}.get(why, "这是付费社群，请先加入并付费")
    return (f"{what}：{link}" if link else f"{what}。")[:500]


async def decide(settings: GatewaySettings, session_maker, registry: EventRegistry, connector: ConnectorView,
                 ask: JoinRequest, entry_policies: EntryPolicies | None = None) -> Decision:
    """Raises Undecided when only membership could tell and it did not answer."""
    community_id = connector.groups.get(ask.chat_id)
    if community_id is None:
        raise Unnormalisable(f"chat group {connector.identity_platform}:{ask.chat_id} is not mapped to a community")
    person = f"{connector.identity_platform}:{ask.user_id}"
    group_id = f"{connector.identity_platform}:{ask.chat_id}"
    async with session_maker() as session:
        row = await session.get(MemberRole, (community_id, person))
        door = await session.get(CommunityDoor, community_id)
        group = await session.get(DoorGroup, group_id)
    approve, why = admits(row)
    decided: bool | None = approve
    if not approve:
        if door is not None:
            policy = door.chat_join_policy or default_policy(list(door.entry_policies))
        elif entry_policies is not None:
            policies = await entry_policies(community_id)
            if policies is None:
                raise Undecided(community_id)
            policy = default_policy(policies)
        else:
            policy = "flag"
        paid_group = group is not None and group.paid
        decided = by_policy(policy, row, paid_group=paid_group)
        if decided is None:
            why = "ignore_policy"
        elif decided:
            why = "admit_policy"
        elif policy == "admit" and paid_group and row is None:
            why = "paid_group"
    if decided is None:
        return Decision(False, why, None)
    flag_digest = hashlib.sha256(ask.flag.encode()).hexdigest()[:32]
    staged = stage(registry, "chat.action.requested", community_id, dict(
        action_id=f"join:{connector.id}:{flag_digest}", action="decide_join", group_id=group_id, member_id=person,
        approve=decided, join_flag=ask.flag, reason="" if decided else refusal(settings, community_id, why),
        requested_by="gateway",
    ))
    return Decision(decided, why, staged)
