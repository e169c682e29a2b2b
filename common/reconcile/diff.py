"""One reconcile range compared on both sides and narrowed down to keys, with the two
sides of `ferry verify` (common/verify/compare.py): the range's count and checksum; where
they differ, the key hash, key and row hash of its rows, read from both sides and sorted
into the keys only in the source, only in the target, and in both with different content
(RangeDiff). A single integer key in keys mode is compared by arithmetic instead (IntKeysDiff).
Where most ranges of a run differ (drift spread over the whole table), a range skips its
checksums and is read at once (`whole`): every range would be read anyway.

In keys mode the two sides hash the key alone (the columns compared are the key's), so
the source reads only its key index; in rows mode every column, normalised as verify does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from common.model import bounds
from common.model.bounds import Key
from common.verify.compare import MySQLSide, Part, Sums, WarehouseSide, and_where

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

    Two queries a side at most, whatever the number of differences: the range's count and
    checksum; if they differ, the key hash, key and row hash of every row of the range, sorted
    out here by key hash. (Narrowing further in SQL does not pay: any query that picks rows by
    their hash computes the hash of every row of the range, which is what the source's CPU
    goes to; reading them all costs only the transfer, about range_rows rows a side.)"""

    def __init__(self, src: MySQLSide, dst: WarehouseSide, before_query: Callable[[int], None]) -> None:
        self.src = src
        self.dst = dst
        self.before_query = before_query
        self.found = Found()

    def compare(self, part: Part, whole: bool = False) -> Found:
        """The range's rows compared; every difference in it named by its key. With `whole`
        (most ranges of the run so far differed) the checksums are skipped and the rows read
        at once: one query a side instead of two."""
        if not whole:
            self.before_query(0)
            a, b = self.src.sums(part), self.dst.sums(part)
            self.found.source_rows, self.found.target_rows = a.rows, b.rows
            self.before_query(a.rows)
            if a == b:
                return self.found
        else:
            self.before_query(0)
        self._rows(part, counted=not whole)
        return self.found

    def _rows(self, part: Part, counted: bool = True) -> None:
        """Both sides' rows of a part, whole, sorted out by key hash."""
        mine = {k: (key, h) for k, key, h in self.src.rows(part, None)}
        self.before_query(len(mine))
        theirs = {k: (key, h) for k, key, h in self.dst.rows(part, None)}
        if not counted:
            self.found.source_rows, self.found.target_rows = len(mine), len(theirs)
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
    # DECIMAL sums: Redshift's SUM of a BIGINT is a BIGINT (r_SUM.html), which large keys overflow.
    return (f"SELECT COUNT(*), COALESCE(SUM(CAST({k} AS DECIMAL(38,0))), 0),"
            f" COALESCE(SUM(CAST(MOD({k}, {M1}) * MOD({k}, {M2}) AS DECIMAL(38,0))), 0)"
            f" FROM {side.table_ref}{where}"), params


def _int_keys_sql(side: Any, part: Part) -> tuple[str, list[Any]]:
    """The keys of a part."""
    k = side.quote(side.key_names[0])
    where, params = and_where(side.filter, side._in(part))
    return f"SELECT {k} FROM {side.table_ref}{where}", params


class IntKeysDiff(RangeDiff):
    """Keys mode on a single integer key: the checksum is arithmetic (count, sum, sum of
    residue products), and a range whose checksums differ has its keys read from both sides
    (an index range scan): the source computes no hash and reads only its key."""

    def _sums(self, side: Any, part: Part) -> Sums:
        r = side.fetch(*_int_sums_sql(side, part))[0]
        return Sums(int(r[0]), (int(r[1]), int(r[2])))

    def compare(self, part: Part, whole: bool = False) -> Found:
        self.before_query(0)
        if not whole:
            a, b = self._sums(self.src, part), self._sums(self.dst, part)
            self.found.source_rows, self.found.target_rows = a.rows, b.rows
            self.before_query(a.rows)
            if a == b:
                return self.found
        mine = set(self.src.ints(*_int_keys_sql(self.src, part)))
        self.before_query(len(mine))
        theirs = set(self.dst.ints(*_int_keys_sql(self.dst, part)))
        if whole:
            self.found.source_rows, self.found.target_rows = len(mine), len(theirs)
        self.found.leaves += 1
        self.found.only_source += [(k,) for k in sorted(mine - theirs)]
        self.found.only_target += [(k,) for k in sorted(theirs - mine)]
        return self.found


def range_diff(src: MySQLSide, dst: WarehouseSide, before_query: Callable[[int], None]) -> RangeDiff:
    """The comparison that suits the range's sides."""
    return (IntKeysDiff if integer_key(src) else RangeDiff)(src, dst, before_query)


def dense(ranges_checked: int, ranges_read: int) -> bool:
    """Most ranges checked so far in the run differed (at least 2 checked): read the next whole."""
    return ranges_checked >= 2 and ranges_read * 2 > ranges_checked
