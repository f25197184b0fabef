"""Engagement's request dependencies: its context, and who may call each route.

Engagement authorizes every route itself, from the caller the gateway vouches for (`X-Actor-Id` with its
signed assertion) and engagement's own copy of membership's roles (`MemberCopy`, kept by
`handlers/membership.py`); the community is the `{community_id}` of the path engagement received, never
one the gateway checked. Who may call what (issue #15, the rules the gateway used to apply alone):

- reads in a community are for its members (`MemberOf`); the operators' tooling — lurkers, removal
  recommendations, key people, group health, A/B candidates, celebrations and their settings, survey
  responses and exports, campaign rewards, meetup attendance — is for owners and admins (`StaffOf`);
  homework submissions are for graders (`GuestOf`);
- members take part (`MemberOf`: submissions, entries, votes, sign-ups, registrations, check-ins,
  responses, cancellations), naming only themselves unless they are staff (`require_self_unless_staff`);
  guests grade, as themselves; owners and admins (and admin API keys) manage everything else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engagement.context import EngagementContext
from engagement.models import MemberCopy
from qunzhu_common.actor import Authorized, Authorizer, projection_lookup


def get_context(request: Request) -> EngagementContext:
    return request.app.state.engagement  # type: ignore[no-any-return]


ContextDep = Annotated[EngagementContext, Depends(get_context)]


authorizer = Authorizer(projection_lookup(MemberCopy))  # engagement's own copy of membership's roles

MemberOf = Annotated[Authorized, Depends(authorizer.require("member"))]
"""Any member of the community of the path (and guests, admins, owners, member API keys)."""
GuestOf = Annotated[Authorized, Depends(authorizer.require("guest"))]
"""Guests (graders), admins and owners of the community of the path."""
StaffOf = Annotated[Authorized, Depends(authorizer.require("admin"))]
"""Owners and admins of the community of the path (and admin API keys, the platform operator)."""
