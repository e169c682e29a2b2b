"""`ferry verify`: source and target compared by counts and checksums per key range, on the
real MySQL source and PostgreSQL target, after a real sync."""
from __future__ import annotations

import json

from tests.conftest import Pipe
from tests.test_types_roundtrip import DDL, INSERT, ROWS


def _verify(pipe: Pipe, table: str, *args: str) -> tuple[int, dict]:
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table(table), "--json", *args)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def _seed_orders(pipe: Pipe, n: int) -> None:
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, customer VARCHAR(40) NOT NULL,"
                 " amount DECIMAL(12,2), score DOUBLE, placed DATETIME(6), note TEXT)")
    pipe.mysql().cursor().executemany(
        "INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s)",
        [(i, f"cust{i % 97}", f"{i * 1.25:.2f}", i / 7, f"2024-01-01 00:00:{i % 60:02d}.{i:06d}",
          None if i % 5 else f"note {i} é") for i in range(1, n + 1)])


def test_exact_copy_agrees_and_changes_on_either_side_are_named(pipe: Pipe, workers: list) -> None:
    _seed_orders(pipe, 5000)
    pipe.write({"orders": {}}, chunk_rows=700)
    assert pipe.sync("--wait").code == 0
    code, doc = _verify(pipe, "orders", "--ranges", "8")
    assert code == 0 and doc["agree"], doc
    assert doc["source_rows"] == doc["target_rows"] == 5000
    assert doc["ranges"] == 8

    # One row changed in the target, another in the source, one deleted in the source, one
    # extra in the target beyond the last source key (but below the cursor: a key deleted
    # after the copy), and a float changed in its 11th significant digit.
    pipe.pg().execute(f'UPDATE "{pipe.db}".orders SET amount = amount + 0.01 WHERE id = 1234')
    pipe.execute("UPDATE orders SET note = 'changed' WHERE id = 4321",
                 "DELETE FROM orders WHERE id = 4999",
                 "UPDATE orders SET score = score * (1 + 1e-10) WHERE id = 77")
    code, doc = _verify(pipe, "orders", "--ranges", "2")  # 2,500 rows each: split again
    assert code == 1
    named = {(r["key"], r["what"]) for d in doc["differences"] for r in d["rows"]}
    assert named == {("1234", "differs"), ("4321", "differs"), ("4999", "only in target"),
                     ("77", "differs")}, doc
    # Each difference is narrowed to a small range whose bounds contain its key.
    for d in doc["differences"]:
        assert d["source_rows"] <= 1000 and d["range"].startswith("(")
        lo, hi = json.loads(d["lo"]), json.loads(d["hi"])
        for r in d["rows"]:
            assert (lo is None or lo[0] < int(r["key"])) and (hi is None or int(r["key"]) <= hi[0])
    assert doc["source_rows"] == 4999 and doc["target_rows"] == 5000 and doc["ranges"] == 2

    # The text form names them too, and exits 1.
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("orders"))
    assert out.returncode == 1
    assert "key 1234: differs" in out.stdout and "key 4999: only in target" in out.stdout


def test_rows_past_the_loaded_cursor_are_not_compared(pipe: Pipe, workers: list) -> None:
    _seed_orders(pipe, 300)
    pipe.write({"orders": {}}, chunk_rows=100)
    assert pipe.sync("--wait").code == 0
    pipe.execute("INSERT INTO orders (id, customer) VALUES (301, 'late'), (302, 'later')")
    code, doc = _verify(pipe, "orders")
    assert code == 0, doc
    assert doc["source_rows"] == 300 and "300" in doc["bound"]


def test_every_hidden_type_agrees(pipe: Pipe, workers: list) -> None:
    """The type round-trip table (every mapped type at its limits, NULL in each) agrees, and a
    change in one of its binary, timestamp or unsigned values is found."""
    pipe.execute(DDL)
    pipe.mysql().cursor().executemany(INSERT, ROWS)
    pipe.write({"every_type": {}}, chunk_rows=2)
    assert pipe.sync("--wait").code == 0
    code, doc = _verify(pipe, "every_type")
    assert code == 0, doc
    assert doc["source_rows"] == len(ROWS)
    assert any("column f:" in n for n in doc["notes"])
    pg = pipe.pg()
    ref = f'"{pipe.db}".every_type'
    pg.execute(f"CREATE TABLE {ref}_snap AS SELECT * FROM {ref} WHERE id = 12345")
    for column, value in (("bl", "'\\x00ff'::bytea"), ("dt6", "dt6 + interval '1 microsecond'"),
                          ("biu", "biu - 1"), ("tm6", "'00:00:00'"), ("flag", "NOT flag"),
                          ("f", "f * 1.001"), ("lt", "lt || ' '"), ("dte", "NULL")):
        pg.execute(f"UPDATE {ref} SET {column} = {value} WHERE id = 12345")
        code, doc = _verify(pipe, "every_type")
        rows = [r for d in doc["differences"] for r in d["rows"]]
        assert code == 1 and rows == [{"key": "12345", "what": "differs"}], (column, doc)
        pg.execute(f"UPDATE {ref} t SET {column} = s.{column} FROM {ref}_snap s WHERE t.id = s.id")
        assert _verify(pipe, "every_type")[0] == 0, column


