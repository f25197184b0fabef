"""Content's event handlers, one per consumed event type (the inbox is done by the framework)."""

from __future__ import annotations

from content.broadcasts.handlers import broadcast_handlers
from content.community.handlers import community_handlers
from content.context import ContentContext
from content.sessions.relay import relay_handlers
from qunzhu_common.inbox import Handler


def build_handlers(ctx: ContentContext) -> dict[str, Handler]:
    return {**community_handlers(ctx), **relay_handlers(ctx), **broadcast_handlers(ctx)}
