"""SQL text for the warehouse; dialect differences are data (a Dialect), not branches."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from common.config.design import TableDesign
from common.model.naming import MAX_IDENTIFIER_BYTES, quote_ident
from common.model.schema_change import Capabilities
from common.model.types import MAX_GEOMETRY, MAX_JSON_BYTES, MAX_VARBYTE, MAX_VARCHAR, ColumnSpec


@dataclass(frozen=True)
class Dialect:
    """What differs between warehouses: type names and temporary-table syntax."""

    name: str
    type_names: dict[str, str] = field(default_factory=dict)
    """Generic (Redshift) type name -> this dialect's, e.g. VARBYTE -> BYTEA."""
    temp_table_suffix: str = ""
    """Appended to CREATE TEMP TABLE (PostgreSQL drops it at commit)."""
    caps: Capabilities = field(default_factory=Capabilities)
    """Which column changes the warehouse makes in place."""
    enforces_keys: bool = False
    """A PRIMARY KEY is enforced (PostgreSQL), not only declared (Redshift)."""
    grants_query: str = ""
    """(grantee, privilege, grantee kind) of every grant on a table (params: schema, table)."""
    sees_all_grants_query: str = "SELECT TRUE"
    """True if grants_query shows the current user every grant, not only those it is party
    to (a full reload's swap carries them over; it refuses rather than drop unseen ones)."""
    json_staging_type: str = "TEXT"
    """How a JSON column is staged (Parquet text) before it is parsed into its column."""
    json_parse: str = "JSON_PARSE({})"
    """The expression that turns a staged JSON text into the target's JSON type."""
    geometry_staging_type: str = ""
    """How a geometry column (EWKB in the parts) is staged; '' : as its column type."""
    geometry_parse: str = "{}"
    """The expression that turns staged EWKB into the target's geometry column."""
    geometry_bytes: str = "{}"
    """A geometry column's value as EWKB bytes (`ferry verify`)."""
    hex_bytes: str = "TO_HEX({})"
    """A binary value as lowercase hex text (`ferry verify`)."""
    hex_int: str = "STRTOL({}, 16)"
    """Seven hex digits as a BIGINT (`ferry verify`'s checksum slices)."""
    column_facts_query: str = ""
    """(column, has a DEFAULT, compression encoding, is the dist key or in the sort key, sort
    key position: negative when interleaved) of every column of a table (params: schema,
    table): what decides how a column can be widened."""