def test_binary_values_past_redshifts_hex_limit_are_compared_by_length_and_their_ends(
        pipe: Pipe, workers: list) -> None:
    """Redshift's TO_HEX returns a VARCHAR (65,535 characters at most), so a VARBYTE over 32,767
    bytes cannot be hexed whole: such columns are compared by length and the MD5s of the hex
    of their first and last 32,767 bytes (the same SQL on each side). Values of 0, 1, 32,767,
    32,768, 65,534 and 200,000 bytes agree; a change to the length, the first or the last byte
    is found; the report says how the column is compared."""
    import os

    pipe.execute("CREATE TABLE blobs (id INT NOT NULL PRIMARY KEY, small VARBINARY(64), body MEDIUMBLOB)")
    sizes = [0, 1, 32_767, 32_768, 65_534, 200_000]
    pipe.mysql().cursor().executemany("INSERT INTO blobs VALUES (%s, %s, %s)",
                                      [(i, os.urandom(8), os.urandom(n)) for i, n in enumerate(sizes)]
                                      + [(len(sizes), None, None)])
    pipe.write({"blobs": {}})
    assert pipe.sync("--wait").code == 0
    code, doc = _verify(pipe, "blobs")
    assert code == 0, doc
    assert any("column body: compared by length and the first and last 32,767 bytes" in n for n in doc["notes"]), doc
    assert not any("column small" in n for n in doc["notes"])
    pg = pipe.pg()
    ref = f'"{pipe.db}".blobs'
    for change in ("overlay(body placing '\\xff'::bytea from 1 for 1)",          # the first byte
                   "overlay(body placing '\\xff'::bytea from octet_length(body) for 1)",   # the last
                   "body || '\\x00'::bytea"):                                     # the length
        pg.execute(f"CREATE TABLE {ref}_snap AS SELECT * FROM {ref} WHERE id = 5")
        pg.execute(f"UPDATE {ref} SET body = {change} WHERE id = 5")
        code, doc = _verify(pipe, "blobs")
        rows = [r for d in doc["differences"] for r in d["rows"]]
        assert code == 1 and rows == [{"key": "5", "what": "differs"}], (change, doc)
        pg.execute(f"UPDATE {ref} t SET body = s.body FROM {ref}_snap s WHERE t.id = s.id")
        pg.execute(f"DROP TABLE {ref}_snap")
    pg.execute(f"UPDATE {ref} SET small = '\\x00'::bytea WHERE id = 2")
    code, doc = _verify(pipe, "blobs")
    assert code == 1 and [r for d in doc["differences"] for r in d["rows"]] == [{"key": "2", "what": "differs"}]


def test_text_key_is_split_by_key_hash(pipe: Pipe, workers: list) -> None:
    """A text key sorts differently in MySQL (case-insensitive collation) and the warehouse:
    buckets of the key's MD5 are compared instead of ranges."""
    pipe.execute("CREATE TABLE codes (code VARCHAR(20) NOT NULL PRIMARY KEY, label VARCHAR(20))")
    rows = [(f"{'Aa'[i % 2]}{i:05d}{'é' if i % 3 == 0 else ''}", f"l{i}") for i in range(20000)]
    pipe.mysql().cursor().executemany("INSERT INTO codes VALUES (%s, %s)", rows)
    pipe.write({"codes": {"strategy": "full"}})
    assert pipe.sync("--wait").code == 0
    code, doc = _verify(pipe, "codes")
    assert code == 0 and doc["source_rows"] == 20000 and "bucket" in doc["mode"], doc
    pipe.pg().execute(f'UPDATE "{pipe.db}".codes SET label = NULL WHERE code = %s', (rows[10][0],))
    pipe.execute("DELETE FROM codes WHERE code = %s", params=(rows[20][0],))
    code, doc = _verify(pipe, "codes")
    named = {(r["key"], r["what"]) for d in doc["differences"] for r in d["rows"]}
    assert code == 1 and named == {(rows[10][0], "differs"), (rows[20][0], "only in target")}, doc
    # ~1,250 rows per top bucket: each difference was narrowed to a longer key-hash prefix.
    assert all(len(d["range"].split("'")[1]) >= 2 and d["source_rows"] <= 1000 for d in doc["differences"])


def test_bad_input_exits_2(pipe: Pipe, workers: list) -> None:
    _seed_orders(pipe, 10)
    pipe.write({"orders": {}})
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("orders"))
    assert out.returncode == 2 and "never been synced" in out.stderr
    out = pipe.ferry("verify", "-p", pipe.name, "-t", "nosuch")
    assert out.returncode == 2 and "nosuch" in out.stderr


def test_timestamp_table_and_parts_awaiting_load(pipe: Pipe, workers: list) -> None:
    """A timestamp table is compared up to its cursor (updated_at, id); rows extracted but
    awaiting load are not compared until they are loaded."""
    pipe.execute("CREATE TABLE events (id INT NOT NULL PRIMARY KEY, kind VARCHAR(10),"
                 " updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
    pipe.mysql().cursor().executemany("INSERT INTO events VALUES (%s, %s, %s)",
                                      [(i, f"k{i % 3}", f"2024-03-01 10:{i // 60 % 60:02d}:{i % 60:02d}")
                                       for i in range(1, 1201)])
    pipe.write({"events": {"strategy": "timestamp", "cursor": "updated_at", "lookback_s": 0, "lag_s": 0}},
               chunk_rows=300)
    assert pipe.sync("--wait").code == 0
    code, doc = _verify(pipe, "events")
    assert code == 0 and doc["source_rows"] == 1200 and "(2024-03-01 10:20:00, 1200)" in doc["bound"], doc

    pipe.execute("INSERT INTO events VALUES (5000, 'new', '2024-03-02 00:00:00')")
    assert pipe.sync("--wait", "--extract-only").code == 0
    code, doc = _verify(pipe, "events")
    assert code == 0 and doc["source_rows"] == 1200 and "awaiting load" in doc["bound"], doc
    pipe.pg().execute(f'DELETE FROM "{pipe.db}".events WHERE id = 7')
    code, doc = _verify(pipe, "events")
    assert code == 1 and [r for d in doc["differences"] for r in d["rows"]] == [{"key": "7", "what": "only in source"}]
