"""Amazon Redshift: COPY ... FORMAT AS PARQUET from a manifest of the parts on S3."""
from __future__ import annotations

import json
from typing import Sequence

from sqlalchemy.engine import Connection, Engine

from common.model import naming
from common.errors import RefusedError, TerminalError, TransientError, classify, redact, refusal
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
            refused = refusal(exc)
            if refused is not None:  # the data: this range waits, the others load
                raise RefusedError(redact(str(refused)), refused.column) from None
            cls = TransientError if isinstance(classify(exc), TransientError) else TerminalError
            raise cls(redact(f"warehouse: {exc}")) from None


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
