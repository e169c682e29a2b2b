"""A writer process for the concurrency test: one thread inserts and updates rows of `live`
all the time, another holds transactions open for seconds meanwhile; then it reports
what it changed.

    python -m tests.writer --database DB --seconds 25 --out stats.json
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time

import mysql.connector

from tests.conftest import MYSQL

DDL = """CREATE TABLE IF NOT EXISTS live (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  val INT NOT NULL,
  note VARCHAR(40),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY (updated_at)
)"""


def _connect(database: str):
    return mysql.connector.connect(database=database, autocommit=True, **MYSQL)


def _top_id(cur) -> int:
    cur.execute("SELECT MAX(id) FROM live")
    return cur.fetchone()[0] or 1


def _held(database: str, until: float, stats: dict, seed: int) -> None:
    """Transactions held open for seconds while the other thread keeps committing: their
    rows carry timestamps from before rows that are already visible."""
    rng = random.Random(seed)
    conn = _connect(database)
    cur = conn.cursor()
    while time.time() < until:
        top = _top_id(cur)
        hold = rng.uniform(1.0, 4.0)
        cur.execute("START TRANSACTION")
        cur.executemany("INSERT INTO live (val, note) VALUES (%s, %s)",
                        [(rng.randint(0, 999), "held") for _ in range(50)])
        cur.execute("UPDATE live SET val = val + 1, note = 'held-upd' WHERE id IN (%s, %s, %s)",
                    (rng.randint(1, top), rng.randint(1, top), rng.randint(1, top)))
        updated = cur.rowcount
        time.sleep(hold)
        cur.execute("COMMIT")
        stats["inserted"] += 50
        stats["updated"] += updated
        stats["held_transactions"] += 1
        stats["longest_hold_s"] = max(stats["longest_hold_s"], round(hold, 2))
        time.sleep(rng.uniform(0.2, 1.0))
    conn.close()


def _steady(database: str, until: float, stats: dict, seed: int) -> None:
    """Autocommit inserts and updates, all the time."""
    rng = random.Random(seed)
    conn = _connect(database)
    cur = conn.cursor()
    while time.time() < until:
        top = _top_id(cur)
        if rng.random() < 0.5:
            cur.executemany("INSERT INTO live (val, note) VALUES (%s, %s)",
                            [(rng.randint(0, 999), "new") for _ in range(50)])
            stats["inserted"] += 50
        else:
            ids = tuple(rng.randint(1, top) for _ in range(20))
            cur.execute(f"UPDATE live SET val = val + 1, note = 'upd' WHERE id IN ({', '.join(['%s'] * 20)})", ids)
            stats["updated"] += cur.rowcount
        time.sleep(rng.uniform(0.02, 0.1))
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True)
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    stats = {"inserted": 0, "updated": 0, "held_transactions": 0, "longest_hold_s": 0.0}
    start = time.time()
    until = start + args.seconds
    threads = [threading.Thread(target=_steady, args=(args.database, until, stats, 11)),
               threading.Thread(target=_held, args=(args.database, until, stats, 12))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = round(time.time() - start, 1)
    with open(args.out, "w") as f:
        json.dump(stats, f)


if __name__ == "__main__":
    main()
