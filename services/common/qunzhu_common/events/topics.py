"""The topics of architecture.md. A breaking change to an event makes `.v2`, never an in-place edit."""

CHAT_EVENTS = "chat.events.v1"
PAYMENTS_EVENTS = "payments.events.v1"
MEMBERSHIP_EVENTS = "membership.events.v1"
CONTENT_EVENTS = "content.events.v1"
ENGAGEMENT_EVENTS = "engagement.events.v1"
CHAT_ACTIONS = "chat.actions.v1"

ALL_TOPICS = (
    CHAT_EVENTS,
    PAYMENTS_EVENTS,
    MEMBERSHIP_EVENTS,
    CONTENT_EVENTS,
    ENGAGEMENT_EVENTS,
    CHAT_ACTIONS,
)

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def is_dlq(topic: str) -> bool:
    return topic.endswith(DLQ_SUFFIX)


# Who writes each topic (architecture.md, "Topics"); documentation and the AsyncAPI document use it.
TOPIC_PRODUCERS: dict[str, tuple[str, ...]] = {
    CHAT_EVENTS: ("gateway",),
    PAYMENTS_EVENTS: ("gateway",),
    MEMBERSHIP_EVENTS: ("membership",),
    CONTENT_EVENTS: ("content",),
    ENGAGEMENT_EVENTS: ("engagement",),
    CHAT_ACTIONS: ("membership", "content", "engagement", "gateway"),
}
TOPIC_CONSUMERS: dict[str, tuple[str, ...]] = {
    CHAT_EVENTS: ("engagement", "membership", "content"),
    PAYMENTS_EVENTS: ("membership",),
    MEMBERSHIP_EVENTS: ("engagement", "content", "gateway"),
    CONTENT_EVENTS: ("engagement", "gateway"),
    ENGAGEMENT_EVENTS: ("membership", "content", "gateway"),
    CHAT_ACTIONS: ("gateway",),
}
