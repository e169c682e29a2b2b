"""One reconcile range compared on both sides and narrowed down to keys, as `ferry verify`
narrows (common/verify/compare.py, whose two sides it uses): counts and checksums of the
range; where they differ, of its parts (key ranges probed on the source, or hash buckets
of a text key), until a part holds at most LEAF_ROWS source rows; then the rows of that
part are read from both sides by key hash and key, whole, and sorted into the keys only in
the source, only in the target, and in both with different content.

In keys mode the two sides hash the key alone (the columns compared are the key's), so
the source reads only its key index; in rows mode every column, normalised as verify does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from common.model import bounds
from common.model.bounds import Key
from common.verify.compare import FANOUT, LEAF_ROWS, MySQLSide, Part, Sums, WarehouseSide

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
    """Compares the two sides part by part; `before_query(rows)` runs before each source
    query (the throttle), with the rows the last one covered."""

    def __init__(self, src: MySQLSide, dst: WarehouseSide, before_query: Callable[[int], None]) -> None:
        self.src = src
        self.dst = dst
        self.before_query = before_query
        self.found = Found()

    def _sums(self, part: Part) -> tuple[Sums, Sums]:
        self.before_query(0)
        a = self.src.sums(part)
        return a, self.dst.sums(part)

    def compare(self, part: Part) -> Found:
        """The range's rows compared; every difference in it narrowed down to its keys."""
        a, b = self._sums(part)
        self.found.source_rows, self.found.target_rows = a.rows, b.rows
        self.before_query(a.rows)
        if a != b:
            self._narrow(part, a, b)
        return self.found

    def _narrow(self, part: Part, s: Sums, t: Sums) -> None:
        if max(s.rows, t.rows) <= LEAF_ROWS or s.rows <= 1:
            self._rows(part)
            return
        if part.bucket is not None:
            if len(part.bucket) >= 32:
                self._rows(part)
                return
            self.before_query(0)
            mine, theirs = self.src.bucket_sums(part.bucket), self.dst.bucket_sums(part.bucket)
            self.before_query(s.rows)
            empty = Sums(0, (0, 0))
            for b in sorted(mine.keys() | theirs.keys()):
                x, y = mine.get(b, empty), theirs.get(b, empty)
                if x != y:
                    self._narrow(Part(bucket=b), x, y)
            return
        self.before_query(0)
        subs = self.src.split(part.lo, part.hi, max(2, min(FANOUT, math.ceil(s.rows / LEAF_ROWS))))
        self.before_query(s.rows)
        if len(subs) <= 1:
            self._rows(part)
            return
        for sub in subs:
            x, y = self._sums(sub)
            self.before_query(x.rows)
            if x != y:
                self._narrow(sub, x, y)

    def _rows(self, part: Part) -> None:
        """Both sides' rows of a part, whole (key hash, key, row hash), sorted out by key hash."""
        self.before_query(0)
        mine = {k: (key, h) for k, key, h in self.src.rows(part, None)}
        self.before_query(len(mine))
        theirs = {k: (key, h) for k, key, h in self.dst.rows(part, None)}
        self.found.leaves += 1
        for k in sorted(mine.keys() | theirs.keys()):
            if k not in theirs:
                self.found.only_source.append(mine[k][0])
            elif k not in mine:
                self.found.only_target.append(theirs[k][0])
            elif mine[k][1] != theirs[k][1]:
                self.found.differs.append(mine[k][0])
