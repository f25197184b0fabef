"""A person id is `<platform>:<user id>` with no whitespace or control characters, in requests and events."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from qunzhu_common.events.contracts.chat import ChatMessagePosted
from qunzhu_common.events.contracts.identity import PersonId

person = TypeAdapter(PersonId)


@pytest.mark.parametrize("value", ["telegram:42", "wecom:zhangsan", "qq:中文名", "generic:a-b_c.d@e"])
def test_platform_ids_are_person_ids(value):
    assert person.validate_python(value) == value


@pytest.mark.parametrize("value", [
    "wecom:zhang san", "wecom:a\x00b", "telegram:42\n", "telegram:\t42", "qq:a\u3000b", "qq:a\u2028b",
    "qq:a\x7fb", "qq:a\x85b", "42", "Telegram:42", "telegram:", "wecom:" + "x" * 200,
])
def test_whitespace_control_characters_and_missing_platforms_are_refused(value):
    with pytest.raises(ValidationError):
        person.validate_python(value)


def test_a_chat_event_with_a_nul_in_the_sender_is_not_a_valid_event():
    event = {"platform": "wecom", "group_id": "wecom:g1", "message_id": "m1", "sender_id": "wecom:ab",
             "delivery_id": "d1", "text": "hi", "sent_at": "2026-01-01T00:00:00+00:00"}
    assert ChatMessagePosted.model_validate(event).sender_id == "wecom:ab"
    with pytest.raises(ValidationError, match="sender_id"):
        ChatMessagePosted.model_validate({**event, "sender_id": "wecom:a\x00b"})
