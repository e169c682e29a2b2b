"""Keeping the source serving while ferry reads it in bulk (reconcile): before each query,
wait while the server's Threads_running is above a limit (as pt-table-checksum's
--max-load), and keep the rows read to at most a rate. Waits are counted for the report."""
from __future__ import annotations

import logging
import time
from typing import Any

from common.errors import TransientError
from common.source.connection import fetch

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""How often a paused read looks at Threads_running again."""


class Throttle:
    def __init__(self, conn: Any, max_threads_running: int, max_rows_per_s: int | None,
                 max_wait_s: float = 600.0, what: str = "") -> None:
        self.conn = conn
        self.max_threads_running = max_threads_running
        self.max_rows_per_s = max_rows_per_s
        self.max_wait_s = max_wait_s
        self.what = what
        self.started = time.monotonic()
        self.rows = 0
        self.waited_s = 0.0
        self.pauses = 0

    def threads_running(self) -> int:
        rows = fetch(self.conn, "SHOW GLOBAL STATUS LIKE 'Threads_running'", ())
        return int(rows[0][1]) if rows else 0

    def __call__(self, rows: int = 0) -> None:
        """Count `rows` read by the last query, then wait until the next may start."""
        self.rows += rows
        if self.max_rows_per_s:
            ahead = self.rows / self.max_rows_per_s - (time.monotonic() - self.started)
            if ahead > 0:
                time.sleep(ahead)
                self.waited_s += ahead
        since = time.monotonic()
        paused = False
        while True:
            # (our own SHOW STATUS is one of the running threads)
            running = self.threads_running() - 1
            if running <= self.max_threads_running:
                break
            if not paused:
                paused = True
                self.pauses += 1
                log.info("%s: source busy (Threads_running %d > %d): paused", self.what, running,
                         self.max_threads_running)
            if time.monotonic() - since > self.max_wait_s:
                raise TransientError(f"{self.what}: the source stayed busy for {self.max_wait_s:.0f} s "
                                     f"(Threads_running {running} > max_threads_running "
                                     f"{self.max_threads_running}); retried later")
            time.sleep(CHECK_EVERY_S)
        if paused:
            self.waited_s += time.monotonic() - since