# Redshift, ALTER TABLE (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html),
# ALTER COLUMN column_name TYPE: "changes the size of a column defined as a VARCHAR data type"
# (so no number or VARBYTE widening), and "You can't alter a column with compression
# encodings BYTEDICT, RUNLENGTH, TEXT255, or TEXT32K", "You can't alter columns with default
# values", "You can't alter columns with UNIQUE, PRIMARY KEY, or FOREIGN KEY", "You can't
# alter columns within a transaction block". ALTER COLUMN ... ENCODE: "You can't alter the
# encoding for a column in a table with an interleaved sortkey". ALTER DISTKEY / DISTSTYLE
# ALL / EVEN: "not supported for tables with interleaved sort keys".
# Column facts: SVV_REDSHIFT_COLUMNS (column_default, encoding, distkey, sortkey),
# https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_REDSHIFT_COLUMNS.html.
# Grants on a table: Redshift's SVV_RELATION_PRIVILEGES (identity_type user, group or role),
# https://docs.aws.amazon.com/redshift/latest/dg/r_SVV_RELATION_PRIVILEGES.html: "Superusers can
# see all rows. Regular users who have the ACCESS SYSTEM TABLE permission can see all rows.
# Regular users can only see identities to which they have access or for which they are the
# identities owner." Who has that permission: SVV_SYSTEM_PRIVILEGES (system_privilege,
# identity_name; r_SVV_SYSTEM_PRIVILEGES.html) and a user's roles SVV_USER_GRANTS
# (r_SVV_USER_GRANTS.html); superusers: PG_USER.usesuper (r_PG_USER.html). PostgreSQL's
# information_schema.table_privileges.
REDSHIFT_CAPS = Capabilities(widen_numbers=False, widen_varbyte=False, table_design=True,
                             alter_type_refuses_default=True, alter_type_refuses_key=True,
                             alter_type_refuses_encodings=frozenset({"bytedict", "runlength", "text255", "text32k"}),
                             alter_type_in_transaction=False, encoding_fixable_with_interleaved_sortkey=False,
                             dist_alterable_with_interleaved_sortkey=False,
                             # Names and values: "The maximum length for the table name is 127
                             # bytes" (r_ALTER_TABLE.html, r_names.html); VARCHAR 65,535 bytes
                             # (r_Character_types.html); VARBYTE 16,777,216 (r_VARBYTE_type.html);
                             # SUPER 16 MB, strings 16,000,000 (limitations-super.html); GEOMETRY
                             # 1,048,447 (r_ALTER_TABLE.html).
                             max_identifier_bytes=MAX_IDENTIFIER_BYTES, max_varchar_bytes=MAX_VARCHAR,
                             max_varbyte_bytes=MAX_VARBYTE, max_json_bytes=MAX_JSON_BYTES,
                             max_geometry_bytes=MAX_GEOMETRY,
                             # "Only the following COPY parameters are supported" for columnar
                             # data (copy-usage_notes-copy-from-columnar.html).
                             columnar_copy_options=frozenset({
                                 "ACCEPTINVCHARS", "FILLRECORD", "FROM", "IAM_ROLE", "CREDENTIALS", "STATUPDATE",
                                 "MANIFEST", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN", "EXPLICIT_IDS"}))
# GEOMETRY from EWKB: ST_GeomFromEWKB(ewkb) takes "A value of data type VARCHAR or VARBYTE that
# is a hexadecimal EWKB representation" (ST_GeomFromEWKB-function.html); ST_AsEWKB(geom) returns
# VARBYTE (ST_AsEWKB-function.html).
REDSHIFT = Dialect(name="redshift", caps=REDSHIFT_CAPS, json_staging_type=f"VARBYTE({MAX_VARBYTE})",
                   geometry_staging_type=f"VARBYTE({MAX_GEOMETRY})", geometry_parse="ST_GeomFromEWKB({})",
                   geometry_bytes="ST_AsEWKB({})",
                   grants_query="SELECT identity_name, privilege_type, identity_type FROM svv_relation_privileges"
                                " WHERE namespace_name = %s AND relation_name = %s",
                   sees_all_grants_query="SELECT u.usesuper OR EXISTS (SELECT 1 FROM svv_system_privileges p"
                                         " WHERE p.system_privilege = 'ACCESS SYSTEM TABLE'"
                                         " AND (p.identity_name = current_user OR p.identity_name IN"
                                         " (SELECT g.role_name FROM svv_user_grants g WHERE g.user_name = current_user)))"
                                         " FROM pg_user u WHERE u.usename = current_user",
                   column_facts_query="SELECT column_name, column_default IS NOT NULL, encoding,"
                                      " distkey OR COALESCE(sortkey, 0) <> 0, COALESCE(sortkey, 0)"
                                      " FROM svv_redshift_columns WHERE database_name = current_database()"
                                      " AND schema_name = %s AND table_name = %s ORDER BY ordinal_position")
# JSON into SUPER: JSON_PARSE (https://docs.aws.amazon.com/redshift/latest/dg/JSON_PARSE.html).
# The stand-in has no PostGIS: GEOMETRY is BYTEA holding the EWKB.
POSTGRES = Dialect(name="postgres", type_names={"VARBYTE": "BYTEA", "SUPER": "JSONB", "GEOMETRY": "BYTEA"},
                   temp_table_suffix=" ON COMMIT DROP", enforces_keys=True,
                   json_parse="({})::jsonb",
                   hex_bytes="ENCODE({}, 'hex')", hex_int="('x' || {})::bit(28)::bigint",
                   grants_query="SELECT grantee, privilege_type, 'user' FROM information_schema.table_privileges"
                                " WHERE table_schema = %s AND table_name = %s AND grantee <> current_user",
                   # information_schema.table_privileges shows the grants of roles the user is a
                   # member of (pg_has_role): all of them to a superuser, only some to anyone else.
                   sees_all_grants_query="SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
                   column_facts_query="SELECT a.attname, a.atthasdef, NULL, FALSE, 0 FROM pg_catalog.pg_attribute a"
                                      " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
                                      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                                      " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0"
                                      " AND NOT a.attisdropped ORDER BY a.attnum")
DIALECTS = {"redshift": REDSHIFT, "postgres": POSTGRES}


def column_type(col: ColumnSpec, dialect: Dialect) -> str:
    """The column's type in the dialect (generic type with its name swapped if needed)."""
    base = re.match(r"[A-Z ]+", col.target)
    name = base.group(0).strip() if base else col.target
    if name in dialect.type_names:
        return dialect.type_names[name]
    return col.target


def table_ref(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def param_ref(schema: str, table: str) -> str:
    """table_ref for a statement sent with parameters: the driver reads `%` as the start
    of a placeholder, so a `%` in a name is doubled."""
    return table_ref(schema, table).replace("%", "%%")


def design_clause(design: TableDesign | None, columns: Sequence[ColumnSpec], dialect: Dialect) -> str:
    """Redshift's table attributes after CREATE TABLE (...): DISTSTYLE, DISTKEY, SORTKEY, in
    target column names; nothing for a warehouse without them."""
    if design is None or not dialect.caps.table_design:
        return ""
    names = {c.source: c.name for c in columns}
    clause = f" DISTSTYLE {design.diststyle}"
    if design.distkey:
        clause += f" DISTKEY ({quote_ident(names[design.distkey])})"
    # No SORTKEY clause means SORTKEY AUTO: "By default, tables created without explicitly
    # defining sort keys or distributions keys are set to AUTO" (Redshift, automatic table
    # optimization, c_ato-enabling-disabling-monitoring.html); sqlglot cannot parse the
    # explicit form.
    if design.sort_columns:
        cols = ", ".join(quote_ident(names[c]) for c in design.sort_columns)
        clause += f" {design.sort_type.upper()} SORTKEY ({cols})"
    return clause


def redesign(schema: str, table: str, old: TableDesign, new: TableDesign, columns: Sequence[ColumnSpec],
             caps: Capabilities = REDSHIFT_CAPS) -> tuple[list[str], list[str]]:
    """(ALTER statements, changes Redshift cannot make in place) from one design to another.
    ALTER TABLE offers ALTER [COMPOUND] SORTKEY (...), ALTER SORTKEY AUTO|NONE, ALTER
    DISTSTYLE ALL|EVEN|AUTO and ALTER DISTSTYLE KEY DISTKEY c. The sort key changes first:
    "You can alter an interleaved sort key to a compound sort key or no sort key. However,
    you can't alter a compound sort key to an interleaved sort key", and ALTER DISTKEY /
    DISTSTYLE ALL / EVEN are "not supported for tables with interleaved sort keys", so a
    table leaving an interleaved key can then be redistributed."""
    names = {c.source: c.name for c in columns}
    ref = table_ref(schema, table)
    stmts: list[str] = []
    refused: list[str] = []
    interleaved = old.sort_type == "interleaved"
    if (old.sort_type, old.sort_columns) != (new.sort_type, new.sort_columns):
        if new.sort_type == "interleaved":
            refused.append(f"sort key {old.sort_type} {list(old.sort_columns)} -> interleaved "
                           f"{list(new.sort_columns)}: ALTER SORTKEY cannot make a sort key interleaved; "
                           f"rebuild the table (full reload or reset) to apply it")
        elif new.sort_type in ("auto", "none"):
            stmts.append(f"ALTER TABLE {ref} ALTER SORTKEY {new.sort_type.upper()}")
            # "When you alter a sort key to AUTO, Amazon Redshift preserves the existing sort key".
            interleaved = interleaved and new.sort_type == "auto"
        else:
            cols = ", ".join(quote_ident(names[c]) for c in new.sort_columns)
            stmts.append(f"ALTER TABLE {ref} ALTER COMPOUND SORTKEY ({cols})")
            interleaved = False
    if (old.diststyle, old.distkey) != (new.diststyle, new.distkey):
        # ALTER DISTSTYLE AUTO is not among the forms the page refuses on interleaved tables.
        if interleaved and new.diststyle != "AUTO" and not caps.dist_alterable_with_interleaved_sortkey:
            refused.append(f"distribution {old.diststyle}{f' ({old.distkey})' if old.distkey else ''} -> "
                           f"{new.diststyle}{f' ({new.distkey})' if new.distkey else ''}: ALTER DISTKEY/DISTSTYLE "
                           f"is not supported on a table with an interleaved sort key; change the sort key to "
                           f"compound or none first, or rebuild the table (full reload or reset)")
        else:
            stmts.append(f"ALTER TABLE {ref} ALTER DISTSTYLE KEY DISTKEY {quote_ident(names[new.distkey])}"
                         if new.distkey else f"ALTER TABLE {ref} ALTER DISTSTYLE {new.diststyle}")
    return stmts, refused


def create_table(schema: str, table: str, columns: Sequence[ColumnSpec], key: Sequence[str],
                 dialect: Dialect, design: TableDesign | None = None) -> str:
    """CREATE TABLE for the target, in the Parquet schema's column order."""
    keyset = set(key)
    # The source's constant defaults are declared where a DEFAULT does not stop the column
    # being widened later (there is no DROP DEFAULT); the loads give rows of parts written
    # before a column existed what MySQL gave them in any case (fill_defaults). The key is
    # declared everywhere: Redshift's planner uses it, and widen.plan drops and declares it
    # again around a widening of a key column.
    declare_default = not dialect.caps.alter_type_refuses_default
    lines = [f"  {quote_ident(c.name)} {column_type(c, dialect)}"
             + (f" DEFAULT {typed_default(c, dialect)}" if c.default is not None and declare_default else "")
             + (" NOT NULL" if c.name in keyset else "") for c in columns]
    if key:  # a table loaded with `load: append` may have none
        lines.append(f"  PRIMARY KEY ({', '.join(quote_ident(k) for k in key)})")
    return (f"CREATE TABLE IF NOT EXISTS {table_ref(schema, table)} (\n" + ",\n".join(lines) + "\n)"
            + design_clause(design, columns, dialect))


def create_staging(staging: str, columns: Sequence[ColumnSpec], dialect: Dialect) -> str:
    """A temporary table with exactly the parts' columns, in the Parquet order (COPY matches
    by position), whatever else the target holds (columns dropped in the source, or added
    by a DBA)."""
    cols = ", ".join(f"{quote_ident(c.name)} {staging_type(c, dialect)}" for c in columns)
    return f"CREATE TEMP TABLE {quote_ident(staging)} ({cols}){dialect.temp_table_suffix}"


PARSED_KINDS = ("json", "geometry")
"""Kinds staged in another form and turned into their column by the INSERT (so a load of
them always goes through staging)."""


def staging_type(col: ColumnSpec, dialect: Dialect) -> str:
    if col.kind == "json":
        return dialect.json_staging_type
    if col.kind == "geometry" and dialect.geometry_staging_type:
        return dialect.geometry_staging_type
    return column_type(col, dialect)


def insert_exprs(columns: Sequence[ColumnSpec], dialect: Dialect) -> list[str]:
    """What INSERT ... SELECT takes from staging for each column: JSON text is parsed,
    geometry EWKB made a geometry."""
    parse = {"json": dialect.json_parse, "geometry": dialect.geometry_parse}
    return [parse.get(c.kind, "{}").format(quote_ident(c.name)) for c in columns]


def typed_default(col: ColumnSpec, dialect: Dialect) -> str:
    """The column's source default as an expression of the column's own type: "The data
    type of default_expr must match the data type of the column" (Redshift, ALTER TABLE ADD
    COLUMN ... DEFAULT). JSON text is parsed as a loaded value is."""
    if col.kind == "json":
        return dialect.json_parse.format(col.default)
    return f"CAST({col.default} AS {column_type(col, dialect)})"


def fill_defaults(mapping: Sequence[ColumnSpec], staged: Sequence[ColumnSpec],
                  dialect: Dialect) -> list[tuple[str, str]]:
    """(target column, value) for the mapping's columns that parts of an older run lack and
    that have a source default: a row from such a part gets what MySQL gave the rows it
    held when the column was added (other missing columns stay NULL)."""
    have = {c.name for c in staged}
    return [(c.name, typed_default(c, dialect)) for c in mapping if c.name not in have and c.default is not None]


def add_column(schema: str, table: str, col: ColumnSpec, dialect: Dialect) -> list[str]:
    """One column per statement (Redshift adds only one per ALTER TABLE); the rows already
    copied get the source's constant default, as MySQL gave it them: declared as the
    column's DEFAULT, or, where a DEFAULT would stop the column being widened later, set by
    an UPDATE in the same transaction."""
    ref = table_ref(schema, table)
    add = f"ALTER TABLE {ref} ADD COLUMN {quote_ident(col.name)} {column_type(col, dialect)}"
    if col.default is None:
        return [add]
    if not dialect.caps.alter_type_refuses_default:
        return [f"{add} DEFAULT {typed_default(col, dialect)}"]
    return [add, f"UPDATE {ref} SET {quote_ident(col.name)} = {typed_default(col, dialect)}"]


def widen_column(schema: str, table: str, col: ColumnSpec, dialect: Dialect) -> str:
    """Widen a column in place (Redshift: VARCHAR only, and outside a transaction block)."""
    return f"ALTER TABLE {table_ref(schema, table)} ALTER COLUMN {quote_ident(col.name)} TYPE {column_type(col, dialect)}"


def rebuild_column(schema: str, table: str, col: ColumnSpec, spare: str, dialect: Dialect) -> list[str]:
    """Widen a column that ALTER COLUMN TYPE refuses, in one transaction: a new column of
    the wider type (no DEFAULT) gets every value, the old one is dropped, the new one takes
    its name. The column moves to the end of the table (loads name their columns)."""
    ref, name, new = table_ref(schema, table), quote_ident(col.name), quote_ident(spare)
    return [f"ALTER TABLE {ref} ADD COLUMN {new} {column_type(col, dialect)}",
            f"UPDATE {ref} SET {new} = {name}",
            f"ALTER TABLE {ref} DROP COLUMN {name}",
            f"ALTER TABLE {ref} RENAME COLUMN {new} TO {name}"]


def reencode_column(schema: str, table: str, column: str, encoding: str = "zstd") -> str:
    """Give a column an encoding ALTER COLUMN TYPE accepts (Redshift)."""
    return f"ALTER TABLE {table_ref(schema, table)} ALTER COLUMN {quote_ident(column)} ENCODE {encoding.upper()}"


def drop_constraint(schema: str, table: str, constraint: str) -> str:
    return f"ALTER TABLE {table_ref(schema, table)} DROP CONSTRAINT {quote_ident(constraint)}"


def add_constraint(schema: str, table: str, constraint: str, kind: str, columns: Sequence[str]) -> str:
    """ADD [ CONSTRAINT name ] { PRIMARY KEY | UNIQUE } (columns)."""
    cols = ", ".join(quote_ident(c) for c in columns)
    return f"ALTER TABLE {table_ref(schema, table)} ADD CONSTRAINT {quote_ident(constraint)} {kind} ({cols})"


def key_constraints(schema: str, table: str) -> tuple[str, list[str]]:
    """(constraint, PRIMARY KEY | UNIQUE, column) of every key constraint of a table, its
    columns in order."""
    return ("SELECT tc.constraint_name, tc.constraint_type, kcu.column_name"
            " FROM information_schema.table_constraints tc"
            " JOIN information_schema.key_column_usage kcu ON kcu.constraint_schema = tc.constraint_schema"
            " AND kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name"
            " WHERE tc.table_schema = %s AND tc.table_name = %s"
            " AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            " ORDER BY tc.constraint_name, kcu.ordinal_position", [schema, table])


def target_column_types(schema: str, table: str) -> tuple[str, list[str]]:
    """The target's columns and their types as format_type() writes them."""
    return ("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
            " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum", [schema, table])


_GENERIC = {"smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "boolean": "BOOLEAN",
            "real": "REAL", "double precision": "DOUBLE PRECISION", "date": "DATE",
            "timestamp without time zone": "TIMESTAMP", "super": "SUPER"}


def generic_type(formatted: str) -> str | None:
    """format_type()'s text as a type-map string (VARCHAR(40), DECIMAL(12,2), BIGINT); None
    for a type ferry does not compare (BYTEA, ...)."""
    text = formatted.lower().strip()
    m = re.fullmatch(r"(character varying|character|numeric)\((\d+)(?:,(\d+))?\)", text)
    if m:
        if m.group(1) == "numeric":
            return f"DECIMAL({m.group(2)},{m.group(3) or 0})"
        return f"VARCHAR({m.group(2)})"
    return _GENERIC.get(text)


def drop_staging(staging: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_ident(staging)}"


def _insert_lists(columns: Sequence[str], exprs: Sequence[str] | None,
                  fill: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(target column list, SELECT list) of an INSERT ... SELECT from staging: the staged
    columns (or their expressions), then the constants of columns the parts lack."""
    names = [quote_ident(c) for c in columns]
    values = list(exprs) if exprs else list(names)
    return (", ".join(names + [quote_ident(c) for c, _ in fill]),
            ", ".join(values + [v for _, v in fill]))


def merge(schema: str, table: str, staging: str, columns: Sequence[str], key: Sequence[str],
          version: str | None = None, exprs: Sequence[str] | None = None,
          fill: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Upsert staging into the target by key: delete the old versions, insert the new.

    With a version column (the timestamp cursor) a staged row replaces a target row only
    if it is not older, and of several staged versions of one key the newest wins, so
    re-read and out-of-order rows can never bring back an old version. `fill`: (column,
    constant) for target columns the staged parts lack (fill_defaults).
    """
    target = table_ref(schema, table)
    stage = quote_ident(staging)
    match = " AND ".join(f"{target}.{quote_ident(k)} = {stage}.{quote_ident(k)}" for k in key)
    cols = ", ".join(quote_ident(c) for c in columns)
    into, values = _insert_lists(columns, exprs, fill)
    if version is None:
        return [f"DELETE FROM {target} USING {stage} WHERE {match}",
                f"INSERT INTO {target} ({into}) SELECT {values} FROM {stage}"]
    v = quote_ident(version)
    keys = ", ".join(quote_ident(k) for k in key)
    newest = (f"SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys}"
              f" ORDER BY {v} DESC NULLS LAST) AS ferry_rn FROM {stage}) AS d WHERE d.ferry_rn = 1")
    absent = " AND ".join(f"t.{quote_ident(k)} = n.{quote_ident(k)}" for k in key)
    return [f"DELETE FROM {target} USING {stage} WHERE {match}"
            f" AND ({target}.{v} IS NULL OR {target}.{v} <= {stage}.{v})",
            f"INSERT INTO {target} ({into}) SELECT {values} FROM ({newest}) AS n"
            f" WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {absent})"]


SOFT_DELETED = "_ferry_deleted_at"
"""The column ferry adds for `reconcile: {deletes: soft}`: when the row was found deleted in
the source (NULL: a live row; a merge of the key writes the row anew, so NULL again)."""


def add_soft_delete_column(schema: str, table: str) -> str:
    return f"ALTER TABLE {table_ref(schema, table)} ADD COLUMN {quote_ident(SOFT_DELETED)} TIMESTAMP"


def keys_match(target: str, staging: str, key: Sequence[str]) -> str:
    return " AND ".join(f"{target}.{quote_ident(k)} = {staging}.{quote_ident(k)}" for k in key)


def unstage_keys(staging: str, key: Sequence[str], rows: int) -> str:
    """Take `rows` keys (params: each key's values in turn) out of a deletes staging table:
    the keys the source has again (reconcile re-checks them just before deleting)."""
    one = "(" + " AND ".join(f"{quote_ident(k).replace('%', '%%')} = %s" for k in key) + ")"
    return f"DELETE FROM {quote_ident(staging).replace('%', '%%')} WHERE " + " OR ".join([one] * rows)


def delete_keys(schema: str, table: str, staging: str, key: Sequence[str]) -> str:
    """Delete the target rows whose keys a deletes staging table holds."""
    target, stage = table_ref(schema, table), quote_ident(staging)
    return f"DELETE FROM {target} USING {stage} WHERE {keys_match(target, stage, key)}"


def soft_delete_keys(schema: str, table: str, staging: str, key: Sequence[str], at: str) -> str:
    """Mark (once) the target rows whose keys a deletes staging table holds as deleted at `at`
    ('YYYY-MM-DD HH:MM:SS.ffffff', UTC)."""
    target, stage = table_ref(schema, table), quote_ident(staging)
    return (f"UPDATE {target} SET {quote_ident(SOFT_DELETED)} = CAST({_literal(at)} AS TIMESTAMP)"
            f" FROM {stage} WHERE {keys_match(target, stage, key)} AND {target}.{quote_ident(SOFT_DELETED)} IS NULL")


def duplicate_key(staging: str, key: Sequence[str], quoted: bool = False) -> str:
    """One key that more than one staged row has, with its count (none: no row). Without a
    version column a run stages each key once, unless the key is not unique in the source.
    (quoted: `staging` is already a table reference, e.g. a target a first load copied into.)"""
    keys = ", ".join(quote_ident(k) for k in key)
    return (f"SELECT {keys}, COUNT(*) FROM {staging if quoted else quote_ident(staging)} GROUP BY {keys}"
            f" HAVING COUNT(*) > 1 LIMIT 1")


def append(schema: str, table: str, staging: str, columns: Sequence[str],
           exprs: Sequence[str] | None = None, fill: Sequence[tuple[str, str]] = ()) -> list[str]:
    """`load: append`: every staged row is inserted (the ledger keeps a part from being
    loaded twice; a range read twice is inserted twice)."""
    into, values = _insert_lists(columns, exprs, fill)
    return [f"INSERT INTO {table_ref(schema, table)} ({into}) SELECT {values} FROM {quote_ident(staging)}"]


def create_table_as_new(schema: str, table: str, new: str, columns: Sequence[ColumnSpec],
                        key: Sequence[str], dialect: Dialect, design: TableDesign | None = None) -> list[str]:
    """A fresh table for a full reload, built beside the target, with the table's design."""
    return [f"DROP TABLE IF EXISTS {table_ref(schema, new)}",
            create_table(schema, new, columns, key, dialect, design)]


def table_owner_and_comments(schema: str, table: str) -> tuple[str, list[str]]:
    """(owner, table comment) of a table, and its column comments as (column, comment) rows
    after it (params: schema, table, schema, table)."""
    return ("SELECT pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class'), NULL"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s"
            " UNION ALL SELECT NULL, col_description(c.oid, a.attnum), a.attname"
            " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NOT NULL",
            [schema, table, schema, table])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def carry_over(schema: str, new: str, comment: str | None, column_comments: Sequence[tuple[str, str]],
               grants: Sequence[tuple[str, str, str]]) -> list[str]:
    """What a full reload's new table must get from the table it replaces, before the swap:
    the comments, and every GRANT (to users, groups and roles). The owner is given after the
    swap (set_owner): the loader may lose its rights with it."""
    ref = table_ref(schema, new)
    stmts = []
    for grantee, privilege, kind in grants:
        who = ("PUBLIC" if grantee.upper() == "PUBLIC" else
               {"group": "GROUP ", "role": "ROLE "}.get(kind.lower(), "") + quote_ident(grantee))
        stmts.append(f"GRANT {privilege.upper()} ON {ref} TO {who}")
    if comment:
        stmts.append(f"COMMENT ON TABLE {ref} IS {_literal(comment)}")
    for column, text in column_comments:
        stmts.append(f"COMMENT ON COLUMN {ref}.{quote_ident(column)} IS {_literal(text)}")
    return stmts


def set_owner(schema: str, table: str, owner: str | None, current_user: str) -> list[str]:
    """The replaced table's owner for the table now in its place (none if the loader owns it),
    after the final RENAME and DROP: once another user owns it, the loader may not rename it."""
    if not owner or owner == current_user:
        return []
    return [f"ALTER TABLE {table_ref(schema, table)} OWNER TO {quote_ident(owner)}"]


def delete_all_insert(schema: str, table: str, staging: str, columns: Sequence[str],
                      exprs: Sequence[str] | None = None) -> list[str]:
    """`full_reload: delete_insert`: the table object stays (grants, views, owner); DELETE,
    not TRUNCATE, which in Redshift commits the transaction it runs in."""
    return [f"DELETE FROM {table_ref(schema, table)}", *append(schema, table, staging, columns, exprs)]


def swap(schema: str, table: str, new: str, old: str, target_exists: bool) -> list[str]:
    """Put the reloaded table in the target's place, inside the load's transaction."""
    stmts = []
    if target_exists:
        stmts.append(f"ALTER TABLE {table_ref(schema, table)} RENAME TO {quote_ident(old)}")
    stmts.append(f"ALTER TABLE {table_ref(schema, new)} RENAME TO {quote_ident(table)}")
    if target_exists:
        stmts.append(f"DROP TABLE {table_ref(schema, old)}")
    return stmts


# Existence and columns come from pg_catalog, not information_schema: information_schema
# shows only objects the user has privileges on, while "the standard PostgreSQL catalog
# tables are accessible to Amazon Redshift users" (Redshift, System catalog tables,
# https://docs.aws.amazon.com/redshift/latest/dg/c_intro_catalog_views.html), whoever owns
# the object. Names are compared as Redshift stores them (lowercase, see naming).
def schema_exists(schema: str) -> tuple[str, list[str]]:
    return "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema]


def table_exists(schema: str, table: str) -> tuple[str, list[str]]:
    return ("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'", [schema, table])


def can_create_schema() -> tuple[str, list[str]]:
    return "SELECT has_database_privilege(current_database(), 'CREATE')", []


def schema_privilege(schema: str, privilege: str) -> tuple[str, list[str]]:
    return "SELECT has_schema_privilege(%s, %s)", [schema, privilege]


def table_privilege(schema: str, table: str, privilege: str) -> tuple[str, list[str]]:
    """has_table_privilege on the quoted name, so odd names resolve exactly."""
    return "SELECT has_table_privilege(%s, %s)", [table_ref(schema, table), privilege]


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
    return (f"SELECT part_key FROM {param_ref(schema, ledger)}"
            f" WHERE pipeline = %s AND source_table = %s AND run_id IN ({marks})")


def ledger_all(schema: str, ledger: str) -> str:
    """Every part a table's ledger holds (params: pipeline, table): `watermark rebuild`."""
    return (f"SELECT part_key, part_rows FROM {param_ref(schema, ledger)}"
            " WHERE pipeline = %s AND source_table = %s")


def ledger_insert(schema: str, ledger: str, rows: int) -> str:
    """Multi-row INSERT into the ledger (10 params a row)."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
    return (f"INSERT INTO {param_ref(schema, ledger)} (pipeline, source_table, target_table,"
            f" part_key, run_id, chunk, part_rows, part_bytes, load_id, loaded_at) VALUES {values}")


COPY_PARQUET_OPTIONS = ("FROM", "MANIFEST")
"""The COPY parameters ferry's Parquet COPY uses, besides its credentials (IAM_ROLE, or
ACCESS_KEY_ID / SECRET_ACCESS_KEY [/ SESSION_TOKEN]); FORMAT AS PARQUET names the format."""


def copy_parquet(into: str, manifest_url: str, credentials: str, dialect: Dialect = REDSHIFT) -> str:
    """Redshift COPY of a manifest's Parquet parts (columns matched by position) into the
    table `into` (an SQL reference, already quoted); only parameters the dialect's columnar
    COPY takes."""
    used = set(COPY_PARQUET_OPTIONS) | {w for w in re.findall(r"\b([A-Z_]+) '", credentials)} | (
        {"IAM_ROLE"} if credentials.startswith("IAM_ROLE") else set())
    refused = sorted(used - dialect.caps.columnar_copy_options)
    if refused:
        raise ValueError(f"COPY of Parquet does not take {', '.join(refused)}")
    return (f"COPY {into} FROM '{manifest_url}' {credentials}"
            " FORMAT AS PARQUET MANIFEST")


# Where Redshift keeps why a COPY failed, most precise first, each asked by the query number
# of the error's detail: STL_LOAD_ERRORS ("colname", "err_reason"; provisioned clusters,
# https://docs.aws.amazon.com/redshift/latest/dg/r_STL_LOAD_ERRORS.html), SYS_LOAD_ERROR_DETAIL
# ("column_name", "error_message"; also Serverless, which has only the SYS_ views,
# https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_ERROR_DETAIL.html) and SVL_S3LOG
# (Spectrum's messages for a Parquet COPY, https://docs.aws.amazon.com/redshift/latest/dg/r_SVL_S3LOG.html).
LOAD_ERROR_DETAIL = (
    ("stl_load_errors", "SELECT TRIM(colname), TRIM(err_reason) FROM stl_load_errors WHERE query = %s"
                        " ORDER BY starttime DESC LIMIT 1"),
    ("sys_load_error_detail", "SELECT TRIM(column_name), TRIM(error_message) FROM sys_load_error_detail"
                              " WHERE query_id = %s ORDER BY start_time DESC LIMIT 1"),
    ("svl_s3log", "SELECT NULL, TRIM(message) FROM svl_s3log WHERE query = %s ORDER BY eventtime DESC LIMIT 1"),
)


def copy_csv_stdin(into: str, columns: Sequence[str]) -> str:
    """PostgreSQL COPY FROM STDIN of CSV rows into `into` (an SQL reference, already quoted)."""
    cols = ", ".join(quote_ident(c) for c in columns)
    return f"COPY {into} ({cols}) FROM STDIN (FORMAT csv)"
