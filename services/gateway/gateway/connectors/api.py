"""Connector registration by a community's owner; secrets go in and are never returned."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from gateway.auth.deps import CurrentPrincipal, StateDep, rate_limit
from gateway.auth.principal import require_role
from gateway.connectors import service
from gateway.connectors.schemas import ConnectorCreate, ConnectorPublic, ConnectorsPublic, ConnectorUpdate
from qunzhu_common.deps import SessionDep
from qunzhu_common.errors import NotFound

router = APIRouter(prefix="/api/v1/communities/{community_id}/connectors", tags=["connectors"],
                   dependencies=[Depends(rate_limit)])


async def _own(session, state, community_id: str, connector_id: str):
    connector = await service.get(session, connector_id=connector_id)
    if connector.community_id != community_id:
        raise NotFound(f"connector {connector_id} is not in community {community_id}")
    return connector


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConnectorPublic)
async def register_connector(
    community_id: str, body: ConnectorCreate, session: SessionDep, state: StateDep, principal: CurrentPrincipal
) -> ConnectorPublic:
    """Register a connector (owner only): platform, secrets (stored encrypted/hashed), chat groups.

    The body's shape depends on `platform`: `secrets` is GenericSecrets, TelegramSecrets or WecomSecrets."""
    await require_role(session, principal, community_id, "owner")
    data = body.root.model_copy(update={"community_id": community_id})
    connector = await service.register(session, box=state.box, data=data, created_by=principal.recorded_as)
    return await service.public(session, box=state.box, connector=connector)


@router.get("", response_model=ConnectorsPublic)
async def list_connectors(
    community_id: str, session: SessionDep, state: StateDep, principal: CurrentPrincipal
) -> ConnectorsPublic:
    """The community's connectors (admins and the owner); secret names only."""
    await require_role(session, principal, community_id, "admin")
    rows = await service.list_for(session, community_id=community_id)
    return ConnectorsPublic(data=[await service.public(session, box=state.box, connector=c) for c in rows],
                            count=len(rows))


@router.get("/{connector_id}", response_model=ConnectorPublic)
async def get_connector(
    community_id: str, connector_id: str, session: SessionDep, state: StateDep, principal: CurrentPrincipal
) -> ConnectorPublic:
    """One connector (admins and the owner); secret names only."""
    await require_role(session, principal, community_id, "admin")
    connector = await _own(session, state, community_id, connector_id)
    return await service.public(session, box=state.box, connector=connector)


@router.patch("/{connector_id}", response_model=ConnectorPublic)
async def update_connector(
    community_id: str, connector_id: str, body: ConnectorUpdate, session: SessionDep, state: StateDep,
    principal: CurrentPrincipal,
) -> ConnectorPublic:
    """Rename, remap groups or rotate secrets (owner only)."""
    await require_role(session, principal, community_id, "owner")
    await _own(session, state, community_id, connector_id)
    connector = await service.update(session, box=state.box, connector_id=connector_id, data=body)
    state.connectors.evict(connector_id)
    return await service.public(session, box=state.box, connector=connector)


@router.delete("/{connector_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_connector(
    community_id: str, connector_id: str, session: SessionDep, state: StateDep, principal: CurrentPrincipal
) -> Response:
    """Remove a connector (owner only); its webhook URL answers 404 from then on."""
    await require_role(session, principal, community_id, "owner")
    await _own(session, state, community_id, connector_id)
    await service.remove(session, connector_id=connector_id)
    state.connectors.evict(connector_id)
    return Response(status_code=204)
