"""Engagement's domain errors (mapped once to problem+json by the common error handlers)."""

from qunzhu_common.errors import Conflict, InvalidInput, NotFound


class CommunityNotFound(NotFound):
    slug, title = "community-not-found", "Community not found"


class MemberNotFound(NotFound):
    slug, title = "member-not-found", "Member not found"


class ThingNotFound(NotFound):
    slug, title = "not-found", "Not found"


class InvalidRules(InvalidInput):
    slug, title = "invalid-rules", "Inconsistent rule set"


class StateConflict(Conflict):
    slug, title = "conflict", "Conflict"


class NoCoreGroup(InvalidInput):
    slug, title = "no-core-group", "No core (B) group"


class NotAnOpenGroup(InvalidInput):
    slug, title = "not-an-open-group", "Not an open (A) group"
