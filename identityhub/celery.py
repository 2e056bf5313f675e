"""Celery application: `celery -A identityhub worker` / `celery -A identityhub beat`."""

import os

from celery import Celery

from .broker import harden_filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "identityhub.settings")

harden_filesystem_broker()  # before any message is written or read (the broker's default without Redis)
app = Celery("identityhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
