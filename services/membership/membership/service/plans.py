"""Plans: what a membership costs and buys. Edits apply to payments from now on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.errors import BadInput, PlanNotFound
from membership.models import Community, Plan, PlanCreate, PlanUpdate
from qunzhu_common.events.contracts.membership import PlanChanged


async def _emit(session: AsyncSession, ctx: MembershipContext, plan: Plan, type_: str) -> None:
    await ctx.outbox.emit(
        session, type=type_, community_id=plan.community_id,
        data=PlanChanged(
            community_id=plan.community_id, plan_id=plan.id, name=plan.name, price_fen=plan.price_fen,
            currency=plan.currency, term_type=plan.term_type, duration_days=plan.duration_days,  # type: ignore[arg-type]
            trial_days=plan.trial_days, renewal_price_fen=plan.renewal_price_fen,
            refund_window_hours=plan.refund_window_hours, tier=plan.tier, active=plan.active, changed_at=ctx.now(),
        ),
    )


async def create_plan(session: AsyncSession, *, ctx: MembershipContext, community: Community,
                      data: PlanCreate) -> Plan:
    tier = data.tier or community.tiers[0]
    if tier not in community.tiers:
        raise BadInput(f"tier {tier!r} is not one of the community's tiers {community.tiers}")
    plan = Plan(community_id=community.id, tier=tier, created_at=ctx.now(), updated_at=ctx.now(),
                **data.model_dump(exclude={"tier"}))
    session.add(plan)
    await session.flush()
    await _emit(session, ctx, plan, "plan.created")
    return plan


async def get_plan(session: AsyncSession, *, community_id: str, plan_id: str) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None or plan.community_id != community_id:
        raise PlanNotFound(f"plan {plan_id} is not a plan of community {community_id}")
    return plan


async def update_plan(session: AsyncSession, *, ctx: MembershipContext, plan: Plan, data: PlanUpdate) -> Plan:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "duration_days" in changes and plan.term_type != "fixed_duration":
        raise BadInput("only fixed_duration plans have duration_days")
    for key, value in changes.items():
        setattr(plan, key, value)
    plan.updated_at = ctx.now()
    await session.flush()
    await _emit(session, ctx, plan, "plan.updated")
    return plan


async def list_plans(session: AsyncSession, *, community_id: str, include_inactive: bool) -> list[Plan]:
    query = select(Plan).where(Plan.community_id == community_id)
    if not include_inactive:
        query = query.where(Plan.active.is_(True))
    return list((await session.execute(query.order_by(Plan.price_fen, Plan.created_at))).scalars().all())
