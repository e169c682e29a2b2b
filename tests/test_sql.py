"""Golden tests of the SQL ferry generates, for both warehouse dialects."""
from __future__ import annotations

from common.types import map_column
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
    assert sql.create_table("ana", "orders", COLS, ["id"], sql.REDSHIFT) == (
        'CREATE TABLE IF NOT EXISTS "ana"."orders" (\n'
        '  "id" DECIMAL(20,0) NOT NULL,\n'
        '  "order" VARCHAR(40),\n'
        '  "blob" VARBYTE(65535),\n'
        '  "amount" DECIMAL(12,2),\n'
        '  PRIMARY KEY ("id")\n)')


def test_create_table_postgres_swaps_type_names() -> None:
    ddl = sql.create_table("ana", "orders", COLS, ["id"], sql.POSTGRES)
    assert '"blob" BYTEA,' in ddl and '"amount" DECIMAL(12,2)' in ddl


def test_staging_and_merge() -> None:
    assert sql.create_staging("orders__stage_abc", "ana", "orders", sql.REDSHIFT) == \
        'CREATE TEMP TABLE "orders__stage_abc" (LIKE "ana"."orders")'
    assert sql.create_staging("st", "ana", "orders", sql.POSTGRES).endswith(" ON COMMIT DROP")
    assert sql.merge("ana", "fa", "st", ["actor_id", "film_id", "x"], ["actor_id", "film_id"]) == [
        'DELETE FROM "ana"."fa" USING "st" WHERE "ana"."fa"."actor_id" = "st"."actor_id"'
        ' AND "ana"."fa"."film_id" = "st"."film_id"',
        'INSERT INTO "ana"."fa" ("actor_id", "film_id", "x") SELECT "actor_id", "film_id", "x" FROM "st"']
    assert sql.clear_staging("st") == 'DELETE FROM "st"'


def test_copy_parquet_with_role_or_keys() -> None:
    role = copy_credentials("arn:aws:iam::123:role/r", None, None)
    assert sql.copy_parquet('"st"', "s3://b/m.json", role) == \
        "COPY \"st\" FROM 's3://b/m.json' IAM_ROLE 'arn:aws:iam::123:role/r' FORMAT AS PARQUET MANIFEST"
    keys = copy_credentials(None, "AK", "SK")
    assert keys == "ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'SK'"


def test_ledger_sql() -> None:
    assert sql.ledger_loaded("ana", "orders__ferry_ledger", ["r1", "r2"]) == (
        'SELECT part_key FROM "ana"."orders__ferry_ledger" WHERE pipeline = %s AND source_table = %s'
        " AND run_id IN (%s, %s)")
    assert sql.ledger_insert("ana", "l", 2).count("(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)") == 2
