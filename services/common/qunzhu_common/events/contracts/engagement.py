"""Events produced by the engagement service on engagement.events.v1 (owned by the engagement service)."""

from __future__ import annotations

from qunzhu_common.events.registry import EventSpec

ENGAGEMENT_SPECS: tuple[EventSpec, ...] = ()
