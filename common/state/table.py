"""All of one pipeline table's state in Redis, one concern per class: locks (locks.py), runs
and sessions (runs.py), segments (segments.py), chunks (chunks.py), parts (parts.py), the
table's own hash (status.py), retention (retention.py), rebuild's restore (restore.py);
refused ranges (refused.py), reconcile passes (reconcile.py).

Every multi-key change goes through one of the Lua scripts in common/state/lua/ (registered
once per process, scripts.py) or one MULTI, inside this package: nothing else talks to Redis.
"""
from __future__ import annotations

from common.state.reconcile import Reconciles
from common.state.refused import Refusals
from common.state.restore import Restore
from common.state.retention import Retention
from common.state.segments import Segments


class TableState(Retention, Segments, Restore, Reconciles):
    """A pipeline table's state: every concern's methods, on one Redis client."""

    def refusals(self) -> Refusals:
        """The table's refused and skipped ranges."""
        return Refusals(self.r, self.pipeline, self.table)
