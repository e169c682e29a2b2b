"""One reconcile range compared on both sides and narrowed down to keys, with the two
sides of `ferry verify` (common/verify/compare.py): the range's count and checksum; where
they differ, those of its MD5 buckets; then the rows of the differing buckets, read from
both sides by key hash and key and sorted into the keys only in the source, only in the
target, and in both with different content (RangeDiff says how many queries that takes).

In keys mode the two sides hash the key alone (the columns compared are the key's), so
the source reads only its key index; in rows mode every column, normalised as verify does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from common.model import bounds
from common.model.bounds import Key
from common.verify.compare import LEAF_ROWS, MySQLSide, Part, Sums, WarehouseSide

BUCKET_ROWS = 32
"""A differing range is grouped into buckets of about this many rows."""
MAX_BUCKETS = 2000
"""More differing buckets than this: the whole range is read (one query, no long IN list)."""
FIRST_KEYS = 10
"""A range's findings name at most this many keys (the report's first differences)."""


@dataclass
class Found:
    """What one range held: its rows on each side and the keys that differ."""

    source_rows: int = 0
    target_rows: int = 0
    only_source: list[Key] = field(default_factory=list)
    """Keys (source values) of rows the target lacks."""
    differs: list[Key] = field(default_factory=list)
    """Keys (source values) of rows whose content differs."""
    only_target: list[Key] = field(default_factory=list)
    """Keys (target values) of rows the source no longer has."""
    leaves: int = 0
    """Parts read row by row."""

    def findings(self, dry_run: bool) -> dict[str, Any]:
        """The range's findings as committed with its chunk (counts added to the run's)."""
        first = ([{"key": bounds.show(k), "what": "only in source"} for k in self.only_source[:FIRST_KEYS]]
                 + [{"key": bounds.show(k), "what": "differs"} for k in self.differs[:FIRST_KEYS]]
                 + [{"key": bounds.show(k), "what": "only in target"} for k in self.only_target[:FIRST_KEYS]])
        return {"counts": {"rec_ranges": 1, "rec_rows_compared": self.source_rows,
                           "rec_target_rows": self.target_rows, "rec_only_source": len(self.only_source),
                           "rec_differs": len(self.differs), "rec_only_target": len(self.only_target),
                           "rec_leaves": self.leaves},
                "first": first[:FIRST_KEYS], "dry_run": dry_run}


class RangeDiff:
    """Compares the two sides of a range; `before_query(rows)` runs before each source query
    (the throttle), with the rows the last one covered.

    Three queries a side at most, whatever the number of differences: the range's count
    and checksum; if they differ, the counts and checksums of its buckets (the leading hex
    digits of each key's MD5, enough digits for about BUCKET_ROWS rows a bucket) in one
    GROUP BY; then the key hash, key and row hash of the rows of the buckets that differ, in
    one query (of the whole range when most buckets differ), sorted out here by key hash.
    A range of at most LEAF_ROWS rows is read row by row at once."""

    def __init__(self, src: MySQLSide, dst: WarehouseSide, before_query: Callable[[int], None]) -> None:
        self.src = src
        self.dst = dst
        self.before_query = before_query
        self.found = Found()

    def compare(self, part: Part) -> Found:
        """The range's rows compared; every difference in it narrowed down to its keys."""
        self.before_query(0)
        a, b = self.src.sums(part), self.dst.sums(part)
        self.found.source_rows, self.found.target_rows = a.rows, b.rows
        self.before_query(a.rows)
        if a == b:
            return self.found
        rows = max(a.rows, b.rows)
        prefix = part.bucket or ""
        if rows <= LEAF_ROWS or len(prefix) >= 32:
            self._rows(part, ())
            return self.found
        depth = max(1, min(32 - len(prefix), math.ceil(math.log(rows / BUCKET_ROWS, 16))))
        inside = None if part.bucket is not None else part  # (a bucket part is its prefix)
        mine = self.src.bucket_sums(prefix, inside, depth)
        self.before_query(a.rows)
        theirs = self.dst.bucket_sums(prefix, inside, depth)
        empty = Sums(0, (0, 0))
        differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k, empty) != theirs.get(k, empty))
        in_them = sum(max(mine.get(k, empty).rows, theirs.get(k, empty).rows) for k in differ)
        whole = len(differ) > MAX_BUCKETS or in_them > rows // 2
        self._rows(part, () if whole else differ)
        return self.found

    def _rows(self, part: Part, buckets: Sequence[str]) -> None:
        """Both sides' rows of a part (or of its buckets), whole, sorted out by key hash."""
        mine = {k: (key, h) for k, key, h in self.src.rows(part, None, buckets)}
        self.before_query(len(mine))
        theirs = {k: (key, h) for k, key, h in self.dst.rows(part, None, buckets)}
        self.found.leaves += 1
        for k in sorted(mine.keys() | theirs.keys()):
            if k not in theirs:
                self.found.only_source.append(mine[k][0])
            elif k not in mine:
                self.found.only_target.append(theirs[k][0])
            elif mine[k][1] != theirs[k][1]:
                self.found.differs.append(mine[k][0])
