"""Log lines are JSON objects that say which service, request and event they belong to."""

from __future__ import annotations

import json
import logging

from qunzhu_common.context import correlation_id_var, event_id_var, service_var
from qunzhu_common.logging import JsonFormatter, _ContextFilter


def _render(message: str, **extra: object) -> dict:
    record = logging.LogRecord("qunzhu.test", logging.WARNING, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    _ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_context_of_the_work_in_hand_is_on_every_line() -> None:
    tokens = (service_var.set("content"), correlation_id_var.set("req-42"), event_id_var.set("evt-7"))
    try:
        line = _render("handled %s", community_id="c-1")
    finally:
        event_id_var.reset(tokens[2])
        correlation_id_var.reset(tokens[1])
        service_var.reset(tokens[0])
    assert line["service"] == "content"
    assert line["correlation_id"] == "req-42"
    assert line["event_id"] == "evt-7"
    assert line["community_id"] == "c-1"
    assert line["level"] == "warning"
    assert line["ts"].endswith("+00:00")


def test_outside_any_work_the_fields_are_present_but_empty() -> None:
    line = _render("idle")
    assert (line["service"], line["correlation_id"], line["event_id"]) == ("-", "-", "-")


def test_chinese_text_stays_readable() -> None:
    assert '"message": "打卡成功"' in JsonFormatter().format(
        logging.LogRecord("x", logging.INFO, __file__, 1, "打卡成功", None, None)
    )
