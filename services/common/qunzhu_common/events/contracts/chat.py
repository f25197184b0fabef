"""Chat events normalised by the gateway (chat.events.v1) and bot actions to it (chat.actions.v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from qunzhu_common.events.contracts.identity import GroupId, PersonId, Platform
from qunzhu_common.events.registry import EventSpec, key_by_data_field
from qunzhu_common.events.topics import CHAT_ACTIONS, CHAT_EVENTS

MediaKind = Literal["none", "image", "sticker", "emoji", "video", "voice", "file", "link_card", "mini_program"]
CommandKind = Literal["checkin", "homework", "signup_chain", "question"]


class _ChatEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Platform
    group_id: GroupId
    delivery_id: str = Field(max_length=200, description="The platform's delivery id (deduplication).")


class ChatMessagePosted(_ChatEvent):
    message_id: str = Field(max_length=200)
    sender_id: PersonId
    sender_name: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=20000)
    mentions: list[PersonId] = Field(default_factory=list)
    mentions_all: bool = False
    reply_to_message_id: str | None = Field(default=None, max_length=200)
    reply_to_sender_id: PersonId | None = None
    links: list[str] = Field(default_factory=list)
    media_kind: MediaKind = "none"
    forwarded: bool = False
    sent_at: AwareDatetime


class ChatCommandIssued(_ChatEvent):
    """A recognised command: 打卡/签到 check-in, 作业 homework, 接龙 sign-up chain, `?` question."""

    message_id: str = Field(max_length=200)
    sender_id: PersonId
    sender_name: str = Field(default="", max_length=200)
    command: CommandKind
    argument: str = Field(default="", max_length=20000, description="The text after the command word.")
    sent_at: AwareDatetime


JoinedVia = Literal["invite", "invite_link", "qr_code", "approved"]
LeftVia = Literal["left", "removed"]


class ChatMemberJoined(_ChatEvent):
    member_id: PersonId
    display_name: str = Field(default="", max_length=200)
    inviter_id: PersonId | None = None
    joined_via: JoinedVia | None = Field(default=None, description="How they came in, when the platform says.")
    joined_at: AwareDatetime


class ChatMemberLeft(_ChatEvent):
    member_id: PersonId
    removed_by: PersonId | None = None
    left_via: LeftVia | None = Field(default=None, description="Left by themselves or removed, when the platform "
                                     "says so without naming who removed them.")
    left_at: AwareDatetime


class ChatGroupCreated(_ChatEvent):
    """A chat group came into being where the connector sees it (a WeCom customer group created by a member
    of the app's visible range); registered as the connector's group when the connector says so."""

    created_at: AwareDatetime


class ChatGroupDismissed(_ChatEvent):
    """A chat group was dismissed (解散) on the platform: nobody is in it any more."""

    dismissed_at: AwareDatetime


class ChatMessageRecalled(_ChatEvent):
    """A message was withdrawn (撤回) in the group, by its sender or by an admin (`operator_id`): what it
    earned is taken back and it no longer counts (engagement)."""

    message_id: str = Field(max_length=200)
    sender_id: PersonId | None = None
    operator_id: PersonId | None = None
    recalled_at: AwareDatetime


class ChatMemberRenamed(_ChatEvent):
    member_id: PersonId
    display_name: str = Field(max_length=200)
    renamed_at: AwareDatetime


class ChatMentionResolved(_ChatEvent):
    """An @-name in an earlier message (`message_id`) that named nobody known then, now resolved: the
    gateway saw someone carry that name later (a join, a message, a rename). Consumers add the mention
    to that message as if it had been resolved at once; replaying the history gives the same result."""

    message_id: str = Field(max_length=200)
    sender_id: PersonId
    mentioned_id: PersonId
    name: str = Field(max_length=200, description="The @-name as written, without the @.")
    resolved_at: AwareDatetime


class ChatReactionAdded(_ChatEvent):
    message_id: str = Field(max_length=200)
    reactor_id: PersonId
    target_sender_id: PersonId | None = None
    emoji: str = Field(max_length=50)
    reacted_at: AwareDatetime


class ChatRedPacketSent(_ChatEvent):
    sender_id: PersonId
    amount_fen: int | None = Field(default=None, ge=0)
    count: int | None = Field(default=None, ge=1)
    sent_at: AwareDatetime


PERSON_TOKEN = "{person:%s}"
MENTION_TOKEN = "{mention:%s}"
"""In a bot action's `text`, `{person:telegram:42}` stands for that person's name and `{mention:telegram:42}`
for a mention of them (they are notified). The gateway renders both at send time from the name the platform
last reported for them in that group (group card / nickname / username; a masked id such as
`telegram:19…88` when none), a mention in the platform's own syntax where it has one (Telegram text
mention, WeCom mentioned_list, QQ `at` segment; bridges get `segments`)."""


def person_token(person_id: str) -> str:
    """The placeholder for a person's name in a bot message's text (see PERSON_TOKEN)."""
    return PERSON_TOKEN % person_id


def mention_token(person_id: str) -> str:
    """The placeholder for a mention of a person in a bot message's text (see PERSON_TOKEN)."""
    return MENTION_TOKEN % person_id


