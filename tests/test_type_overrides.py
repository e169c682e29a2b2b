"""`types:` per column: the target type a user chooses instead of the type map's, accepted
where every value stays exact (or `lossy: true` says otherwise), refused naming the column and
both types; synced through both readers on the real services and compared value by value."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.conftest import Pipe

TYPES = {"big": "VARCHAR", "doc": "SUPER", "flag": "BOOLEAN", "qty": "BIGINT", "ratio": "DOUBLE PRECISION",
         "day": "TIMESTAMP", "price": {"type": "DOUBLE PRECISION", "lossy": True}, "code": "DECIMAL(12,0)",
         "amount": "DECIMAL(14,4)", "bit1": "BOOLEAN", "born": "VARCHAR"}
BIG = "12345678901234567890123456789012345.123456789012345678901234567890"


def _seed(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE items (id INT NOT NULL PRIMARY KEY, big DECIMAL(65,30), doc TEXT, flag TINYINT,"
                 " qty SMALLINT, ratio FLOAT, day DATE, price DECIMAL(12,2), code INT UNSIGNED,"
                 " amount DECIMAL(10,2), bit1 BIT(1), born DATETIME(3))")
    pipe.mysql().cursor().executemany(
        "INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(1, BIG, '{"a": [1, 2, {"b": null}], "é": "x"}', 1, 32767, 0.1, "2024-02-29", "1234567890.12", 4294967295,
          "-99999999.99", 1, "2024-01-02 03:04:05.678"),
         (2, "-" + BIG, "[]", 0, -32768, -3.4e38, "1000-01-01", "0.01", 0, "0.00", 0, "0000-00-00 00:00:00"),
         (3, None, None, None, None, None, None, None, None, None, None, None)])


@pytest.mark.parametrize("reader", ["duckdb", "connector"])
def test_exact_and_lossy_overrides_land_as_chosen(pipe: Pipe, workers: list, reader: str) -> None:
    _seed(pipe)
    pipe.write({"items": {"types": TYPES, "reader": reader}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    types = dict(pipe.pg().execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = 'items'", (pipe.db,)).fetchall())
    assert types == {"id": "integer", "big": "character varying", "doc": "jsonb", "flag": "boolean",
                     "qty": "bigint", "ratio": "double precision", "day": "timestamp without time zone",
                     "price": "double precision", "code": "numeric", "amount": "numeric", "bit1": "boolean",
                     "born": "character varying"}
    rows = pipe.pg().execute(f'SELECT big, doc::text, flag, qty, ratio, day::text, price, code, amount, bit1, born'
                             f' FROM "{pipe.db}".items ORDER BY id').fetchall()
    src = pipe.mysql().cursor()
    src.execute("SELECT CAST(big AS CHAR), CAST(ratio + 0E0 AS CHAR), CAST(born AS CHAR) FROM items ORDER BY id")
    big_text, ratio_text, born_text = zip(*src.fetchall())
    assert [r[0] for r in rows] == list(big_text) and rows[0][0] == BIG  # every digit of DECIMAL(65,30)
    assert json.loads(rows[0][1]) == {"a": [1, 2, {"b": None}], "é": "x"} and rows[1][1] == "[]"
    assert [r[2] for r in rows] == [True, False, None] and [r[9] for r in rows] == [True, False, None]
    assert [r[3] for r in rows] == [32767, -32768, None]
    assert rows[0][4] == float(ratio_text[0]) and rows[1][4] == float(ratio_text[1])  # FLOAT's value, widened
    assert [r[5] for r in rows] == ["2024-02-29 00:00:00", "1000-01-01 00:00:00", None]
    assert rows[0][6] == 1234567890.12 and rows[1][6] == 0.01  # lossy: the nearest double
    assert [r[7] for r in rows] == [Decimal(4294967295), Decimal(0), None]
    assert [r[8] for r in rows] == [Decimal("-99999999.9900"), Decimal("0.0000"), None]
    # A DATETIME copied as text keeps the server's own text, zero date included.
    assert [r[10] for r in rows] == list(born_text) and rows[1][10] == "0000-00-00 00:00:00.000"
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("items"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("column, override, says", [
    ("qty", "TINYINT", "not a type ferry can load into"),
    ("code", "INTEGER", "INTEGER cannot hold every int(10) unsigned value"),
    ("price", "DOUBLE PRECISION", "rounds decimals"),
    ("amount", "DECIMAL(10,3)", "DECIMAL(10,3) cannot hold every DECIMAL(10,2) value"),
    ("doc", "BOOLEAN", "only TINYINT and BIT(1) become BOOLEAN"),
    ("flag", "SUPER", "only text can be copied as SUPER"),
    ("blob", "VARCHAR", "bytes have no text"),
    ("born", "DATE", "DATE drops the time of day"),
    ("doc", "VARCHAR(10)", "VARCHAR(10) is shorter than the 65535 bytes"),
    ("id", "BIGINT", "a key or cursor column keeps the type map's type"),
    ("nosuch", "VARCHAR", "types names column 'nosuch'"),
])
def test_an_override_that_loses_values_is_refused_naming_column_and_both_types(pipe: Pipe, column: str,
                                                                               override: str, says: str) -> None:
    _seed(pipe)
    pipe.execute("ALTER TABLE items ADD COLUMN `blob` BLOB")
    pipe.write({"items": {"types": {column: override}}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert says in out.stdout and pipe.table("items") in out.stdout and f"{pipe.name}.yml" in out.stdout, out.stdout
    if column != "nosuch":
        assert f"column {column}" in out.stdout and override.split("(")[0] in out.stdout
    assert pipe.sync().code == 2 and pipe.state("items").schema() is None


def test_text_copied_as_super_must_be_json(pipe: Pipe, workers: list) -> None:
    _seed(pipe)
    pipe.execute("INSERT INTO items (id, doc) VALUES (4, 'not json {')")
    pipe.write({"items": {"types": {"doc": "SUPER", "big": "VARCHAR"}}})
    result = pipe.sync("--wait")
    assert result.code != 0
    text = result.stderr + json.dumps(result.report)
    assert "column doc" in text and "not JSON" in text and "not json {" in text, text


def test_an_override_added_later_that_the_target_cannot_follow_stops_the_run_naming_both_types(
        pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, doc TEXT, n SMALLINT)",
                 "INSERT INTO notes VALUES (1, '{}', 5)")
    pipe.write({"notes": {}})
    assert pipe.sync("--wait").code == 0
    pipe.write({"notes": {"types": {"n": "BIGINT"}}})  # a widening: made in place
    pipe.execute("INSERT INTO notes VALUES (2, '[]', 6)")
    assert pipe.sync("--wait").code == 0
    assert pipe.pg().execute("SELECT data_type FROM information_schema.columns WHERE table_schema = %s"
                             " AND table_name = 'notes' AND column_name = 'n'", (pipe.db,)).fetchone()[0] == "bigint"
    assert pipe.assert_synced("notes") == 2
    pipe.write({"notes": {"types": {"n": "BIGINT", "doc": "SUPER"}}})  # text -> SUPER: not in place
    result = pipe.sync("--wait")
    assert result.code != 0
    text = result.stderr + json.dumps(result.report)
    assert "column doc" in text and "VARCHAR(65535)" in text and "SUPER" in text, text
