"""A worker's own view of itself: versions and whether the fast MySQL driver is loaded."""
from __future__ import annotations

import os
import socket
from typing import Any

import mysql.connector
import pyarrow

from tasks.celery import app


@app.task(name="ferry.health", bind=True)
def health(self: Any) -> dict[str, Any]:
    """Facts about the pool process that runs it (mysql.connector's C extension above all)."""
    return {"worker": self.request.hostname, "host": socket.gethostname(), "pid": os.getpid(),
            "mysql_cext": bool(mysql.connector.HAVE_CEXT),
            "mysql_connector": mysql.connector.__version__, "pyarrow": pyarrow.__version__}
