"""Content's domain errors (mapped once to problem+json by the common handlers)."""

from qunzhu_common.errors import Conflict, Forbidden, InvalidInput, NotFound


class CommunityUnknown(NotFound):
    slug, title = "community-unknown", "Community not known to content"


class NotAllowed(Forbidden):
    slug, title = "not-allowed", "Not allowed for this role"


class ScheduleNotFound(NotFound):
    slug, title = "schedule-not-found", "Schedule not found"


class PostNotFound(NotFound):
    slug, title = "post-not-found", "Post not found"


class SessionNotFound(NotFound):
    slug, title = "session-not-found", "Sharing session not found"


class BroadcastNotFound(NotFound):
    slug, title = "broadcast-not-found", "Broadcast not found"


class InvalidState(Conflict):
    slug, title = "invalid-state", "Not possible in the current state"


class GroupNotInCommunity(Forbidden):
    slug, title = "group-not-in-community", "Group belongs to another community"


class UnknownGroup(InvalidInput):
    slug, title = "unknown-group", "Group not registered with this community"


class InvalidField(InvalidInput):
    """A 422 naming the offending field, in the same `errors` shape as request validation."""

    slug, title = "invalid-input", "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"{field}: {message}", errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
        )
