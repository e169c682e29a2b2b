"""connections.yml: the sources (MySQL, with an optional SSH tunnel), the targets (Redshift,
or PostgreSQL as a stand-in) and the S3 bucket, as typed models."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from common.config.base import Model as _Model




class SshTunnelConfig(_Model):
    """An SSH bastion through which the source is reached (key authentication only)."""

    host: str
    """The bastion's host name or address."""
    port: int = 22
    user: str
    private_key: Path
    """Path of the private key file (OpenSSH or PEM format)."""
    private_key_passphrase: str | None = None
    """Passphrase of the key, if it has one; write `${VAR}` to keep it out of the file."""
    known_hosts: Path = Path("~/.ssh/known_hosts")
    """OpenSSH known_hosts file that must hold the bastion's host key."""
    strict_host_key_checking: bool = True
    """false: accept any host key (logged once as a warning). Only for throwaway setups."""


class SourceConfig(_Model):
    """A MySQL/MariaDB server that ferry reads from."""

    host: str
    """Host name or address of the server (as seen from the bastion, with ssh_tunnel)."""
    port: int = 3306
    """TCP port."""
    database: str | None = None
    """Default database; tables are always named `schema.table` anyway."""
    user: str
    """User with SELECT on the tables and on information_schema."""
    password: str = ""
    """Password; write `${VAR}` to keep it out of the file."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for mysql.connector.connect (ssl_ca, connect_timeout, ...)."""
    datetime_time_zone: str | None = None
    """Zone that DATETIME cursor values are written in ('+00:00', 'Europe/Paris'); default:
    the server's time zone. Timestamp cursors' lag is measured on this clock."""
    ssh_tunnel: SshTunnelConfig | None = None
    """Reach the server through this SSH bastion."""
    max_concurrent_chunks: int | None = Field(None, gt=0)
    """At most this many chunk reads from this server at once, across all workers and hosts."""
    read_timeout_s: int | None = Field(None, gt=0)
    """A chunk read that receives nothing from the server for this long fails (and is retried)."""
    max_execution_time_ms: int | None = Field(None, gt=0)
    """Server-side limit on one chunk's SELECT (MySQL max_execution_time, MariaDB
    max_statement_time)."""
    reader: Literal["duckdb", "connector"] = "duckdb"
    """How chunks are read: DuckDB's mysql extension (binary protocol, columnar; a table or
    source it cannot read exactly falls back to the connector, logged) or mysql-connector-python
    (the text protocol). A table's `reader` overrides it."""


class PostgresTarget(_Model):
    """PostgreSQL: the local stand-in for Redshift; reads the same Parquet parts."""

    type: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = 5432
    database: str
    user: str
    password: str = ""
    schema_: str = Field("public", alias="schema")
    """Schema that holds target tables and the load ledger."""


class RedshiftTarget(_Model):
    """Amazon Redshift, loaded with COPY ... FORMAT AS PARQUET from a manifest."""

    type: Literal["redshift"]
    host: str
    port: int = 5439
    database: str
    user: str
    password: str = ""
    schema_: str = Field("public", alias="schema")
    """Schema that holds target tables and the load ledger."""
    iam_role: str | None = None
    """Role ARN for COPY, or `default` (the cluster's default IAM role); without it COPY uses
    the s3 section's keys."""
    region: str | None = None
    """The cluster's (or workgroup's) AWS region; unset: read from the host name
    (`….<region>.redshift.amazonaws.com`, `….<region>.redshift-serverless.amazonaws.com`).
    `ferry check` compares it with the bucket's: a Parquet COPY takes no REGION."""

    def cluster_region(self) -> str | None:
        if self.region:
            return self.region
        m = re.search(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.redshift(?:-serverless)?\.amazonaws\.com(?:\.cn)?$",
                      self.host.lower())
        return m.group(1) if m else None


TargetConfig = Annotated[Union[PostgresTarget, RedshiftTarget], Field(discriminator="type")]


class S3Config(_Model):
    """Where Parquet parts, manifests and reports are written."""

    bucket: str
    prefix: str = "ferry"
    """Key prefix under which every pipeline writes."""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """Only for S3-compatible servers (moto, MinIO); leave unset for AWS."""
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", v):
            raise ValueError(f"{v!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
        return v


class Connections(_Model):
    """connections.yml."""

    sources: dict[str, SourceConfig]
    targets: dict[str, TargetConfig]
    s3: S3Config
