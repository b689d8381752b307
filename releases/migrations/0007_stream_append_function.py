"""Append on PostgreSQL through one function, so the append lock spans a single statement."""

from __future__ import annotations

from django.db import migrations

from releases import append_sql


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(append_sql.INSTALL)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(append_sql.UNINSTALL)


class Migration(migrations.Migration):
    dependencies = [("releases", "0006_roles")]
    operations = [migrations.RunPython(install, uninstall)]
