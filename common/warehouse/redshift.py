"""Amazon Redshift: COPY ... FORMAT AS PARQUET from a manifest of the parts on S3."""
from __future__ import annotations

import json
from typing import Sequence

from sqlalchemy.engine import Connection, Engine

from common.model import naming
from common.errors import (RefusedError, TerminalError, TransientError, classify, parquet_schema_mismatch,
                           query_id, redact, refusal)
from common.store.s3 import Store
from common.model.types import TableSchema
from common.warehouse import sql
from common.warehouse.base import Warehouse
from common.warehouse.execute import run_statement
from common.warehouse.request import LoadRequest
from common.model.records import PendingPart


def manifest(store: Store, parts: Sequence[PendingPart]) -> dict[str, object]:
    """A COPY manifest; Parquet manifests must give each file's content_length."""
    return {"entries": [{"url": store.url(p.key), "mandatory": True,
                         "meta": {"content_length": p.bytes}} for p in parts]}


class RedshiftWarehouse(Warehouse):
    dialect = sql.REDSHIFT

    def __init__(self, engine: Engine, schema: str, store: Store, credentials: str) -> None:
        super().__init__(engine, schema, store)
        # Never logged: the SQL that carries it is executed, not printed.
        self._credentials = credentials

    def stage(self, conn: Connection, into: str, schema: TableSchema, request: LoadRequest,
              parts: Sequence[PendingPart]) -> None:
        key = naming.manifest_key(request.table_prefix, f"{request.load_id}-{parts[0].run_id}")
        self.store.put(key, json.dumps(manifest(self.store, parts)).encode(),
                       metadata=naming.object_metadata(request.pipeline, request.table),
                       content_type="application/json")
        try:
            run_statement(conn, sql.copy_parquet(into, self.store.url(key), self._credentials))
        except Exception as exc:
            # The driver's message quotes the SQL, keys included: re-raise it redacted and
            # without the original attached, so no traceback or result carries them.
            mismatch = parquet_schema_mismatch(exc)
            if mismatch is not None:  # ferry's type map, not the data: the run fails now
                raise TerminalError(f"table {request.table}: Redshift read the parts' Parquet schema as incompatible "
                                    f"with the staging table ({self._detail(exc)[1] or 'no detail recorded'}): a "
                                    f"type-map bug in ferry, not bad data; please report it. Warehouse: "
                                    f"{mismatch}") from None
            refused = refusal(exc)
            if refused is not None:  # the data: this range waits, the others load
                column, detail = self._detail(exc)
                raise RefusedError(redact(str(refused) + (f" ({detail})" if detail else "")),
                                   refused.column or column) from None
            cls = TransientError if isinstance(classify(exc), TransientError) else TerminalError
            raise cls(redact(f"warehouse: {exc}")) from None

    def _detail(self, exc: BaseException) -> tuple[str | None, str]:
        """(column, why) Redshift refused the COPY, from its load-error tables (asked on a
        connection of its own: the load's transaction is aborted); (None, '') when none answers."""
        query = query_id(exc)
        if query is None:
            return None, ""
        for view, statement in sql.LOAD_ERROR_DETAIL:
            try:
                with self.engine.connect() as conn:
                    row = conn.exec_driver_sql(statement, (query,)).first()
            except Exception:  # noqa: BLE001 - a view this user may not read, or that Serverless lacks
                continue
            if row is not None:
                return row[0] or None, load_error_text(view, row[0], row[1])
        return None, ""


def load_error_text(view: str, column: str | None, reason: str | None) -> str:
    """One load-error row as the refusal says it: `column C: reason (view)`."""
    where = f"column {column}: " if column else ""
    return f"{where}{(reason or '').strip()} ({view})"


def copy_credentials(iam_role: str | None, access_key_id: str | None, secret_access_key: str | None,
                     session_token: str | None = None) -> str:
    """The credentials clause of COPY: an IAM role (`default`: the role set as the cluster's
    default, a keyword, never quoted), else access keys."""
    if iam_role:
        return "IAM_ROLE default" if iam_role.strip().lower() == "default" else f"IAM_ROLE '{iam_role}'"
    if access_key_id and secret_access_key:
        clause = f"ACCESS_KEY_ID '{access_key_id}' SECRET_ACCESS_KEY '{secret_access_key}'"
        return clause + (f" SESSION_TOKEN '{session_token}'" if session_token else "")
    raise ValueError("Redshift COPY needs iam_role in the target or access keys in the s3 section")
