"""`ferry s3clean`: objects by state, and a cleanup that never touches a part awaiting load
or another table's prefix; more than 1,000 objects, so listings and deletes page."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from common.model import naming
from tests.conftest import Pipe
from tests.test_sync import _seed


def _counts(text: str) -> dict[str, int]:
    return {line[:14].strip(): int(line[14:].split()[0]) for line in text.splitlines() if line.strip()}


def test_s3clean_lists_by_state_and_deletes_only_loaded_parts_and_orphans(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    first = pipe.sync("--wait")
    assert first.code == 0
    _seed(pipe, "orders", 1_000, append=True)
    assert pipe.sync("--wait", "--extract-only").code == 0  # one part awaits load
    table = pipe.table("orders")
    prefix = naming.table_prefix("ferry", pipe.name, table)
    # 1,100 objects of an attempt of chunk 0 that never committed, and a sibling table's object.
    stray = naming.attempt_prefix(prefix, first.report["run_id"], 0, naming.new_attempt_id(1))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: pipe.store.put(f"{stray}part-{i:05d}.parquet", b"x"), range(1_100)))
    sibling = naming.table_prefix("ferry", pipe.name, pipe.table("orders_old")) + "keep.parquet"
    pipe.store.put(sibling, b"x")

    listed = pipe.ferry("s3clean", "list", "-p", pipe.name, "-t", table)
    assert listed.returncode == 0, listed.stderr
    counts = _counts(listed.stdout)
    assert counts["awaiting load"] == 1 and counts["loaded"] == 2 and counts["orphaned"] == 1_100
    assert counts["run metadata"] >= 5  # two plans, three markers
    dry = pipe.ferry("s3clean", "clean", "-p", pipe.name, "-t", table, "--older-than", "0s", "--dry-run")
    assert "would delete 1102 objects" in dry.stdout
    assert pipe.ferry("s3clean", "clean", "-p", pipe.name, "-t", table).returncode == 2  # needs --yes
    done = pipe.ferry("s3clean", "clean", "-p", pipe.name, "-t", table, "--older-than", "0s", "--yes")
    assert done.returncode == 0 and "deleted 1102 objects" in done.stdout
    after = _counts(pipe.ferry("s3clean", "list", "-p", pipe.name, "-t", table).stdout)
    assert (after["awaiting load"], after["loaded"], after["orphaned"]) == (1, 0, 0)
    assert any(k == sibling for k, _ in pipe.store.list(sibling))
    assert pipe.sync("--wait", "--load-only").code == 0
    assert pipe.assert_synced("orders") == 3_000
