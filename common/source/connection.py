"""Connections to the MySQL source: opened with ferry's session settings (UTC, autocommit,
timeouts), the server's version and clock."""
from __future__ import annotations

from datetime import timezone
from typing import Any, Sequence

import mysql.connector

from common.model import zones
from common.config.connections import SourceConfig
from common.errors import SchemaError


def connect(src: SourceConfig, **overrides: Any) -> Any:
    """Open a connection (C extension) in UTC with autocommit: each SELECT is its own snapshot.
    `overrides` replace connect arguments (a tunnel's local host and port)."""
    args: dict[str, Any] = dict(host=src.host, port=src.port, user=src.user, password=src.password,
                                charset="utf8mb4", use_pure=False, autocommit=True)
    if src.database:
        args["database"] = src.database
    if src.read_timeout_s:
        args["read_timeout"] = src.read_timeout_s
    args.update(src.options)
    args.update(overrides)
    conn = mysql.connector.connect(**args)
    cur = conn.cursor()
    # UTC so TIMESTAMP values arrive unshifted; a generous write timeout because
    # the server waits on us while a batch is converted and uploaded.
    settings = "SET time_zone = '+00:00', net_write_timeout = 600, net_read_timeout = 600"
    if src.max_execution_time_ms:
        limit = int(src.max_execution_time_ms)
        # MariaDB names it max_statement_time (seconds); MySQL max_execution_time (ms, SELECTs).
        settings += (f", max_statement_time = {limit / 1000:.3f}" if is_mariadb(conn)
                     else f", max_execution_time = {limit}")
    cur.execute(settings)
    cur.close()
    return conn


def is_mariadb(conn: Any) -> bool:
    """The server is MariaDB (not MySQL): its per-statement settings and limits differ."""
    return "mariadb" in str(conn.server_info).lower()


def server_version(conn: Any) -> str:
    return str(fetch(conn, "SELECT VERSION()", ())[0][0])


def fetch(conn: Any, sql: str, params: Sequence[Any], dictionary: bool = False) -> list[Any]:
    cur = conn.cursor(dictionary=dictionary)
    try:
        cur.execute(sql, tuple(params))
        return cur.fetchall()
    finally:
        cur.close()


def datetime_zone(conn: Any, configured: str | None) -> tuple[str, Any]:
    """(name, tzinfo) of the zone DATETIME values are written in: the configured one, else
    the server's @@global.time_zone. tzinfo is None when Python cannot resolve the name,
    and always for SYSTEM: @@system_time_zone is only an abbreviation ('CET', 'EDT') that
    does not say which rules apply. Then MySQL converts the clock (see clock())."""
    if configured:
        return configured, zones.resolve(configured)
    name, system = fetch(conn, "SELECT @@global.time_zone, @@system_time_zone", ())[0]
    name = name.decode() if isinstance(name, (bytes, bytearray)) else str(name)
    if name.upper() == "SYSTEM":
        system = system.decode() if isinstance(system, (bytes, bytearray)) else str(system or "")
        return f"SYSTEM ({system})", timezone.utc if system.upper() in ("UTC", "GMT") else None
    return name, zones.resolve(name)


def clock(conn: Any, for_timestamp_column: bool, configured_zone: str | None = None) -> Any:
    """The source's current time as its cursor values are written.

    TIMESTAMP values arrive in the session's zone (UTC); DATETIME values are naive, written
    in the zone the source config names (datetime_time_zone), else the server's zone.
    """
    if for_timestamp_column:
        return fetch(conn, "SELECT NOW(6)", ())[0][0]
    name, zone = datetime_zone(conn, configured_zone)
    if zone is not None:
        return zones.to_local(fetch(conn, "SELECT UTC_TIMESTAMP(6)", ())[0][0], zone)
    # A name only the server knows (its time zone tables): let it convert.
    target = "@@global.time_zone" if configured_zone is None else "%s"
    now = fetch(conn, f"SELECT CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', {target})",
                 (configured_zone,) if configured_zone else ())[0][0]
    if now is None:
        raise SchemaError(f"source cannot convert to time zone {name}: use an offset like "
                          f"'+01:00' or an IANA name like 'Europe/Paris' in datetime_time_zone")
    return now


