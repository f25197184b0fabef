"""Consumer side of `removal.recommended`, an engagement event (engagement.events.v1).

Its contract belongs to the engagement service (qunzhu_common.events.contracts.engagement). Until that
module registers it, membership registers this definition in its own registry so it can consume it; once
engagement registers the type, theirs is used and this one is ignored. The handler reads only
`recommendation_id`, `member_id` and `reason`.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.registry import EventRegistry, EventSpec, default_registry
from qunzhu_common.events.topics import ENGAGEMENT_EVENTS


class RemovalRecommended(BaseModel):
    """Engagement recommends removing a member (e.g. a lurker, or among the lowest points over 2 months)."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: str = Field(max_length=100, description="Idempotency key; one review per recommendation.")
    member_id: PersonId
    reason: str = Field(max_length=400, description="Human-readable, e.g. '2 个月积分倒数第 3'.")
    rule: str = Field(default="", max_length=100, description="Machine code, e.g. lurker, lowest_points.")
    score: float | None = None
    recommended_at: AwareDatetime


REMOVAL_RECOMMENDED = EventSpec(
    type="removal.recommended", version=1, topic=ENGAGEMENT_EVENTS, payload=RemovalRecommended,
    description="Engagement recommends removing a member (consumer-side definition kept by membership).",
)


def membership_registry() -> EventRegistry:
    registry = default_registry()
    try:
        registry.spec_for(REMOVAL_RECOMMENDED.type, REMOVAL_RECOMMENDED.version)
    except Exception:
        registry.register(REMOVAL_RECOMMENDED)
    return registry
