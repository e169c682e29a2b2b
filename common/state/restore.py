"""Writing back a table's whole state in one MULTI (`watermark rebuild`): what
common/recovery/rebuild.py read from S3 and the ledger, with the cursor restored by the
rule a commit follows (rebuild_cursor.lua) and abandoned runs by abandon_run.lua."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from common.state.runs import Runs
from common.state.base import text


@dataclass
class RestoredRun:
    """One run as S3 and the ledger tell it."""

    run_id: str
    meta: dict[str, str]
    totals: dict[str, int]
    """What its committed chunks extracted and the ledger says was loaded (session 1)."""
    chunks: list[dict[str, Any]]
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Part key -> {run, chunk, rows, bytes} of its parts no load contains."""
    abandoned: bool = False


@dataclass
class RestoredTable:
    runs: list[RestoredRun]
    totals: dict[str, int]
    schema: dict[str, Any] | None = None
    manual_cursor: str | None = None
    """The cursor of a `watermark set` made after the last plan: it wins over the runs'."""
    full_run: str = ""


class Restore(Runs):
    def restore(self, table: RestoredTable) -> None:
        """Replace the table's state (all but its orphan list) with `table`, in one MULTI."""
        now = f"{time.time():.3f}"
        tx = self.r.pipeline(transaction=True)
        for key in self.r.scan_iter(self.keys.pattern, count=1000):
            if text(key) != self.keys.orphans:  # what rebuild just noted, and what was noted before
                tx.delete(key)
        for run in sorted(table.runs, key=lambda r: r.run_id):
            meta, chunks = self.keys.meta(run.run_id), self.keys.chunks(run.run_id)
            tx.hset(meta, mapping=run.meta)
            tx.hset(self.keys.session(run.run_id, 1), mapping={k: str(v) for k, v in run.totals.items()})
            for n, entry in enumerate(run.chunks):
                tx.hset(chunks, str(n), json.dumps(entry))
            tx.rpush(self.keys.runs, run.run_id)
            if run.pending:
                tx.hset(self.keys.pending, mapping={k: json.dumps(v) for k, v in run.pending.items()})
            # Oldest first: a later run's cursor replaces an earlier one's, as their commits did.
            self._script("rebuild_cursor", [meta, chunks, self.keys.state], [run.run_id, now], tx)
            if run.abandoned:
                self.abandon_run(run.run_id, pipe=tx)
        if table.schema is not None:
            tx.set(self.keys.schema, json.dumps(table.schema))
        tx.hset(self.keys.state, mapping={**{k: str(v) for k, v in table.totals.items()},
                                          "status_extract": "idle", "status_load": "idle"})
        if table.manual_cursor is not None:
            tx.hdel(self.keys.state, "cursor_chunk", "cursor_at")
            tx.hset(self.keys.state, mapping={"cursor": table.manual_cursor, "cursor_run": "manual"})
        if table.full_run:
            tx.hset(self.keys.state, "full_run", table.full_run)
        tx.execute()
