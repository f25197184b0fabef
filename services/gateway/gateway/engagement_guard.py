"""An early reject of engagement's writes. Engagement authorizes every route itself from the signed actor
(its own role projection, and a person below admin may name only themself); this guard refuses the same
requests one hop earlier, from the gateway's projection.

Every write needs a role in the community of the path, from the gateway's role projection: members take
part (submit homework, enter lotteries, vote, sign up, register, check in, answer surveys, cancel their
own), owners/admins/guests grade, owners and admins (and admin API keys) manage (rules, replay, jobs,
goals, challenges, assignments, lotteries and draws, polls, chains, meetups, campaigns, settings). A
person below admin may only name themself in the body.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import ROLE_RANK, Principal, require_role
from qunzhu_common import jsonbody
from qunzhu_common.errors import Forbidden

_COMMUNITY = r"^communities/(?P<community_id>[^/]+)"
# (path pattern, least role, body field that must name the caller when a person below admin calls)
PARTICIPATION = r"(submissions|entries|votes|signups|registrations|checkins|responses|cancellations)"
WRITE_RULES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(_COMMUNITY + r"/[a-z_]+/[^/]+/" + PARTICIPATION + r"/?$"), "member", ("person_id", "member_id")),
    (re.compile(_COMMUNITY + r"/assignments/[^/]+/submissions/[^/]+/grade/?$"), "guest", ("graded_by",)),
    (re.compile(_COMMUNITY + r"(/.*)?$"), "admin", ("created_by",)),
]


async def authorize_write(session: AsyncSession, principal: Principal, path: str, body: bytes) -> None:
    """Forbidden unless `principal` may make this engagement write (path relative to the service)."""
    for pattern, minimum, fields in WRITE_RULES:
        match = pattern.match(path)
        if match is None:
            continue
        role = await require_role(session, principal, match.group("community_id"), minimum)
        if principal.kind == "member" and ROLE_RANK[role] < ROLE_RANK["admin"]:
            for field in fields:
                named = _field(body, field)
                if named is not None and named != principal.subject:
                    raise Forbidden(f"`{field}` must be you ({principal.subject}) unless you are staff")
        return
    raise Forbidden("engagement writes are made inside a community")


def _field(body: bytes, field: str) -> Any:
    try:
        data = jsonbody.loads(body or b"{}")
    except ValueError:  # InvalidJson included
        return None  # not JSON: engagement refuses it (422)
    return data.get(field) if isinstance(data, dict) else None
