"""Does the target hold what the source holds? Row counts and checksums per key range, each
side computed in its own engine (common/verify/rowhash.py), narrowed down where they differ.

Ranges split the primary key in the source's key order. A key with a text column sorts
by collation, which MySQL and the warehouse do not share: such a table is split by the
leading hex digits of an MD5 of its key instead (buckets), which both sides compute alike.
A differing range is split again until it holds at most LEAF_ROWS source rows; then the
rows themselves are compared by key and row hash, and the keys that differ are named.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from common.model import bounds
from common.verify import rowhash
from common.model import transforms
from common.model import row_filter as filters
from common.source import catalog, probes
from common.model.bounds import Key
from common.config.pipeline import TableSettings
from common.plan.strategies import keyset
from common.model.naming import quote_ident, quote_mysql
from common.model.types import ColumnSpec, TableSchema
from common.warehouse.sql import SOFT_DELETED, Dialect, param_ref
from common.state.table import TableState

LEAF_ROWS = 1000
"""A differing range of at most this many source rows is compared row by row."""
ROW_CAP = 5000
"""At most this many rows are read from each side for a row-by-row comparison."""
FANOUT = 16
"""How many parts a differing range is split into."""


@dataclass(frozen=True)
class Sums:
    """A range's row count and the sums of its rows' hash slices."""

    rows: int
    checksum: tuple[int, ...]


@dataclass(frozen=True)
class Part:
    """A part of the key space: a key range (lo, hi], or the keys whose MD5 starts `bucket`."""

    lo: Key | None = None
    hi: Key | None = None
    bucket: str | None = None

    def show(self) -> str:
        if self.bucket is not None:
            return f"keys whose MD5 starts {self.bucket!r}"
        return f"({bounds.show(self.lo) if self.lo is not None else 'start'}, " \
               f"{bounds.show(self.hi) if self.hi is not None else 'end'}]"


@dataclass
class Difference:
    part: Part
    source_rows: int
    target_rows: int
    rows: list[tuple[str, str]] = field(default_factory=list)
    """(key, what): 'differs', 'only in source', 'only in target'."""
    more: bool = False
    """More rows differ than were read."""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"range": self.part.show(), "source_rows": self.source_rows,
                               "target_rows": self.target_rows,
                               "rows": [{"key": k, "what": w} for k, w in self.rows], "more": self.more}
        if self.part.bucket is None:
            doc["lo"], doc["hi"] = bounds.encode(self.part.lo), bounds.encode(self.part.hi)
        return doc


@dataclass
class Report:
    table: str
    bound: str
    mode: str
    ranges: int = 0
    source_rows: int = 0
    target_rows: int = 0
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "bound": self.bound, "mode": self.mode, "ranges": self.ranges,
                "source_rows": self.source_rows, "target_rows": self.target_rows, "agree": self.agree,
                "differences": [d.to_json() for d in self.differences], "notes": self.notes}


def and_where(*clauses: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """AND of WHERE clauses (each ' WHERE ...' or '')."""
    parts = [sql.removeprefix(" WHERE ") for sql, _ in clauses if sql]
    params = [p for _, ps in clauses for p in ps]
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


class Side:
    """One end of the copy: how it hashes rows, filters them and runs a query."""

    def __init__(self, table_ref: str, columns: Sequence[ColumnSpec], key: Sequence[ColumnSpec],
                 filter_cols: Sequence[str], bound: Key | None, quote: Callable[[str], str]) -> None:
        self.table_ref = table_ref
        self.columns = columns
        self.key = key
        self.key_names = [self.column_ref(c) for c in key]
        self.quote = quote
        self.filter = probes.range_where(filter_cols, None, bound, quote) if bound is not None else ("", [])

    def column_ref(self, col: ColumnSpec) -> str:
        raise NotImplementedError

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def ints(self, sql: str, params: Sequence[Any]) -> list[int]:
        raise NotImplementedError

    def row_hash(self) -> str:
        raise NotImplementedError

    def key_hash(self) -> str:
        raise NotImplementedError

    def sum_exprs(self, h: str) -> list[str]:
        raise NotImplementedError

    def _in(self, part: Part) -> tuple[str, list[Any]]:
        if part.bucket is not None:
            return f" WHERE SUBSTRING({self.key_hash()}, 1, {len(part.bucket)}) = %s", [part.bucket]
        return probes.range_where(self.key_names, part.lo, part.hi, self.quote)

    def sums_sql(self, part: Part) -> tuple[str, list[Any]]:
        """Row count and checksum of a part."""
        where, params = and_where(self.filter, self._in(part))
        return (f"SELECT COUNT(*), {', '.join(self.sum_exprs('r.h'))} FROM"
                f" (SELECT {self.row_hash()} AS h FROM {self.table_ref}{where}) r"), params

    def buckets_sql(self, prefix: str) -> tuple[str, list[Any]]:
        """Count and checksum per bucket one hex digit longer than `prefix`, within it."""
        inside = self._in(Part(bucket=prefix)) if prefix else ("", [])
        where, params = and_where(self.filter, inside)
        n = len(prefix) + 1
        return (f"SELECT SUBSTRING(r.k, 1, {n}) AS b, COUNT(*), {', '.join(self.sum_exprs(self._h))} FROM"
                f" (SELECT {self.key_hash()} AS k{self._h_column} FROM {self.table_ref}{where}) r"
                f" GROUP BY SUBSTRING(r.k, 1, {n})"), params

    def rows_sql(self, part: Part, cap: int | None) -> tuple[str, list[Any]]:
        """Key hash, row hash and key of a part's rows in key-hash order, at most cap (None:
        all, unordered)."""
        where, params = and_where(self.filter, self._in(part))
        tail = f" ORDER BY r.k LIMIT {int(cap)}" if cap is not None else ""
        return (f"SELECT r.k, {self._h}, {', '.join(f'r.c{i}' for i in range(len(self.key)))} FROM"
                f" (SELECT {self.key_hash()} AS k{self._h_column},"
                f" {', '.join(f'{self.quote(n)} AS c{i}' for i, n in enumerate(self.key_names))}"
                f" FROM {self.table_ref}{where}) r{tail}"), params

    @property
    def _keys_only(self) -> bool:
        """The columns compared are the key's (reconcile's keys mode): the row hash is the key hash."""
        return [c.source for c in self.columns] == [c.source for c in self.key]

    @property
    def _h(self) -> str:
        return "r.k" if self._keys_only else "r.h"

    @property
    def _h_column(self) -> str:
        return "" if self._keys_only else f", {self.row_hash()} AS h"

    def sums(self, part: Part) -> Sums:
        row = self.fetch(*self.sums_sql(part))[0]
        return Sums(int(row[0]), tuple(int(v) for v in row[1:]))

    def bucket_sums(self, prefix: str) -> dict[str, Sums]:
        return {str(r[0]): Sums(int(r[1]), tuple(int(v) for v in r[2:]))
                for r in self.fetch(*self.buckets_sql(prefix))}

    def rows(self, part: Part, cap: int | None) -> list[tuple[str, Key, str]]:
        return [(str(r[0]), tuple(r[2:]), str(r[1])) for r in self.fetch(*self.rows_sql(part, cap))]


def _str(v: Any) -> Any:
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


class MySQLSide(Side):
    def __init__(self, conn: Any, table_key: str, columns: Sequence[ColumnSpec], key: Sequence[ColumnSpec],
                 filter_cols: Sequence[str], bound: Key | None, where: str | None = None,
                 salt: bytes | None = None) -> None:
        """`where`: the table's filter (only the rows it selects are the source's);
        `salt`: the hash salt, set in the session for the columns `transform: hash` shapes."""
        self.conn = conn
        self.table_key = table_key
        self.where = where
        super().__init__(catalog.qualified(table_key), columns, key, filter_cols, bound, quote_mysql)
        if where:
            self.filter = and_where(self.filter, (f" WHERE {filters.term(where)}", []))
        if any(transforms.needs_salt(c) for c in columns):
            if salt is None:
                raise ValueError(f"table {table_key}: a hashed column needs its salt")
            cur = conn.cursor()
            try:
                cur.execute(f"SET @{transforms.SALT_VARIABLE} = UNHEX(%s)", (salt.hex(),))
            finally:
                cur.close()

    def column_ref(self, col: ColumnSpec) -> str:
        return col.source

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows, the first two columns (hashes, when there are) as str."""
        cur = self.conn.cursor()
        try:
            cur.execute(sql, tuple(params))
            return [(_str(r[0]), _str(r[1]), *r[2:]) if len(r) > 1 else (_str(r[0]),) for r in cur.fetchall()]
        finally:
            cur.close()

    def ints(self, sql: str, params: Sequence[Any]) -> list[int]:
        """The first column of the rows as integers, read raw (no conversion per value by the
        driver): an integer key's values."""
        cur = self.conn.cursor(raw=True)
        try:
            cur.execute(sql, tuple(params))
            return [int(r[0]) for r in cur.fetchall()]
        finally:
            cur.close()

    def row_hash(self) -> str:
        return f"MD5({rowhash.mysql_row_text(self.columns)})"

    def key_hash(self) -> str:
        return f"MD5({rowhash.mysql_row_text(self.key)})"

    def sum_exprs(self, h: str) -> list[str]:
        return rowhash.mysql_sums(h)

    def count(self, lo: Key | None, hi: Key | None) -> int:
        where, params = probes.range_where(self.key_names, lo, hi, where=self.where)
        return int(self.fetch(f"SELECT COUNT(*) FROM {self.table_ref}{where}", params)[0][0])

    def split(self, lo: Key | None, hi: Key | None, parts: int) -> list[Part]:
        """(lo, hi] in about `parts` ranges of equal row counts, probed like a run's chunks
        (probes.plan_bounds); the last keeps hi, open or not."""
        total = self.count(lo, hi)
        top = probes.key_at(self.conn, self.table_key, self.key_names, lo, hi, 0, desc=True, where=self.where)
        if total == 0 or top is None:
            return [Part(lo, hi)]
        ranges = probes.plan_bounds(self.conn, self.table_key, self.key_names, lo,
                                    max(1, math.ceil(total / parts)), top, where=self.where)
        return [Part(a, b) for a, b in ranges[:-1]] + [Part(ranges[-1][0], hi)]


