"""Every mapped type, at its limits and as NULL, survives MySQL -> Parquet -> PostgreSQL."""
from __future__ import annotations

import io
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import Pipe

DDL = """CREATE TABLE every_type (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  flag TINYINT(1), d382 DECIMAL(38,10), d52 DECIMAL(5,2), f FLOAT, dbl DOUBLE,
  dt DATETIME, dt6 DATETIME(6), ts6 TIMESTAMP(6) NULL DEFAULT NULL, dte DATE,
  tm TIME, tm6 TIME(6), yr YEAR,
  c CHAR(3), vc VARCHAR(20), tx TEXT, lt LONGTEXT,
  en ENUM('small','medium','large'), st SET('red','green','blue'),
  bin BINARY(4), vb VARBINARY(16), bl BLOB, bt BIT(5), `190_time` INT, `Order` INT
)"""

INSERT = "INSERT INTO every_type VALUES (" + ", ".join(["%s"] * 35) + ")"

ROWS = [
    # the maxima
    (18446744073709551615, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
     9223372036854775807, 18446744073709551615, 1,
     Decimal("9999999999999999999999999999.9999999999"), Decimal("999.99"), 3.4028234e38, 1.7976931348623157e308,
     "9999-12-31 23:59:59", "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07.999999", "9999-12-31",
     "838:59:59", "838:59:59.999999", 2155,
     "zzz", "x" * 20, "t" * 5000, "🚚" * 1000, "large", "red,green,blue",
     b"\xff\xff\xff\xff", b"\xff" * 16, bytes(range(256)) * 4, 31, 2147483647, 1),
    # the minima
    (0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 0,
     Decimal("-9999999999999999999999999999.9999999999"), Decimal("-999.99"), -3.4e38, -1.7976931348623157e308,
     "1000-01-01 00:00:00", "1000-01-01 00:00:00.000001", "1970-01-01 00:00:01.000000", "1000-01-01",
     "-838:59:59", "-838:59:59.999999", 1901,
     "", "", "", "", "small", "",
     b"\x00\x00\x00\x00", b"", b"", 0, -2147483648, -1),
    # awkward middles: 4-byte UTF-8, quotes, newlines, commas, backslashes, tiny decimals
    (12345, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1,
     Decimal("0.0000000001"), Decimal("0.01"), 123456792.0, 0.1,
     "2024-02-29 12:34:56", "2024-02-29 12:34:56.123456", "2024-02-29 12:34:56.000001", "2024-02-29",
     "00:00:00.5", "12:00:00.000001", 2024,
     "a\"b", "x,y\nz", 'quote " comma , \\ backslash \r\n', "𝄞 music 😀 emoji 中文", "medium", "green",
     b"a,\n\"", b"\x00\x01\\", b"\x00", 21, 0, 42),
    # NULL in every nullable column
    (99999,) + (None,) * 34,
]

EXPECTED_PG_TYPES = {
    "id": "numeric(20,0)", "ti": "smallint", "tiu": "smallint", "si": "smallint", "siu": "integer",
    "mi": "integer", "miu": "integer", "i": "integer", "iu": "bigint", "bi": "bigint",
    "biu": "numeric(20,0)", "flag": "boolean", "d382": "numeric(38,10)", "d52": "numeric(5,2)",
    "f": "real", "dbl": "double precision", "dt": "timestamp without time zone",
    "dt6": "timestamp without time zone", "ts6": "timestamp without time zone", "dte": "date",
    "tm": "character varying(16)", "tm6": "character varying(17)", "yr": "smallint",
    "c": "character varying(12)", "vc": "character varying(80)", "tx": "character varying(65535)",
    "lt": "character varying(65535)", "en": "character varying(24)", "st": "character varying(56)",
    "bin": "bytea", "vb": "bytea", "bl": "bytea", "bt": "bigint", "col_190_time": "integer",
    "order": "integer",
}


