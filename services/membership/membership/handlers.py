"""Membership's event handlers: one function per consumed event type (the inbox is the framework's)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from membership.context import MembershipContext
from membership.expected import RemovalRecommended
from membership.service import chatgroups, payments, reconcile, removal, ritual
from qunzhu_common.events.contracts.chat import (
    ChatGroupCreated,
    ChatGroupDismissed,
    ChatMemberJoined,
    ChatMemberLeft,
    ChatMemberRenamed,
    ChatMessagePosted,
)
from qunzhu_common.events.contracts.payments import PaymentFailed, PaymentRefunded, PaymentSucceeded
from qunzhu_common.inbox import Event, Handler


def build_handlers(ctx: MembershipContext) -> dict[str, Handler]:
    async def on_payment_succeeded(session: AsyncSession, event: Event[PaymentSucceeded]) -> None:
        await payments.on_succeeded(session, ctx, community_id=event.community_id, data=event.data)

    async def on_payment_refunded(session: AsyncSession, event: Event[PaymentRefunded]) -> None:
        await payments.on_refunded(session, ctx, community_id=event.community_id, data=event.data)

    async def on_payment_failed(session: AsyncSession, event: Event[PaymentFailed]) -> None:
        # Nothing changes: the membership keeps waiting for a payment. Counted by the consumer metrics.
        return None

    async def on_chat_member_joined(session: AsyncSession, event: Event[ChatMemberJoined]) -> None:
        d = event.data
        await reconcile.on_chat_join(session, ctx, group_id=d.group_id, person_id=d.member_id,
                                     display_name=d.display_name, joined_at=d.joined_at)

    async def on_chat_member_left(session: AsyncSession, event: Event[ChatMemberLeft]) -> None:
        await reconcile.on_chat_leave(session, ctx, group_id=event.data.group_id, person_id=event.data.member_id,
                                      left_at=event.data.left_at)

    async def on_chat_member_renamed(session: AsyncSession, event: Event[ChatMemberRenamed]) -> None:
        d = event.data
        await ritual.on_renamed(session, ctx, group_id=d.group_id, member_id=d.member_id, name=d.display_name,
                                at=d.renamed_at)

    async def on_chat_message_posted(session: AsyncSession, event: Event[ChatMessagePosted]) -> None:
        d = event.data
        await ritual.on_message(session, ctx, group_id=d.group_id, sender_id=d.sender_id, text=d.text, at=d.sent_at)

    async def on_chat_group_created(session: AsyncSession, event: Event[ChatGroupCreated]) -> None:
        await chatgroups.on_group_created(session, ctx, community_id=event.community_id,
                                          group_id=event.data.group_id, platform=event.data.platform)

    async def on_chat_group_dismissed(session: AsyncSession, event: Event[ChatGroupDismissed]) -> None:
        await chatgroups.on_group_dismissed(session, ctx, community_id=event.community_id,
                                            group_id=event.data.group_id, dismissed_at=event.data.dismissed_at)

    async def on_removal_recommended(session: AsyncSession, event: Event[RemovalRecommended]) -> None:
        d = event.data
        reason = f"{d.reason}: {d.detail}" if d.detail else d.reason
        await removal.on_recommended(session, ctx, community_id=event.community_id, recommendation_id=event.id,
                                     member_id=d.member_id, reason=reason)

    return {
        "payment.succeeded": on_payment_succeeded,
        "payment.refunded": on_payment_refunded,
        "payment.failed": on_payment_failed,
        "chat.member.joined": on_chat_member_joined,
        "chat.member.left": on_chat_member_left,
        "chat.member.renamed": on_chat_member_renamed,
        "chat.message.posted": on_chat_message_posted,
        "chat.group.created": on_chat_group_created,
        "chat.group.dismissed": on_chat_group_dismissed,
        "removal.recommended": on_removal_recommended,
    }