class WarehouseSide(Side):
    def __init__(self, conn: Any, dialect: Dialect, schema: str, table: str, columns: Sequence[ColumnSpec],
                 key: Sequence[ColumnSpec], filter_cols: Sequence[str], bound: Key | None,
                 live_only: bool = False) -> None:
        self.conn = conn
        self.dialect = dialect
        # Statements go with parameters: a `%` in a name is doubled, not read as a placeholder.
        super().__init__(param_ref(schema, table), columns, key, filter_cols, bound,
                         lambda n: quote_ident(n).replace("%", "%%"))
        if live_only:  # rows soft-deleted by a reconcile are not the source's rows
            self.filter = and_where(self.filter, (f" WHERE {quote_ident(SOFT_DELETED)} IS NULL", []))

    def column_ref(self, col: ColumnSpec) -> str:
        return col.name

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows, through the driver's own cursor (SQLAlchemy's rows cost 5× as much CPU for
        the 100,000 rows of a range), in the connection's transaction."""
        if not self.conn.in_transaction():
            self.conn.begin()
        cur = self.conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(sql, tuple(params))
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def ints(self, sql: str, params: Sequence[Any]) -> list[int]:
        return [int(r[0]) for r in self.fetch(sql, params)]

    def row_hash(self) -> str:
        return f"MD5({rowhash.target_row_text(self.columns, self.dialect)})".replace("%", "%%")

    def key_hash(self) -> str:
        return f"MD5({rowhash.target_row_text(self.key, self.dialect)})".replace("%", "%%")

    def sum_exprs(self, h: str) -> list[str]:
        return rowhash.target_sums(h, self.dialect)


