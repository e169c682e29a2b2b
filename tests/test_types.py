"""The type map (DESIGN.md, Types), including what it refuses."""
from __future__ import annotations

import pytest

from common.errors import SchemaError
from common.model.types import map_column


def col(data_type: str, column_type: str, precision=None, scale=None, length=None, name="c"):
    return map_column("shop.t", {"column_name": name, "data_type": data_type, "column_type": column_type,
                                 "is_nullable": "YES", "numeric_precision": precision,
                                 "numeric_scale": scale, "character_maximum_length": length,
                                 "datetime_precision": None})


@pytest.mark.parametrize("dtype, ctype, arrow, target", [
    ("tinyint", "tinyint(4)", "int8", "SMALLINT"),
    ("tinyint", "tinyint(3) unsigned", "int16", "SMALLINT"),
    ("tinyint", "tinyint(1)", "bool", "BOOLEAN"),
    ("smallint", "smallint(5) unsigned", "int32", "INTEGER"),
    ("int", "int(10) unsigned", "int64", "BIGINT"),
    ("bigint", "bigint(20)", "int64", "BIGINT"),
    ("bigint", "bigint(20) unsigned", "decimal(20,0)", "DECIMAL(20,0)"),
    ("float", "float", "float32", "REAL"),
    ("double", "double", "float64", "DOUBLE PRECISION"),
    ("datetime", "datetime(6)", "timestamp[us]", "TIMESTAMP"),
    ("year", "year(4)", "int16", "SMALLINT"),
    ("longtext", "longtext", "string", "VARCHAR(65535)"),
    ("json", "json", "string", "SUPER"),
    ("mediumblob", "mediumblob", "binary", "VARBYTE(16777215)"),
    ("longblob", "longblob", "binary", "VARBYTE(16777216)"),
    ("bit", "bit(8)", "int64", "BIGINT"),
])
def test_map(dtype: str, ctype: str, arrow: str, target: str) -> None:
    c = col(dtype, ctype, precision=8 if dtype == "bit" else None)
    assert (c.arrow, c.target) == (arrow, target)


def test_json_as_varchar_keeps_it_text() -> None:
    from common.model.types import map_column
    info = {"column_name": "doc", "data_type": "longtext", "column_type": "longtext", "is_nullable": "YES",
            "numeric_precision": None, "numeric_scale": None, "character_maximum_length": None,
            "datetime_precision": None, "is_json": True}
    assert map_column("s.t", info).target == "SUPER" and map_column("s.t", info).kind == "json"
    assert map_column("s.t", info, json_as="varchar").target == "VARCHAR(65535)"


def test_decimal_keeps_precision_and_scale() -> None:
    c = col("decimal", "decimal(38,10)", 38, 10)
    assert (c.arrow, c.target, c.precision, c.scale) == ("decimal(38,10)", "DECIMAL(38,10)", 38, 10)


def test_decimal_over_38_is_refused_naming_the_column() -> None:
    with pytest.raises(SchemaError, match=r"table shop.t, column price .*precision 65"):
        col("decimal", "decimal(65,30)", 65, 30, name="price")


def test_unsupported_type_names_the_column() -> None:
    with pytest.raises(SchemaError, match=r"column address .*inet6.*exclude_columns"):
        col("inet6", "inet6", name="address")


def test_spatial_types_become_geometry() -> None:
    for t in ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
              "geometrycollection"):
        c = col(t, t, name="location")
        assert (c.kind, c.arrow, c.target, c.max_bytes) == ("geometry", "binary", "GEOMETRY", 1_048_447), t


def test_varchar_is_four_bytes_a_character_capped() -> None:
    assert col("varchar", "varchar(100)", length=100).target == "VARCHAR(400)"
    assert col("varchar", "varchar(20000)", length=20000).target == "VARCHAR(65535)"


def test_enum_and_set_lengths() -> None:
    assert col("enum", "enum('a','bbb','it''s')").target == "VARCHAR(16)"
    assert col("set", "set('a','bb','ccc')").target == "VARCHAR(32)"  # 'a,bb,ccc' is 8 chars


def test_names() -> None:
    assert col("int", "int(11)", name="190_Time").name == "col_190_time"
    assert col("int", "int(11)", name="Order").name == "order"


def test_redact_removes_keys_from_messages() -> None:
    from common.errors import redact

    text = "error in COPY \"st\" FROM 's3://b/m' ACCESS_KEY_ID 'AKIA123' SECRET_ACCESS_KEY 'abc/def' FORMAT"
    assert redact(text) == "error in COPY \"st\" FROM 's3://b/m' ACCESS_KEY_ID '***' SECRET_ACCESS_KEY '***' FORMAT"
