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


# MySQL client error numbers that mean "try again": lost or refused connection,
# server gone, lock wait timeout, deadlock, too many connections.
_MYSQL_TRANSIENT_ERRNO = {1040, 1205, 1213, 2002, 2003, 2006, 2013, 2055}
_S3_TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
    "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed",
}


def classify(exc: BaseException) -> BaseException:
    """Return a ferry error for a library exception (transient or terminal)."""
    if isinstance(exc, FerryError):
        return exc
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith(("mysql.connector", "_mysql_connector")):
        errno = getattr(exc, "errno", None)
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
