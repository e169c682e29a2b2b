"""Loads that overlap extraction (load_every_mb): rows reach the target while the run still
extracts, always whole chunks, and the run's own load takes what is left."""
from __future__ import annotations

import json
import threading
import time

from common.state import faults
from tests.conftest import Pipe
from tests.test_sync import _seed


def test_loads_start_while_extraction_goes_on_and_the_target_only_holds_whole_chunks(
        pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 6_000)
    # About two chunks' parts (a 1,000-row chunk is about 48 KB) start an early load.
    pipe.write({"orders": {}}, chunk_rows=1000, load_every_mb=0.09)
    state = pipe.state("orders")
    table = pipe.table("orders")
    for n in (3, 4, 5):  # the last chunks read slowly: extraction goes on for seconds
        faults.inject(state.r, pipe.name, table, n, 1, "sleep", 6)
    result: list = []
    runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=120)))
    runner.start()
    seen_while_extracting: list[int] = []
    status_loaded: list[int] = []
    pg = pipe.pg()
    deadline = time.time() + 60
    while runner.is_alive() and time.time() < deadline:
        runs = state.runs()
        if runs and state.run_meta(runs[-1]).get("status") == "extracting":
            exists = pg.execute("SELECT to_regclass(%s)", (f'"{pipe.db}".orders',)).fetchone()[0]
            count = pg.execute(f'SELECT COUNT(*) FROM "{pipe.db}".orders').fetchone()[0] if exists else 0
            if state.run_meta(runs[-1]).get("status") == "extracting":
                seen_while_extracting.append(count)
                # `ferry status` shows rows loaded as they land (the warehouse commits a load a
                # moment before Redis counts it: asked again until it does, while extracting).
                if count and not any(status_loaded):
                    doc = json.loads(pipe.ferry("status", "-p", pipe.name, "--json").stdout)
                    active = doc["pipelines"][pipe.name][table].get("active_run")
                    if active is not None:  # (not when the run ended while the CLI started)
                        status_loaded.append(active.get("rows_loaded", 0))
        time.sleep(0.1)
    runner.join(120)
    assert result and result[0].code == 0, result[0].stderr if result else "no result"
    assert max(seen_while_extracting) >= 2000, seen_while_extracting  # loaded while chunks 3-5 still read
    assert all(n % 1000 == 0 for n in seen_while_extracting), "only whole chunks ever reach the target"
    assert status_loaded and max(status_loaded) >= 1000, status_loaded
    with pipe.pg() as conn:
        loads = conn.execute(f'SELECT COUNT(DISTINCT load_id) FROM "{pipe.db}".orders__ferry_ledger').fetchone()[0]
    assert loads >= 2
    assert result[0].report["table_metrics"][table]["rows_loaded"] == 6_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "6000"
    assert pipe.assert_synced("orders") == 6_000
