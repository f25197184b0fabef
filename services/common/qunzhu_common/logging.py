"""Structured logs: one JSON object per line with `service`, `correlation_id` and `event_id`.

The three come from context variables set by the request middleware, the event consumer and the
service's background tasks, so every line written while handling something says what it was.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

from qunzhu_common.context import correlation_id_var, event_id_var, service_var

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.service = service_var.get() or "-"
        record.correlation_id = correlation_id_var.get() or "-"
        record.event_id = event_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", "-"),
            "correlation_id": getattr(record, "correlation_id", "-"),
            "event_id": getattr(record, "event_id", "-"),
        }
        # `log.info("…", extra={"community_id": …})` fields travel along.
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(service)s %(name)s [%(correlation_id)s] %(message)s"


def configure_logging(level: str = "INFO", fmt: Literal["json", "text"] = "json") -> None:
    """Idempotent: the first call installs the handler, later calls only adjust the level."""
    root = logging.getLogger()
    if not any(isinstance(f, _ContextFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(_ContextFilter())
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
