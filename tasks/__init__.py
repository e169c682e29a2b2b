"""Celery tasks, one module per stage of a run: plan.py, extract.py, load.py (and failed.py,
the chord's error callback). `celery -A tasks worker` finds the app here."""
import common  # noqa: F401  (imports mysql.connector before pyarrow)
import workers.logs  # noqa: F401  (connects the log format before Celery sets up logging)
import workers.broker  # noqa: F401  (a worker that survives a Redis restart)
from tasks.celery import app

__all__ = ["app"]
