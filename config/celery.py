"""Create the Celery application and load its settings from Django's."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("shiplog")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
