"""Every Redis key of one pipeline table, built from naming (the one home of names); the
table's own keys once per TableKeys."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from common.model import naming


@dataclass(frozen=True)
class TableKeys:
    pipeline: str
    table: str

    @cached_property
    def state(self) -> str:
        return naming.table_state_key(self.pipeline, self.table)

    @cached_property
    def lock(self) -> str:
        return naming.table_lock_key(self.pipeline, self.table)

    @cached_property
    def load_lock(self) -> str:
        return naming.load_lock_key(self.pipeline, self.table)

    @cached_property
    def early_load(self) -> str:
        return naming.early_load_key(self.pipeline, self.table)

    @cached_property
    def pending(self) -> str:
        return naming.pending_parts_key(self.pipeline, self.table)

    @cached_property
    def runs(self) -> str:
        return naming.runs_key(self.pipeline, self.table)

    @cached_property
    def schema(self) -> str:
        return naming.table_schema_key(self.pipeline, self.table)

    @cached_property
    def orphans(self) -> str:
        return naming.orphans_key(self.pipeline, self.table)

    @cached_property
    def schema_log(self) -> str:
        return naming.schema_log_key(self.pipeline, self.table)

    @cached_property
    def refused(self) -> str:
        return naming.refused_key(self.pipeline, self.table)

    @cached_property
    def reconcile(self) -> str:
        return naming.reconcile_key(self.pipeline, self.table)

    @cached_property
    def skipped(self) -> str:
        return naming.skipped_key(self.pipeline, self.table)

    @cached_property
    def faults(self) -> str:
        return naming.faults_key(self.pipeline, self.table)

    @cached_property
    def pattern(self) -> str:
        return naming.table_pattern(self.pipeline, self.table)

    def meta(self, run_id: str) -> str:
        return naming.run_meta_key(self.pipeline, self.table, run_id)

    def chunks(self, run_id: str) -> str:
        return naming.run_chunks_key(self.pipeline, self.table, run_id)

    def attempts(self, run_id: str) -> str:
        return naming.run_attempts_key(self.pipeline, self.table, run_id)

    def session(self, run_id: str, session: int) -> str:
        return naming.run_session_key(self.pipeline, self.table, run_id, session)

    def segments(self, run_id: str, session: int) -> str:
        return naming.run_segments_key(self.pipeline, self.table, run_id, session)
