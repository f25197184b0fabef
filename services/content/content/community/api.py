"""Community routes: content's copy of a community and the community's chat groups."""

from __future__ import annotations

from fastapi import APIRouter, status

from content.community import service
from content.deps import ContextDep, MemberOf, StaffOf
from content.models import ChatGroupPublic, ChatGroupRegister, CommunityCopy, CommunityCopyPublic
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities", tags=["communities"])


@router.get("/{community_id}", response_model=CommunityCopyPublic)
async def get_community(community_id: str, session: SessionDep, caller: MemberOf) -> CommunityCopy:
    """Content's copy of a community (present once `community.created` was consumed; members)."""
    return await service.get_community(session, community_id=community_id)


@router.put("/{community_id}/groups", status_code=status.HTTP_200_OK, response_model=ChatGroupPublic)
async def register_group(
    community_id: str, body: ChatGroupRegister, session: SessionDep, ctx: ContextDep, caller: StaffOf
) -> ChatGroupPublic:
    """Register (or update) one of the community's chat groups, role A or B (owner/admin).

    Interim: membership will announce groups by event; this route then goes away.
    """
    group = await service.register_group(
        session, community_id=community_id, actor=caller.actor, data=body, now=ctx.clock.now()
    )
    return ChatGroupPublic.model_validate(group, from_attributes=True)


@router.get("/{community_id}/groups", response_model=list[ChatGroupPublic])
async def list_groups(community_id: str, session: SessionDep, caller: StaffOf) -> list[ChatGroupPublic]:
    """The community's chat groups known to content (owner/admin)."""
    return [
        ChatGroupPublic.model_validate(g, from_attributes=True)
        for g in await service.list_groups(session, community_id=community_id)
    ]
