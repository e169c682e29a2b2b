"""Every statement kind ferry sends to Redshift: golden text where the form matters, and
every one parsed by two Redshift grammars, sqlglot's and sqlfluff's (stricter: it refuses
forms Redshift has not, such as ALTER INTERLEAVED SORTKEY). The Redshift documentation each relies on
is cited beside it; what no page says is left to the live smoke test (make test-redshift).

- CREATE TABLE ... DISTSTYLE { AUTO | EVEN | KEY | ALL } DISTKEY (c) [COMPOUND | INTERLEAVED]
  SORTKEY (c, ...) | SORTKEY AUTO: CREATE TABLE,
  https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
- ALTER TABLE ... ALTER DISTSTYLE ALL|EVEN|AUTO | ALTER DISTSTYLE KEY DISTKEY c |
  ALTER [COMPOUND] SORTKEY (c, ...) | ALTER SORTKEY AUTO|NONE (no INTERLEAVED form):
  ALTER TABLE, https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html
- COPY ... FORMAT AS PARQUET MANIFEST with IAM_ROLE 'arn', IAM_ROLE default (unquoted: "IAM_ROLE
  { default | 'arn:aws:iam::<AWS account-id>:role/<role-name>' } ... Use the default keyword to
  have Amazon Redshift use the IAM role that is set as default and associated with the
  cluster", https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-authorization.html)
  or ACCESS_KEY_ID/SECRET_ACCESS_KEY:
  COPY, https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html and COPY from columnar
  data formats (positional, same column count).
- DELETE ... USING, INSERT ... SELECT, ROW_NUMBER() OVER: DELETE / INSERT / window functions
  pages of the SQL reference.
- Reconcile (test_reconcile_statements_on_redshift): the deletes staging table and its COPY as
  a load's (CREATE TABLE / COPY above); `DELETE FROM staging WHERE (k = v) OR ...` and
  `DELETE FROM target USING staging WHERE ...`: DELETE,
  https://docs.aws.amazon.com/redshift/latest/dg/r_DELETE.html ("DELETE [ FROM ] table_name
  [ { USING } table_name, ... ] [ WHERE condition ]"); the soft delete
  `UPDATE target SET c = CAST('...' AS TIMESTAMP) FROM staging WHERE ...`: UPDATE,
  https://docs.aws.amazon.com/redshift/latest/dg/r_UPDATE.html ("UPDATE table_name SET column
  = { expression | DEFAULT } [ FROM fromlist ] [ WHERE condition ]"; the SET column is not
  qualified with the table name, which that page calls invalid); CAST of a string literal to
  TIMESTAMP: CAST function, https://docs.aws.amazon.com/redshift/latest/dg/r_CAST_function.html;
  `ALTER TABLE ... ADD COLUMN "_ferry_deleted_at" TIMESTAMP`: ALTER TABLE (ADD [ COLUMN ]
  column_name column_type), https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html.
  The range checksums are verify's queries (below), with `"_ferry_deleted_at" IS NULL` added;
  keys mode on an integer key sums the key and MOD(k, p) products: MOD function,
  https://docs.aws.amazon.com/redshift/latest/dg/r_MOD.html, and SUM ("BIGINT for BIGINT,
  SMALLINT, and INTEGER arguments; NUMERIC for NUMERIC arguments", precision 38),
  https://docs.aws.amazon.com/redshift/latest/dg/r_SUM.html, so both are summed as
  DECIMAL(38,0) (a BIGINT sum of large keys would overflow).
  What no page proves and only the live test can: that rowcount of the DELETE/UPDATE through
  redshift_connector is the rows removed (ferry counts it for its report).
"""
from __future__ import annotations

import pytest
import sqlglot
from sqlfluff.core import FluffConfig, Linter

from common.reconcile import diff
from common.verify import rowhash
from common.config.design import RedshiftKeys, SortKeySpec, TableDesign
from common.verify.compare import Part, WarehouseSide
from common.model.types import map_column
from common.warehouse import sql
from common.warehouse.redshift import copy_credentials

COLS = [map_column("s.t", {"column_name": n, "data_type": d, "column_type": c, "is_nullable": "YES",
                           "numeric_precision": p, "numeric_scale": s, "character_maximum_length": L,
                           "datetime_precision": None})
        for n, d, c, p, s, L in [("id", "bigint", "bigint", 19, 0, None),
                                 ("Created At", "datetime", "datetime", None, None, None),
                                 ("shop", "int", "int", 10, 0, None),
                                 ("note", "varchar", "varchar(10)", None, None, 10),
                                 ("doc", "json", "json", None, None, None)]]
DEFAULTED = map_column("s.t", {"column_name": "status", "data_type": "varchar", "column_type": "varchar(8)",
                               "is_nullable": "NO", "character_maximum_length": 8, "column_default": "'new'"})


_SQLFLUFF = Linter(config=FluffConfig(overrides={"dialect": "redshift"}))


