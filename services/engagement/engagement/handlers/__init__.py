"""Engagement's event handlers: one function per consumed event type, bound to the service's context.

The inbox (exactly-once effects) is done by the framework around each handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities import celebrations
from engagement.context import EngagementContext
from engagement.handlers import chat, content, membership
from qunzhu_common.inbox import Event, Handler

ContextHandler = Callable[[AsyncSession, Event[Any], EngagementContext], Awaitable[None]]

CONTEXT_HANDLERS: dict[str, ContextHandler] = {
    **membership.HANDLERS,
    **chat.HANDLERS,
    **content.HANDLERS,
    **celebrations.HANDLERS,  # engagement's own events: congratulations after they are committed
}


def build_handlers(get_ctx: Callable[[], EngagementContext]) -> dict[str, Handler]:
    """Handlers for the consumer, each given the running service's context when called."""

    async def call(fn: ContextHandler, session: AsyncSession, event: Event[Any]) -> None:
        await fn(session, event, get_ctx())

    return {type_: partial(call, fn) for type_, fn in CONTEXT_HANDLERS.items()}
