"""Domain errors and their single mapping to RFC 9457 problem details (application/problem+json).

Services raise these from service functions and event handlers alike; only the HTTP layer knows
how they look on the wire, so the same code serves routes and consumers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qunzhu_common.db.transient import is_transient

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://qunzhu.dev/problems/"
DATABASE_RETRY_AFTER_S = 2

log = logging.getLogger(__name__)


class AppError(Exception):
    """Base of every domain error. Subclasses fix the status and the problem type."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}


class InvalidInput(AppError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class PaymentRequired(AppError):
    status, slug, title = 402, "payment-required", "Payment required"


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after_s)


def problem_response(
    *,
    status: int,
    title: str,
    detail: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def app_error_response(exc: AppError, instance: str | None = None) -> JSONResponse:
    """The problem response of a domain error, for ASGI middleware that runs outside the exception handlers."""
    return problem_response(status=exc.status, title=exc.title, detail=exc.detail, slug=exc.slug,
                            instance=instance, headers=exc.headers or None, **exc.extra)


def _json_safe_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    safe = []
    for err in errors:
        safe.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return safe


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to problem+json, once."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            status=exc.status,
            title=exc.title,
            detail=exc.detail,
            slug=exc.slug,
            instance=request.url.path,
            headers=exc.headers or None,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            status=422,
            title="Invalid request",
            detail="The request does not match the schema.",
            slug="invalid-request",
            instance=request.url.path,
            errors=_json_safe_errors(list(exc.errors())),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            status=exc.status_code,
            title=str(exc.detail) if exc.detail else "HTTP error",
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            # The database is restarting or unreachable: the same request will work shortly, so say so
            # (clients and webhook senders back off on 503 + Retry-After; a 500 reads as a bug).
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            unavailable = ServiceUnavailable("The database is unavailable; retry shortly.",
                                             retry_after_s=DATABASE_RETRY_AFTER_S)
            return await _app_error(request, unavailable)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            status=500,
            title="Internal server error",
            slug="internal",
            instance=request.url.path,
        )
