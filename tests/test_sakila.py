"""A schema nobody here wrote: the Sakila sample database (composite keys, BLOB, SET, ENUM,
YEAR, TIMESTAMP ... ON UPDATE), every table synced in one run and compared row by row."""
from __future__ import annotations

import re
import subprocess

from tests.conftest import MYSQL, Pipe
from tests.services import REPO

# A copy of shared/data/sakila (BSD-style licence in each file), so a clean clone has it.
SAKILA = REPO / "tests" / "data" / "sakila"


def _load_sakila(db: str) -> None:
    for name in ("sakila-schema.sql", "sakila-data.sql"):
        text = re.sub(r"\bsakila\b", db, (SAKILA / name).read_text())
        subprocess.run(["mariadb", "-h", MYSQL["host"], "-P", str(MYSQL["port"]), "-u", MYSQL["user"],
                        *([f"-p{MYSQL['password']}"] if MYSQL["password"] else [])],
                       input=text, text=True, check=True, capture_output=True)


def test_every_sakila_table(pipe: Pipe, workers: list) -> None:
    _load_sakila(pipe.db)
    cur = pipe.mysql().cursor()
    cur.execute("SELECT table_name, table_rows FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
    tables = sorted(r[0] for r in cur.fetchall())
    assert len(tables) == 16
    # A composite key has no increasing cursor: the id strategy refuses it (a row added later
    # under a smaller first key column would be missed); those tables are copied whole.
    composite = {"film_actor", "film_category"}
    pipe.write({t: {"strategy": "full"} if t in composite else {} for t in tables}, chunk_rows=1500)
    result = pipe.sync("--wait", timeout_s=300)
    assert result.code == 0, result.stderr
    counts = {}
    for t in tables:
        counts[t] = pipe.assert_synced(t)
    assert counts["rental"] == 16044 and counts["payment"] == 16049
    assert counts["film_actor"] == 5462 and counts["film_category"] == 1000
    # film_actor's key is (actor_id, film_id): its chunks split inside one actor's films.
    fa = pipe.state("film_actor").chunks(result.report["run_id"])
    assert len(fa) == 4 and all(len(c.hi) == 2 for c in fa)
    assert sum(c.rows for c in fa) == 5462
