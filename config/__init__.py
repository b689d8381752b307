"""Shiplog's Django project: settings, URLs, Celery and WSGI entry points."""

from __future__ import annotations

from config.celery import app as celery_app

__all__ = ["celery_app"]
