"""Which mapping changes the target can follow, per warehouse, and the defaults it copies."""
from __future__ import annotations

import pytest

from common.errors import SchemaError
from common.model.schema_change import Capabilities, diff, widening
from common.model.types import TableSchema, default_literal, map_column
from common.warehouse.sql import POSTGRES, REDSHIFT


def _col(name: str, dtype: str, ctype: str, p: int | None = None, s: int | None = None,
         length: int | None = None, default: str | None = None):
    return map_column("s.t", {"column_name": name, "data_type": dtype, "column_type": ctype, "is_nullable": "YES",
                              "numeric_precision": p, "numeric_scale": s, "character_maximum_length": length,
                              "datetime_precision": None, "column_default": default, "extra": ""})


def _schema(*cols) -> TableSchema:
    return TableSchema(table="s.t", columns=(_col("id", "int", "int", 10, 0),) + cols, key=("id",))


@pytest.mark.parametrize("old, new, postgres, redshift", [
    ("VARCHAR(40)", "VARCHAR(80)", True, True),
    ("INTEGER", "BIGINT", True, False),
    ("DECIMAL(10,2)", "DECIMAL(12,2)", True, False),
    ("DECIMAL(10,2)", "DECIMAL(10,3)", None, None),   # loses an integer digit: no widening
    ("BIGINT", "DECIMAL(20,0)", True, False),          # INT UNSIGNED -> BIGINT UNSIGNED
    ("VARCHAR(80)", "VARCHAR(40)", None, None),
    ("INTEGER", "VARCHAR(10)", None, None),
])
def test_widening_per_warehouse(old: str, new: str, postgres: bool | None, redshift: bool | None) -> None:
    assert widening(old, new, POSTGRES.caps) is postgres
    assert widening(old, new, REDSHIFT.caps) is redshift


def test_diff_names_added_dropped_and_widened_columns() -> None:
    old = _schema(_col("name", "varchar", "varchar(10)", length=10), _col("gone", "int", "int", 10, 0))
    new = _schema(_col("name", "varchar", "varchar(20)", length=20),
                  _col("flag", "int", "int", 10, 0, default="7"))
    d = diff(old, new, Capabilities())
    assert [c.name for c in d.added] == ["flag"] and d.dropped == ["gone"]
    assert d.describe() == ["column flag added (INTEGER DEFAULT 7)",
                            "column gone dropped in the source (kept in the target, NULL in new rows)",
                            "column name widened VARCHAR(40) -> VARCHAR(80)"]


def test_changes_the_target_cannot_follow_name_column_and_both_types() -> None:
    old = _schema(_col("n", "int", "int", 10, 0))
    with pytest.raises(SchemaError, match=r"column n: widened from INTEGER to BIGINT"):
        diff(old, _schema(_col("n", "bigint", "bigint", 19, 0)), REDSHIFT.caps)
    with pytest.raises(SchemaError, match=r"column n: type changed from int \(INTEGER\) to varchar\(5\)"):
        diff(old, _schema(_col("n", "varchar", "varchar(5)", length=5)), POSTGRES.caps)
    with pytest.raises(SchemaError, match="the key changed"):
        diff(old, TableSchema(table="s.t", columns=old.columns, key=("n",)), POSTGRES.caps)


@pytest.mark.parametrize("raw, extra, kind, literal", [
    ("'abc'", "", "string", "'abc'"),          # MariaDB quotes literals
    ("it's", "", "string", "'it''s'"),         # MySQL does not
    ("NULL", "", "string", None),              # MariaDB's NULL default
    (None, "", "int", None),
    ("0", "", "int", "0"),
    ("1", "", "bool", "TRUE"),
    ("current_timestamp()", "", "timestamp", None),
    ("CURRENT_TIMESTAMP", "DEFAULT_GENERATED", "timestamp", None),
    ("'2024-01-01 00:00:00'", "", "timestamp", "'2024-01-01 00:00:00'"),
    ("uuid()", "", "string", None),
])
def test_constant_defaults_become_literals_expressions_do_not(raw, extra, kind, literal) -> None:
    assert default_literal({"column_default": raw, "extra": extra}, kind) == literal
