"""What every task needs: the table's config and state, error translation, a base class."""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from celery import Task

from common import naming
from common.config import PipelineConfig, TableSettings, load_pipeline
from common.errors import StateError, TransientError, classify
from common.watermark import TableState
from workers import resources

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Retry policy for transient errors; the longest countdown stays far below the
# visibility timeout so a waiting retry is never redelivered as a duplicate.
RETRY = dict(autoretry_for=(TransientError,), retry_backoff=2, retry_backoff_max=120,
             retry_jitter=True, max_retries=int(os.environ.get("FERRY_MAX_RETRIES", "5")))


def lock_ttl_s() -> int:
    """Table lock TTL; renewed at every chunk commit, so it bounds a silent stall, not a run."""
    return int(os.environ.get("FERRY_LOCK_TTL_S", "7200"))


def run_retention_s() -> float:
    """How long the Redis state of a finished run is kept (FERRY_RUN_RETENTION_DAYS, default
    30; 0 keeps every run)."""
    return float(os.environ.get("FERRY_RUN_RETENTION_DAYS", "30")) * 86400


@dataclass(frozen=True)
class TableContext:
    cfg: PipelineConfig
    table: TableSettings
    state: TableState

    @property
    def table_target(self) -> str:
        return naming.target_table_name(self.table.target_name)

    @property
    def table_prefix(self) -> str:
        return naming.table_prefix(self.cfg.s3.prefix, self.cfg.s3_prefix, self.table.key)


def table_context(pipeline: str, table: str) -> TableContext:
    cfg = load_pipeline(pipeline)
    return TableContext(cfg=cfg, table=cfg.table(table),
                        state=TableState(resources.redis_client(), pipeline, table))


def translated(fn: F) -> F:
    """Turn library exceptions into ferry's transient/terminal errors (so retries are right)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            err = classify(exc)
            if err is exc:
                raise
            raise err from exc
    return wrapper  # type: ignore[return-value]


def shown(pipeline: str, table: str, run_id: str, **more: Any) -> dict[str, str]:
    """apply_async options that make a task read well in Flower: its visible arguments are
    pipeline, table and run, then `more`, labelled (a load's chord results never show).
    Task arguments are names and ids only, so nothing secret can show either way."""
    extra = "".join(f", {k}={v!r}" for k, v in more.items())
    return {"argsrepr": f"(pipeline={pipeline!r}, table={table!r}, run={run_id!r}{extra})", "kwargsrepr": "{}"}


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class FerryTask(Task):
    """Base of ferry's tasks: arguments are names and ids only (Flower shows them)."""

    abstract = True
    # Expected in normal operation: logged as one line without a traceback (workers/logs.py).
    throws = (TransientError, StateError)
