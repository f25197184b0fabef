"""Consumer side of `removal.recommended`, an engagement event (engagement.events.v1).

Its contract belongs to the engagement service (`qunzhu_common.events.contracts.engagement`). When that
module registers the type, membership uses it; otherwise membership registers this mirror of it so it can
consume the event anyway. The handler reads only `member_id`, `reason` and `detail` (the envelope's id is
the recommendation's identity).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import PersonId
from qunzhu_common.events.registry import EventRegistry, EventSpec, InvalidEvent, default_registry
from qunzhu_common.events.topics import ENGAGEMENT_EVENTS


class RemovalRecommended(BaseModel):
    """Engagement recommends removing a member (membership decides: policy `auto` or `review`)."""

    model_config = ConfigDict(extra="forbid")

    community_id: str = Field(max_length=100)
    member_id: PersonId
    reason: str = Field(max_length=50, description="e.g. elimination, rule_violation")
    detail: str = Field(default="", max_length=500)
    evidence: dict[str, int | float | str] = Field(default_factory=dict)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    recommended_at: AwareDatetime


REMOVAL_RECOMMENDED = EventSpec(
    type="removal.recommended", version=1, topic=ENGAGEMENT_EVENTS, payload=RemovalRecommended,
    description="Engagement recommends removing a member (mirror kept by membership until engagement's exists).",
)


def membership_registry() -> EventRegistry:
    registry = default_registry()
    try:
        registry.spec_for(REMOVAL_RECOMMENDED.type, REMOVAL_RECOMMENDED.version)
    except InvalidEvent:
        registry.register(REMOVAL_RECOMMENDED)
    return registry
