"""The base class of ferry's tasks (light: the CLI imports it with the sync task)."""
from __future__ import annotations

from celery import Task

from common.errors import StateError, TransientError


class FerryTask(Task):
    """Base of ferry's tasks: arguments are names and ids only (Flower shows them)."""

    abstract = True
    # Expected in normal operation: logged as one line without a traceback (workers/logs.py).
    throws = (TransientError, StateError)
