"""`transform:` per column (hash, hash_skip_first, mask, null, truncate) on the real MySQL
source, S3 server, PostgreSQL target and Celery workers: no clear value in the Parquet parts
on S3, the target holds what each transform promises (computed here independently, with
hashlib), and `ferry verify` and `ferry reconcile` compare the transformed table exactly."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.model import transforms
from common.model.types import ColumnSpec
from tests.conftest import SALT, Pipe
from tests.test_reconcile import reconcile

TRANSFORMS = {"email": "hash", "phone": {"hash_skip_first": 3}, "ssn": "hash", "born": "mask",
              "salary": {"mask": 1.5}, "notes": {"truncate": 5}, "photo": "null", "tag": "hash"}


def _seed(pipe: Pipe) -> list[tuple]:
    pipe.execute("CREATE TABLE people (id INT NOT NULL PRIMARY KEY, email VARCHAR(100), phone VARCHAR(20),"
                 " ssn INT, born DATE, salary DECIMAL(10,2), notes TEXT, photo BLOB, tag VARBINARY(8),"
                 " city VARCHAR(20))")
    rows = [(i, f"user{i}@example.com" if i % 5 else None, f"+33 6 {i:08d}", 100000000 + i,
             date(1980 + i % 30, 1 + i % 12, 1 + i % 28) if i % 4 else None, Decimal(f"{1000 + i}.25"),
             f"ünïcode notes {i}", b"\x89PNG" + bytes([i % 256]), bytes([i % 256, 0, 255]), f"city{i % 3}")
            for i in range(1, 121)]
    pipe.mysql().cursor().executemany("INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return rows


def _sha(data: bytes) -> str:
    return hashlib.sha256(SALT.encode() + data).hexdigest()


def _expected(row: tuple) -> tuple:
    i, email, phone, ssn, born, salary, notes, photo, tag, city = row
    return (i, None if email is None else _sha(email.encode()), phone[:3] + _sha(phone[3:].encode()),
            _sha(str(ssn).encode()), None if born is None else date(1970, 1, 1), Decimal("1.50"), notes[:5], None,
            _sha(tag), city)


def _target(pipe: Pipe) -> list[tuple]:
    return [tuple(r) for r in pipe.pg().execute(
        f'SELECT id, email, phone, ssn, born, salary, notes, photo, tag, city FROM "{pipe.db}".people ORDER BY id')]


@pytest.mark.parametrize("reader", ["duckdb", "connector"])
def test_transforms_reach_neither_s3_nor_the_target_in_clear_and_the_table_verifies(
        pipe: Pipe, workers: list, reader: str) -> None:
    rows = _seed(pipe)
    pipe.write({"people": {"transform": TRANSFORMS, "salt_env": "FERRY_TEST_SALT", "reader": reader}},
               chunk_rows=50)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert _target(pipe) == [_expected(r) for r in rows]
    # The target's types follow the transforms: a hashed INT is text of 64 characters.
    types = dict(pipe.pg().execute(
        "SELECT column_name, data_type || COALESCE('(' || character_maximum_length || ')', '')"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = 'people'", (pipe.db,)).fetchall())
    assert types["ssn"] == "character varying(64)" and types["email"] == "character varying(64)"
    assert types["phone"] == "character varying(76)" and types["notes"] == "character varying(20)"
    assert types["born"] == "date" and types["photo"] == "bytea"
    # No clear value of a transformed column is in any Parquet part on S3.
    clear = {v for r in rows for v in (r[1], r[2][3:], str(r[3]), r[6][5:]) if v}
    clear |= {r[4].isoformat() for r in rows if r[4]} | {str(r[5]) for r in rows}
    clear_bytes = {r[7] for r in rows} | {r[8] for r in rows}
    parts = [k for k, _ in pipe.store.list(f"ferry/{pipe.name}/") if k.endswith(".parquet")]
    assert parts
    seen = 0
    for key in parts:
        table = pq.read_table(io.BytesIO(pipe.store.get(key)))
        for name in table.column_names:
            for value in table.column(name).to_pylist():
                seen += 1
                if isinstance(value, bytes):
                    assert value not in clear_bytes, (key, name)
                elif value is not None:
                    text = value.isoformat() if isinstance(value, date) else str(value)
                    assert not any(c in text for c in clear), (key, name, text)
    assert seen >= 120 * 10
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("people"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    # verify can fail: a target value changed by hand is found.
    pipe.pg().execute(f'UPDATE "{pipe.db}".people SET email = %s WHERE id = 7', (_sha(b"someone else"),))
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("people"), "--json")
    assert out.returncode == 1
    assert [r["key"] for d in json.loads(out.stdout)["differences"] for r in d["rows"]] == ["7"]
    # reconcile (rows mode) hashes on the source side too: it repairs that row and a source
    # update the id strategy cannot see, and leaves the rest alone.
    pipe.execute("UPDATE people SET email = 'changed@example.com', notes = 'brand new notes' WHERE id = 9")
    code, doc, text = reconcile(pipe, "people", "--wait")
    assert code == 0, text
    target = _target(pipe)
    assert target[6][1] == _sha(b"user7@example.com")
    assert target[8][1] == _sha(b"changed@example.com") and target[8][6] == "brand"
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("people"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_hashed_table_without_its_salt_exits_2_and_queues_nothing(pipe: Pipe) -> None:
    _seed(pipe)
    pipe.write({"people": {"transform": {"email": "hash"}, "salt_env": "FERRY_TEST_NO_SUCH_SALT"}})
    result = pipe.sync("--wait")
    assert result.code == 2
    for part in (f"pipelines/{pipe.name}.yml", pipe.table("people"), "'email'", "FERRY_TEST_NO_SUCH_SALT",
                 "nothing was queued"):
        assert part in result.stderr, result.stderr
    assert pipe.state("people").schema() is None and pipe.state("people").lock_owner() is None
    pipe.write({"people": {"transform": {"email": "hash"}}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2 and "salt_env" in out.stdout


@pytest.mark.parametrize("entry, says", [
    ({"transform": {"nosuch": "hash"}}, "transform names column 'nosuch'"),
    ({"transform": {"id": "hash"}}, "column 'id' is the key"),
    ({"transform": {"ssn": {"truncate": 3}}}, "column ssn (int(11)): truncate cuts text"),
    ({"transform": {"email": {"hash_skip_first": -1}}}, "hash_skip_first takes a whole number"),
    ({"transform": {"born": {"mask": "not a date"}}}, "mask value 'not a date' is not a DATE value"),
    ({"transform": {"city": {"mask": "x" * 200}}}, "longer than the column's VARCHAR(80)"),
    ({"include_columns": ["id", "email"], "transform": {"city": "null"}}, "'city', which is not copied"),
    ({"include_columns": ["email"]}, "key column 'id' cannot be left out"),
    ({"include_columns": ["id", "nosuch"]}, "include_columns names 'nosuch'"),
])
def test_a_transform_or_column_list_that_cannot_apply_exits_2_naming_the_column(pipe: Pipe, entry: dict,
                                                                                 says: str) -> None:
    _seed(pipe)
    pipe.write({"people": entry})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert says in out.stdout and f"pipelines/{pipe.name}.yml" in out.stdout and pipe.table("people") in out.stdout, \
        out.stdout
    result = pipe.sync()
    assert result.code == 2 and "nothing was queued" in result.stderr
    assert pipe.state("people").schema() is None


def test_include_and_exclude_columns_together_are_a_config_error(pipe: Pipe) -> None:
    _seed(pipe)
    pipe.write({"people": {"include_columns": ["id", "email"], "exclude_columns": ["city"]}})
    out = pipe.ferry("check", "-p", pipe.name)
    assert out.returncode == 2
    assert pipe.table("people") in out.stderr and "include_columns and exclude_columns" in out.stderr


def test_include_columns_copies_only_those(pipe: Pipe, workers: list) -> None:
    rows = _seed(pipe)
    pipe.write({"people": {"include_columns": ["id", "city", "email"]}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    cols = [r[0] for r in pipe.pg().execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'people'"
        " ORDER BY ordinal_position", (pipe.db,))]
    assert cols == ["id", "email", "city"]  # in the source's order
    assert pipe.assert_synced("people") == len(rows)


def test_changing_a_transform_later_is_refused_saying_what_to_do(pipe: Pipe, workers: list) -> None:
    _seed(pipe)
    pipe.write({"people": {"transform": {"email": "hash"}, "salt_env": "FERRY_TEST_SALT"}})
    assert pipe.sync("--wait").code == 0
    before = _target(pipe)
    pipe.write({"people": {"transform": {"email": "mask"}}})
    pipe.execute("INSERT INTO people (id, email) VALUES (500, 'late@example.com')")
    result = pipe.sync("--wait")
    assert result.code != 0
    text = result.stderr + json.dumps(result.report)
    assert "email" in text and "transform hash before, transform mask" in text and "watermark reset" in text
    assert _target(pipe) == before


def test_each_transform_in_arrow_matches_hashlib_and_python() -> None:
    def spec(kind: str, arrow: str, target: str, transform: str, read_kind: str | None = "string") -> ColumnSpec:
        return ColumnSpec(source="c", name="c", mysql_type="x", kind=kind, arrow=arrow, target=target,
                          transform=transform, read_kind=read_kind)

    text = pa.array(["héllo wörld", None, "", "ab"])
    salt = "sël".encode()
    out = transforms.apply_column(text, spec("string", "string", "VARCHAR(64)", "hash"), salt).to_pylist()
    assert out == [hashlib.sha256(salt + v.encode()).hexdigest() if v is not None else None
                   for v in text.to_pylist()]
    out = transforms.apply_column(text, spec("string", "string", "VARCHAR(76)", "hash_skip_first:3"), salt).to_pylist()
    assert out == [v[:3] + hashlib.sha256(salt + v[3:].encode()).hexdigest() if v is not None else None
                   for v in text.to_pylist()]
    raw = pa.array([b"\x00\xff", None])
    assert transforms.apply_column(raw, spec("string", "string", "VARCHAR(64)", "hash", "binary"), salt).to_pylist() \
        == [hashlib.sha256(salt + b"\x00\xff").hexdigest(), None]
    assert transforms.apply_column(text, spec("string", "string", "VARCHAR(8)", "truncate:2"), None).to_pylist() \
        == ["hé", None, "", "ab"]
    ints = pa.array([5, None, -3], pa.int32())
    assert transforms.apply_column(ints, spec("int", "int32", "INTEGER", "mask:0"), None).to_pylist() == [0, None, 0]
    assert transforms.apply_column(ints, spec("int", "int32", "INTEGER", "null"), None).to_pylist() == [None] * 3
    assert transforms.invalid_json(pa.array(['{"a": 1}', None, "[1,", "2"])) == 2
