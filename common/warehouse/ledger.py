"""The load ledger: one row per loaded part, written in the load's transaction, so a part
counts as loaded exactly when the warehouse committed it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy.engine import Connection

from common.model import naming
from common.model.records import PendingPart
from common.warehouse import sql
from common.warehouse.execute import WarehouseBase
from common.warehouse.request import LoadRequest


class Ledger(WarehouseBase):
    def ledger_parts(self, pipeline: str, table: str, target_table: str) -> dict[str, int]:
        """part key -> rows of every part the table's ledger records as loaded."""
        ledger = naming.ledger_table_name(target_table)
        with self.engine.connect() as conn:
            if not self._exists(conn, sql.table_exists(self.schema, ledger)):
                return {}
            rows = conn.exec_driver_sql(sql.ledger_all(self.schema, ledger), (pipeline, table))
            return {r[0]: int(r[1]) for r in rows}

    def _write_ledger(self, conn: Connection, ledger: str, request: LoadRequest,
                      parts: Sequence[PendingPart]) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for start in range(0, len(parts), 500):
            batch = parts[start:start + 500]
            params: list[Any] = []
            for p in batch:
                params += [request.pipeline, request.table, request.target_table, p.key, p.run_id,
                           p.chunk, p.rows, p.bytes, request.load_id, now]
            conn.exec_driver_sql(sql.ledger_insert(self.schema, ledger, len(batch)), tuple(params))