def _parses(statement: str, literal: str = "'x'") -> None:
    """Both grammars take the statement; parameters are bound by the driver, so a literal
    stands where each %s does."""
    text = statement.replace("%s", literal).replace("%%", "%")
    sqlglot.parse_one(text, read="redshift")
    problems = [v.desc() for v in _SQLFLUFF.parse_string(text).violations]
    assert not problems, f"sqlfluff (redshift) cannot parse {text!r}: {problems}"


def test_the_second_grammar_refuses_what_redshift_has_not() -> None:
    with pytest.raises(AssertionError, match="sqlfluff"):
        _parses('ALTER TABLE "a"."t" ALTER INTERLEAVED SORTKEY ("x")')
    with pytest.raises(AssertionError, match="sqlfluff"):
        _parses('ALTER TABLE "a"."t" ALTER COLUMN "x" TYPE VARCHAR(9) DROP DEFAULT')


@pytest.mark.parametrize("keys, clause", [
    (None, " DISTSTYLE AUTO"),  # and, without a SORTKEY clause, SORTKEY AUTO
    (RedshiftKeys(distkey="shop"), ' DISTSTYLE KEY DISTKEY ("shop")'),
    (RedshiftKeys(diststyle="even", sortkey="Created At"), ' DISTSTYLE EVEN COMPOUND SORTKEY ("created at")'),
    (RedshiftKeys(diststyle="ALL", sortkey=["shop", "id"]), ' DISTSTYLE ALL COMPOUND SORTKEY ("shop", "id")'),
    (RedshiftKeys(distkey="id", sortkey=SortKeySpec(type="interleaved", columns=["shop", "Created At"])),
     ' DISTSTYLE KEY DISTKEY ("id") INTERLEAVED SORTKEY ("shop", "created at")'),
])
def test_create_table_with_each_redshift_keys_form(keys: RedshiftKeys | None, clause: str) -> None:
    design = TableDesign.from_keys(keys)
    ddl = sql.create_table("ana", "orders", COLS, ["id"], sql.REDSHIFT, design)
    assert ddl.endswith(")" + clause)
    assert not sql.create_table("ana", "orders", COLS, ["id"], sql.POSTGRES, design).endswith(clause)
    _parses(ddl)


def test_json_is_staged_as_text_and_parsed_into_super() -> None:
    # VARBYTE, not VARCHAR(65535): JSON_PARSE takes "serialized JSON as a VARBYTE or VARCHAR
    # type" (JSON_PARSE.html), VARBYTE holds up to 16,777,216 bytes (r_VARBYTE_type.html) and
    # "You can load data from a file in CSV, Parquet, and ORC format" into it
    # (copy-usage-varbyte.html). That COPY fills it from a Parquet UTF8 string column no page
    # says: test_redshift_live.py::test_every_type_a_percent_name_and_a_granted_full_reload.
    assert sql.create_staging("st", COLS[4:], sql.REDSHIFT) == 'CREATE TEMP TABLE "st" ("doc" VARBYTE(16777216))'
    assert sql.create_staging("st", COLS[4:], sql.POSTGRES) == 'CREATE TEMP TABLE "st" ("doc" TEXT) ON COMMIT DROP'
    assert '"doc" SUPER' in sql.create_table("a", "t", COLS, ["id"], sql.REDSHIFT)
    assert sql.merge("a", "t", "st", ["id", "doc"], ["id"], exprs=sql.insert_exprs(COLS[::4], sql.REDSHIFT))[1] == \
        'INSERT INTO "a"."t" ("id", "doc") SELECT "id", JSON_PARSE("doc") FROM "st"'


