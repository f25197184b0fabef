"""The gateway's answers on chat.actions.v1: a delivery confirmed, or failed (then retried)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from content.broadcasts.service import settle
from content.context import ContentContext
from qunzhu_common.events.contracts.chat import ChatActionSettled
from qunzhu_common.inbox import Event


def broadcast_handlers(ctx: ContentContext) -> dict:
    async def on_action_completed(session: AsyncSession, event: Event[ChatActionSettled]) -> None:
        await settle(session, ctx=ctx, action_id=event.data.action_id, ok=True, error="", now=ctx.clock.now())

    async def on_action_failed(session: AsyncSession, event: Event[ChatActionSettled]) -> None:
        await settle(
            session,
            ctx=ctx,
            action_id=event.data.action_id,
            ok=False,
            error=event.data.error or "failed",
            now=ctx.clock.now(),
        )

    return {"chat.action.completed": on_action_completed, "chat.action.failed": on_action_failed}
