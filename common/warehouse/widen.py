"""How one column of an existing target is widened under the warehouse's rules (the dialect's
capabilities): in place where ALTER COLUMN TYPE allows it; else by what makes it allowed
(another encoding, the informational key dropped) or by rebuilding the column in one
transaction; else refused, naming the column and the rule. Decided from data, so the
Redshift rules run without a cluster."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common.model.types import ColumnSpec
from common.warehouse import sql
from common.warehouse.sql import Dialect


@dataclass(frozen=True)
class ColumnFacts:
    """What the warehouse's catalog says about a target column."""

    name: str
    has_default: bool = False
    encoding: str | None = None
    table_key: bool = False
    """The dist key or in the sort key (such a column cannot be dropped, so not rebuilt)."""
    constraints: tuple[Constraint, ...] = ()
    """The PRIMARY KEY / UNIQUE constraints the column is in."""


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str
    """PRIMARY KEY or UNIQUE."""
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    statements: tuple[str, ...]
    transaction: bool
    """True: the statements run in one transaction; False: on their own, outside any
    (Redshift runs ALTER COLUMN TYPE only outside a transaction block)."""
    drops_for_good: tuple[str, ...] = ()
    """Key constraints this step drops that are not declared again (a rebuilt column)."""


def spare_name(column: str) -> str:
    """A temporary column name for a rebuild, short whatever the column's name."""
    return "ferry_widen_" + hashlib.sha256(column.encode()).hexdigest()[:12]


def plan(schema: str, table: str, col: ColumnSpec, facts: ColumnFacts, interleaved: bool,
         dialect: Dialect) -> tuple[list[Step], str | None]:
    """(steps, refusal) to widen `col` (its new type) in `schema.table`; a refusal says
    what rule stops it and what to do, and then no step is run."""
    caps = dialect.caps
    where = f"target {schema}.{table}, column {col.name}"
    encoding = (facts.encoding or "").lower()
    by_default = caps.alter_type_refuses_default and facts.has_default
    by_key = caps.alter_type_refuses_key and bool(facts.constraints)
    by_encoding = encoding in caps.alter_type_refuses_encodings
    stuck_encoding = by_encoding and interleaved and not caps.encoding_fixable_with_interleaved_sortkey
    steps: list[Step] = []
    if (by_default or stuck_encoding) and facts.table_key:
        reason = ("it has a DEFAULT, which ALTER COLUMN TYPE refuses" if by_default else
                  f"its encoding {encoding.upper()} is refused by ALTER COLUMN TYPE and cannot be changed "
                  f"on a table with an interleaved sort key")
        return [], (f"{where}: cannot widen to {col.target}: {reason}, and it is the dist key or in the sort "
                    f"key, which cannot be dropped to rebuild it; a full reload or a reset of the table "
                    f"creates the target again without it")
    rebuild = by_default or stuck_encoding
    if by_key:
        # Informational on Redshift ("not enforced", t_Defining_constraints.html), and ALTER
        # COLUMN TYPE refuses a column in one: dropped for the change, declared again after.
        # The rebuilt column is nullable and has no DEFAULT: a PRIMARY KEY needs NOT NULL
        # columns, so after a rebuild it is not declared again (the merge needs none).
        steps.append(Step(tuple(sql.drop_constraint(schema, table, c.name) for c in facts.constraints), True,
                          tuple(c.name for c in facts.constraints) if rebuild else ()))
    if rebuild:
        steps.append(Step(tuple(sql.rebuild_column(schema, table, col, spare_name(col.name), dialect)), True))
        return steps, None
    if by_encoding:
        steps.append(Step((sql.reencode_column(schema, table, col.name),), False))
    steps.append(Step((sql.widen_column(schema, table, col, dialect),), caps.alter_type_in_transaction))
    if by_key:
        steps.append(Step(tuple(sql.add_constraint(schema, table, c.name, c.kind, c.columns)
                                for c in facts.constraints), True))
    return steps, None
