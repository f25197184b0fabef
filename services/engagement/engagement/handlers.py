"""Engagement's event handlers: one function per consumed event type (inbox handled by the framework)."""

from __future__ import annotations

from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.inbox import Event, Handler
from qunzhu_common.timeutil import utcnow
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.models import CommunityCopy


async def on_community_created(session: AsyncSession, event: Event[CommunityCreated]) -> None:
    # A plain insert on purpose: a second application of the event would violate the primary key.
    # The inbox, not the handler, makes redelivery harmless.
    data = event.data
    session.add(
        CommunityCopy(
            id=data.community_id,
            name=data.name,
            positioning=data.positioning,
            timezone=data.timezone,
            created_at=data.created_at,
            synced_at=utcnow(),
        )
    )


HANDLERS: dict[str, Handler] = {"community.created": on_community_created}
