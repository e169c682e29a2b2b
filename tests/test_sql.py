"""Golden tests of the SQL ferry generates, for both warehouse dialects."""
from __future__ import annotations

from common.model.types import map_column
from common.warehouse import sql
from common.warehouse.redshift import copy_credentials

COLS = [map_column("s.t", {"column_name": n, "data_type": d, "column_type": c, "is_nullable": "YES",
                           "numeric_precision": p, "numeric_scale": s, "character_maximum_length": L,
                           "datetime_precision": None})
        for n, d, c, p, s, L in [
            ("ID", "bigint", "bigint unsigned", 20, 0, None),
            ("Order", "varchar", "varchar(10)", None, None, 10),
            ("blob", "blob", "blob", None, None, 65535),
            ("amount", "decimal", "decimal(12,2)", 12, 2, None)]]


def test_create_table_redshift() -> None:
    """No DEFAULT on Redshift: ALTER COLUMN TYPE "can't alter columns with default values"
    (r_ALTER_TABLE.html) and Redshift has no ALTER COLUMN ... DROP DEFAULT, so a declared
    default would stop the column ever being widened in place. The PRIMARY KEY stays:
    "primary keys and foreign keys are used as planning hints and they should be declared if
    your ETL process ... enforces their integrity" (t_Defining_constraints.html; the merge
    does); widen.plan drops and declares it again around a widening of a key column."""
    defaulted = COLS[1].__class__(**{**COLS[1].__dict__, "default": "'n/a'"})
    assert sql.create_table("ana", "orders", [COLS[0], defaulted, *COLS[2:]], ["id"], sql.REDSHIFT) == (
        'CREATE TABLE IF NOT EXISTS "ana"."orders" (\n'
        '  "id" DECIMAL(20,0) NOT NULL,\n'
        '  "order" VARCHAR(40),\n'
        '  "blob" VARBYTE(65535),\n'
        '  "amount" DECIMAL(12,2),\n'
        '  PRIMARY KEY ("id")\n)')
    # PostgreSQL widens such columns: the key is declared (and enforced), the default too,
    # typed as the column is.
    ddl = sql.create_table("ana", "orders", [COLS[0], defaulted, *COLS[2:]], ["id"], sql.POSTGRES)
    assert '"order" VARCHAR(40) DEFAULT CAST(\'n/a\' AS VARCHAR(40)),' in ddl and 'PRIMARY KEY ("id")' in ddl


def test_create_table_postgres_swaps_type_names() -> None:
    ddl = sql.create_table("ana", "orders", COLS, ["id"], sql.POSTGRES)
    assert '"blob" BYTEA,' in ddl and '"amount" DECIMAL(12,2)' in ddl


def test_staging_and_merge() -> None:
    # Staging holds exactly the parts' columns in Parquet order: COPY ... FORMAT AS PARQUET
    # matches columns by position and the counts must agree (Redshift, "COPY from columnar
    # data formats", https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html).
    assert sql.create_staging("orders__stage_abc", COLS[:2], sql.REDSHIFT) == \
        'CREATE TEMP TABLE "orders__stage_abc" ("id" DECIMAL(20,0), "order" VARCHAR(40))'
    assert sql.create_staging("st", COLS, sql.POSTGRES) == (
        'CREATE TEMP TABLE "st" ("id" DECIMAL(20,0), "order" VARCHAR(40), "blob" BYTEA, '
        '"amount" DECIMAL(12,2)) ON COMMIT DROP')
    assert sql.merge("ana", "fa", "st", ["actor_id", "film_id", "x"], ["actor_id", "film_id"]) == [
        'DELETE FROM "ana"."fa" USING "st" WHERE "ana"."fa"."actor_id" = "st"."actor_id"'
        ' AND "ana"."fa"."film_id" = "st"."film_id"',
        'INSERT INTO "ana"."fa" ("actor_id", "film_id", "x") SELECT "actor_id", "film_id", "x" FROM "st"']