def loaded_bound(state: TableState, table: TableSettings) -> tuple[Key | None, str, bool]:
    """(bound, what it is, anything loaded): every row up to the bound (in the strategy's
    keyset) is loaded: the committed cursor, or below the first chunk awaiting load."""
    if table.strategy == "full":
        return None, "the whole table (full strategy: the target is the last complete run)", True
    cursor = state.cursor()
    waiting = []
    for run_id, number in sorted({(p.run_id, p.chunk) for p in state.pending_parts()}):
        chunk = state.chunk(run_id, number)
        if chunk is not None:
            waiting.append(chunk.lo)
    if any(lo is None for lo in waiting):
        return None, "nothing loaded yet (the first chunk awaits load)", False
    bound, what = cursor, "the committed cursor"
    for lo in waiting:
        try:
            if bound is None or lo < bound:
                bound, what = lo, "the start of the first chunk awaiting load"
        except TypeError:  # values Python cannot order: keep the first
            pass
    if bound is None:
        return None, "nothing loaded yet", False
    return bound, f"{what}, {bounds.show(bound)}", True


def _differ(a: Sums | None, b: Sums | None) -> bool:
    return (a or Sums(0, (0, 0))) != (b or Sums(0, (0, 0)))


class Verifier:
    """Compares the two sides part by part and narrows down the parts that differ."""

    def __init__(self, src: MySQLSide, dst: WarehouseSide, report: Report) -> None:
        self.src = src
        self.dst = dst
        self.report = report

    def row_diff(self, part: Part, s: Sums, t: Sums) -> None:
        a = self.src.rows(part, ROW_CAP)
        b = self.dst.rows(part, ROW_CAP)
        # Only key hashes both reads cover are compared when a side hit its cap.
        limit = min([x[-1][0] for x in (a, b) if len(x) >= ROW_CAP], default=None)
        mine = {k: (key, h) for k, key, h in a if limit is None or k <= limit}
        theirs = {k: (key, h) for k, key, h in b if limit is None or k <= limit}
        found: list[tuple[Key, str]] = []
        for k in mine.keys() | theirs.keys():
            if k not in theirs:
                found.append((mine[k][0], "only in source"))
            elif k not in mine:
                found.append((theirs[k][0], "only in target"))
            elif mine[k][1] != theirs[k][1]:
                found.append((mine[k][0], "differs"))
        try:
            found.sort(key=lambda f: f[0])
        except TypeError:  # key values Python cannot order: leave them as found
            pass
        rows = [(bounds.show(key), what) for key, what in found]
        self.report.differences.append(Difference(part, s.rows, t.rows, rows, more=limit is not None))

    def narrow(self, part: Part, s: Sums, t: Sums) -> None:
        if max(s.rows, t.rows) <= LEAF_ROWS or s.rows <= 1:
            self.row_diff(part, s, t)
            return
        if part.bucket is not None:
            if len(part.bucket) >= 32:
                self.row_diff(part, s, t)
                return
            self.compare_buckets(part.bucket)
            return
        subs = self.src.split(part.lo, part.hi, FANOUT)
        if len(subs) <= 1:
            self.row_diff(part, s, t)
            return
        for sub in subs:
            a, b = self.src.sums(sub), self.dst.sums(sub)
            if _differ(a, b):
                self.narrow(sub, a, b)

    def compare_buckets(self, prefix: str, top: bool = False) -> None:
        mine, theirs = self.src.bucket_sums(prefix), self.dst.bucket_sums(prefix)
        if top:
            self.report.ranges = len(mine.keys() | theirs.keys())
            self.report.source_rows = sum(s.rows for s in mine.values())
            self.report.target_rows = sum(s.rows for s in theirs.values())
        for b in sorted(mine.keys() | theirs.keys()):
            a, c = mine.get(b), theirs.get(b)
            if _differ(a, c):
                self.narrow(Part(bucket=b), a or Sums(0, (0, 0)), c or Sums(0, (0, 0)))

    def compare_ranges(self, parts: Iterable[Part]) -> None:
        for part in parts:
            a, b = self.src.sums(part), self.dst.sums(part)
            self.report.ranges += 1
            self.report.source_rows += a.rows
            self.report.target_rows += b.rows
            if _differ(a, b):
                self.narrow(part, a, b)


