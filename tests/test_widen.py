"""How a column is widened under each warehouse's rules (common/warehouse/widen.py).

Redshift's rules, from ALTER TABLE (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html),
ALTER COLUMN column_name TYPE: "You can't alter a column with compression encodings BYTEDICT,
RUNLENGTH, TEXT255, or TEXT32K", "You can't alter columns with default values", "You can't
alter columns with UNIQUE, PRIMARY KEY, or FOREIGN KEY", "You can't alter columns within a
transaction block"; ALTER COLUMN ... ENCODE: "You can't alter the encoding for a column in a
table with an interleaved sortkey"; DROP COLUMN: "You can't drop a column that is the
distribution key (DISTKEY) or a sort key (SORTKEY) of the table"; ADD table_constraint: "You
can't add a primary-key constraint to a nullable column". DROP CONSTRAINT constraint_name,
ADD [CONSTRAINT name] PRIMARY KEY (...), RENAME COLUMN and DROP COLUMN are in its synopsis.
That ADD/UPDATE/DROP/RENAME COLUMN run inside one transaction block no page forbids (it
forbids only ALTER COLUMN TYPE and external tables there): the live smoke test proves it.

The rules are data (REDSHIFT.caps), so they run here without a cluster: as a plan, and
carried out on the PostgreSQL stand-in with Redshift's rules, where the rows must stay exact.
"""
from __future__ import annotations

import dataclasses
import secrets
from decimal import Decimal
from typing import Iterator

import psycopg
import pytest

from common.errors import SchemaError
from common.model.types import ColumnSpec, TableSchema, map_column
from common.store.s3 import Store
from common.warehouse import sql, widen
from common.warehouse.postgres import PostgresWarehouse
from common.warehouse.sql import Dialect
from common.warehouse.widen import ColumnFacts, Constraint, Step
from tests.conftest import PG_DSN


def _col(name: str, ctype: str, default: str | None = None, nullable: str = "YES") -> ColumnSpec:
    dtype = ctype.split("(")[0]
    size = [int(x) for x in ctype.split("(")[1].rstrip(")").split(",")] if "(" in ctype else []
    precision, scale = {"int": (10, 0), "decimal": tuple(size or (10, 0))}.get(dtype, (None, None))
    return map_column("s.t", {"column_name": name, "data_type": dtype, "column_type": ctype, "is_nullable": nullable,
                              "character_maximum_length": size[0] if dtype == "varchar" else None,
                              "numeric_precision": precision, "numeric_scale": scale, "column_default": default})


WIDE = _col("note", "varchar(30)")  # VARCHAR(120)
ALTER = 'ALTER TABLE "a"."t" ALTER COLUMN "note" TYPE VARCHAR(120)'


def _plan(facts: ColumnFacts, interleaved: bool = False, dialect: Dialect = sql.REDSHIFT):
    return widen.plan("a", "t", WIDE, facts, interleaved, dialect)


def test_a_plain_varchar_is_widened_in_place_outside_a_transaction() -> None:
    assert _plan(ColumnFacts("note", encoding="lzo")) == ([Step((ALTER,), False)], None)
    # the stand-in: in place whatever the column has, and may run in a transaction
    assert _plan(ColumnFacts("note", has_default=True, encoding="bytedict", table_key=True,
                             constraints=(Constraint("t_pkey", "PRIMARY KEY", ("note",)),)),
                 interleaved=True, dialect=sql.POSTGRES) == ([Step((ALTER,), True)], None)


def test_a_key_column_loses_its_informational_key_for_the_change_and_gets_it_back() -> None:
    pk = Constraint("t_pkey", "PRIMARY KEY", ("id", "note"))
    assert _plan(ColumnFacts("note", constraints=(pk,))) == ([
        Step(('ALTER TABLE "a"."t" DROP CONSTRAINT "t_pkey"',), True),
        Step((ALTER,), False),
        Step(('ALTER TABLE "a"."t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("id", "note")',), True)], None)


def test_an_encoding_alter_refuses_is_changed_first() -> None:
    for encoding in ("bytedict", "RUNLENGTH", "text255", "text32k"):
        assert _plan(ColumnFacts("note", encoding=encoding)) == ([
            Step(('ALTER TABLE "a"."t" ALTER COLUMN "note" ENCODE ZSTD',), False), Step((ALTER,), False)], None)


def test_a_column_with_a_default_is_rebuilt_in_one_transaction() -> None:
    spare = widen.spare_name("note")
    rebuild = Step(('ALTER TABLE "a"."t" ADD COLUMN "%s" VARCHAR(120)' % spare,
                    'UPDATE "a"."t" SET "%s" = "note"' % spare,
                    'ALTER TABLE "a"."t" DROP COLUMN "note"',
                    'ALTER TABLE "a"."t" RENAME COLUMN "%s" TO "note"' % spare), True)
    assert _plan(ColumnFacts("note", has_default=True)) == ([rebuild], None)
    # ... and so is one whose encoding cannot change (an interleaved sort key)
    assert _plan(ColumnFacts("note", encoding="bytedict"), interleaved=True) == ([rebuild], None)
    # a key column with a default: the key goes (a rebuilt column is nullable), not back
    pk = Constraint("t_pkey", "PRIMARY KEY", ("note",))
    assert _plan(ColumnFacts("note", has_default=True, constraints=(pk,))) == ([
        Step(('ALTER TABLE "a"."t" DROP CONSTRAINT "t_pkey"',), True, ("t_pkey",)), rebuild], None)
    assert len(widen.spare_name("x" * 127)) < 127 and widen.spare_name("a") != widen.spare_name("b")


