"""Groups that register themselves: a WeCom customer group created where the app sees it (客户群创建,
change_external_chat create) becomes one of the connector's groups when the connector says so
(`register_external_chats`), so its joins, leaves and messages reach the community from the first one."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.models import ConnectorGroup
from gateway.state import GatewayState
from gateway.webhooks.adapters import ConnectorView
from gateway.webhooks.commands import RawEvent
from qunzhu_common.db.upsert import insert_if_absent


async def register_created_groups(state: GatewayState, connector: ConnectorView,
                                  raw: Sequence[RawEvent]) -> ConnectorView:
    """The connector with the chats `raw` creates added to its groups (stored first), when it registers them."""
    if not connector.secrets.get("register_external_chats"):
        return connector
    chats = [e.chat_id for e in raw if e.type == "chat.group.created" and e.chat_id not in connector.groups]
    if not chats:
        return connector
    async with state.runtime.session_maker() as session, session.begin():
        for chat in dict.fromkeys(chats):
            # A chat another connector already serves stays its (and this delivery is quarantined as unmapped).
            await insert_if_absent(session, ConnectorGroup.__table__, dict(  # type: ignore[attr-defined]
                group_id=f"{connector.identity_platform}:{chat}", connector_id=connector.id,
                community_id=connector.community_id))
    state.connectors.evict(connector.id)
    async with state.runtime.session_maker() as session:
        return await state.connectors.get(session, box=state.box, connector_id=connector.id)
