"""A writer keeps inserting and updating rows (some in transactions held open across a
plan) while syncs run one after another; after it stops, one last sync makes the target
equal the source, row by row."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import Pipe
from tests.services import REPO
from tests.writer import DDL


def test_syncs_while_a_writer_works(pipe: Pipe, workers: list, log_dir) -> None:
    pipe.execute(DDL)
    pipe.execute("INSERT INTO live (val, note) SELECT seq, 'seed' FROM seq_1_to_2000")
    pipe.write({"live": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 1,
                         "lookback_s": 15}}, chunk_rows=400)
    out = log_dir / f"{pipe.name}-writer.json"
    writer = subprocess.Popen([sys.executable, "-m", "tests.writer", "--database", pipe.db,
                               "--seconds", "25", "--out", str(out)], cwd=REPO, env=pipe.env)
    syncs = 0
    try:
        while writer.poll() is None:
            result = pipe.sync("--wait")
            assert result.code == 0, result.stderr
            syncs += 1
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    time.sleep(1.5)  # past the lag: every committed row is now inside the next run's range
    last = pipe.sync("--wait")
    assert last.code == 0, last.stderr
    stats = json.loads(out.read_text())
    rows = pipe.assert_synced("live")
    print(f"\nwriter: {stats}; {syncs} syncs while it ran; {rows} rows compared")
    assert syncs >= 3 and stats["held_transactions"] >= 1
    assert rows == 2000 + stats["inserted"]
