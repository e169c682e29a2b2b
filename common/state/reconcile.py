"""A table's reconcile passes: where the pass in progress goes on (a scheduled reconcile
checks a few ranges a tick), the last reconcile and the last complete pass, and the totals
of rows deleted and repaired. finish_run.lua writes them when a reconcile run ends; a
load adds the rows it deleted to its reconcile run (count_deleted)."""
from __future__ import annotations

import time

from common.model import bounds
from common.model.bounds import Key
from common.state.base import StateBase, text


class Reconciles(StateBase):
    def reconcile_state(self) -> dict[str, str]:
        """The reconcile hash: last_at, last_run, last_mode, last_status, last_rows_deleted,
        last_rows_repaired, last_complete_at, pass_from, rows_deleted_total, ..."""
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.reconcile).items()}

    def pass_from(self) -> tuple[bool, Key | None, str | None]:
        """(a pass is in progress, the key it goes on after (None: from the start), when it began)."""
        got = self.r.hmget(self.keys.reconcile, ["pass_from", "pass_started_at"])
        if got[0] is None:
            return False, None, None
        return True, bounds.decode(text(got[0])), None if got[1] is None else text(got[1])

    def count_deleted(self, run_id: str, rows: int) -> None:
        """A load deleted (or soft-deleted) `rows` target rows that a reconcile run found."""
        if rows:
            self.r.hincrby(self.keys.meta(run_id), "rows_deleted", rows)

    def seconds_since_complete_pass(self, now: float | None = None) -> float | None:
        raw = self.r.hget(self.keys.reconcile, "last_complete_at")
        return None if raw is None else max((now or time.time()) - float(text(raw)), 0.0)
