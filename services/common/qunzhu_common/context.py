"""Correlation id carried from the request or the consumed event to everything it causes."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id in force, or a fresh one when nothing set it (e.g. a scheduled job)."""
    value = correlation_id_var.get()
    return value if value else str(uuid.uuid4())
