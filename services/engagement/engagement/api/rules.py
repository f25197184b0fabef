"""Scoring rules per community: versioned, each in force from a time."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from engagement.api.deps import ContextDep, MemberOf, StaffOf
from engagement.api.schemas import RuleSetCreate, RuleSetPublic, RuleSetsPublic
from engagement.leaderboard.service import community
from engagement.scoring import replay, ruleset
from engagement.scoring.rules import DEFAULT_RULES
from qunzhu_common.deps import SessionDep

router = APIRouter(prefix="/communities/{community_id}/rules", tags=["rules"])


async def _all(session: SessionDep, community_id: str) -> RuleSetsPublic:
    versions = [
        RuleSetPublic(version=v.version, effective_from=v.effective_from, rules=v.rules, note=v.note)
        for v in await ruleset.list_versions(session, community_id=community_id)
    ]
    version, rules = await ruleset.current_rules(session, community_id=community_id)
    current = next((v for v in versions if v.version == version), None) or RuleSetPublic(
        version=0, effective_from=None, rules=DEFAULT_RULES.model_dump(mode="json"), note="built-in defaults"
    )
    return RuleSetsPublic(current=current, versions=versions)


@router.get("", response_model=RuleSetsPublic)
async def get_rules(community_id: str, caller: MemberOf, session: SessionDep) -> RuleSetsPublic:
    """The rules in force now and every version (version 0 is the built-in defaults)."""
    await community(session, community_id)
    return await _all(session, community_id)


@router.post("", response_model=RuleSetsPublic, status_code=status.HTTP_201_CREATED)
async def add_rules(
    community_id: str, caller: StaffOf, body: RuleSetCreate, session: SessionDep, ctx: ContextDep, request: Request
) -> RuleSetsPublic:
    """Add a rule version effective from a time (default now); an inconsistent set is a 422 naming the field.

    With `recompute`, the history from `effective_from` is scored again under it: the old entries are
    reversed and new ones appended (the ledger stays append-only).
    """
    await community(session, community_id)
    row = await ruleset.add_version(
        session, community_id=community_id, rules=body.rules, effective_from=body.effective_from, note=body.note
    )
    recomputed = None
    if body.recompute:
        recomputed = await replay.recompute(session, ctx, community_id=community_id, since=row.effective_from)
    result = await _all(session, community_id)
    result.recomputed_activities = recomputed
    return result
