"""Content's tables (one module per domain) and their shared metadata, outbox and inbox."""

from content.models.base import ContentModel, inbox_table, metadata, outbox_table, registry
from content.models.broadcast import Broadcast, BroadcastDelivery
from content.models.community import (
    ChatGroup,
    ChatGroupPublic,
    ChatGroupRegister,
    CommunityCopy,
    CommunityCopyPublic,
    CommunityMember,
    GroupMember,
)
from content.models.post import ContentMixTarget, Post, PostComment, Ritual
from content.models.schedule import Schedule, ScheduleException, ScheduleOccurrence
from content.models.session import SessionAttendance, SessionMessage, SessionQuestion, SharingSession

__all__ = [
    "Broadcast",
    "BroadcastDelivery",
    "ChatGroup",
    "ChatGroupPublic",
    "ChatGroupRegister",
    "CommunityCopy",
    "CommunityCopyPublic",
    "CommunityMember",
    "GroupMember",
    "ContentMixTarget",
    "ContentModel",
    "Post",
    "PostComment",
    "Ritual",
    "Schedule",
    "ScheduleException",
    "ScheduleOccurrence",
    "SessionAttendance",
    "SessionMessage",
    "SessionQuestion",
    "SharingSession",
    "inbox_table",
    "metadata",
    "outbox_table",
    "registry",
]