def uses_buckets(key: Sequence[ColumnSpec]) -> bool:
    """Text keys sort by collation, which differs between MySQL and the warehouse."""
    return any(c.kind in ("string", "json") for c in key)


def verify(conn: Any, wh_conn: Any, dialect: Dialect, table: TableSettings, schema: TableSchema,
           columns: Sequence[ColumnSpec], target_schema: str, target_table: str,
           bound: Key | None, bound_text: str, ranges: int, live_only: bool = False,
           salt: bytes | None = None) -> Report:
    """Compare the table's rows up to `bound` (None: all) on both sides (with live_only, the
    target's rows that a reconcile soft-deleted are left out)."""
    key = [schema.column(k) for k in schema.key]
    cols = keyset(table, schema) if bound is not None else ()
    src = MySQLSide(conn, table.key, columns, key, cols, bound, table.where, salt)
    dst = WarehouseSide(wh_conn, dialect, target_schema, target_table, columns, key,
                        [schema.column(c).name for c in cols], bound, live_only)
    mode = "hash buckets of the key (text key)" if uses_buckets(key) else "key ranges"
    report = Report(table=table.key, bound=bound_text, mode=mode)
    if table.where:
        report.notes.append(f"only the rows the table's filter selects: {table.where}")
    for col in columns:
        how = rowhash.compared_loosely(col)
        if how:
            report.notes.append(f"column {col.name}: compared {how}")
    v = Verifier(src, dst, report)
    if uses_buckets(key):
        v.compare_buckets("", top=True)
    else:
        # For the id strategy the bound is on the key itself: ranges end there.
        top = bound if table.strategy == "id" and tuple(cols) == tuple(schema.key) else None
        v.compare_ranges(src.split(None, top, ranges))
    return report
