"""Following runs from the CLI: poll their state in Redis, draw progress, build the report."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from common.watermark import FINAL_STATUSES, TableState

FINAL = set(FINAL_STATUSES)


@dataclass
class Progress:
    """One table's run as the CLI sees it."""

    table: str
    run_id: str
    session: int
    status: str
    chunks: int
    chunks_done: int
    rows: int
    files: int
    rows_loaded: int
    error: str
    null_cursor_rows: int
    truncated: dict[str, int]
    started: float
    finished: float | None

    @classmethod
    def read(cls, state: TableState, run_id: str) -> "Progress":
        """The run's progress; rows and files count this session only (a resumed run's
        earlier sessions are not counted again)."""
        m = state.run_meta(run_id)
        session = int(m.get("session", 1))
        t = state.session_totals(run_id, session)
        return cls(table=state.table, run_id=run_id, session=session, status=m.get("status", "unknown"),
                   chunks=int(m.get("chunks", 0)), chunks_done=int(m.get("chunks_done", 0)),
                   rows=int(t.get("rows_extracted", 0)), files=int(t.get("files_extracted", 0)),
                   rows_loaded=int(t.get("rows_loaded", 0)), error=m.get("error", ""),
                   null_cursor_rows=int(m.get("null_cursor_rows") or 0),
                   truncated=json.loads(m.get("truncated") or "{}"),
                   started=float(m.get("queued_at", time.time())),
                   finished=float(m["finished_at"]) if m.get("finished_at") else None)

    @property
    def duration(self) -> float:
        return max((self.finished or time.time()) - self.started, 0.0)

    def line(self) -> str:
        rate = self.rows / self.duration if self.duration > 0 else 0.0
        bar_w = 20
        filled = int(bar_w * self.chunks_done / self.chunks) if self.chunks else 0
        bar = "#" * filled + "-" * (bar_w - filled)
        return (f"{self.table} [{bar}] chunks {self.chunks_done}/{self.chunks} "
                f"rows {self.rows:,} ({rate:,.0f} rows/s) {self.status}")

    def metrics(self) -> dict[str, Any]:
        return {"status": self.status, "rows_processed": self.rows, "files_created": self.files,
                "rows_loaded": self.rows_loaded, "duration_seconds": round(self.duration, 3),
                "run_id": self.run_id, "session": self.session,
                **({"null_cursor_rows": self.null_cursor_rows} if self.null_cursor_rows else {}),
                **({"values_truncated": self.truncated} if self.truncated else {}),
                **({"error": self.error} if self.error else {})}


def wait(runs: list[tuple[TableState, str]], timeout_s: float | None = None,
         out: TextIO = sys.stderr, interval_s: float = 0.5) -> list[Progress]:
    """Poll until every run is final (or the timeout passes); redraw a line per change."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    tty = out.isatty()
    last = ""
    while True:
        progress = [Progress.read(s, run_id) for s, run_id in runs]
        text = " | ".join(p.line() for p in progress)
        if text != last:
            out.write(("\r\033[K" + text) if tty else text + "\n")
            out.flush()
            last = text
        if all(p.status in FINAL for p in progress):
            break
        if deadline is not None and time.time() > deadline:
            break
        time.sleep(interval_s)
    if tty:
        out.write("\n")
    return progress


def report(pipeline: str, run_id: str, progress: list[Progress]) -> dict[str, Any]:
    """The --json-output document."""
    statuses = {p.status for p in progress}
    status = ("failed" if statuses & {"failed", "abandoned"} else
              "succeeded" if statuses <= {"succeeded", "extracted"} else "running")
    return {"status": status, "pipeline": pipeline, "run_id": run_id,
            "table_metrics": {p.table: p.metrics() for p in progress}}
