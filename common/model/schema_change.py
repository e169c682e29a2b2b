"""How a table's mapping may change between runs, and what the target must do about it.

Handled without a manual step: a column added in MySQL (added to the target, with the
source's constant DEFAULT so old rows match), a VARCHAR/CHAR that grew (widened), an
integer or DECIMAL that grew (widened where the warehouse can, else the table stops with
both types named), a column dropped in MySQL (kept in the target, NULL in new rows).
Refused: a changed key, a column whose kind changed or that shrank, a column whose
`transform:` changed (old rows would keep the old form).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.errors import SchemaError
from common.model.types import ColumnSpec, TableSchema

_INT_RANK = {"SMALLINT": 1, "INTEGER": 2, "BIGINT": 3}


@dataclass(frozen=True)
class Capabilities:
    """What a warehouse can change in place (data, not `if redshift` branches)."""

    widen_varchar: bool = True
    widen_numbers: bool = True
    """INTEGER -> BIGINT, DECIMAL(p,s) -> DECIMAL(p',s') with room for every old value."""
    widen_varbyte: bool = True
    table_design: bool = False
    """DISTSTYLE/DISTKEY/SORTKEY clauses (Redshift only)."""
    alter_type_refuses_default: bool = False
    """ALTER COLUMN ... TYPE refuses a column that has a DEFAULT (and there is no DROP DEFAULT):
    such a warehouse gets no DEFAULT in CREATE TABLE, and a column added with one has its
    old rows set by an UPDATE instead."""
    alter_type_refuses_key: bool = False
    """ALTER COLUMN ... TYPE refuses a PRIMARY KEY (or UNIQUE) column: where the key is only
    declared, not enforced, CREATE TABLE declares none."""
    alter_type_refuses_encodings: frozenset[str] = frozenset()
    """Column compression encodings ALTER COLUMN ... TYPE refuses."""
    alter_type_in_transaction: bool = True
    """ALTER COLUMN ... TYPE may run inside a transaction block."""
    encoding_fixable_with_interleaved_sortkey: bool = True
    """ALTER COLUMN ... ENCODE works on a table with an interleaved sort key."""
    dist_alterable_with_interleaved_sortkey: bool = True
    """ALTER DISTSTYLE/DISTKEY works on a table with an interleaved sort key."""
    max_identifier_bytes: int = 63
    max_varchar_bytes: int = 10_485_760
    max_varbyte_bytes: int = 1 << 30
    max_json_bytes: int = 255 << 20
    max_geometry_bytes: int = 1 << 30
    columnar_copy_options: frozenset[str] = frozenset()
    """The options a COPY of Parquet takes (empty: the warehouse has no such COPY)."""


@dataclass
class SchemaDiff:
    added: list[ColumnSpec] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    widened: list[tuple[ColumnSpec, ColumnSpec]] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"column {c.name} added ({c.target}" + (f" DEFAULT {c.default}" if c.default else "") + ")"
                 for c in self.added]
        lines += [f"column {n} dropped in the source (kept in the target, NULL in new rows)" for n in self.dropped]
        lines += [f"column {new.name} widened {old.target} -> {new.target}" for old, new in self.widened]
        return lines


def _size(target: str) -> tuple[str, tuple[int, ...]]:
    m = re.fullmatch(r"([A-Z ]+?)(?:\((\d+)(?:,(\d+))?\))?", target)
    if not m:
        return target, ()
    return m.group(1), tuple(int(g) for g in m.groups()[1:] if g is not None)


def widening(old: str, new: str, caps: Capabilities) -> bool | None:
    """True if old -> new is a widening the warehouse can make in place, False if it is a
    widening it cannot, None if it is no widening at all (a change of kind, or a shrink)."""
    (o_name, o_size), (n_name, n_size) = _size(old), _size(new)
    if o_name in _INT_RANK and n_name in _INT_RANK:
        return caps.widen_numbers if _INT_RANK[n_name] > _INT_RANK[o_name] else None
    if o_name == n_name == "VARCHAR" and n_size[0] > o_size[0]:
        return caps.widen_varchar
    if o_name == n_name == "VARBYTE" and n_size[0] > o_size[0]:
        return caps.widen_varbyte
    if (o_name == "DECIMAL" or o_name in _INT_RANK) and n_name == "DECIMAL":
        op, os_ = o_size if o_name == "DECIMAL" else ({1: 5, 2: 10, 3: 19}[_INT_RANK[o_name]], 0)
        np_, ns = n_size
        if ns >= os_ and np_ - ns >= op - os_ and (np_, ns) != (op, os_):
            return caps.widen_numbers
    return None


def diff(old: TableSchema, new: TableSchema, caps: Capabilities) -> SchemaDiff:
    """What changed from old to new; SchemaError names the column and both types for any
    change the target cannot follow."""
    if old.key != new.key:
        raise SchemaError(f"table {new.table}: the key changed from ({', '.join(old.key)}) to "
                          f"({', '.join(new.key)}); the target cannot follow (reset the table to copy it again)")
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    result = SchemaDiff(added=[c for c in new.columns if c.name not in before],
                        dropped=[n for n in before if n not in after])
    for name, col in after.items():
        prev = before.get(name)
        if prev is not None and prev.transform != col.transform:
            raise SchemaError(
                f"table {new.table}, column {col.source}: {_how(prev)} before, {_how(col)} now; the target's rows "
                f"hold the old form and the new one cannot be applied to them in place. To copy the table again "
                f"with it: drop the target table (or its column {col.name}), `ferry watermark reset` the table, "
                f"and sync; or put the pipeline file back")
        if prev is None or prev.target == col.target:
            continue
        verdict = widening(prev.target, col.target, caps)
        if verdict is None:
            raise SchemaError(f"table {new.table}, column {col.source}: type changed from {prev.mysql_type} "
                              f"({prev.target}) to {col.mysql_type} ({col.target}), which the target cannot "
                              f"follow; exclude the column or reset the table")
        if verdict is False:
            raise SchemaError(f"table {new.table}, column {col.source}: widened from {prev.target} to "
                              f"{col.target}, which this warehouse cannot do in place; rebuild the target "
                              f"column (or reset the table); other tables carry on")
        result.widened.append((prev, col))
    return result


def _how(col: ColumnSpec) -> str:
    """A column's transform or type override, in words."""
    return f"transform {col.transform.replace(':', ' ', 1)}" if col.transform else "no transform"


def keep_recorded_json_text(old: TableSchema, new: TableSchema) -> TableSchema:
    """A JSON column a table has been copying as text keeps that mapping (tables recorded
    before JSON became SUPER, or before MariaDB's JSON was recognised): the target column
    cannot turn into SUPER in place. Set json_as: varchar, or reset the table, to choose. (Text
    that a `types:` override now asks to copy as SUPER is not kept: the change is refused.)"""
    before = {c.source: c for c in old.columns}
    columns = tuple(before[c.source] if c.kind == "json" and c.read_kind != "text" and c.source in before
                    and before[c.source].kind == "string" else c for c in new.columns)
    return TableSchema(table=new.table, columns=columns, key=new.key)
