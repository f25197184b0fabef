"""The paywall at the door: a request to join a QQ group (OneBot `request`, `sub_type: add`) is approved
only for a person whose membership of the group's community allows it, otherwise refused with a reason
that says where to pay.

The decision reads the gateway's membership projection (member_role, fed by membership.events.v1). Only a
person with no membership there costs a question to membership: the community's public entry policy — an
open, free community (entry policy `free` alone) lets anyone in, as its chat joins are admitted; any other
is refused with the link. Membership unreachable: no decision (the request stays pending in QQ, where an
admin may still decide, or the person asks again). It is recorded as a `chat.action.requested` of kind
`decide_join` (approve, the request's flag, the reason) written with the delivery, and carried out by the
bot-action worker (`set_group_add_request`), rate-limited and retried like every other action.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.models import MemberRole
from gateway.settings import GatewaySettings
from gateway.webhooks.adapters import ConnectorView
from gateway.webhooks.commands import Unnormalisable
from gateway.webhooks.ingest import Staged, stage
from gateway.webhooks.onebot import JoinRequest
from qunzhu_common.events.registry import EventRegistry

# A membership in one of these lets its holder into the community's groups. An approved application in
# a free community is already active; in a paid one it waits for payment (pending_payment) at checkout.
ADMITTED_STATUSES = ("active", "pending_ritual")
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
    why: str  # member, no_membership, <status>
    staged: Staged


def admits(row: MemberRole | None) -> tuple[bool, str]:
    if row is None:
        return False, "no_membership"
    if row.status in ADMITTED_STATUSES:
        return True, "member"
    return False, row.status


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
    async with session_maker() as session:
        row = await session.get(MemberRole, (community_id, person))
    approve, why = admits(row)
    if row is None and entry_policies is not None:
        policies = await entry_policies(community_id)
        if policies is None:
            raise Undecided(community_id)
        if sorted(set(policies)) == OPEN_POLICIES:
            approve, why = True, "open_community"
    flag_digest = hashlib.sha256(ask.flag.encode()).hexdigest()[:32]
    staged = stage(registry, "chat.action.requested", community_id, dict(
        action_id=f"join:{connector.id}:{flag_digest}", action="decide_join",
        group_id=f"{connector.identity_platform}:{ask.chat_id}", member_id=person, approve=approve,
        join_flag=ask.flag, reason="" if approve else refusal(settings, community_id, why), requested_by="gateway",
    ))
    return Decision(approve, why, staged)
