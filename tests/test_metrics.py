"""`ferry metrics`: ferry's own Prometheus metrics from the state in Redis, behind basic
auth, checked against `ferry watermark get` during and after a run."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.state import faults
from tests.conftest import Pipe
from tests.services import REPO, free_port, wait_for
from tests.test_sync import _seed

AUTH = "prom:metrics-Pass-1"


def _scrape(port: int, auth: bool = True) -> tuple[int, dict[tuple[str, tuple], float]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(AUTH.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except urllib.error.URLError:
        return 0, {}
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return 200, values


def _of(values: dict, name: str, pipeline: str, table: str, **extra: str) -> float | None:
    return values.get((name, tuple(sorted({"pipeline": pipeline, "table": table, **extra}.items()))))


def test_metrics_match_the_state_during_and_after_a_run(pipe: Pipe, workers: list, log_dir: Path) -> None:
    refused = pipe.ferry("metrics", "--port", str(free_port()))
    assert refused.returncode == 2 and "FERRY_METRICS_BASIC_AUTH" in refused.stderr
    _seed(pipe, "orders", 3_000)
    pipe.execute("CREATE TABLE events (id INT NOT NULL PRIMARY KEY, at DATETIME(6) NOT NULL, KEY (at))",
                 "INSERT INTO events VALUES (1, NOW(6) - INTERVAL 120 SECOND), (2, NOW(6) - INTERVAL 60 SECOND)")
    pipe.write({"orders": {}, "events": {"strategy": "timestamp", "cursor": "at", "lag_s": 0, "lookback_s": 0}},
               chunk_rows=1000)
    table, events = pipe.table("orders"), pipe.table("events")
    st = pipe.state("orders")
    faults.inject(st.r, pipe.name, table, 2, 1, "sleep", 6)
    faults.inject(st.r, pipe.name, table, 1, 1, "transient")
    port = free_port()
    log = open(log_dir / "metrics.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ferry", "metrics", "--port", str(port)],
                            env=dict(pipe.env, FERRY_METRICS_BASIC_AUTH=AUTH), cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _scrape(port)[0] == 200, 60, "ferry metrics")
        assert _scrape(port, auth=False)[0] == 401
        assert pipe.ferry("sync", "-p", pipe.name, "-t", table).returncode == 0
        wait_for(lambda: bool(st.runs()) and sum(c.state != "pending" for c in st.chunks(st.runs()[-1])) == 2,
                 60, "two chunks committed")
        _, during = _scrape(port)
        assert _of(during, "ferry_run_active", pipe.name, table) == 1
        assert _of(during, "ferry_run_chunks_pending", pipe.name, table) == 1
        assert _of(during, "ferry_rows_extracted_total", pipe.name, table) == 2_000
        assert _of(during, "ferry_parts_awaiting_load", pipe.name, table) == 2
        assert _of(during, "ferry_rows_awaiting_load", pipe.name, table) == 2_000
        assert _of(during, "ferry_seconds_since_last_success", pipe.name, table) is None  # never succeeded
        wait_for(lambda: st.lock_owner() is None, 60, "the run's end")
        assert pipe.sync("--wait", "-t", events).code == 0
        _, after = _scrape(port)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    got = json.loads(pipe.ferry("watermark", "get", "-p", pipe.name, "-t", table, "--json").stdout)
    assert _of(after, "ferry_rows_extracted_total", pipe.name, table) == got["rows_extracted"] == 3_000
    assert _of(after, "ferry_rows_loaded_total", pipe.name, table) == got["rows_loaded"] == 3_000
    assert _of(after, "ferry_parts_awaiting_load", pipe.name, table) == got["parts_awaiting_load"] == 0
    assert _of(after, "ferry_run_active", pipe.name, table) == 0
    assert _of(after, "ferry_runs_total", pipe.name, table, status="succeeded") == 1
    assert _of(after, "ferry_runs_total", pipe.name, table, status="failed") == 0
    assert _of(after, "ferry_chunk_attempts_total", pipe.name, table) == 4  # chunk 1 twice
    assert _of(after, "ferry_chunk_failures_total", pipe.name, table) == 1
    assert 0 <= _of(after, "ferry_seconds_since_last_success", pipe.name, table) < 60
    # The timestamp table's cursor is the newest row, about 60 s behind the source clock.
    assert 55 <= _of(after, "ferry_cursor_lag_seconds", pipe.name, events) < 120
    assert _of(after, "ferry_cursor_lag_seconds", pipe.name, table) is None  # an id cursor has no lag


def test_alert_rules_are_valid() -> None:
    """deploy/alerts.yml: every rule has an expression over ferry's metrics, a duration and a
    summary; promtool checks it where it is installed."""
    import shutil

    path = REPO / "deploy" / "alerts.yml"
    doc = yaml.safe_load(path.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {"FerryTableStale", "FerryLoadBacklogGrowing", "FerryRunsFailing", "FerryRunStalled",
            "FerryReconcilePassOverdue"} <= names
    for r in rules:
        assert "ferry_" in r["expr"] and r["for"] and r["annotations"]["summary"]
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
