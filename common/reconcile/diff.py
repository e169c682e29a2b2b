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
from common.verify.compare import LEAF_ROWS, MySQLSide, Part, Sums, WarehouseSide, and_where

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


M1, M2 = 1_000_003, 999_983
"""Two primes: a key set's checksum is its count, the sum of its keys and the sum of the
products of each key's residues modulo them (integer arithmetic, exact on both sides)."""


def integer_key(side: MySQLSide) -> bool:
    """A single integer key in keys mode: compared by arithmetic, not by MD5 (IntKeysDiff)."""
    key = side.key
    return (len(key) == 1 and [c.source for c in side.columns] == [key[0].source]
            and (key[0].kind == "int" or (key[0].kind == "decimal" and key[0].scale == 0)))


def _int_sums_sql(side: Any, part: Part) -> tuple[str, list[Any]]:
    k = side.quote(side.key_names[0])
    where, params = and_where(side.filter, side._in(part))
    return (f"SELECT COUNT(*), COALESCE(SUM({k}), 0), COALESCE(SUM(MOD({k}, {M1}) * MOD({k}, {M2})), 0),"
            f" MIN({k}), MAX({k}) FROM {side.table_ref}{where}"), params


def _int_buckets_sql(side: Any, part: Part, base: int, width: int) -> tuple[str, list[Any]]:
    k = side.quote(side.key_names[0])
    where, params = and_where(side.filter, side._in(part))
    b = f"FLOOR(({k} - {int(base)}) / {int(width)})"
    return (f"SELECT {b} AS b, COUNT(*), SUM({k}), SUM(MOD({k}, {M1}) * MOD({k}, {M2})) FROM {side.table_ref}{where}"
            f" GROUP BY {b}"), params


def _int_keys_sql(side: Any, part: Part, spans: Sequence[tuple[int, int]]) -> tuple[str, list[Any]]:
    """The keys of a part, within [lo, hi) spans (none: all of the part's)."""
    k = side.quote(side.key_names[0])
    inside = (" WHERE (" + " OR ".join(f"({k} >= {int(a)} AND {k} < {int(z)})" for a, z in spans) + ")"
              if spans else "", [])
    where, params = and_where(side.filter, side._in(part), inside)
    return f"SELECT {k} FROM {side.table_ref}{where}", params


class IntKeysDiff(RangeDiff):
    """Keys mode on a single integer key: the checksum is arithmetic (count, sum, sum of
    residue products), the buckets are key value intervals of about BUCKET_ROWS rows, and
    the keys of the differing intervals are read by index range: no hash is computed on the
    source, which reads only its key (about a tenth of the CPU of the MD5 path)."""

    def _sums(self, side: Any, part: Part) -> tuple[Sums, int | None, int | None]:
        r = side.fetch(*_int_sums_sql(side, part))[0]
        lo = None if r[3] is None else int(r[3])
        hi = None if r[4] is None else int(r[4])
        return Sums(int(r[0]), (int(r[1]), int(r[2]))), lo, hi

    def compare(self, part: Part) -> Found:
        self.before_query(0)
        (a, lo_a, hi_a), (b, lo_b, hi_b) = self._sums(self.src, part), self._sums(self.dst, part)
        self.found.source_rows, self.found.target_rows = a.rows, b.rows
        self.before_query(a.rows)
        if a == b:
            return self.found
        base = min(v for v in (lo_a, lo_b) if v is not None)
        top = max(v for v in (hi_a, hi_b) if v is not None)
        rows = max(a.rows, b.rows)
        spans: list[tuple[int, int]] = []
        if rows > LEAF_ROWS:
            width = max(1, math.ceil((top - base + 1) * BUCKET_ROWS / rows))
            q = lambda side: {int(r[0]): Sums(int(r[1]), (int(r[2]), int(r[3])))  # noqa: E731
                              for r in side.fetch(*_int_buckets_sql(side, part, base, width))}
            mine = q(self.src)
            self.before_query(a.rows)
            theirs = q(self.dst)
            empty = Sums(0, (0, 0))
            differ = sorted(x for x in mine.keys() | theirs.keys() if mine.get(x, empty) != theirs.get(x, empty))
            in_them = sum(max(mine.get(x, empty).rows, theirs.get(x, empty).rows) for x in differ)
            if len(differ) <= MAX_BUCKETS and in_them <= rows // 2:
                for x in differ:  # adjacent intervals joined
                    lo, hi = base + x * width, base + (x + 1) * width
                    if spans and spans[-1][1] == lo:
                        spans[-1] = (spans[-1][0], hi)
                    else:
                        spans.append((lo, hi))
        mine_keys = {int(r[0]): r[0] for r in self.src.fetch(*_int_keys_sql(self.src, part, spans))}
        self.before_query(len(mine_keys))
        theirs_keys = {int(r[0]): r[0] for r in self.dst.fetch(*_int_keys_sql(self.dst, part, spans))}
        self.found.leaves += 1
        self.found.only_source += [(mine_keys[k],) for k in sorted(mine_keys.keys() - theirs_keys.keys())]
        self.found.only_target += [(theirs_keys[k],) for k in sorted(theirs_keys.keys() - mine_keys.keys())]
        return self.found


def range_diff(src: MySQLSide, dst: WarehouseSide, before_query: Callable[[int], None]) -> RangeDiff:
    """The comparison that suits the range's sides."""
    return (IntKeysDiff if integer_key(src) else RangeDiff)(src, dst, before_query)
