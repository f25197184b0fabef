"""chat.action.requested → a bot_action row (the action id is the idempotency key); the worker runs it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import BotAction
from qunzhu_common.db.upsert import insert_if_absent
from qunzhu_common.events.contracts.chat import ChatActionRequested
from qunzhu_common.inbox import Event, Handler
from qunzhu_common.timeutil import utcnow


async def on_action_requested(session: AsyncSession, event: Event[ChatActionRequested]) -> None:
    # The same action id asked twice (two events, a retried producer) is carried out once.
    data = event.data
    await insert_if_absent(session, BotAction.__table__, dict(  # type: ignore[attr-defined]
        action_id=data.action_id, community_id=event.community_id, group_id=data.group_id, action=data.action,
        request=data.model_dump(mode="json"), status="pending", attempts=0,
        next_attempt_at=data.not_before or utcnow(), last_error="", created_at=utcnow(), connector_id=None,
    ))


HANDLERS: dict[str, Handler] = {"chat.action.requested": on_action_requested}
