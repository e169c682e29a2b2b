"""Create (or refill) a demo orders table in the local MySQL: sparse ids, NULLs, money columns.

    python -m demo.seed --rows 200000 [--table shop.orders] [--append]
"""
from __future__ import annotations

import argparse
import os
import random
from datetime import datetime, timedelta
from decimal import Decimal

import mysql.connector

DDL = """CREATE TABLE IF NOT EXISTS {t} (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  discount DECIMAL(5,4) NULL,
  weight_kg DOUBLE NULL,
  is_gift TINYINT(1) NOT NULL,
  note VARCHAR(200) NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  ship_date DATE NULL
)"""
NOTES = ["", "leave at the door", "fragile", "ça va 🚚", "call first", None]
STATUSES = ["new", "paid", "shipped", "cancelled"]


def rows(start_id: int, count: int, rng: random.Random):
    """Ids grow by irregular steps (dense runs and large jumps), so ranges are skewed."""
    ident = start_id
    base = datetime(2024, 1, 1)
    for i in range(count):
        ident += 1 if rng.random() < 0.7 else rng.randint(2, 50) if rng.random() < 0.99 else 100_000
        created = base + timedelta(seconds=i * 7, microseconds=rng.randint(0, 999_999))
        yield (ident, rng.randint(1, 50_000), rng.choice(STATUSES),
               Decimal(rng.randint(0, 10**10 - 1)) / 100,
               None if rng.random() < 0.3 else Decimal(rng.randint(0, 9999)) / 10000,
               None if rng.random() < 0.2 else rng.random() * 40,
               rng.randint(0, 1), rng.choice(NOTES), created, created,
               None if rng.random() < 0.4 else (created + timedelta(days=rng.randint(0, 9))).date())


def seed(table: str, count: int, append: bool = False, seed_value: int = 7, host: str = "127.0.0.1",
         port: int = 3306, user: str = "root", password: str = "") -> int:
    schema, name = table.split(".")
    conn = mysql.connector.connect(host=host, port=port, user=user, password=password, autocommit=False)
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{schema}`")
    t = f"`{schema}`.`{name}`"
    if not append:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute(DDL.format(t=t))
    cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}")
    start = int(cur.fetchone()[0])
    sql = (f"INSERT INTO {t} (id, customer_id, status, amount, discount, weight_kg, is_gift, note,"
           f" created_at, updated_at, ship_date) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)")
    batch = []
    for row in rows(start, count, random.Random(seed_value + start)):
        batch.append(row)
        if len(batch) == 5000:
            cur.executemany(sql, batch)
            batch = []
    if batch:
        cur.executemany(sql, batch)
    conn.commit()
    cur.execute(f"SELECT COUNT(*) FROM {t}")
    total = int(cur.fetchone()[0])
    conn.close()
    return total


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--table", default="shop.orders")
    ap.add_argument("--append", action="store_true", help="add rows after the current maximum id")
    # The same variables connections.yml reads (docker compose sets MYSQL_HOST=mysql).
    ap.add_argument("--host", default=os.environ.get("MYSQL_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("MYSQL_PORT", "3306")))
    args = ap.parse_args()
    total = seed(args.table, args.rows, args.append, host=args.host, port=args.port,
                 user=os.environ.get("MYSQL_USER", "root"), password=os.environ.get("MYSQL_PASSWORD", ""))
    print(f"{args.table}: {total} rows")
