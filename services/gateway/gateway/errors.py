"""The gateway's domain errors (mapped once to problem+json by the common handlers)."""

from __future__ import annotations

from typing import Any

from qunzhu_common.errors import AppError, Forbidden, NotFound, Unauthorized


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class TooManyRequests(AppError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after_s: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(max(1, retry_after_s))


class WebhookUnauthorized(Unauthorized):
    """Verification failed; `reason` is a bounded label (metrics) and part of the problem."""

    slug, title = "webhook-unauthorized", "Webhook verification failed"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or f"verification failed: {reason}", reason=reason)
        self.reason = reason


class ConnectorNotFound(NotFound):
    slug, title = "connector-not-found", "Connector not found"


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid credentials"


class RoleRequired(Forbidden):
    slug, title = "role-required", "Your role in this community does not allow this"