ActionKind = Literal[
    "send_message", "announce", "remove_member", "relay",
    # Platforms that can (OneBot 11 QQ groups): a join request decided, a group card set, a mute, a recall.
    "decide_join", "set_card", "mute_member", "delete_message",
]


class ChatActionRequested(BaseModel):
    """A bot command for the gateway to carry out on a platform (keyed by group for per-group order)."""

    model_config = ConfigDict(extra="forbid")

    action_id: str = Field(max_length=200, description="Idempotency key of the action.")
    action: ActionKind
    group_id: GroupId
    text: str = Field(default="", max_length=20000,
                      description="May hold `{person:<id>}` / `{mention:<id>}` placeholders (PERSON_TOKEN).")
    mention_all: bool = False
    member_id: PersonId | None = Field(default=None, description="Target of remove_member.")
    reason: str = Field(default="", max_length=500)
    relay_of_message_id: str | None = Field(default=None, max_length=200)
    requested_by: str = Field(max_length=50, description="The service asking.")
    not_before: AwareDatetime | None = None
    post_id: str | None = Field(
        default=None,
        max_length=36,
        description="The published post this message carries (a session summary), for a bridge to attach or link.",
    )
    reply_to_message_id: str | None = Field(
        default=None, max_length=200,
        description="The platform message this answers (QQ official bots reply passively to a member's message).",
    )
    approve: bool | None = Field(default=None, description="decide_join: admit (true) or refuse (false).")
    join_flag: str | None = Field(default=None, max_length=500, description="decide_join: the platform's request flag.")
    display_name: str | None = Field(default=None, max_length=200, description="set_card: the group card to set.")
    duration_s: int | None = Field(default=None, ge=0, le=30 * 86400, description="mute_member: seconds (0 lifts).")
    message_id: str | None = Field(default=None, max_length=200, description="delete_message: what to recall.")


class ChatActionSettled(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: str = Field(max_length=200)
    action: ActionKind
    group_id: GroupId
    attempts: int = Field(ge=1)
    error: str = Field(default="", max_length=2000)
    settled_at: AwareDatetime


def _chat(type_: str, payload: type[BaseModel], description: str) -> EventSpec:
    return EventSpec(type=type_, version=1, topic=CHAT_EVENTS, payload=payload, description=description)


def _action(type_: str, payload: type[BaseModel], description: str) -> EventSpec:
    return EventSpec(
        type=type_, version=1, topic=CHAT_ACTIONS, payload=payload, description=description,
        key=key_by_data_field("group_id"), key_description="group id",
    )


CHAT_SPECS = (
    _chat("chat.message.posted", ChatMessagePosted, "A member posted a message in a chat group."),
    _chat("chat.command.issued", ChatCommandIssued, "A member issued a command (打卡, 作业, 接龙, ?)."),
    _chat("chat.member.joined", ChatMemberJoined, "Someone joined a chat group."),
    _chat("chat.member.left", ChatMemberLeft, "Someone left or was removed from a chat group."),
    _chat("chat.group.created", ChatGroupCreated, "A chat group was created on the platform."),
    _chat("chat.group.dismissed", ChatGroupDismissed, "A chat group was dismissed on the platform."),
    _chat("chat.message.recalled", ChatMessageRecalled, "A message was withdrawn (撤回) in a chat group."),
    _chat("chat.member.renamed", ChatMemberRenamed, "A member changed their group nickname."),
    _chat("chat.mention.resolved", ChatMentionResolved, "An earlier message's @-name now names a person."),
    _chat("chat.reaction.added", ChatReactionAdded, "A member reacted to a message."),
    _chat("chat.red_packet.sent", ChatRedPacketSent, "A member sent a red packet (红包)."),
    _action("chat.action.requested", ChatActionRequested, "A service asks the gateway's bot to act."),
    _action("chat.action.completed", ChatActionSettled, "The gateway carried out a bot action."),
    _action("chat.action.failed", ChatActionSettled, "A bot action failed after its last retry."),
)
