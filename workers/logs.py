"""Worker log format: Celery's text lines, or one JSON object per line with
FERRY_LOG_FORMAT=json (for log shippers)."""
from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "process", "message"[, "task", "exc"]} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                               "level": record.levelname, "logger": record.name,
                               "process": record.processName, "message": record.getMessage()}
        task = getattr(record, "task_name", None)
        if task:
            doc["task"] = task
            doc["task_id"] = getattr(record, "task_id", None)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def _use_json(logger: logging.Logger, **_: Any) -> None:
    if os.environ.get("FERRY_LOG_FORMAT", "").lower() == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


after_setup_logger.connect(_use_json)
after_setup_task_logger.connect(_use_json)
