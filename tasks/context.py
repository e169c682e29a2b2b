"""What every task needs: the table's config and state, the settings it reads, error translation."""
from __future__ import annotations

import functools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from celery import Task
from celery.exceptions import Reject

from common.model import naming
from common.config.pipeline import PipelineConfig, TableSettings
from common.config.files import load_pipeline
from common.config.settings import outage_tolerance_s, settings
from common.errors import TransientError, classify
from common.state.table import TableState
from workers import resources

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

BACKOFF_MAX_S = 60
"""The longest wait between two attempts; far below the visibility timeout, so a waiting
retry is never redelivered as a duplicate."""


def retry_countdown(retries: int) -> float:
    """Exponential backoff with 'equal jitter': at least half of the step, so the waits of
    n retries add up to a known minimum (full jitter could sum to almost nothing)."""
    step = min(BACKOFF_MAX_S, 2 ** (retries + 1))
    return step / 2 + random.uniform(0, step / 2)


def retries_for(tolerance_s: float) -> int:
    """Retries whose shortest possible waits add up to the tolerance: a transient error is
    retried for at least that long, by time rather than by count."""
    n, waited = 0, 0.0
    while waited < tolerance_s:
        waited += min(BACKOFF_MAX_S, 2 ** (n + 1)) / 2
        n += 1
    return n


# Retry policy for transient errors (applied by `translated`): FERRY_MAX_RETRIES, if set,
# overrides the count derived from the outage tolerance.
_MAX_RETRIES = settings().max_retries
RETRY = dict(max_retries=retries_for(settings().outage_tolerance_s) if _MAX_RETRIES is None else _MAX_RETRIES)


def load_lock_wait_s() -> float:
    """How long a load waits for another load of its table to end (FERRY_LOAD_LOCK_WAIT_S,
    default an hour): a budget of its own, apart from the retries of transient errors."""
    return settings().load_lock_wait_s


def lock_ttl_s() -> int:
    """Table lock TTL; renewed at every chunk commit, so it bounds a silent stall, not a run."""
    return settings().lock_ttl_s


def run_retention_s() -> float:
    """How long the Redis state of a finished run is kept (FERRY_RUN_RETENTION_DAYS, default
    30; 0 keeps every run)."""
    return settings().run_retention_s


@dataclass(frozen=True)
class TableContext:
    cfg: PipelineConfig
    table: TableSettings
    state: TableState

    @property
    def table_target(self) -> str:
        return naming.target_table_name(self.table.target_name)

    @functools.cached_property
    def table_prefix(self) -> str:
        """The table's S3 prefix, in the layout its state records (TableStatus.s3_legacy)."""
        return naming.table_prefix(self.cfg.s3.prefix, self.cfg.s3_prefix, self.table.key,
                                   legacy=self.state.s3_legacy())


def table_context(pipeline: str, table: str) -> TableContext:
    cfg = load_pipeline(pipeline)
    return TableContext(cfg=cfg, table=cfg.table(table),
                        state=TableState(resources.redis_client(), pipeline, table))


def translated(fn: F) -> F:
    """Turn library exceptions into ferry's transient/terminal errors; a bound task retries a
    transient one with backoff (retry_countdown) until its retries are spent."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            err = classify(exc)
            task = args[0] if args and isinstance(args[0], Task) else None
            if isinstance(err, TransientError) and task is not None and not task.request.called_directly \
                    and transient_retries(task) < (task.max_retries or 0):
                publish_retry(task, err)
            if err is exc:
                raise
            raise err from exc
    return wrapper  # type: ignore[return-value]


def lock_waits(task: Task) -> int:
    """Retries this task spent waiting for a lock (they have a budget of their own)."""
    return int((task.request.kwargs or {}).get("lock_waits") or 0)


def transient_retries(task: Task) -> int:
    """Retries this task spent on transient errors (its retries less its lock waits)."""
    return task.request.retries - lock_waits(task)


def publish_retry(task: Task, err: BaseException) -> None:
    """Schedule the task's retry; raises celery's Retry. If the broker cannot take the retry
    (Redis restarting), wait for it within the outage tolerance instead of letting Celery
    reject the message for good: the task keeps its message until the retry is published."""
    deadline = time.time() + outage_tolerance_s()
    countdown = retry_countdown(transient_retries(task))
    while True:
        try:
            raise task.retry(exc=err, countdown=countdown, max_retries=(task.max_retries or 0) + lock_waits(task))
        except Reject as rejected:
            if time.time() > deadline:
                raise err from rejected
            log.warning("retry of %s[%s] not published yet (broker unreachable: %s); trying again",
                        task.name, task.request.id, rejected.reason)
            time.sleep(2)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
