"""SQL text for the warehouse; dialect differences are data (a Dialect), not branches."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from common.naming import quote_ident
from common.types import ColumnSpec


@dataclass(frozen=True)
class Dialect:
    """What differs between warehouses: type names and temporary-table syntax."""

    name: str
    type_names: dict[str, str] = field(default_factory=dict)
    """Generic (Redshift) type name -> this dialect's, e.g. VARBYTE -> BYTEA."""
    temp_table_suffix: str = ""
    """Appended to CREATE TEMP TABLE (PostgreSQL drops it at commit)."""


REDSHIFT = Dialect(name="redshift")
POSTGRES = Dialect(name="postgres", type_names={"VARBYTE": "BYTEA"}, temp_table_suffix=" ON COMMIT DROP")


def column_type(col: ColumnSpec, dialect: Dialect) -> str:
    """The column's type in the dialect (generic type with its name swapped if needed)."""
    base = re.match(r"[A-Z ]+", col.target)
    name = base.group(0).strip() if base else col.target
    if name in dialect.type_names:
        return dialect.type_names[name]
    return col.target


def table_ref(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def create_table(schema: str, table: str, columns: Sequence[ColumnSpec], key: Sequence[str],
                 dialect: Dialect) -> str:
    """CREATE TABLE for the target, in the Parquet schema's column order."""
    keyset = set(key)
    lines = [f"  {quote_ident(c.name)} {column_type(c, dialect)}" + (" NOT NULL" if c.name in keyset else "")
             for c in columns]
    lines.append(f"  PRIMARY KEY ({', '.join(quote_ident(k) for k in key)})")
    return f"CREATE TABLE IF NOT EXISTS {table_ref(schema, table)} (\n" + ",\n".join(lines) + "\n)"


def create_staging(staging: str, schema: str, table: str, dialect: Dialect) -> str:
    """A temporary table shaped like the target (same column order: COPY matches by position)."""
    return f"CREATE TEMP TABLE {quote_ident(staging)} (LIKE {table_ref(schema, table)}){dialect.temp_table_suffix}"


def clear_staging(staging: str) -> str:
    # DELETE, not TRUNCATE: in Redshift TRUNCATE commits the load transaction.
    return f"DELETE FROM {quote_ident(staging)}"


def drop_staging(staging: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_ident(staging)}"


def merge(schema: str, table: str, staging: str, columns: Sequence[str], key: Sequence[str]) -> list[str]:
    """Upsert staging into the target by key: delete the old versions, insert the new."""
    target = table_ref(schema, table)
    stage = quote_ident(staging)
    match = " AND ".join(f"{target}.{quote_ident(k)} = {stage}.{quote_ident(k)}" for k in key)
    cols = ", ".join(quote_ident(c) for c in columns)
    return [f"DELETE FROM {target} USING {stage} WHERE {match}",
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage}"]


def schema_exists(schema: str) -> tuple[str, list[str]]:
    return "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [schema]


def table_exists(schema: str, table: str) -> tuple[str, list[str]]:
    return ("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [schema, table])


def target_columns(schema: str, table: str) -> tuple[str, list[str]]:
    """Query (and parameters) for the existing target's columns in order."""
    return ("SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", [schema, table])


def create_schema(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"


def create_ledger(schema: str, ledger: str) -> str:
    """The ledger of committed loads, one row per part, written in the load's transaction."""
    return (f"CREATE TABLE IF NOT EXISTS {table_ref(schema, ledger)} (\n"
            "  pipeline VARCHAR(128) NOT NULL,\n"
            "  source_table VARCHAR(256) NOT NULL,\n"
            "  target_table VARCHAR(256) NOT NULL,\n"
            "  part_key VARCHAR(1024) NOT NULL,\n"
            "  run_id VARCHAR(64) NOT NULL,\n"
            "  chunk INTEGER NOT NULL,\n"
            "  part_rows BIGINT NOT NULL,\n"
            "  part_bytes BIGINT NOT NULL,\n"
            "  load_id VARCHAR(64) NOT NULL,\n"
            "  loaded_at TIMESTAMP NOT NULL\n"
            ")")


def ledger_loaded(schema: str, ledger: str, runs: Sequence[str]) -> str:
    """Query for part keys of the given runs already in the ledger (params: pipeline, table, *runs)."""
    marks = ", ".join(["%s"] * len(runs))
    return (f"SELECT part_key FROM {table_ref(schema, ledger)}"
            f" WHERE pipeline = %s AND source_table = %s AND run_id IN ({marks})")


def ledger_insert(schema: str, ledger: str, rows: int) -> str:
    """Multi-row INSERT into the ledger (10 params a row)."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
    return (f"INSERT INTO {table_ref(schema, ledger)} (pipeline, source_table, target_table,"
            f" part_key, run_id, chunk, part_rows, part_bytes, load_id, loaded_at) VALUES {values}")


def copy_parquet(staging: str, manifest_url: str, credentials: str) -> str:
    """Redshift COPY of a manifest's Parquet parts (columns matched by position)."""
    return (f"COPY {quote_ident(staging)} FROM '{manifest_url}' {credentials}"
            " FORMAT AS PARQUET MANIFEST")


def copy_csv_stdin(staging: str, columns: Sequence[str]) -> str:
    """PostgreSQL COPY FROM STDIN of CSV rows."""
    cols = ", ".join(quote_ident(c) for c in columns)
    return f"COPY {quote_ident(staging)} ({cols}) FROM STDIN (FORMAT csv)"
