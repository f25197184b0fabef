"""Connectors: registration, secret rotation, group mapping, and the cached view webhooks use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.connectors.schemas import SECRET_MODELS, ConnectorPublic, ConnectorRegistration, ConnectorUpdate
from gateway.crypto import SecretBox, sha256_hex
from gateway.errors import ConnectorNotFound
from gateway.models import Connector, ConnectorGroup
from gateway.webhooks.adapters import ConnectorView
from qunzhu_common.errors import Conflict, InvalidInput
from qunzhu_common.timeutil import utcnow


def _seal(box: SecretBox, connector: Connector, platform: str, secrets: dict[str, Any]) -> None:
    try:
        validated = SECRET_MODELS[platform].model_validate(secrets).model_dump(exclude_none=True)
    except ValidationError as exc:  # a rotation (PATCH) is checked here, where the platform is known
        raise InvalidInput(f"the secrets do not fit a {platform} connector", errors=[
            {"loc": ["body", "secrets", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]) from None
    if platform == "telegram":
        # Only ever compared, never sent: a hash is enough and leaks nothing.
        connector.secret_token_hash = sha256_hex(validated.pop("secret_token"))
    connector.secrets_sealed = box.seal(validated)


async def _set_groups(session: AsyncSession, connector: Connector, chats: list[str]) -> None:
    await session.execute(delete(ConnectorGroup).where(ConnectorGroup.connector_id == connector.id))
    await session.flush()
    for chat in dict.fromkeys(c.strip() for c in chats if c.strip()):
        group_id = f"{connector.identity_platform}:{chat}"
        taken = await session.get(ConnectorGroup, group_id)
        if taken is not None:
            raise Conflict(f"group {group_id} already belongs to connector {taken.connector_id}")
        session.add(ConnectorGroup(group_id=group_id, connector_id=connector.id, community_id=connector.community_id))
    await session.flush()


async def register(
    session: AsyncSession, *, box: SecretBox, data: ConnectorRegistration, created_by: str
) -> Connector:
    if not data.community_id:
        raise InvalidInput("a connector belongs to a community")
    connector = Connector(
        community_id=data.community_id, platform=data.platform,
        identity_platform=data.identity_platform or data.platform, name=data.name, secrets_sealed="",
        created_by=created_by,
    )
    _seal(box, connector, data.platform, data.secrets.model_dump())
    session.add(connector)
    await session.flush()
    await _set_groups(session, connector, data.groups)
    return connector


async def update(session: AsyncSession, *, box: SecretBox, connector_id: str, data: ConnectorUpdate) -> Connector:
    connector = await get(session, connector_id=connector_id)
    if data.name is not None:
        connector.name = data.name
    if data.secrets is not None:
        _seal(box, connector, connector.platform, data.secrets)
    if data.groups is not None:
        await _set_groups(session, connector, data.groups)
    connector.updated_at = utcnow()
    session.add(connector)
    await session.flush()
    return connector


async def remove(session: AsyncSession, *, connector_id: str) -> None:
    connector = await get(session, connector_id=connector_id)
    await session.execute(delete(ConnectorGroup).where(ConnectorGroup.connector_id == connector_id))
    await session.delete(connector)
    await session.flush()


async def get(session: AsyncSession, *, connector_id: str) -> Connector:
    connector = await session.get(Connector, connector_id)
    if connector is None:
        raise ConnectorNotFound(f"connector {connector_id} does not exist")
    return connector


async def list_for(session: AsyncSession, *, community_id: str) -> list[Connector]:
    rows = await session.execute(
        select(Connector).where(Connector.community_id == community_id).order_by(Connector.created_at)
    )
    return list(rows.scalars().all())


async def chats_of(session: AsyncSession, *, connector: Connector) -> list[str]:
    rows = await session.execute(select(ConnectorGroup.group_id).where(ConnectorGroup.connector_id == connector.id))
    prefix = connector.identity_platform + ":"
    return sorted(g.removeprefix(prefix) for g in rows.scalars().all())


async def public(session: AsyncSession, *, box: SecretBox, connector: Connector) -> ConnectorPublic:
    names = sorted(box.open(connector.secrets_sealed))
    if connector.secret_token_hash:
        names = sorted([*names, "secret_token"])
    return ConnectorPublic(
        id=connector.id, community_id=connector.community_id, platform=connector.platform,  # type: ignore[arg-type]
        identity_platform=connector.identity_platform, name=connector.name,  # type: ignore[arg-type]
        groups=await chats_of(session, connector=connector), secrets_set=names,
        webhook_path=f"/webhooks/chat/{connector.id}", created_by=connector.created_by,
        created_at=connector.created_at, updated_at=connector.updated_at,
    )


async def load_view(session: AsyncSession, *, box: SecretBox, connector_id: str) -> ConnectorView:
    connector = await get(session, connector_id=connector_id)
    rows = await session.execute(select(ConnectorGroup).where(ConnectorGroup.connector_id == connector_id))
    prefix = connector.identity_platform + ":"
    return ConnectorView(
        id=connector.id, community_id=connector.community_id, platform=connector.platform,
        identity_platform=connector.identity_platform, secrets=box.open(connector.secrets_sealed),
        secret_token_hash=connector.secret_token_hash,
        groups={g.group_id.removeprefix(prefix): g.community_id for g in rows.scalars().all()},
    )


class ConnectorCache:
    """Opened connectors for a few seconds: webhooks skip a query and a decryption per delivery.

    Changes made in this process evict at once; other replicas see them within `ttl_s`.
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self._ttl_s = ttl_s
        self._views: dict[str, tuple[float, ConnectorView]] = {}
        self._loading: dict[str, asyncio.Future[ConnectorView]] = {}

    async def get(self, session: AsyncSession, *, box: SecretBox, connector_id: str) -> ConnectorView:
        view = self.cached(connector_id)
        if view is not None:
            return view
        # One load per connector at a time: a burst of deliveries after expiry waits for the same query.
        pending = self._loading.get(connector_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ConnectorView] = asyncio.get_running_loop().create_future()
        self._loading[connector_id] = future
        try:
            view = await load_view(session, box=box, connector_id=connector_id)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: waiters get it, an unawaited future must not warn
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            self._loading.pop(connector_id, None)
        self._views[connector_id] = (time.monotonic(), view)
        future.set_result(view)
        return view

    def cached(self, connector_id: str) -> ConnectorView | None:
        hit = self._views.get(connector_id)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self._ttl_s else None

    def evict(self, connector_id: str) -> None:
        self._views.pop(connector_id, None)
