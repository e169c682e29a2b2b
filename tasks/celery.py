"""The Celery app; its settings live in celeryconfig.py."""
from celery import Celery

app = Celery("ferry")
app.config_from_object("celeryconfig")
