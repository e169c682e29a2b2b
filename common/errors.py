"""ferry's error hierarchy: every error says whether retrying can help."""
from __future__ import annotations

import re


class FerryError(Exception):
    """Base of every error ferry raises on purpose."""


class TerminalError(FerryError):
    """Retrying cannot help: bad config, schema conflict, unsupported type."""


class TransientError(FerryError):
    """A retry with backoff may succeed: connection lost, throttled, deadlock."""


class ConfigError(TerminalError):
    """A config file is missing, unreadable or invalid; the message names file and key."""


class SchemaError(TerminalError):
    """The source table cannot be mapped; the message names table and column."""


class RefusedError(TerminalError):
    """The warehouse refused the data of a part (a value its column cannot take, a constraint,
    a key that is not unique): retrying the same rows cannot help, other rows still load."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class StateError(TerminalError):
    """Redis state contradicts the request (unknown run, lock held by another run)."""


class LockedError(StateError):
    """The table already has an active run."""

    def __init__(self, table: str, run_id: str) -> None:
        super().__init__(f"table {table} is locked by active run {run_id}")
        self.table = table
        self.run_id = run_id


_SECRET = re.compile(r"\b(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|CREDENTIALS|PASSWORD)\s+'[^']*'",
                     re.IGNORECASE)


_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove credentials that SQL text or a URL inside a message may carry."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:***@", text)
    return _SECRET.sub(lambda m: f"{m.group(1)} '***'", text)


# MySQL error numbers that mean "try again": too many connections (1040), server shutting
# down (1053), aborted or broken connections (1152-1161), lock wait timeout (1205), deadlock
# (1213), query interrupted by KILL QUERY (1317), connection killed (1927), lost or refused
# connections (2002, 2003, 2006, 2013, 2055), idle client timeout (4031).
_MYSQL_TRANSIENT_ERRNO = {1040, 1053, 1152, 1153, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 2002,
                          2003, 2006, 2013, 2055, 4031}
# ... and those that retrying cannot fix: access denied (1044, 1045, 1698), unknown database
# (1049), missing privileges (1142, 1143, 1227, 1370), an authentication plugin it cannot use (2059).
_MYSQL_TERMINAL_ERRNO = {1044, 1045, 1049, 1142, 1143, 1227, 1370, 1698, 2059}
# PostgreSQL/Redshift messages of the same kind (their OperationalError covers both).
_WAREHOUSE_TERMINAL = re.compile(r"password authentication failed|no pg_hba\.conf entry|role \S+ does not exist|"
                                 r"database \S+ does not exist|permission denied|authentication failed",
                                 re.IGNORECASE)
_S3_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
    "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed",
}


# SQLSTATE classes of a statement refused for its data: 22 data exception (a value out of
# range, too long, invalid text), 23 integrity constraint violation (NOT NULL, CHECK, unique).
_REFUSED_SQLSTATE_CLASSES = ("22", "23")
# Redshift: "If the COPY encounters errors, an error message directs you to consult the
# STL_LOAD_ERRORS table for details" (system-tables-for-troubleshooting-data-loads.html);
# the message's exact text is not on any page: test_redshift_live.py::
# test_a_refused_range_waits_on_redshift is the proof.
_REDSHIFT_LOAD_FAILED = re.compile(r"Load into table '[^']*' failed|Spectrum Scan Error|Invalid digit|"
                                   r"Overflow, |Numeric data overflow", re.IGNORECASE)
_COLUMN_IN_MESSAGE = re.compile(r"""column ["']?([A-Za-z0-9_$]+)["']?""")
# A Parquet COPY whose file's column types do not fit the table's: Redshift Spectrum's error
# 15007, "File '…' has an incompatible Parquet schema for column '…'" (the text is cut in
# the client's message). ferry writes both the parts and the staging table from one type
# map, so this is ferry's bug, not bad data: the run fails at once, it does not wait.
_PARQUET_SCHEMA_MISMATCH = re.compile(r"incompatible Parquet s|code:\s*15007\b", re.IGNORECASE)
_QUERY_ID = re.compile(r"\bquery:\s*(\d+)")


def parquet_schema_mismatch(exc: BaseException) -> str | None:
    """The warehouse's message if `exc` is a COPY refused for the parts' Parquet schema."""
    text = str(getattr(exc, "orig", None) or exc)
    return redact(" ".join(text.split())) if _PARQUET_SCHEMA_MISMATCH.search(text) else None


def query_id(exc: BaseException) -> int | None:
    """The query number a Redshift error's detail gives (`query: 146667179`), if any."""
    found = _QUERY_ID.search(str(getattr(exc, "orig", None) or exc))
    return int(found.group(1)) if found else None


def refusal(exc: BaseException) -> RefusedError | None:
    """The warehouse's refusal of the data, if that is what `exc` is (None otherwise: a lost
    connection, a permission, a bug). The column is named where the message names one."""
    if isinstance(exc, RefusedError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    module = type(orig).__module__ or ""
    if not module.startswith("psycopg"):  # (psycopg 3 and psycopg2)
        return None
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    text = str(orig).strip()
    if _PARQUET_SCHEMA_MISMATCH.search(text):
        return None
    if not (state[:2] in _REFUSED_SQLSTATE_CLASSES or _REDSHIFT_LOAD_FAILED.search(text)):
        return None
    found = _COLUMN_IN_MESSAGE.search(text)
    return RefusedError(redact(text.splitlines()[0] if text else type(orig).__name__),
                        found.group(1) if found else None)


def classify(exc: BaseException) -> BaseException:
    """Return a ferry error for a library exception (transient or terminal)."""
    if isinstance(exc, FerryError):
        return exc
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith(("mysql.connector", "_mysql_connector")):
        errno = getattr(exc, "errno", None)
        if errno in _MYSQL_TERMINAL_ERRNO:
            return TerminalError(f"MySQL: {exc} (retrying cannot help: check the user, password, "
                                 f"database and grants in connections.yml)")
        if errno in _MYSQL_TRANSIENT_ERRNO or name in ("OperationalError", "InterfaceError"):
            return TransientError(f"MySQL: {exc}")
        return TerminalError(f"MySQL: {exc}")
    if module.startswith(("botocore", "boto3", "urllib3")):
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _S3_TRANSIENT_CODES or status >= 500 or name.endswith(
            ("ConnectionError", "Timeout", "TimeoutError", "ConnectionClosedError")
        ) or "Endpoint" in name:
            return TransientError(f"S3: {exc}")
        return TerminalError(f"S3: {exc}")
    if module.startswith(("psycopg", "psycopg2", "sqlalchemy")):
        text = str(exc).lower()
        if _WAREHOUSE_TERMINAL.search(text):
            return TerminalError(f"warehouse: {redact(str(exc)).strip()} (retrying cannot help: check the "
                                 f"target's user, password, database and grants in connections.yml)")
        if name in ("OperationalError", "InterfaceError") or "deadlock" in text or "serializ" in text:
            return TransientError(f"warehouse: {redact(str(exc))}")
        return TerminalError(f"warehouse: {redact(str(exc))}")
    if module.startswith("redis") and name in ("ConnectionError", "TimeoutError", "BusyLoadingError"):
        return TransientError(f"Redis: {exc}")
    if module.startswith(("paramiko", "sshtunnel")) or isinstance(exc, EOFError):
        # An SSH session to a bastion that drops mid-handshake or mid-read: reopen and retry.
        return TransientError(f"SSH tunnel: {name}: {exc}")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return TransientError(str(exc))
    return exc
