"""Request dependencies: the acting person, the service context, paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request

from membership.context import MembershipContext
from membership.errors import ActorRequired
from membership.service.access import Actor
from qunzhu_common.actor import actor_of
from qunzhu_common.deps import SessionDep

ACTOR_HEADER = "X-Actor-Id"

ACTOR_DOC = (
    "The acting person's id (`<platform>:<user id>`), set by the gateway after it verified the caller's "
    "token; never taken from a client. Internal services call as `service:<name>` (read-only decisions); "
    "`platform-operator` may also create communities for any owner."
)


def get_actor(
    request: Request,
    x_actor_id: Annotated[str | None, Header(alias=ACTOR_HEADER, description=ACTOR_DOC)] = None,
) -> Actor | None:
    """The caller the gateway vouches for (its `X-Actor-Assertion` is verified, the id's form with it: 401
    otherwise). The header parameter is here for the API documentation."""
    verified = actor_of(request)
    return None if verified is None else Actor(verified.id, via=verified.via)


def require_actor(actor: Annotated[Actor | None, Depends(get_actor)]) -> Actor:
    if actor is None:
        raise ActorRequired(f"this route needs {ACTOR_HEADER} (set by the gateway after authentication)")
    return actor


def require_person(actor: Annotated[Actor, Depends(require_actor)]) -> Actor:
    if actor.is_service or actor.is_api_key:
        from membership.errors import PermissionDenied

        raise PermissionDenied("a person must act here, not a service or an API key")
    return actor


def get_ctx(request: Request) -> MembershipContext:
    return request.app.state.membership  # type: ignore[no-any-return]


class Page:
    def __init__(
        self,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> None:
        self.offset, self.limit = offset, limit


OptionalActorDep = Annotated[Actor | None, Depends(get_actor)]
ActorDep = Annotated[Actor, Depends(require_actor)]
PersonDep = Annotated[Actor, Depends(require_person)]
CtxDep = Annotated[MembershipContext, Depends(get_ctx)]
PageDep = Annotated[Page, Depends()]

__all__ = ["ActorDep", "CtxDep", "OptionalActorDep", "PageDep", "PersonDep", "SessionDep"]
