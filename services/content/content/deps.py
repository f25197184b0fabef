"""Content's request dependencies: the acting person and the service context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from content.context import ContentContext
from qunzhu_common.errors import Unauthorized

ACTOR_HEADER = "X-Actor-Id"


def get_context(request: Request) -> ContentContext:
    return request.app.state.content  # type: ignore[no-any-return]


def get_actor(x_actor_id: Annotated[str | None, Header(alias=ACTOR_HEADER, max_length=200)] = None) -> str:
    """The person acting (e.g. `telegram:123`), set by the gateway once it authenticated the caller."""
    if not x_actor_id:
        raise Unauthorized(f"the {ACTOR_HEADER} header names who is acting")
    return x_actor_id


ContextDep = Annotated[ContentContext, Depends(get_context)]
ActorDep = Annotated[str, Depends(get_actor)]
