"""Range planning: where a run starts (the committed cursor, less the lookback window) and
ends (its upper key, fixed first), and the chunk bounds between, probed on the key index in
segments (plan_run, then next_ranges) so chunks are read while the rest is planned.
Every key comparison happens in MySQL (its collation, its types), never in Python."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from common.model import zones
from common.source import connection, probes
from common.model.bounds import Key
from common.config.pipeline import TableSettings
from common.model.types import TableSchema
from common.plan.strategies import keyset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """A run's chunks, and which of them may move the cursor.

    Chunks before `advance_from` re-read the lookback window behind the committed cursor
    and end at or before it: committing them never writes the cursor, so it never moves
    back. For the full strategy advance_from is the chunk count: it keeps no cursor."""

    lo: Key | None
    ceiling: Key | None
    ranges: list[tuple[Key | None, Key]]
    advance_from: int
    hi: Key | None = None
    """The run's fixed upper key (None: nothing to read)."""
    done: bool = True
    """False when `ranges` stop short of hi: the rest is planned by next_ranges()."""
    rows_left: int | None = None
    """For an unfinished plan with a --limit: the rows its remaining chunks may hold."""


def _lower_bound(conn: Any, table: TableSettings, schema: TableSchema, committed: Key | None,
                 datetime_zone: str | None) -> tuple[Key | None, Key | None]:
    """(where the run starts, the ceiling) for the table's strategy."""
    if table.strategy == "full":
        return None, None
    if table.strategy == "id":
        return committed, None
    col = schema.column(table.cursor or "")
    is_timestamp = col.mysql_type.startswith("timestamp")
    now = connection.clock(conn, is_timestamp, datetime_zone)
    ceiling = (now - timedelta(seconds=table.lag_s),)
    if committed is None:
        return None, ceiling
    lookback = timedelta(seconds=table.lookback_s)
    if is_timestamp:
        start = committed[0] - lookback  # read in UTC: no wall-clock hour repeats
    else:
        name, zone = connection.datetime_zone(conn, datetime_zone)
        if zone is None:
            log.warning("table %s: DATETIME cursor in zone %s, which ferry cannot resolve: the hour "
                        "repeated when clocks go back is not re-read; set datetime_time_zone",
                        table.key, name)
        start = zones.widen_for_repeats(zone, committed[0], lookback)
    if start == committed[0]:
        return committed, ceiling
    return (start,), ceiling


def _last_key(conn: Any, table_key: str, keys: Sequence[str], start: Key | None, ceiling: Key | None,
              where: str | None) -> Key | None:
    """The last key after start up to the ceiling (the run's upper key without a --limit);
    None if no key follows start."""
    return probes.key_at(conn, table_key, keys, start, ceiling, 0, desc=True, where=where)


def plan_run(conn: Any, table: TableSettings, schema: TableSchema, committed: Key | None,
             datetime_zone: str | None, limit: int | None, deadline: float | None = None) -> RunPlan:
    """Split the run into chunks of about chunk_rows rows by probing the key index.

    With a lookback, the window behind the committed cursor and the rows after it are
    planned separately, so a chunk boundary falls exactly on the committed cursor. A
    --limit counts rows after the committed cursor (not after the lookback, or a limited
    run would re-read the same rows forever): the chunks after it stop at the limit-th key.

    With a deadline (time.monotonic()), the chunks after the cursor are planned only until
    then (at least one), so a big table's first chunks are read while the rest is planned
    by next_ranges() (done=False; `hi` is then the last key up to the ceiling, where the
    plan ends unless a --limit (rows_left) stops it earlier)."""
    keys = keyset(table, schema)
    lo, ceiling = _lower_bound(conn, table, schema, committed, datetime_zone)
    start = None if table.strategy == "full" else committed
    behind: list[tuple[Key | None, Key]] = []
    if lo != start and start is not None:
        behind = probes.plan_bounds(conn, table.key, keys, lo, table.chunk_rows, start, where=table.where)
    hi = _last_key(conn, table.key, keys, start, ceiling, table.where)
    ahead: list[tuple[Key | None, Key]] = []
    done = True
    if hi is not None:
        ahead, done = probes.next_bounds(conn, table.key, keys, start, table.chunk_rows, hi, deadline, limit,
                                         where=table.where)
    ranges = behind + ahead
    advance_from = len(ranges) if table.strategy == "full" else len(behind)
    if ranges and done:
        hi = ranges[-1][1]
    return RunPlan(lo=lo, ceiling=ceiling, ranges=ranges, advance_from=advance_from,
                   hi=hi if hi is not None else (behind[-1][1] if behind else None), done=done,
                   rows_left=None if limit is None or done else limit - table.chunk_rows * len(ahead))


def next_ranges(conn: Any, table: TableSettings, schema: TableSchema, after: Key, hi: Key,
                deadline: float | None, rows_left: int | None = None) -> tuple[list[tuple[Key | None, Key]], bool]:
    """The next chunks of a run whose plan stopped at `after` (see plan_run), up to its upper
    key or, for a --limit, its rows_left-th key."""
    return probes.next_bounds(conn, table.key, keyset(table, schema), after, table.chunk_rows, hi, deadline,
                              rows_left, where=table.where)
