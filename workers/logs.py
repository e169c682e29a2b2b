"""Worker log format: Celery's text lines, or one JSON object per line with
FERRY_LOG_FORMAT=json (for log shippers); expected conditions as one WARNING line each."""
from __future__ import annotations

import json
import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

from common.config.settings import settings


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


class ExpectedConditions(logging.Filter):
    """Celery's own line for what ferry expects, at the level it deserves and on one line:
    a retry after a transient error (Celery: INFO) and an expected error (FerryTask.throws,
    Celery: INFO, no traceback) become WARNING; a transient error that outlived its retries
    fails the run: ERROR, still without a traceback. A retry line names the task's pipeline,
    table, run (and chunk) from its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if not isinstance(data, dict):
            return True
        if " retry: " in str(record.msg):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            where = _task_names()
            if where:
                record.msg = str(record.msg) + " (" + where.replace("%", "%%") + ")"
        elif data.get("description") == "raised expected":
            final = str(data.get("exc", "")).startswith("TransientError")
            record.levelno, record.levelname = (logging.ERROR, "ERROR") if final else (logging.WARNING, "WARNING")
        return True


def _task_names() -> str:
    """'pipeline P table T run R [chunk N]' of the task being run, from its arguments."""
    from celery import current_task
    args = list(getattr(getattr(current_task, "request", None), "args", None) or [])
    if args and isinstance(args[0], list):  # a chord body: the results come first
        args = args[1:]
    if len(args) >= 3 and all(isinstance(a, str) for a in args[:3]):
        names = f"pipeline {args[0]} table {args[1]} run {args[2]}"
        return names + (f" chunk {args[3]}" if len(args) > 3 and isinstance(args[3], int) else "")
    return ""


class ChordDependencyFailed(logging.Filter):
    """The result backend's 'Chord … raised: ChordError(Dependency … raised …)' repeats a
    chunk's failure that its own line and the run's failure line already tell: one WARNING
    line, without the traceback of the chunk's exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Chord %r raised") and "ChordError" in repr(record.args):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("celery.app.trace").addFilter(ExpectedConditions())
logging.getLogger("celery.backends.redis").addFilter(ChordDependencyFailed())


def _use_json(logger: logging.Logger, **_: Any) -> None:
    if settings().log_format == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


after_setup_logger.connect(_use_json)
after_setup_task_logger.connect(_use_json)