def test_schema_change_statements() -> None:
    """Redshift, ALTER TABLE (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html):
    - "You can add only one column in each ALTER TABLE statement": one ADD COLUMN a statement.
    - ADD [ COLUMN ] column_name column_type: with no DEFAULT on Redshift (a column with a
      default can never be widened in place: "You can't alter columns with default values"),
      so the rows already copied get the source's default from an UPDATE in the same
      transaction (UPDATE table_name SET column = expression, r_UPDATE.html). That ADD
      COLUMN runs inside a transaction block no page forbids (it says so of ALTER COLUMN TYPE
      and of external tables only): the live smoke test proves it.
    - The default is CAST to the column's type: "The data type of default_expr must match
      the data type of the column" (CAST, r_CAST_function.html).
    - ALTER COLUMN column_name TYPE updated_varchar_data_type_size: VARCHAR size only, and
      "You can't alter columns within a transaction block (BEGIN ... END)": ferry runs every
      ALTER COLUMN TYPE on its own autocommit connection before the load's transaction.
      What ALTER refuses (defaults, keys, encodings) is planned by common/warehouse/widen.py
      (tests/test_widen.py).
    - Integer and DECIMAL widening: not offered by ALTER COLUMN TYPE; REDSHIFT.caps refuses it."""
    added = COLS[1].__class__(**{**COLS[1].__dict__, "default": "'n/a'"})
    assert sql.add_column("ana", "orders", added, sql.REDSHIFT) == [
        'ALTER TABLE "ana"."orders" ADD COLUMN "order" VARCHAR(40)',
        'UPDATE "ana"."orders" SET "order" = CAST(\'n/a\' AS VARCHAR(40))']
    assert sql.add_column("ana", "orders", added, sql.POSTGRES) == [
        'ALTER TABLE "ana"."orders" ADD COLUMN "order" VARCHAR(40) DEFAULT CAST(\'n/a\' AS VARCHAR(40))']
    assert sql.add_column("ana", "orders", COLS[2], sql.POSTGRES) == ['ALTER TABLE "ana"."orders" ADD COLUMN "blob" BYTEA']
    assert sql.add_column("ana", "orders", COLS[2], sql.REDSHIFT) == [
        'ALTER TABLE "ana"."orders" ADD COLUMN "blob" VARBYTE(65535)']
    assert sql.widen_column("ana", "orders", COLS[1], sql.REDSHIFT) == \
        'ALTER TABLE "ana"."orders" ALTER COLUMN "order" TYPE VARCHAR(40)'
    assert not sql.REDSHIFT.caps.widen_numbers and sql.POSTGRES.caps.widen_numbers
    assert sql.generic_type("character varying(40)") == "VARCHAR(40)"
    assert sql.generic_type("numeric(12,2)") == "DECIMAL(12,2)"
    assert sql.generic_type("bigint") == "BIGINT" and sql.generic_type("bytea") is None


def test_copy_parquet_with_role_or_keys() -> None:
    role = copy_credentials("arn:aws:iam::123:role/r", None, None)
    assert sql.copy_parquet('"st"', "s3://b/m.json", role) == \
        "COPY \"st\" FROM 's3://b/m.json' IAM_ROLE 'arn:aws:iam::123:role/r' FORMAT AS PARQUET MANIFEST"
    # The cluster's default role is a keyword (copy-parameters-authorization.html), not a quoted ARN.
    assert copy_credentials("default", None, None) == "IAM_ROLE default"
    assert copy_credentials("DEFAULT", "AK", "SK") == "IAM_ROLE default"
    keys = copy_credentials(None, "AK", "SK")
    assert keys == "ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'SK'"


def test_ledger_sql() -> None:
    assert sql.ledger_loaded("ana", "orders__ferry_ledger", ["r1", "r2"]) == (
        'SELECT part_key FROM "ana"."orders__ferry_ledger" WHERE pipeline = %s AND source_table = %s'
        " AND run_id IN (%s, %s)")
    assert sql.ledger_insert("ana", "l", 2).count("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)") == 2
