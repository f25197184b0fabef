"""Context carried from the request or the consumed event to everything it causes (and its logs)."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# Which service is working: four share a process in embedded mode, so a logger can't know otherwise.
service_var: ContextVar[str | None] = ContextVar("service", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)


def current_correlation_id() -> str:
    """The correlation id in force, or a fresh one when nothing set it (e.g. a scheduled job)."""
    value = correlation_id_var.get()
    return value if value else str(uuid.uuid4())
