"""Retention: the Redis state of finished runs is forgotten after FERRY_RUN_RETENTION_DAYS."""
from __future__ import annotations

import logging
import time

from common.model.records import FINAL_STATUSES
from common.state.chunks import Chunks
from common.state.parts import Parts
from common.state.status import TableStatus

log = logging.getLogger(__name__)


class Retention(Parts, Chunks, TableStatus):
    def expire_runs(self, retention_s: float, keep_last: int = 3, scan: int = 200,
                    now: float | None = None) -> list[str]:
        """Forget finished runs that ended more than retention_s ago (their meta, chunks,
        sessions, attempts and noted orphans), oldest first, at most `scan` looked at.

        Kept whatever their age: the last `keep_last` runs (resume looks at the latest), the
        runs status, the active run and a full reload name, the lock owner's, and any run
        with parts awaiting load (a load needs its chunks). `expired_before` records the newest run id expired, so `s3clean` knows the
        objects of a run Redis no longer has were loaded (or orphaned) by a run that
        finished, not lost with Redis."""
        now = time.time() if now is None else now
        runs = self.runs()
        state = self.state()
        keep = set(runs[-keep_last:]) if keep_last > 0 else set()
        keep |= {state.get(k, "") for k in ("last_run", "full_run", "active_run")}
        keep |= {p.run_id for p in self.pending_parts()}
        keep.add(self.lock_owner() or "")
        noted = self.orphans()
        expired: list[str] = []
        for run_id in runs[:scan]:
            if run_id in keep:
                continue
            meta = self.run_meta(run_id)
            ended = meta.get("finished_at") or meta.get("planned_at") or meta.get("queued_at")
            if meta and (meta.get("status") not in FINAL_STATUSES or not ended):
                continue
            if ended and now - float(ended) < retention_s:
                break  # runs are listed oldest first: the rest are younger
            session = int(meta.get("session") or 1)
            keys = [self.keys.meta(run_id), self.keys.chunks(run_id),
                    self.keys.attempts(run_id),
                    *(self.keys.session(run_id, n) for n in range(1, session + 1)),
                    *(self.keys.segments(run_id, n) for n in range(1, session + 1))]
            orphans = [k for k, info in noted.items() if info.get("run") == run_id]
            with self.r.pipeline(transaction=True) as tx:
                tx.lrem(self.keys.runs, 1, run_id)
                tx.delete(*keys)
                if orphans:
                    tx.hdel(self.keys.orphans, *orphans)
                tx.execute()
            expired.append(run_id)
        if expired:
            newest = max([*expired, state.get("expired_before", "")])
            self.r.hset(self.keys.state, "expired_before", newest)
            log.info("table %s: %d finished run(s) older than %.0f days forgotten (the oldest %s)",
                     self.table, len(expired), retention_s / 86400, expired[0])
        return expired

