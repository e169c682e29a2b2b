"""The source table's shape from information_schema: columns mapped to target types, the
key, JSON columns, and the indexes a cursor needs."""
from __future__ import annotations

import re
from typing import Any, Sequence

import mysql.connector

from common.config.pipeline import TableSettings
from common.errors import ConfigError, SchemaError
from common.model import overrides, transforms
from common.model.naming import quote_mysql, split_table_key
from common.model.types import ColumnSpec, TableSchema, map_column
from common.source.connection import fetch


def qualified(table_key: str) -> str:
    schema, name = split_table_key(table_key)
    return f"{quote_mysql(schema)}.{quote_mysql(name)}"


# ---- schema ----------------------------------------------------------------

_COLUMNS_SQL = (
    "SELECT column_name AS column_name, data_type AS data_type, column_type AS column_type,"
    " is_nullable AS is_nullable, numeric_precision AS numeric_precision,"
    " numeric_scale AS numeric_scale, character_maximum_length AS character_maximum_length,"
    " datetime_precision AS datetime_precision, column_default AS column_default, extra AS extra"
    " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    " ORDER BY ordinal_position")
_PK_SQL = (
    "SELECT column_name FROM information_schema.statistics"
    " WHERE table_schema = %s AND table_name = %s AND index_name = 'PRIMARY'"
    " ORDER BY seq_in_index")


def json_columns(conn: Any, schema: str, name: str) -> set[str]:
    """MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)) it adds itself: the
    columns that carry one. (MySQL says data_type 'json'; its CHECK_CONSTRAINTS has no
    table_name, so the query fails there and finds nothing.)"""
    try:
        rows = fetch(conn, "SELECT check_clause FROM information_schema.check_constraints"
                      " WHERE constraint_schema = %s AND table_name = %s", (schema, name))
    except mysql.connector.Error:
        return set()
    found = set()
    for (clause,) in rows:
        text = clause.decode() if isinstance(clause, (bytes, bytearray)) else str(clause)
        m = re.fullmatch(r"\s*json_valid\(`((?:[^`]|``)+)`\)\s*", text, re.IGNORECASE)
        if m:
            found.add(m.group(1).replace("``", "`"))
    return found


def read_schema(conn: Any, table: TableSettings) -> TableSchema:
    """Map the table's columns and find its keyset; SchemaError names what is wrong."""
    rows = fetch(conn, _COLUMNS_SQL, (table.schema, table.name), dictionary=True)
    if not rows:
        raise SchemaError(f"table {table.key} not found in the source (or no privilege on it)")
    rows = [{k.lower(): (v.decode() if isinstance(v, (bytes, bytearray)) else v) for k, v in r.items()}
            for r in rows]
    names = [r["column_name"] for r in rows]
    skipped = _skipped(table, names)
    pk = list(table.primary_key or [r[0] for r in fetch(conn, _PK_SQL, (table.schema, table.name))])
    pk = [c.decode() if isinstance(c, (bytes, bytearray)) else c for c in pk]
    if not pk and table.load != "append":
        raise SchemaError(f"table {table.key} has no primary key: set primary_key to NOT NULL columns that "
                          f"are unique, or load: append with a cursor (at-least-once)")
    for col in pk:
        if col not in names:
            raise SchemaError(f"table {table.key}: primary_key column {col!r} is not in the table")
        if col in skipped:
            raise SchemaError(f"table {table.key}: key column {col!r} cannot be left out "
                              f"({'not in include_columns' if table.include_columns is not None else 'excluded'})")
    if table.cursor and table.cursor in skipped:
        raise SchemaError(f"table {table.key}: cursor column {table.cursor!r} cannot be left out")
    for what, entries in (("transform", table.transform), ("types", table.types)):
        for col in entries:
            if col not in names:
                raise SchemaError(f"table {table.key}: {what} names column {col!r}, which the table lacks")
            if col in skipped:
                raise SchemaError(f"table {table.key}: {what} names column {col!r}, which is not copied")
    by_name = {r["column_name"]: r for r in rows}
    for col in pk:
        info = by_name[col]
        if info["data_type"].lower() in ("enum", "set"):
            raise SchemaError(f"table {table.key}: key column {col!r} is an {info['data_type'].upper()}, "
                              f"which sorts by member number but compares as text; choose another key")
        if info["is_nullable"] == "YES":
            raise SchemaError(f"table {table.key}: key column {col!r} is nullable; rows with NULL "
                              f"keys would be skipped, choose NOT NULL key columns")
    found_json = json_columns(conn, table.schema, table.name)
    columns, unmapped = [], []
    fixed = set(pk) | ({table.cursor} if table.cursor else set())
    for r in rows:
        name = r["column_name"]
        if name in skipped:
            continue
        info = {**r, "is_json": name in found_json}
        try:
            try:
                spec: ColumnSpec | None = map_column(table.key, info, table.tinyint1_as_bool, table.json_as)
            except SchemaError:
                if name not in table.types:
                    raise
                spec = None  # the override may map what the type map cannot (DECIMAL(65,30) -> VARCHAR)
            if name in table.types:
                spec = overrides.apply(table.key, info, spec, table.types[name], key=name in fixed)
            assert spec is not None
            if name in table.transform:
                if name in fixed:
                    raise SchemaError(f"table {table.key}: column {name!r} is the key or the cursor, which is "
                                      f"compared on both sides and cannot be transformed")
                spec = transforms.shape(table.key, spec, transforms.parse(table.key, name, table.transform[name]))
            columns.append(spec)
        except (SchemaError, ConfigError) as exc:
            unmapped.append(str(exc))
    if unmapped:  # every column that cannot be copied, not just the first
        raise SchemaError("\n".join(unmapped))
    seen: dict[str, str] = {}
    for c in columns:
        if c.name in seen:
            raise SchemaError(f"table {table.key}: columns {seen[c.name]!r} and {c.source!r} "
                              f"both map to target column {c.name!r}")
        seen[c.name] = c.source
    return TableSchema(table=table.key, columns=tuple(columns), key=tuple(pk))


def _skipped(table: TableSettings, names: list[str]) -> set[str]:
    """The source columns not copied (exclude_columns, or those include_columns leaves out);
    SchemaError names a listed column the table lacks."""
    listed = table.include_columns if table.include_columns is not None else table.exclude_columns
    what = "include_columns" if table.include_columns is not None else "exclude_columns"
    for col in listed:
        if col not in names:
            raise SchemaError(f"table {table.key}: {what} names {col!r}, which the table lacks")
    if table.include_columns is not None:
        return set(names) - set(table.include_columns)
    return set(table.exclude_columns)


# ---- keyset predicates -----------------------------------------------------

def cursor_index_sql(table_key: str, cursor: str, key: Sequence[str]) -> str:
    """The CREATE INDEX a timestamp cursor needs: (cursor, the key's other columns)."""
    columns = [cursor, *(k for k in key if k != cursor)]
    name = split_table_key(table_key)[1]
    return (f"CREATE INDEX ix_{name}_{cursor} ON {qualified(table_key)} "
            f"({', '.join(quote_mysql(c) for c in columns)})")


def indexes_leading_with(conn: Any, table: TableSettings, column: str) -> list[str]:
    """Names of the table's indexes whose first column is `column`."""
    rows = fetch(conn, "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = %s"
                  " AND table_name = %s AND seq_in_index = 1 AND column_name = %s",
                  (table.schema, table.name, column))
    return [r[0].decode() if isinstance(r[0], (bytes, bytearray)) else r[0] for r in rows]