def test_what_redshift_cannot_do_is_refused_naming_column_and_rule() -> None:
    steps, refused = _plan(ColumnFacts("note", has_default=True, table_key=True))
    assert steps == [] and refused is not None
    assert "target a.t, column note" in refused and "VARCHAR(120)" in refused and "DEFAULT" in refused
    assert "dist key or in the sort key" in refused and "full reload or a reset" in refused
    steps, refused = _plan(ColumnFacts("note", encoding="text255", table_key=True), interleaved=True)
    assert steps == [] and refused is not None and "TEXT255" in refused and "interleaved" in refused


# --- carried out on PostgreSQL with Redshift's rules -------------------------------------------

REDSHIFT_RULES = dataclasses.replace(sql.POSTGRES, name="postgres-with-redshift-rules",
                                     caps=dataclasses.replace(sql.REDSHIFT_CAPS, table_design=False,
                                                              widen_numbers=True, widen_varbyte=True))


@pytest.fixture
def schema_name() -> Iterator[str]:
    name = f"fw_{secrets.token_hex(4)}"
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA "{name}" CASCADE')


def _warehouse(schema: str, s3_store: Store, dialect: Dialect) -> PostgresWarehouse:
    from sqlalchemy import create_engine
    wh = PostgresWarehouse(create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test"), schema, s3_store)
    wh.dialect = dialect
    return wh


ROWS = [("a", "new", "x", 1), ("b'q", "old", None, 2), ("ç😀", "", "ünï", 3), ("d\\", "new", "", None)]


def _rows(pg: psycopg.Connection, schema: str) -> list[tuple]:
    return pg.execute(f'SELECT code, status, note, n FROM "{schema}".t ORDER BY code').fetchall()


def _types(pg: psycopg.Connection, schema: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in pg.execute(
        "SELECT column_name, data_type, character_maximum_length, column_default, is_nullable"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = 't'", [schema])}


def test_an_old_target_with_defaults_and_a_key_is_widened_under_redshift_rules_rows_exact(
        schema_name: str, s3_store: Store) -> None:
    """A target made as ferry made them before (DEFAULT and PRIMARY KEY declared, so Redshift
    could widen neither): evolve under Redshift's rules drops and re-declares the key around
    the key column's ALTER, rebuilds the defaulted column, widens the plain one in place,
    adds a column with its rows' default by UPDATE; every row stays what it was."""
    old = [_col("code", "varchar(8)", nullable="NO"), _col("status", "varchar(8)", "'new'"), _col("note", "varchar(8)"),
           _col("n", "int")]
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(sql.create_table(schema_name, "t", old, ["code"], sql.POSTGRES))
        with pg.cursor() as cur:
            cur.executemany(f'INSERT INTO "{schema_name}".t (code, status, note, n) VALUES (%s, %s, %s, %s)', ROWS)
        before = _rows(pg, schema_name)
        assert _types(pg, schema_name)["status"][2] is not None  # the old way: a DEFAULT declared
    new = TableSchema(table="s.t", key=("code",), columns=(
        _col("code", "varchar(30)", nullable="NO"), _col("status", "varchar(30)", "'new'"),
        _col("note", "varchar(30)"), _col("n", "int"), _col("flag", "varchar(4)", "'y'")))
    done = _warehouse(schema_name, s3_store, REDSHIFT_RULES).evolve("t", new)
    ref = f'"{schema_name}"."t"'
    spare = widen.spare_name("status")
    assert done == [
        f'ALTER TABLE {ref} ADD COLUMN "flag" VARCHAR(16)',
        f'UPDATE {ref} SET "flag" = CAST(\'y\' AS VARCHAR(16))',
        f'ALTER TABLE {ref} DROP CONSTRAINT "t_pkey"',
        f'ALTER TABLE {ref} ALTER COLUMN "code" TYPE VARCHAR(120)',
        f'ALTER TABLE {ref} ADD CONSTRAINT "t_pkey" PRIMARY KEY ("code")',
        f'ALTER TABLE {ref} ADD COLUMN "{spare}" VARCHAR(120)',
        f'UPDATE {ref} SET "{spare}" = "status"',
        f'ALTER TABLE {ref} DROP COLUMN "status"',
        f'ALTER TABLE {ref} RENAME COLUMN "{spare}" TO "status"',
        f'ALTER TABLE {ref} ALTER COLUMN "note" TYPE VARCHAR(120)']
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        assert _rows(pg, schema_name) == before
        assert [r[0] for r in pg.execute(f'SELECT flag FROM {ref}').fetchall()] == ["y"] * len(ROWS)
        types = _types(pg, schema_name)
        assert {c: types[c][:2] for c in ("code", "status", "note")} == {
            c: ("character varying", 120) for c in ("code", "status", "note")}
        assert types["status"][2] is None and types["flag"][2] is None  # no DEFAULT left to block a widening
        assert pg.execute("SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = %s"
                          " AND table_name = 't' AND constraint_type = 'PRIMARY KEY'", [schema_name]).fetchone() == (1,)
    # Done: a second evolve finds nothing to do.
    assert _warehouse(schema_name, s3_store, REDSHIFT_RULES).evolve("t", new) == []


def test_a_sort_key_column_with_a_default_is_refused_and_nothing_changes(schema_name: str, s3_store: Store) -> None:
    old = [_col("code", "varchar(8)", nullable="NO"), _col("status", "varchar(8)", "'new'")]
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(sql.create_table(schema_name, "t", old, ["code"], sql.POSTGRES))
        pg.execute(f'INSERT INTO "{schema_name}".t VALUES (\'a\', \'b\')')
    rules = dataclasses.replace(REDSHIFT_RULES, column_facts_query=REDSHIFT_RULES.column_facts_query.replace(
        "FALSE, 0", "a.attname = 'status', 1"))  # the catalog says: status is in the sort key
    new = TableSchema(table="s.t", key=("code",), columns=(_col("code", "varchar(8)", nullable="NO"),
                                                          _col("status", "varchar(30)", "'new'")))
    with pytest.raises(SchemaError, match=r"column status: cannot widen to VARCHAR\(120\): it has a DEFAULT"):
        _warehouse(schema_name, s3_store, rules).evolve("t", new)
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        assert _types(pg, schema_name)["status"][:2] == ("character varying", 32)
        assert pg.execute(f'SELECT * FROM "{schema_name}".t').fetchall() == [("a", "b")]


def test_rows_of_an_older_run_get_the_source_default_without_a_declared_default(schema_name: str) -> None:
    """Under Redshift's rules the target declares no DEFAULT; a part written before a column
    existed is merged with the column's source default in the INSERT itself."""
    cols = [_col("id", "int", nullable="NO"), _col("note", "varchar(8)"), _col("status", "varchar(8)", "'new'"),
            _col("score", "decimal(6,2)", "1.50"), _col("extra", "varchar(8)")]
    staged = cols[:2]
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        ddl = sql.create_table(schema_name, "t", cols, ["id"], REDSHIFT_RULES)
        assert "DEFAULT" not in ddl
        pg.execute(ddl)
        pg.execute(f'INSERT INTO "{schema_name}".t (id, note, status) VALUES (1, \'old\', \'done\')')
        with pg.transaction():
            pg.execute(sql.create_staging("st", staged, REDSHIFT_RULES))
            pg.execute("INSERT INTO st VALUES (1, 'one'), (2, NULL)")
            fill = sql.fill_defaults(cols, staged, REDSHIFT_RULES)
            assert fill == [("status", "CAST('new' AS VARCHAR(32))"), ("score", "CAST(1.50 AS DECIMAL(6,2))")]
            for stmt in sql.merge(schema_name, "t", "st", ["id", "note"], ["id"], fill=fill):
                pg.execute(stmt)
        assert pg.execute(f'SELECT id, note, status, score, extra FROM "{schema_name}".t ORDER BY id').fetchall() == [
            (1, "one", "new", Decimal("1.50"), None), (2, None, "new", Decimal("1.50"), None)]


def test_a_composite_key_dropped_by_one_columns_rebuild_is_not_dropped_again(schema_name: str, s3_store: Store) -> None:
    """Two columns of one key widen in one evolve: the first (with a DEFAULT) is rebuilt and
    takes the key with it; the second is then widened in place, with no key left to drop."""
    old = [_col("status", "varchar(8)", "'new'", nullable="NO"), _col("code", "varchar(8)", nullable="NO"),
           _col("n", "int")]
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(sql.create_table(schema_name, "t", old, ["status", "code"], sql.POSTGRES))
        pg.execute(f'INSERT INTO "{schema_name}".t VALUES (\'a\', \'x\', 1), (\'b\', \'x\', 2)')
    new = TableSchema(table="s.t", key=("status", "code"), columns=(
        _col("status", "varchar(30)", "'new'", nullable="NO"), _col("code", "varchar(30)", nullable="NO"),
        _col("n", "int")))
    done = _warehouse(schema_name, s3_store, REDSHIFT_RULES).evolve("t", new)
    ref = f'"{schema_name}"."t"'
    assert [d for d in done if "CONSTRAINT" in d] == [f'ALTER TABLE {ref} DROP CONSTRAINT "t_pkey"']
    assert done[-1] == f'ALTER TABLE {ref} ALTER COLUMN "code" TYPE VARCHAR(120)'
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        assert pg.execute(f"SELECT status, code, n FROM {ref} ORDER BY n").fetchall() == [("a", "x", 1), ("b", "x", 2)]