def test_a_changed_design_is_altered_where_redshift_can() -> None:
    """The sort key first, then the distribution (ALTER TABLE, r_ALTER_TABLE.html): "You can
    alter an interleaved sort key to a compound sort key or no sort key. However, you can't
    alter a compound sort key to an interleaved sort key"; ALTER DISTKEY and ALTER DISTSTYLE
    ALL / EVEN are "not supported for tables with interleaved sort keys"; "When you alter a
    sort key to AUTO, Amazon Redshift preserves the existing sort key"."""
    old = TableDesign.from_keys(RedshiftKeys(distkey="id", sortkey=["id"]))
    stmts, refused = sql.redesign("ana", "orders", old, TableDesign.from_keys(
        RedshiftKeys(distkey="shop", sortkey=["shop", "Created At"])), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER COMPOUND SORTKEY ("shop", "created at")',
                     'ALTER TABLE "ana"."orders" ALTER DISTSTYLE KEY DISTKEY "shop"'] and not refused
    stmts, _ = sql.redesign("ana", "orders", old, TableDesign(), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER SORTKEY AUTO', 'ALTER TABLE "ana"."orders" ALTER DISTSTYLE AUTO']
    # compound -> interleaved: refused, naming it; the distribution still changes
    stmts, refused = sql.redesign("ana", "orders", old, TableDesign.from_keys(
        RedshiftKeys(sortkey=SortKeySpec(type="interleaved", columns=["shop"]))), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER DISTSTYLE AUTO']
    assert len(refused) == 1 and "cannot make a sort key interleaved" in refused[0]


def test_a_table_with_an_interleaved_sort_key_is_redesigned_sort_key_first() -> None:
    inter = TableDesign.from_keys(RedshiftKeys(distkey="id", sortkey=SortKeySpec(type="interleaved",
                                                                                  columns=["shop", "id"])))
    # interleaved -> compound, and a new dist key: allowed in that order
    stmts, refused = sql.redesign("ana", "orders", inter, TableDesign.from_keys(
        RedshiftKeys(distkey="shop", sortkey=["id"])), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER COMPOUND SORTKEY ("id")',
                     'ALTER TABLE "ana"."orders" ALTER DISTSTYLE KEY DISTKEY "shop"'] and not refused
    # interleaved -> none, then DISTSTYLE EVEN
    stmts, refused = sql.redesign("ana", "orders", inter, TableDesign(diststyle="EVEN", sort_type="none"), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER SORTKEY NONE', 'ALTER TABLE "ana"."orders" ALTER DISTSTYLE EVEN']
    assert not refused
    # interleaved kept (or AUTO, which keeps it): the distribution cannot change, said so;
    # DISTSTYLE AUTO is not among the forms refused there
    for sort in (TableDesign(sort_type="interleaved", sort_columns=("shop", "id")), TableDesign()):
        stmts, refused = sql.redesign("ana", "orders", inter, TableDesign(
            diststyle="KEY", distkey="shop", sort_type=sort.sort_type, sort_columns=sort.sort_columns), COLS)
        assert all("DISTKEY" not in s for s in stmts)
        assert len(refused) == 1 and "interleaved sort key" in refused[0] and "(shop)" in refused[0]
    stmts, refused = sql.redesign("ana", "orders", inter, TableDesign.from_keys(
        RedshiftKeys(sortkey=SortKeySpec(type="interleaved", columns=["shop", "id"]))), COLS)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER DISTSTYLE AUTO'] and not refused
    # the stand-in's rules (no such restriction) as data: the same change is made
    stmts, refused = sql.redesign("ana", "orders", inter, TableDesign.from_keys(
        RedshiftKeys(distkey="shop", sortkey=SortKeySpec(type="interleaved", columns=["shop", "id"]))), COLS,
        sql.POSTGRES.caps)
    assert stmts == ['ALTER TABLE "ana"."orders" ALTER DISTSTYLE KEY DISTKEY "shop"'] and not refused


def _every_redshift_statement() -> list[str]:
    design = TableDesign.from_keys(RedshiftKeys(distkey="shop", sortkey=["id"]))
    names = [c.name for c in COLS]
    role = copy_credentials("arn:aws:iam::123456789012:role/copy", None, None)
    keys = copy_credentials(None, "AKIAEXAMPLE", "secret/with+chars")
    stmts = [
        sql.create_schema("ana"), sql.create_ledger("ana", "orders__ferry_ledger"),
        sql.create_table("ana", "orders", COLS, ["id"], sql.REDSHIFT, design),
        sql.create_table("ana", "log", COLS, [], sql.REDSHIFT),
        sql.create_staging("orders__stage_abc123", COLS, sql.REDSHIFT),
        # (table tokens in S3 keys are [a-z0-9._=-] only: naming.s3_table_token)
        sql.copy_parquet('"orders__stage_abc123"', "s3://bucket/ferry/p/shop.order_lines-1a2b3c4d/manifests/m.json",
                         role),
        sql.copy_parquet('"orders__stage_abc123"', "s3://bucket/m.json", keys),
        sql.copy_parquet('"orders__stage_abc123"', "s3://bucket/m.json", copy_credentials("default", None, None)),
        # A first load copies straight into the target it just created (same COPY, r_COPY.html).
        sql.copy_parquet(sql.table_ref("ana", "orders"), "s3://bucket/m.json", role),
        sql.duplicate_key(sql.table_ref("ana", "orders"), ["id"], quoted=True),
        *sql.merge("ana", "orders", "orders__stage_abc123", names, ["id"], exprs=sql.insert_exprs(COLS, sql.REDSHIFT)),
        *sql.merge("ana", "orders", "orders__stage_abc123", names, ["id"], "created at",
                   sql.insert_exprs(COLS, sql.REDSHIFT)),
        *sql.append("ana", "log", "orders__stage_abc123", names),
        sql.drop_staging("orders__stage_abc123"),
        *sql.create_table_as_new("ana", "orders", "orders__ferry_new", COLS, ["id"], sql.REDSHIFT, design),
        *sql.carry_over("ana", "orders__ferry_new", "it's the orders", [("note", "free text")],
                        [("bi_reader", "SELECT", "user"), ("analysts", "SELECT", "group"),
                         ("reporting", "SELECT", "role"), ("public", "SELECT", "user")]),
        *sql.set_owner("ana", "orders", "etl_owner", "ferry"),
        *sql.delete_all_insert("ana", "orders", "orders__stage_abc123", names),
        *sql.swap("ana", "orders", "orders__ferry_new", "orders__ferry_old", True),
        *sql.add_column("ana", "orders", COLS[3], sql.REDSHIFT),
        *sql.add_column("ana", "orders", DEFAULTED, sql.REDSHIFT),
        sql.widen_column("ana", "orders", COLS[3], sql.REDSHIFT),
        *sql.rebuild_column("ana", "orders", COLS[3], "ferry_widen_0123456789ab", sql.REDSHIFT),
        sql.reencode_column("ana", "orders", "note"),
        sql.drop_constraint("ana", "orders", "orders_pkey"),
        sql.add_constraint("ana", "orders", "orders_pkey", "PRIMARY KEY", ["id", "shop"]),
        *sql.merge("ana", "orders", "orders__stage_abc123", names[:3], ["id"], "created at",
                   fill=sql.fill_defaults(COLS[:3] + [DEFAULTED], COLS[:3], sql.REDSHIFT)),
        *sql.append("ana", "log", "orders__stage_abc123", names[:3],
                    fill=sql.fill_defaults(COLS[:3] + [DEFAULTED], COLS[:3], sql.REDSHIFT)),
        *sql.redesign("ana", "orders", TableDesign(), design, COLS)[0],
        sql.ledger_loaded("ana", "orders__ferry_ledger", ["r1", "r2"]),
        sql.ledger_all("ana", "orders__ferry_ledger"),
        sql.ledger_insert("ana", "orders__ferry_ledger", 2),
        sql.duplicate_key("orders__stage_abc123", ["id", "shop"]),
    ]
    for query in (sql.schema_exists("ana"), sql.table_exists("ana", "orders"),
                  sql.target_column_types("ana", "orders"), sql.can_create_schema(),
                  sql.schema_privilege("ana", "CREATE"), sql.table_privilege("ana", "orders", "INSERT"),
                  sql.table_owner_and_comments("ana", "orders"), (sql.REDSHIFT.grants_query, []),
                  (sql.REDSHIFT.column_facts_query, []), sql.key_constraints("ana", "orders")):
        stmts.append(query[0])
    return stmts


def test_a_duplicate_key_is_looked_for_in_staging() -> None:
    """SELECT ... GROUP BY ... HAVING COUNT(*) > 1 LIMIT 1: the synopsis' GROUP BY, HAVING and
    LIMIT clauses, https://docs.aws.amazon.com/redshift/latest/dg/r_SELECT_synopsis.html, and
    "restricts the results returned to rows where a particular aggregate condition is true,
    such as count (*) > 1", https://docs.aws.amazon.com/redshift/latest/dg/c_Aggregate_Functions.html."""
    assert sql.duplicate_key("st", ["id", "shop"]) == \
        'SELECT "id", "shop", COUNT(*) FROM "st" GROUP BY "id", "shop" HAVING COUNT(*) > 1 LIMIT 1'
    # ... and in a target a first load copied straight into (no staging table)
    assert sql.duplicate_key('"ana"."orders"', ["id"], quoted=True) == \
        'SELECT "id", COUNT(*) FROM "ana"."orders" GROUP BY "id" HAVING COUNT(*) > 1 LIMIT 1'


def test_a_full_reload_carries_grants_comments_and_owner_over() -> None:
    """GRANT ... TO [GROUP | ROLE] name, COMMENT ON TABLE|COLUMN, ALTER TABLE ... OWNER TO: GRANT,
    https://docs.aws.amazon.com/redshift/latest/dg/r_GRANT.html; COMMENT,
    https://docs.aws.amazon.com/redshift/latest/dg/r_COMMENT.html; ALTER TABLE (OWNER TO). The
    owner last, after the final RENAME (ALTER TABLE's "Required privileges: Superuser, Users
    with the ALTER TABLE privilege, Table or schema owner": a loader that gave the table away
    may no longer rename it). The grants are read only where the loader sees them all
    (SVV_RELATION_PRIVILEGES: "Superusers can see all rows. Regular users who have the ACCESS
    SYSTEM TABLE permission can see all rows"), else the swap is refused."""
    stmts = sql.carry_over("ana", "t__ferry_new", "it's", [("Note", "x")],
                           [("bi", "select", "user"), ("analysts", "SELECT", "group"), ("PUBLIC", "SELECT", "user")])
    assert stmts == ['GRANT SELECT ON "ana"."t__ferry_new" TO "bi"',
                     'GRANT SELECT ON "ana"."t__ferry_new" TO GROUP "analysts"',
                     'GRANT SELECT ON "ana"."t__ferry_new" TO PUBLIC',
                     'COMMENT ON TABLE "ana"."t__ferry_new" IS \'it\'\'s\'',
                     'COMMENT ON COLUMN "ana"."t__ferry_new"."Note" IS \'x\'']
    assert sql.set_owner("ana", "t", "etl", "ferry") == ['ALTER TABLE "ana"."t" OWNER TO "etl"']
    assert sql.set_owner("ana", "t", "ferry", "ferry") == []  # the loader owns it: nothing
    assert "usesuper" in sql.REDSHIFT.sees_all_grants_query and "ACCESS SYSTEM TABLE" in sql.REDSHIFT.sees_all_grants_query
    _parses(sql.REDSHIFT.sees_all_grants_query)
    # DELETE, not TRUNCATE: "TRUNCATE commits the transaction in which it is run"
    # (https://docs.aws.amazon.com/redshift/latest/dg/r_TRUNCATE.html).
    assert sql.delete_all_insert("ana", "t", "st", ["id"]) == [
        'DELETE FROM "ana"."t"', 'INSERT INTO "ana"."t" ("id") SELECT "id" FROM "st"']


# `ferry verify`'s queries, each function in them allowed by its Redshift page:
# MD5 returns "a 32-character string that is a text representation of the hexadecimal value
# of a 128-bit checksum" (r_MD5.html); SUBSTRING(character_string, start_position,
# number_characters) (r_SUBSTRING.html; SUBSTR is not documented, so not used); STRTOL
# "converts a string expression of a number of the specified base to the equivalent integer
# value", BIGINT (r_STRTOL.html); SUM returns "BIGINT for BIGINT, SMALLINT, and INTEGER
# arguments" (r_SUM.html: so each summed slice is 28 bits, and a range's sum cannot overflow
# below 2^35 rows); TO_CHAR with the datetime format elements YYYY MM DD HH24 MI SS US
# (r_TO_CHAR.html, r_FORMAT_strings.html); TO_HEX "converts a number or binary value to a
# hexadecimal representation" (r_TO_HEX.html); LOG without a base "computes the base 10
# logarithm" (r_LOG.html), POWER, FLOOR, ABS (r_POWER.html, r_FLOOR.html, r_ABS.html); CAST
# "a date, timestamp, or numeric value to a ... variable-length character string"
# (c_Supported_data_types.html, r_CAST_function.html); || (r_concat_op.html), COALESCE
# (r_NVL_function.html), CASE (r_CASE_function.html), IS NULL on any type (r_Nulls.html).
# No page says how CAST(DECIMAL AS VARCHAR) writes the scale, that TO_HEX of a VARBYTE is
# lowercase (its example is), or that LOG/POWER/ROUND on DOUBLE PRECISION give MySQL's bits:
# test_redshift_live.py::test_verify_agrees_on_redshift is their proof.
VERIFY_COLS = COLS + [map_column("s.t", {"column_name": n, "data_type": d, "column_type": c, "is_nullable": "YES",
                                         "numeric_precision": p, "numeric_scale": s, "character_maximum_length": L,
                                         "datetime_precision": None})
                      for n, d, c, p, s, L in [("amount", "decimal", "decimal(12,2)", 12, 2, None),
                                               ("score", "double", "double", None, None, None),
                                               ("paid", "tinyint", "tinyint(1)", 3, 0, None),
                                               ("day", "date", "date", None, None, None),
                                               ("blob", "varbinary", "varbinary(8)", None, None, 8)]]


def _verify_side(key: list) -> WarehouseSide:
    return WarehouseSide(None, sql.REDSHIFT, "ana", "orders", VERIFY_COLS, key, ["id"], (100,))


def test_verify_canonical_text_of_each_kind_on_redshift() -> None:
    text = {c.name: rowhash.target_text(c, sql.REDSHIFT) for c in VERIFY_COLS}
    assert text["id"] == 'CAST("id" AS VARCHAR)' and text["amount"] == 'CAST("amount" AS VARCHAR)'
    assert text["created at"] == "TO_CHAR(\"created at\", 'YYYY-MM-DD HH24:MI:SS.US')"
    assert text["day"] == "TO_CHAR(\"day\", 'YYYY-MM-DD')"
    assert text["note"] == 'MD5("note")' and text["blob"] == 'MD5(TO_HEX("blob"))'
    assert text["paid"] == "CASE WHEN \"paid\" THEN '1' WHEN NOT \"paid\" THEN '0' END"
    assert text["doc"] == "CASE WHEN \"doc\" IS NULL THEN NULL ELSE 'json' END"
    assert "LOG(ABS(CAST(\"score\" AS DOUBLE PRECISION)))" in text["score"] and "ROUND(" in text["score"]
    side = _verify_side([VERIFY_COLS[0]])
    stmt, params = side.sums_sql(Part((10,), (20,)))
    assert stmt.startswith("SELECT COUNT(*), COALESCE(SUM(STRTOL(SUBSTRING(r.h, 1, 7), 16)), 0),"
                           " COALESCE(SUM(STRTOL(SUBSTRING(r.h, 8, 7), 16)), 0) FROM (SELECT MD5(")
    assert stmt.endswith(' FROM "ana"."orders" WHERE "id" <= %s AND "id" > %s AND "id" <= %s) r')
    assert params == [100, 10, 20]


def _verify_statements() -> list[str]:
    stmts = []
    for key in ([VERIFY_COLS[0]], [VERIFY_COLS[3]]):
        side = _verify_side(key)
        stmts += [side.sums_sql(Part((10,), (20,)))[0], side.sums_sql(Part(bucket="3a"))[0],
                  side.buckets_sql("")[0], side.buckets_sql("3")[0], side.rows_sql(Part(None, (5,)), 5000)[0]]
    return stmts


@pytest.mark.parametrize("statement", _verify_statements())
def test_every_verify_query_parses(statement: str) -> None:
    _parses(statement)


@pytest.mark.parametrize("statement", _every_redshift_statement())
def test_every_redshift_statement_parses(statement: str) -> None:
    _parses(statement)


RECONCILE_STATEMENTS = [
    sql.create_staging("orders__stage_abc12d", COLS[:1], sql.REDSHIFT),
    sql.unstage_keys("orders__stage_abc12d", ["id"], 2),
    sql.delete_keys("ana", "orders", "orders__stage_abc12d", ["id"]),
    sql.soft_delete_keys("ana", "orders", "orders__stage_abc12d", ["id", "shop"], "2026-12-03 06:00:00.123456"),
    sql.add_soft_delete_column("ana", "orders"),
]


def test_reconcile_statements_on_redshift() -> None:
    """The golden text of what a reconcile's load sends (citations in the module docstring)."""
    assert RECONCILE_STATEMENTS == [
        'CREATE TEMP TABLE "orders__stage_abc12d" ("id" BIGINT)',
        'DELETE FROM "orders__stage_abc12d" WHERE ("id" = %s) OR ("id" = %s)',
        'DELETE FROM "ana"."orders" USING "orders__stage_abc12d" WHERE "ana"."orders"."id" = "orders__stage_abc12d"."id"',
        'UPDATE "ana"."orders" SET "_ferry_deleted_at" = CAST(\'2026-12-03 06:00:00.123456\' AS TIMESTAMP) FROM '
        '"orders__stage_abc12d" WHERE "ana"."orders"."id" = "orders__stage_abc12d"."id" AND "ana"."orders"."shop" = '
        '"orders__stage_abc12d"."shop" AND "ana"."orders"."_ferry_deleted_at" IS NULL',
        'ALTER TABLE "ana"."orders" ADD COLUMN "_ferry_deleted_at" TIMESTAMP',
    ]
    for statement in RECONCILE_STATEMENTS:
        _parses(statement, "1")
    side = WarehouseSide(None, sql.REDSHIFT, "ana", "orders", VERIFY_COLS, [VERIFY_COLS[0]], [], None, live_only=True)
    keys = WarehouseSide(None, sql.REDSHIFT, "ana", "orders", VERIFY_COLS[:1], VERIFY_COLS[:1], [], None)
    # Keys mode on an integer key (MOD: r_MOD.html; SUM of a BIGINT is a BIGINT, of a NUMERIC
    # a NUMERIC of precision 38: r_SUM.html, so the sums are of DECIMAL(38,0)).
    assert diff._int_sums_sql(keys, Part((10,), (20,)))[0] == (
        'SELECT COUNT(*), COALESCE(SUM(CAST("id" AS DECIMAL(38,0))), 0), COALESCE(SUM(CAST(MOD("id", 1000003) *'
        ' MOD("id", 999983) AS DECIMAL(38,0))), 0) FROM "ana"."orders" WHERE "id" > %s AND "id" <= %s')
    for q in (side.sums_sql(Part((10,), (20,)))[0], side.rows_sql(Part((10,), (20,)), None)[0],
              side.buckets_sql("3")[0], diff._int_keys_sql(keys, Part(None, (20,)))[0]):
        assert '"_ferry_deleted_at" IS NULL' in q or "MOD" not in q and q.startswith('SELECT "id"')
        _parses(q)


def test_redshift_load_failures_are_refusals_and_lost_connections_are_not() -> None:
    """A COPY refused for its data "directs you to consult the STL_LOAD_ERRORS table"
    (system-tables-for-troubleshooting-data-loads.html): that range waits, the rest loads. The
    exact text is on no page: test_redshift_live.py::test_a_refused_range_waits_on_redshift."""
    import psycopg2

    from common.errors import RefusedError, refusal

    refused = refusal(psycopg2.InternalError("Load into table 'notes' failed.  Check 'stl_load_errors' system "
                                             "table for details.\n"))
    assert isinstance(refused, RefusedError) and "Load into table 'notes' failed" in str(refused)
    assert refusal(psycopg2.OperationalError("server closed the connection unexpectedly")) is None
    assert refusal(psycopg2.ProgrammingError('permission denied for relation notes')) is None


def test_a_default_has_the_columns_type() -> None:
    """ALTER TABLE ADD COLUMN ... DEFAULT: "The data type of default_expr must match the data
    type of the column" (r_ALTER_TABLE.html); every source default is CAST to the column's
    type (CAST function, r_CAST_function.html), JSON text parsed (JSON_PARSE.html)."""
    def col(name: str, dtype: str, ctype: str, default: str, **info: object) -> object:
        return map_column("s.t", {"column_name": name, "data_type": dtype, "column_type": ctype, "is_nullable": "YES",
                                  "column_default": default, **info})
    cols = [col("n", "int", "int", "7", numeric_precision=10, numeric_scale=0),
            col("price", "decimal", "decimal(12,2)", "1.5", numeric_precision=12, numeric_scale=2),
            col("paid", "tinyint", "tinyint(1)", "0", numeric_precision=3, numeric_scale=0),
            col("at", "datetime", "datetime", "'2024-01-02 03:04:05'", datetime_precision=0),
            col("day", "date", "date", "'2024-01-02'"),
            col("status", "varchar", "varchar(8)", "'it''s'", character_maximum_length=8),
            col("doc", "json", "json", "'{}'")]
    got = [sql.typed_default(c, sql.REDSHIFT) for c in cols]
    assert got == ["CAST(7 AS INTEGER)", "CAST(1.5 AS DECIMAL(12,2))", "CAST(FALSE AS BOOLEAN)",
                   "CAST('2024-01-02 03:04:05' AS TIMESTAMP)", "CAST('2024-01-02' AS DATE)",
                   "CAST('it''s' AS VARCHAR(32))", "JSON_PARSE('{}')"]
    for c in cols:
        for stmt in sql.add_column("ana", "orders", c, sql.REDSHIFT):
            _parses(stmt)


def test_a_wide_binary_is_compared_by_length_and_its_ends_on_redshift() -> None:
    """TO_HEX "converts a number or binary value to a hexadecimal representation" as a VARCHAR
    (r_TO_HEX.html; VARCHAR holds at most 65,535 bytes, r_Character_types.html): a VARBYTE
    over 32,767 bytes is cut with SUBSTRING and measured with OCTET_LENGTH, both of which take
    VARBYTE (varbyte-functions.html, r_OCTET_LENGTH.html: "A CHAR string, a VARCHAR string, a
    VARBYTE expression"); GREATEST (r_GREATEST_LEAST.html)."""
    wide = map_column("s.t", {"column_name": "body", "data_type": "mediumblob", "column_type": "mediumblob",
                              "is_nullable": "YES"})
    text = rowhash.target_text(wide, sql.REDSHIFT)
    assert text == ('CAST(OCTET_LENGTH("body") AS VARCHAR) || \':\' || MD5(TO_HEX(SUBSTRING("body", 1, 32767)))'
                    ' || MD5(TO_HEX(SUBSTRING("body", GREATEST(OCTET_LENGTH("body") - 32766, 1), 32767)))')
    _parses(f"SELECT MD5({rowhash.target_row_text([COLS[0], wide], sql.REDSHIFT)}) FROM t")


SPECTRUM_15007 = ("Spectrum Scan Error\nDETAIL:  \n  -----------------------------------------------\n  error:  Spectrum Scan "
                  "Error\n  code:      15007\n  context:   File 'https://s3.us-east-1.amazonaws.com/b/ferry/p/t/run=r/"
                  "chunk=0/part-0.parquet' has an incompatible Parquet s\n  query:     146667179\n  location:  "
                  "dory_util.cpp:1777\n")


def test_an_incompatible_parquet_schema_fails_the_run_and_is_not_a_refusal() -> None:
    """A Parquet COPY's errors come back as "Spectrum Scan Error" (the form above is Redshift's
    own, cut as the client shows it); code 15007, an incompatible Parquet schema, means the
    parts' types do not fit the staging table, which ferry makes from the same type map: a bug
    to fail on at once, not a range to wait. "Error messages are sent to the SQL client. Some
    errors are logged in STL_LOAD_ERRORS and STL_ERROR" (copy-usage_notes-copy-from-columnar.html)."""
    import psycopg2

    from common.errors import parquet_schema_mismatch, query_id, refusal

    exc = psycopg2.errors.InternalError_(SPECTRUM_15007)
    assert refusal(exc) is None
    mismatch = parquet_schema_mismatch(exc)
    assert mismatch is not None and "incompatible Parquet s" in mismatch and "\n" not in mismatch
    assert query_id(exc) == 146667179
    # Another Spectrum scan error (a value) is still the data's: that range waits.
    other = psycopg2.errors.InternalError_(SPECTRUM_15007.replace("15007", "15001").replace(
        "has an incompatible Parquet s", "invalid value"))
    assert parquet_schema_mismatch(other) is None and refusal(other) is not None
    assert query_id(psycopg2.OperationalError("server closed the connection")) is None


def test_a_refusal_is_detailed_from_the_load_error_tables() -> None:
    """The refusal names the column and reason from STL_LOAD_ERRORS (colname, err_reason,
    r_STL_LOAD_ERRORS.html), else SYS_LOAD_ERROR_DETAIL (column_name, error_message; the only
    one on Serverless, SYS_LOAD_ERROR_DETAIL.html), else SVL_S3LOG (message, r_SVL_S3LOG.html),
    each asked by the query number of the error. That these rows exist for a failed Parquet
    COPY, and carry those ids, no page says: only the live smoke test
    (test_a_refused_range_waits_on_redshift) can show it."""
    from common.warehouse.redshift import load_error_text

    assert [v for v, _ in sql.LOAD_ERROR_DETAIL] == ["stl_load_errors", "sys_load_error_detail", "svl_s3log"]
    for _, statement in sql.LOAD_ERROR_DETAIL:
        assert statement.count("%s") == 1
        _parses(statement, "146667179")
    assert load_error_text("stl_load_errors", "note", "Missing data for not-null field ") == \
        "column note: Missing data for not-null field (stl_load_errors)"
    assert load_error_text("svl_s3log", None, "S3 query failed") == "S3 query failed (svl_s3log)"


def test_geometry_is_staged_as_ewkb_and_made_geometry() -> None:
    """GEOMETRY (c_Supported_data_types.html; "The maximum size of a GEOMETRY object is
    1,048,447 bytes", r_ALTER_TABLE.html): the parts hold EWKB, staged as VARBYTE(1048447) and
    turned into GEOMETRY by ST_GeomFromEWKB, which takes "A value of data type VARCHAR or
    VARBYTE" (ST_GeomFromEWKB-function.html); verify reads it back with ST_AsEWKB, which
    returns VARBYTE (ST_AsEWKB-function.html). That a Parquet BYTE_ARRAY fills the VARBYTE
    staging column, and that ST_AsEWKB writes back the very bytes given (SRID flag, little
    endian) no page says: only the live smoke test can."""
    geo = map_column("s.t", {"column_name": "where", "data_type": "point", "column_type": "point",
                             "is_nullable": "YES"})
    assert sql.create_staging("st", [COLS[0], geo], sql.REDSHIFT) == \
        'CREATE TEMP TABLE "st" ("id" BIGINT, "where" VARBYTE(1048447))'
    assert '"where" GEOMETRY' in sql.create_table("a", "t", [COLS[0], geo], ["id"], sql.REDSHIFT)
    assert '"where" BYTEA' in sql.create_table("a", "t", [COLS[0], geo], ["id"], sql.POSTGRES)
    assert sql.insert_exprs([COLS[0], geo], sql.REDSHIFT) == ['"id"', 'ST_GeomFromEWKB("where")']
    assert sql.insert_exprs([COLS[0], geo], sql.POSTGRES) == ['"id"', '"where"']
    text = rowhash.target_text(geo, sql.REDSHIFT)
    assert text.startswith('CAST(OCTET_LENGTH(ST_AsEWKB("where")) AS VARCHAR)')
    for stmt in (sql.create_staging("st", [COLS[0], geo], sql.REDSHIFT),
                 sql.create_table("a", "t", [COLS[0], geo], ["id"], sql.REDSHIFT),
                 *sql.merge("a", "t", "st", ["id", "where"], ["id"], exprs=sql.insert_exprs([COLS[0], geo], sql.REDSHIFT)),
                 f"SELECT MD5({rowhash.target_row_text([COLS[0], geo], sql.REDSHIFT)}) FROM t"):
        _parses(stmt)


def test_redshifts_limits_and_columnar_copy_options_are_data() -> None:
    """The limits the type map and the names keep to are the dialect's (REDSHIFT.caps, each
    cited where it is set), and the Parquet COPY uses only parameters "COPY from columnar
    data formats" lists; a warehouse without that COPY refuses to build one."""
    from common.model import naming, types

    caps = sql.REDSHIFT.caps
    assert (caps.max_identifier_bytes, caps.max_varchar_bytes, caps.max_varbyte_bytes, caps.max_json_bytes,
            caps.max_geometry_bytes) == (127, 65_535, 16_777_216, 16_000_000, 1_048_447)
    assert naming.MAX_IDENTIFIER_BYTES == caps.max_identifier_bytes
    assert types.MAX_VARCHAR == caps.max_varchar_bytes and types.MAX_VARBYTE == caps.max_varbyte_bytes
    assert types.JSON_STAGING_BYTES == caps.max_json_bytes and types.MAX_GEOMETRY == caps.max_geometry_bytes
    longest = map_column("s.t", {"column_name": "x" * 300, "data_type": "longblob", "column_type": "longblob",
                                 "is_nullable": "YES"})
    assert len(longest.name.encode()) <= caps.max_identifier_bytes and longest.max_bytes <= caps.max_varbyte_bytes
    assert set(sql.COPY_PARQUET_OPTIONS) | {"IAM_ROLE", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"} \
        <= caps.columnar_copy_options
    for creds in ("IAM_ROLE default", "IAM_ROLE 'arn:aws:iam::1:role/r'",
                  "ACCESS_KEY_ID 'a' SECRET_ACCESS_KEY 'b' SESSION_TOKEN 'c'"):
        _parses(sql.copy_parquet('"st"', "s3://b/m.json", creds))
        with pytest.raises(ValueError, match="COPY of Parquet does not take"):
            sql.copy_parquet('"st"', "s3://b/m.json", creds, sql.POSTGRES)
