"""Engagement's request dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engagement.context import EngagementContext


def get_context(request: Request) -> EngagementContext:
    return request.app.state.engagement  # type: ignore[no-any-return]


ContextDep = Annotated[EngagementContext, Depends(get_context)]
