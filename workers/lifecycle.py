"""Worker process start and stop: drop inherited handles after fork, close ours at exit."""
from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from common.errors import ConfigError
from common.source import duck

from workers import resources

log = logging.getLogger(__name__)


@worker_init.connect
def _at_start(**_: Any) -> None:
    """Refuse to start with a DuckDB and a mysql extension built for another version."""
    try:
        duck.check_versions()
    except ConfigError as exc:
        log.critical("%s", exc)
        raise SystemExit(f"ferry worker: {exc}") from None


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # Must return within seconds: only forget inherited handles here, open nothing.
    resources.forget()


@worker_process_shutdown.connect
def _at_exit(**_: Any) -> None:
    resources.close_all()
