"""Events produced by the content service on content.events.v1 (owned by the content service)."""

from __future__ import annotations

from qunzhu_common.events.registry import EventSpec

CONTENT_SPECS: tuple[EventSpec, ...] = ()
