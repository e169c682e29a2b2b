"""`ferry reconcile`: drift the cursor cannot see (deletes, updates that leave the cursor
alone, rows inserted behind it) found by range checksums and repaired by the workers, on
the real MySQL source, PostgreSQL target, S3 server and Celery workers; the target is then
compared with the source value by value."""
from __future__ import annotations

import json
import random
from typing import Any

from tests.conftest import Pipe


def reconcile(pipe: Pipe, table: str, *args: str, timeout_s: float = 240) -> tuple[int, dict[str, Any], str]:
    out = pipe.config_dir / f"{pipe.name}-reconcile.json"
    out.unlink(missing_ok=True)
    proc = pipe.ferry("reconcile", "-p", pipe.name, "-t", pipe.table(table), "--json-output", str(out), *args,
                      timeout_s=timeout_s)
    return proc.returncode, json.loads(out.read_text()) if out.exists() else {}, proc.stdout + proc.stderr


def seed_orders(pipe: Pipe, n: int, step: int = 2, extra: str = "") -> None:
    """orders with ids 2, 4, ... (gaps to insert into behind the cursor)."""
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, customer VARCHAR(40) NOT NULL,"
                 " amount DECIMAL(12,2), placed DATETIME(6), note TEXT" + extra + ")")
    pipe.mysql().cursor().executemany(
        "INSERT INTO orders (id, customer, amount, placed, note) VALUES (%s, %s, %s, %s, %s)",
        [(i * step, f"cust{i % 97}", f"{i * 1.25:.2f}", f"2024-01-01 00:00:{i % 60:02d}.{i:06d}",
          None if i % 5 else f"note {i} é") for i in range(1, n + 1)])


def target_count(pipe: Pipe, table: str, where: str = "") -> int:
    return pipe.pg().execute(f'SELECT COUNT(*) FROM "{pipe.db}".{table}{where}').fetchone()[0]


def drift(pipe: Pipe, rng: random.Random, n: int) -> dict[str, set[int]]:
    """Delete 1,000 random rows and a block of 2,000, update 500 without touching the cursor,
    insert 100 behind the cursor; returns the keys of each."""
    ids = [i * 2 for i in range(1, n + 1)]
    block = set(ids[5000:7000])
    rest = [i for i in ids if i not in block]
    deleted = set(rng.sample(rest, 1000)) | block
    updated = set(rng.sample([i for i in rest if i not in deleted], 500))
    inserted = set(rng.sample([i * 2 + 1 for i in range(1, n - 1)], 100))
    conn = pipe.mysql()
    cur = conn.cursor()
    cur.executemany("DELETE FROM orders WHERE id = %s", [(i,) for i in sorted(deleted)])
    cur.executemany("UPDATE orders SET amount = amount + 1, note = 'changed' WHERE id = %s",
                    [(i,) for i in sorted(updated)])
    cur.executemany("INSERT INTO orders VALUES (%s, 'new', 1.00, '2024-02-02 00:00:00', NULL)",
                    [(i,) for i in sorted(inserted)])
    return {"deleted": deleted, "updated": updated, "inserted": inserted}


def test_rows_mode_repairs_deletes_updates_and_rows_behind_the_cursor(pipe: Pipe, workers: list) -> None:
    n = 20_000
    seed_orders(pipe, n)
    pipe.write({"orders": {"reconcile": {"range_rows": 3000}}}, chunk_rows=5000)
    assert pipe.sync("--wait").code == 0
    changed = drift(pipe, random.Random(19), n)
    # A sync sees none of it (the id cursor only looks above itself).
    assert pipe.sync("--wait").code == 0
    assert target_count(pipe, "orders") == n

    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0, text
    assert doc["status"] == "succeeded" and doc["mode"] == "rows" and not doc["dry_run"]
    assert doc["rows_only_in_target"] == doc["rows_deleted"] == 3000, doc
    assert doc["rows_differing"] == 500 and doc["rows_only_in_source"] == 100, doc
    assert doc["rows_repaired"] == 600
    assert doc["rows_compared"] == n - 3000 + 100
    assert doc["ranges_checked"] == doc["ranges"] >= 6 and doc["pass_complete"]
    assert doc["first_differences"] and doc["seconds"] > 0
    pipe.assert_synced("orders")
    # The cursor did not move, and a second pass finds nothing.
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == doc["rows_repaired"] == 0, doc
    assert doc["rows_only_in_target"] == doc["rows_only_in_source"] == doc["rows_differing"] == 0
    status = pipe.state("orders").reconcile_state()
    assert status["rows_deleted_total"] == "3000" and status["rows_repaired_total"] == "600"
    assert status["last_complete_at"] and status["last_complete_mode"] == "rows"
