"""An early reject of content's and engagement's reads: each service authorizes every route itself from
the signed actor (qunzhu_common.actor), so this is a first wall, not the only one. It saves a hop for the
obvious refusals and keeps the gateway's answers the same as the services'.

Inside a community, reading needs a role there, from the gateway's role projection:
- operators' tooling — lurkers, removal recommendations, key people, group health and A/B candidates,
  survey responses and exports, reward payouts, attendance, celebrations, schedules, broadcasts,
  rituals, the content mix and the chat groups — is for owners and admins (and admin API keys);
- homework submissions are for graders (guests and up);
- everything else (leaderboards, points, goals, challenges, activities, sessions) for members;
- posts, a post and its comments go to content whoever asks: its paywall decides what each reader gets
  (teasers for anyone, a body or 402 for a signed-in reader, 401 without one). The route documentation of
  each service says the same (checked by the security matrix test, which derives its expectations from it).
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal, require_role
from qunzhu_common.errors import Unauthorized

_C = r"^communities/(?P<community_id>[^/]+)"
_ID = r"/[^/]+"
READ_RULES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "engagement": [
        (re.compile(_C + r"/(lurkers|removal-recommendations|key-people|groups/health|celebrations"
                    r"|celebrations/settings)/?$"), "admin"),
        (re.compile(_C + r"/groups" + _ID + r"/ab-candidates/?$"), "admin"),
        (re.compile(_C + r"/surveys" + _ID + r"/(responses|export\.csv)/?$"), "admin"),
        (re.compile(_C + r"/campaigns" + _ID + r"/rewards/?$"), "admin"),
        (re.compile(_C + r"/meetups" + _ID + r"/attendance/?$"), "admin"),
        (re.compile(_C + r"/assignments" + _ID + r"/submissions/?$"), "guest"),
        (re.compile(_C + r"(/.*)?$"), "member"),
    ],
    "content": [
        (re.compile(_C + r"/posts(" + _ID + r"(/comments)?)?/?$"), "public"),
        (re.compile(_C + r"/(groups|content-mix|schedules|schedules/.*|rituals/.*|broadcasts/.*)$"), "admin"),
        (re.compile(_C + r"(/.*)?$"), "member"),
    ],
}


def read_requirement(service: str, path: str) -> tuple[str, str] | None:
    """(community id, least role) a read of `path` (relative to the service) needs; None when the gateway
    leaves it to the service (reads outside a community, and services not listed)."""
    for pattern, role in READ_RULES.get(service, ()):
        match = pattern.match(path)
        if match is not None:
            return match.group("community_id"), role
    return None


async def authorize_read(session: AsyncSession, principal: Principal | None, service: str, path: str) -> None:
    """Unauthorized / Forbidden unless `principal` may read `path` of `service`."""
    need = read_requirement(service, path.lstrip("/"))
    if need is None or need[1] == "public":
        return
    community_id, minimum = need
    if principal is None:
        raise Unauthorized("send `Authorization: Bearer <token>` or `X-API-Key`: this read is for the community")
    await require_role(session, principal, community_id, minimum)
