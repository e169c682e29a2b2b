"""The row comparison used by every sync test must see a one-value difference."""
from __future__ import annotations

from decimal import Decimal

import pytest

from common.model.types import ColumnSpec, TableSchema
from tests.compare import assert_same_rows, canonical

SCHEMA = TableSchema(table="s.t", key=("id",), columns=(
    ColumnSpec("id", "id", "int", "int", "int32", "INTEGER"),
    ColumnSpec("amount", "amount", "decimal(12,2)", "decimal", "decimal(12,2)", "DECIMAL(12,2)", True, 12, 2),
    ColumnSpec("f", "f", "float", "float", "float32", "REAL")))


def test_equal_rows_pass() -> None:
    rows = [("1", "1.5", "0.1")]
    assert assert_same_rows(rows, list(rows), SCHEMA) == 1


def test_one_value_differs() -> None:
    with pytest.raises(AssertionError, match=r"row 1 differs: amount: source='2' target='2.01'"):
        assert_same_rows([("1", "1", None), ("2", "2", None)], [("1", "1", None), ("2", "2.01", None)], SCHEMA)


def test_missing_row() -> None:
    with pytest.raises(AssertionError, match="row 1: source has"):
        assert_same_rows([("1", "1", None), ("2", "2", None)], [("1", "1", None)], SCHEMA)


def test_canonical_forms_agree_across_drivers() -> None:
    amount, f = SCHEMA.columns[1], SCHEMA.columns[2]
    assert canonical(Decimal("1.50"), amount) == canonical(b"1.5", amount) == "1.5"
    assert canonical(0.1, f) == canonical(b"0.1", f)  # float32 on both sides
    assert canonical(0.1, f) != canonical(0.10001, f)
