"""ferry's Prometheus metrics, read from the state in Redis at each scrape, so they are right
whichever worker did the work and survive any worker's restart.

Per pipeline and table: seconds since the last successful run, the cursor's lag behind the
source clock (timestamp cursors), rows extracted and loaded, parts and rows awaiting load,
runs by final status, chunk attempts and failures, and the active run's pending chunks.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from common.model import bounds
from common.config.pipeline import PipelineConfig
from common.config.files import load_pipeline
from common.config.settings import config_dir
from common.errors import FerryError
from common.state.refused import Refusals
from common.model.records import FINAL_STATUSES
from common.state.table import TableState

LABELS = ["pipeline", "table"]


def cursor_lag_s(state: TableState, lag_s: int, now: float) -> float | None:
    """Source clock minus the cursor, for a timestamp cursor: the latest run fixed its ceiling
    at (source clock − lag_s) when it was planned; the source clock has moved on by the wall
    time since. None without a cursor or a planned run."""
    cursor = state.cursor()
    runs = state.runs()
    if not cursor or not isinstance(cursor[0], datetime) or not runs:
        return None
    meta = state.run_meta(runs[-1])
    ceiling = bounds.decode(meta.get("ceiling"))
    if not ceiling or not isinstance(ceiling[0], datetime) or not meta.get("planned_at"):
        return None
    source_now = ceiling[0] + timedelta(seconds=lag_s + now - float(meta["planned_at"]))
    return max(0.0, (source_now - cursor[0]).total_seconds())


class FerryCollector:
    """A prometheus_client collector over every pipeline of the config directory."""

    def __init__(self, client: redis.Redis, directory: Path | None = None) -> None:
        self.client = client
        self.directory = directory

    def _pipelines(self) -> tuple[list[PipelineConfig], list[str]]:
        found, broken = [], []
        directory = config_dir(self.directory)
        for path in sorted((directory / "pipelines").glob("*.yml")):
            try:
                found.append(load_pipeline(path.stem, directory))
            except FerryError:
                broken.append(path.stem)
        return found, broken

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        g: dict[str, Any] = {
            "since": GaugeMetricFamily("ferry_seconds_since_last_success",
                                       "Seconds since the table's last successful run", labels=LABELS),
            "success": GaugeMetricFamily("ferry_last_success_timestamp_seconds",
                                         "When the table's last successful run ended", labels=LABELS),
            "lag": GaugeMetricFamily("ferry_cursor_lag_seconds",
                                     "Source clock minus the committed cursor (timestamp cursors)", labels=LABELS),
            "parts": GaugeMetricFamily("ferry_parts_awaiting_load", "Committed parts not yet loaded", labels=LABELS),
            "prows": GaugeMetricFamily("ferry_rows_awaiting_load", "Rows in parts not yet loaded", labels=LABELS),
            "refused": GaugeMetricFamily("ferry_refused_ranges",
                                         "Key ranges the warehouse refused that wait (ferry runs show)", labels=LABELS),
            "active": GaugeMetricFamily("ferry_run_active", "1 while a run holds the table's lock", labels=LABELS),
            "rec_since": GaugeMetricFamily("ferry_reconcile_seconds_since_complete_pass",
                                           "Seconds since the last complete reconcile pass over the table ended",
                                           labels=LABELS),
            "pending": GaugeMetricFamily("ferry_run_chunks_pending",
                                         "Chunks of the active run not committed yet", labels=LABELS),
            "progress": GaugeMetricFamily("ferry_run_seconds_since_progress",
                                          "Seconds since the active run's last chunk started or committed",
                                          labels=LABELS),
        }
        c: dict[str, Any] = {
            "extracted": CounterMetricFamily("ferry_rows_extracted", "Rows extracted (committed chunks)",
                                             labels=LABELS),
            "loaded": CounterMetricFamily("ferry_rows_loaded", "Rows loaded into the target", labels=LABELS),
            "skipped": CounterMetricFamily("ferry_rows_skipped", "Rows of refused ranges given up (skip-range)",
                                           labels=LABELS),
            "runs": CounterMetricFamily("ferry_runs", "Runs by the final status they reached",
                                        labels=LABELS + ["status"]),
            "rec_deleted": CounterMetricFamily("ferry_reconcile_rows_deleted",
                                               "Target rows a reconcile deleted (or soft-deleted): gone from the source",
                                               labels=LABELS),
            "rec_repaired": CounterMetricFamily("ferry_reconcile_rows_repaired",
                                                "Rows a reconcile copied again (missing or differing in the target)",
                                                labels=LABELS),
            "attempts": CounterMetricFamily("ferry_chunk_attempts", "Chunk attempts started", labels=LABELS),
            "failures": CounterMetricFamily("ferry_chunk_failures", "Chunk attempts that failed", labels=LABELS),
        }
        pipelines, broken = self._pipelines()
        for cfg in pipelines:
            for key in sorted(cfg.pipeline.tables):
                self._table(cfg.name, key, cfg.table(key).lag_s, now, g, c)
        bad = GaugeMetricFamily("ferry_pipeline_config_errors", "Pipeline files ferry cannot load")
        bad.add_metric([], len(broken))
        yield from g.values()
        yield from c.values()
        yield bad

    def _table(self, pipeline: str, key: str, lag_s: int, now: float, g: dict[str, Any],
               c: dict[str, Any]) -> None:
        st = TableState(self.client, pipeline, key)
        state = st.state()
        labels = [pipeline, key]
        if state.get("last_success_at"):
            success = float(state["last_success_at"])
            g["success"].add_metric(labels, success)
            g["since"].add_metric(labels, round(now - success, 3))
        lag = cursor_lag_s(st, lag_s, now)
        if lag is not None:
            g["lag"].add_metric(labels, round(lag, 3))
        pending = st.pending_parts()
        g["parts"].add_metric(labels, len(pending))
        g["prows"].add_metric(labels, sum(p.rows for p in pending))
        g["refused"].add_metric(labels, len(Refusals(self.client, pipeline, key).waiting()))
        owner = st.lock_owner()
        g["active"].add_metric(labels, 1 if owner else 0)
        chunks = st.chunks(owner) if owner else []
        g["pending"].add_metric(labels, sum(1 for ch in chunks if ch.state == "pending"))
        if owner:
            meta = st.run_meta(owner)
            last = max([ch.committed_at or 0 for ch in chunks] + [ch.started_at or 0 for ch in chunks]
                       + [float(meta.get("queued_at") or meta.get("planned_at") or now)])
            g["progress"].add_metric(labels, round(now - last, 3))
        c["extracted"].add_metric(labels, int(state.get("rows_extracted", 0)))
        c["loaded"].add_metric(labels, int(state.get("rows_loaded", 0)))
        c["skipped"].add_metric(labels, int(state.get("rows_skipped", 0)))
        for status in FINAL_STATUSES:
            c["runs"].add_metric(labels + [status], int(state.get(f"runs_{status}", 0)))
        rec = st.reconcile_state()
        c["rec_deleted"].add_metric(labels, int(rec.get("rows_deleted_total", 0)))
        c["rec_repaired"].add_metric(labels, int(rec.get("rows_repaired_total", 0)))
        since = st.seconds_since_complete_pass(now)
        if since is not None:
            g["rec_since"].add_metric(labels, round(since, 3))
        c["attempts"].add_metric(labels, int(state.get("chunk_attempts", 0)))
        c["failures"].add_metric(labels, int(state.get("chunk_failures", 0)))
