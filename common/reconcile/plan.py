"""The ranges of a reconcile pass. A pass walks the whole key range once, in ranges of about
range_rows source rows (each a chunk of a reconcile run, so one task and the unit of
resume); a scheduled reconcile takes at most ranges_per_run of them a tick and the next
tick goes on after the last one (the pass's progress, kept in common/state/reconcile.py).

Ranges split the primary key in the source's key order, probed on its index as a run's
chunks are (common/source/probes.py). A key with a text column sorts by collation, which
MySQL and the warehouse do not share: such a table is split into buckets of the leading hex
digits of an MD5 of its key, which both sides compute alike (as `ferry verify` does).

Where a pass ends: for the id strategy at the committed cursor (rows above it are the next
sync's); otherwise the last range is open, so it takes target rows above the source's
highest key (the last rows deleted in the source) too."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.config.pipeline import TableSettings
from common.model.bounds import Key
from common.model.types import TableSchema
from common.plan.strategies import keyset
from common.source import probes
from common.source.connection import fetch
from common.verify.compare import uses_buckets

HEX = "0123456789abcdef"
MAX_BUCKET_DEPTH = 6
"""16^6 buckets at most (16 million): a range of range_rows rows up to 10^12 rows."""


@dataclass(frozen=True)
class PassPlan:
    """A reconcile run's share of the pass: its ranges, where they stop, and whether they
    reach the end of the pass."""

    ranges: list[tuple[Key | None, Key | None]]
    """(lo, hi] key ranges; in bucket mode (None, (prefix,)), the keys whose MD5 starts prefix."""
    buckets: bool
    last: Key | None
    """Where the next run of the pass goes on after (its last range's hi)."""
    ends_pass: bool


def estimated_rows(conn: Any, table: TableSettings) -> int:
    """The optimizer's estimate of the table's rows (information_schema: no scan)."""
    rows = fetch(conn, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                       " AND TABLE_NAME = %s", (table.schema, table.name))
    return int(rows[0][0] or 0) if rows else 0


def bucket_depth(rows: int, range_rows: int) -> int:
    """Hex digits of the buckets: enough that a bucket holds about range_rows rows."""
    if rows <= range_rows:
        return 1
    return max(1, min(MAX_BUCKET_DEPTH, math.ceil(math.log(rows / range_rows, 16))))


def _bucket_ranges(after: Key | None, depth: int, max_ranges: int | None) -> PassPlan:
    done = str(after[0]) if after else ""
    prefixes = []
    for i in range(16 ** depth):
        p = "".join(HEX[(i // 16 ** (depth - 1 - d)) % 16] for d in range(depth))
        if done and (p <= done or p.startswith(done)):
            continue
        prefixes.append(p)
        if max_ranges is not None and len(prefixes) >= max_ranges:
            break
    if not prefixes:  # (after was the last bucket: a pass always has something to check)
        return _bucket_ranges(None, depth, max_ranges)
    ends = prefixes[-1] == "f" * depth
    return PassPlan([(None, (p,)) for p in prefixes], True, (prefixes[-1],), ends)


def plan_pass(conn: Any, table: TableSettings, schema: TableSchema, after: Key | None,
              cursor: Key | None, max_ranges: int | None) -> PassPlan:
    """The next ranges of the pass after `after` (None: from the start), at most max_ranges."""
    key = [schema.column(k) for k in schema.key]
    rows = table.reconcile.range_rows
    if uses_buckets(key):
        return _bucket_ranges(after, bucket_depth(estimated_rows(conn, table), rows), max_ranges)
    names = list(schema.key)
    # (An id cursor over other columns than the key's, in another order, bounds the rows
    # through the range task's filter instead: see cursor_filter.)
    top: Key | None = cursor if table.strategy == "id" and keyset(table, schema) == schema.key else None
    last_key = probes.key_at(conn, table.key, names, after, top, 0, desc=True, where=table.where)
    if last_key is None:  # no source row left in (after, top]: its target rows are still checked
        return PassPlan([(after, top)], False, top, True)
    found, done = probes.next_bounds(conn, table.key, names, after, rows, last_key,
                                     rows_left=None if max_ranges is None else max_ranges * rows,
                                     where=table.where)
    ends = done and found[-1][1] == last_key
    ranges: list[tuple[Key | None, Key | None]] = list(found)
    if ends:  # the last range reaches the pass's end: the cursor, or open
        ranges[-1] = (ranges[-1][0], top)
    return PassPlan(ranges, False, ranges[-1][1], ends)


def cursor_filter(table: TableSettings, schema: TableSchema, cursor: Key | None) -> tuple[tuple[str, ...], Key | None]:
    """(columns, bound) that keep a range to the rows up to the committed cursor on both
    sides: for the id strategy (rows above the cursor are the next sync's), else none."""
    if table.strategy == "id" and cursor is not None:
        return keyset(table, schema), cursor
    return (), None
