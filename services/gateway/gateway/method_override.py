"""`POST` + `X-HTTP-Method-Override: PATCH` is a PATCH: WeChat mini-programs' `wx.request` (and some proxies)
cannot send PATCH, and a member's own profile, a post, a plan are edited only with PATCH.

Only POST may be overridden and only to PATCH: a GET turned into a DELETE by a header would let a link or
a cached request change data. The rewritten request is a PATCH from here on — routing, authorization and
the actor assertion forwarded to the services all see PATCH.
"""

from __future__ import annotations

from typing import Any

from qunzhu_common.errors import AppError, problem_response

HEADER = b"x-http-method-override"
OVERRIDABLE = {b"PATCH"}


class MethodNotOverridable(AppError):
    status, slug, title = 400, "method-not-overridable", "Method cannot be overridden"


class MethodOverride:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            override = next((v for k, v in scope.get("headers") or [] if k.lower() == HEADER), None)
            if override is not None:
                wanted = override.strip().upper()
                if scope["method"] != "POST" or wanted not in OVERRIDABLE:
                    detail = (f"X-HTTP-Method-Override turns POST into PATCH only "
                              f"(got {scope['method']} → {wanted.decode('latin-1')[:16]!r})")
                    response = problem_response(status=400, title=MethodNotOverridable.title,
                                                slug=MethodNotOverridable.slug, detail=detail)
                    await response(scope, receive, send)
                    return
                scope = dict(scope, method=wanted.decode())
        await self.app(scope, receive, send)