def test_every_type_at_its_limits(pipe: Pipe, workers: list) -> None:
    pipe.execute(DDL)
    conn = pipe.mysql()
    cur = conn.cursor()
    cur.executemany(INSERT, ROWS)
    pipe.write({"every_type": {}}, chunk_rows=2)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert pipe.assert_synced("every_type") == len(ROWS)

    pg = pipe.pg()
    types = dict(pg.execute(
        "SELECT column_name, CASE WHEN data_type = 'numeric' THEN"
        " format('numeric(%%s,%%s)', numeric_precision, numeric_scale)"
        " WHEN character_maximum_length IS NOT NULL THEN"
        " format('%%s(%%s)', data_type, character_maximum_length) ELSE data_type END"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = 'every_type'",
        (pipe.db,)).fetchall())
    assert types == EXPECTED_PG_TYPES

    # Spot checks on the raw target values, beyond the canonical comparison.
    row = pg.execute(f'SELECT biu, d382, dt6, lt, f, bl FROM "{pipe.db}".every_type WHERE id = 18446744073709551615').fetchone()
    # FLOAT keeps all of its digits (the text protocol alone would give 123457000).
    f = pg.execute(f'SELECT f FROM "{pipe.db}".every_type WHERE id = 12345').fetchone()[0]
    assert np.float32(f) == np.float32(123456792.0) != np.float32(123457000.0)
    assert row[0] == Decimal("18446744073709551615")
    assert row[1] == Decimal("9999999999999999999999999999.9999999999")
    assert row[2].microsecond == 999999
    assert row[3] == "🚚" * 1000
    assert bytes(row[5]) == bytes(range(256)) * 4


def test_parquet_parts_carry_exact_types(pipe: Pipe, workers: list) -> None:
    pipe.execute(DDL)
    pipe.mysql().cursor().executemany(INSERT, ROWS)
    pipe.write({"every_type": {}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    keys = [k for k, _ in pipe.store.list(f"ferry/{pipe.name}/") if k.endswith(".parquet")]
    assert len(keys) == 1
    schema = pq.read_table(io.BytesIO(pipe.store.get(keys[0]))).schema
    assert schema.field("id").type == pa.decimal128(20, 0)
    assert schema.field("d382").type == pa.decimal128(38, 10)
    assert schema.field("dt6").type == pa.timestamp("us")
    assert schema.field("f").type == pa.float32()
    assert schema.field("flag").type == pa.bool_()
    assert schema.field("ti").type == pa.int8() and schema.field("tiu").type == pa.int16()
    assert schema.field("iu").type == pa.int64() and schema.field("dte").type == pa.date32()
    assert schema.field("bl").type == pa.binary() and schema.field("tx").type == pa.string()
    meta = pipe.store.metadata(keys[0])
    assert meta["rows"] == str(len(ROWS)) and meta["run"] == result.report["run_id"]


def test_json_lands_as_parsed_json_or_as_text(pipe: Pipe, workers: list) -> None:
    """MariaDB's JSON (LONGTEXT with its json_valid CHECK) is found as JSON: SUPER on Redshift,
    JSONB on the stand-in, parsed in the merge; `json_as: varchar` keeps it text."""
    docs = ['{"a": 1, "b": [true, null, 2.5], "c": {"d": "é 🚚"}}', '[]', '"just a string"', "12345678901234567890"]
    for table in ("docs", "docs_text"):
        pipe.execute(f"CREATE TABLE {table} (id INT NOT NULL PRIMARY KEY, doc JSON)")
        pipe.mysql().cursor().executemany(f"INSERT INTO {table} VALUES (%s, %s)",
                                          [(i, d) for i, d in enumerate(docs)] + [(99, None)])
    pipe.write({"docs": {}, "docs_text": {"json_as": "varchar"}}, chunk_rows=2)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    types = dict(pipe.pg().execute("SELECT table_name, data_type FROM information_schema.columns"
                                    " WHERE table_schema = %s AND column_name = 'doc'", (pipe.db,)))
    assert types == {"docs": "jsonb", "docs_text": "character varying"}
    assert pipe.schema_of("docs").column("doc").kind == "json"
    assert pipe.assert_synced("docs") == 5 and pipe.assert_synced("docs_text") == 5
    assert pipe.pg().execute(f'SELECT doc -> \'c\' ->> \'d\' FROM "{pipe.db}".docs WHERE id = 0').fetchone()[0] == "é 🚚"
