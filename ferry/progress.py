"""Following runs from the CLI: poll their state in Redis, draw progress, build the report."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO


from common.state import client
from common.config.settings import outage_tolerance_s
from common.errors import TransientError, redact
from common.model.records import FINAL_STATUSES, RunStatus
from common.state.table import TableState
from common.state.runs import state_lost_message

# What --wait shows for a run Redis no longer has (never a status stored in Redis).
LOST = "lost"
FINAL = set(FINAL_STATUSES) | {LOST}


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
    nul_removed: dict[str, int]
    started: float
    finished: float | None
    refused: list[str]
    """Ranges of the table the warehouse refused that still wait (any run's)."""
    rows_skipped: int
    planning: bool = False
    """The plan is still being probed: more chunks will come (chunks counts those known)."""

    @classmethod
    def read(cls, state: TableState, run_id: str) -> "Progress":
        """The run's progress; rows and files count this session only (a resumed run's
        earlier sessions are not counted again)."""
        m = state.run_meta(run_id)
        if not m:  # the run we follow vanished from Redis: say so and stop, never poll forever
            m = {"status": LOST, "error": state_lost_message(state.pipeline, state.table, run_id),
                 "finished_at": f"{time.time():.3f}"}
        session = int(m.get("session", 1))
        t = state.session_totals(run_id, session)
        return cls(table=state.table, run_id=run_id, session=session, status=m.get("status", "unknown"),
                   chunks=int(m.get("chunks", 0)), chunks_done=int(m.get("chunks_done", 0)),
                   rows=int(t.get("rows_extracted", 0)), files=int(t.get("files_extracted", 0)),
                   rows_loaded=int(t.get("rows_loaded", 0)), error=m.get("error", ""),
                   null_cursor_rows=int(m.get("null_cursor_rows") or 0),
                   truncated=json.loads(m.get("truncated") or "{}"),
                   nul_removed=json.loads(m.get("nul_removed") or "{}"),
                   started=float(m.get("queued_at", time.time())),
                   finished=float(m["finished_at"]) if m.get("finished_at") else None,
                   refused=[f"run {r.run_id} chunk {r.chunk} ({r.lo}, {r.hi}]"
                            for r in state.refusals().waiting().values()],
                   rows_skipped=int(state.state_fields("rows_skipped")["rows_skipped"] or 0),
                   planning=m.get("planning") == "1" and m.get("status") not in FINAL)

    @property
    def duration(self) -> float:
        return max((self.finished or time.time()) - self.started, 0.0)

    def line(self) -> str:
        rate = self.rows / self.duration if self.duration > 0 else 0.0
        bar_w = 20
        filled = int(bar_w * self.chunks_done / self.chunks) if self.chunks else 0
        bar = "#" * filled + "-" * (bar_w - filled)
        loaded = f", {self.rows_loaded:,} loaded" if self.rows_loaded else ""
        more = "+ (still planning)" if self.planning else ""
        return (f"{self.table} [{bar}] chunks {self.chunks_done}/{self.chunks}{more} "
                f"rows {self.rows:,} ({rate:,.0f} rows/s{loaded}) {self.status}")

    def metrics(self) -> dict[str, Any]:
        return {"status": self.status, "rows_processed": self.rows, "files_created": self.files,
                "rows_loaded": self.rows_loaded, "duration_seconds": round(self.duration, 3),
                "run_id": self.run_id, "session": self.session,
                **({"null_cursor_rows": self.null_cursor_rows} if self.null_cursor_rows else {}),
                **({"values_truncated": self.truncated} if self.truncated else {}),
                **({"nul_characters_removed": self.nul_removed} if self.nul_removed else {}),
                **({"refused_ranges_waiting": self.refused} if self.refused else {}),
                **({"rows_skipped": self.rows_skipped} if self.rows_skipped else {}),
                **({"error": self.error} if self.error else {})}


def _eta(p: Progress) -> str:
    if p.status in FINAL or p.planning or not p.chunks_done or p.chunks_done >= p.chunks:
        return ""
    left = (p.chunks - p.chunks_done) * p.duration / p.chunks_done
    return f" ETA {left:,.0f}s"


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def wait(runs: list[tuple[TableState, str]], timeout_s: float | None = None,
         out: TextIO = sys.stderr, interval_s: float = 0.5, every_s: float = 10.0) -> list[Progress]:
    """Poll until every run is final (or the timeout passes). On a terminal: one line per
    table, redrawn in place. Otherwise: a timestamped line per table at each change of
    state and every `every_s` seconds, and a summary at the end."""
    deadline = None if timeout_s is None else time.time() + timeout_s
    tty = out.isatty()
    drawn = 0
    last_state: dict[str, str] = {}
    last_line_at: dict[str, float] = {}
    outage_since: float | None = None
    began = time.time()
    while True:
        try:
            progress = [Progress.read(s, run_id) for s, run_id in runs]
        except client.RedisError as exc:
            # Redis restarting: the runs go on (their tasks wait for it too); so does the wait.
            now = time.time()
            if outage_since is None:
                outage_since = now
                out.write(f"{_stamp()} ferry: waiting for Redis ({redact(str(exc))}); the runs go on\n")
                out.flush()
            if now - outage_since > outage_tolerance_s():
                raise TransientError(f"Redis unreachable for {now - outage_since:.0f} s "
                                     f"(FERRY_OUTAGE_TOLERANCE_S): {redact(str(exc))}") from None
            time.sleep(2)
            continue
        if outage_since is not None:
            out.write(f"{_stamp()} ferry: Redis is back after {time.time() - outage_since:.0f} s\n")
            outage_since = None
        if tty:
            if drawn:
                out.write(f"\033[{drawn}F")
            for p in progress:
                out.write("\033[K" + p.line() + _eta(p) + "\n")
            drawn = len(progress)
        else:
            now = time.time()
            for p in progress:
                key = f"{p.table}|{p.run_id}"
                if last_state.get(key) != p.status or now - last_line_at.get(key, 0) >= every_s:
                    out.write(f"{_stamp()} {p.line()}{_eta(p)}\n")
                    last_state[key], last_line_at[key] = p.status, now
        out.flush()
        if all(p.status in FINAL for p in progress):
            break
        if deadline is not None and time.time() > deadline:
            break
        # Short runs (nothing new) end within a second: poll fast at first.
        time.sleep(interval_s if time.time() - began > 2 else min(interval_s, 0.05))
    for p in progress:
        out.write(f"{'' if tty else _stamp() + ' '}summary {p.table}: run {p.run_id} {p.status}, rows extracted "
                  f"{p.rows:,}, rows loaded {p.rows_loaded:,}, {p.duration:,.1f} s\n")
        if p.refused:
            out.write(f"{'' if tty else _stamp() + ' '}summary {p.table}: {len(p.refused)} range(s) refused by the "
                      f"warehouse wait ({'; '.join(p.refused[:3])}): `ferry watermark get` / `ferry runs show`\n")
    out.flush()
    return progress


def warn_unconsumed(needed: set[str], out: TextIO = sys.stderr, grace_s: float = 6.0) -> list[str]:
    """Warn, naming them, about queues a run needs that no live worker consumes (asks the
    workers over the broker, 2 seconds a time, for up to grace_s: workers started together
    with the sync have that long to come up)."""
    from tasks import app
    give_up = time.time() + grace_s
    while True:
        try:
            replies = app.control.inspect(timeout=2.0).active_queues() or {}
        except Exception:  # noqa: BLE001 - the broker is down: nothing to say about consumers now
            return []
        consumed = {q["name"] for queues in replies.values() for q in queues}
        missing = sorted(needed - consumed)
        if not missing or time.time() >= give_up:
            break
    for queue in missing:
        out.write(f"ferry: WARNING: no live worker consumes the {queue!r} queue; the run waits until one "
                  f"does (ferry worker -Q {queue})\n")
    return missing


def report(pipeline: str, run_id: str, progress: list[Progress]) -> dict[str, Any]:
    """The --json-output document."""
    statuses = {p.status for p in progress}
    status = ("failed" if statuses & {RunStatus.FAILED, RunStatus.ABANDONED, LOST} else
              "succeeded" if statuses <= {RunStatus.SUCCEEDED, RunStatus.EXTRACTED} else "running")
    return {"status": status, "pipeline": pipeline, "run_id": run_id,
            "table_metrics": {p.table: p.metrics() for p in progress}}
