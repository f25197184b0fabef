"""Content's request dependencies: who may call a route (conventions rule 10) and the service context.

The caller is the actor the gateway vouches for (`qunzhu_common.actor`); its role in the route's
`{community_id}` comes from content's own projection of membership's roles (`community.roles`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from content.community.roles import authorizer
from content.context import ContentContext
from qunzhu_common.actor import Authorized, OptionalActor, RequiredActor


def get_context(request: Request) -> ContentContext:
    return request.app.state.content  # type: ignore[no-any-return]


ContextDep = Annotated[ContentContext, Depends(get_context)]

# Anyone, signed in or not: the route itself decides what each reader gets (posts: the paywall).
Anyone = OptionalActor
# A signed-in reader, whoever they are: 401 before anything is looked up (a post's existence is the
# paywall's business only once someone asks who may read it).
SignedIn = RequiredActor
# Any role in the community: members, guests, admins, the owner (and API keys / the platform alike).
MemberOf = Annotated[Authorized, Depends(authorizer.require("member"))]
# Guests and up: those who author posts and answer questions.
GuestOf = Annotated[Authorized, Depends(authorizer.require("guest"))]
# The owner and admins (admin API keys, the platform operator): the community's operators.
StaffOf = Annotated[Authorized, Depends(authorizer.require("admin"))]
