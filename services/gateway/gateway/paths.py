"""One canonical path: a request path that could mean two things is refused before anything reads it.

The gateway authorizes a path and forwards it; if anything between the two (httpx's dot-segment removal,
a service's own decoding) reads the path differently, the service executes a path nobody authorized
(`/engagement/communities/B/../A/rules` was authorized for B and applied to A). So a raw path — as
received, before any decoding — with a dot segment (`.`, `..`, or either percent-encoded), an encoded
slash or backslash (`%2f`, `%5c`), a literal backslash, or an empty segment (`//`) gets 400 problem+json;
every path that passes decodes to exactly one list of segments, which is what is checked and forwarded.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from qunzhu_common.errors import AppError, problem_response

# A segment that is `.` or `..`, literally or percent-encoded (%2e, %2E), in any mix.
_DOT_SEGMENT = re.compile(r"^(?:\.|%2e){1,2}$", re.IGNORECASE)
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)
PATH_SAFE = "!$&'()*+,;=:@-._~"  # RFC 3986 pchar, without "/" (segments are quoted one by one)


def non_canonical_reason(raw_path: str) -> str | None:
    """Why `raw_path` (the path as received, without the query) is not canonical; None when it is."""
    if "\\" in raw_path:
        return "a backslash in the path"
    if _ENCODED_SEPARATOR.search(raw_path):
        return "an encoded slash or backslash (%2f, %5c) in the path"
    segments = raw_path.split("/")[1:]
    if any(_DOT_SEGMENT.match(segment) for segment in segments):
        return "a dot segment (., .., %2e) in the path"
    # A trailing slash (last segment empty) routes like the path without it; `//` does not.
    if any(segment == "" for segment in segments[:-1]):
        return "an empty segment (//) in the path"
    return None


class NonCanonicalPath(AppError):
    status, slug, title = 400, "non-canonical-path", "Non-canonical path"


class ServicePath:
    """A path relative to a service, parsed once: what the guards check is what is forwarded."""

    def __init__(self, decoded: str) -> None:
        self.segments = tuple(decoded.strip("/").split("/")) if decoded.strip("/") else ()
        if any(s in ("", ".", "..") or "\\" in s or "/" in s for s in self.segments):
            raise NonCanonicalPath(f"not a canonical path: {decoded!r}")
        self.trailing_slash = decoded.endswith("/") and bool(self.segments)

    @classmethod
    def of(cls, *segments: str) -> ServicePath:
        """A path built from segments (ids from a route's own parameters); refuses any that is not one segment."""
        path = cls("")
        if any(s in ("", ".", "..") or "/" in s or "\\" in s for s in segments):
            raise NonCanonicalPath(f"not a path segment among {segments!r}")
        path.segments = tuple(segments)
        return path

    @property
    def text(self) -> str:
        """Relative, decoded (`communities/A/rules`): what the guards match."""
        return "/".join(self.segments) + ("/" if self.trailing_slash else "")

    @property
    def absolute(self) -> str:
        """Decoded, with a leading slash: what the services route and what the actor assertion covers."""
        return "/" + self.text

    @property
    def encoded(self) -> str:
        """Percent-encoded segment by segment: what goes on the wire."""
        return "/" + "/".join(quote(s, safe=PATH_SAFE) for s in self.segments) + ("/" if self.trailing_slash else "")


class CanonicalPaths:
    """Pure ASGI middleware: 400 problem+json for a non-canonical raw path, before routing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            raw_path = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
            reason = non_canonical_reason(raw_path) or non_canonical_reason(scope["path"])
            if reason is None and unquote(raw_path) != scope["path"]:
                reason = "the path does not decode to one meaning"
            if reason is not None:
                response = problem_response(status=400, title=NonCanonicalPath.title, slug=NonCanonicalPath.slug,
                                            detail=f"refused: {reason}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
