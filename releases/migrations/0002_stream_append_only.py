"""Make the stream append-only in the database itself."""

from __future__ import annotations

from django.db import migrations

from releases import immutability


def install(apps, schema_editor):
    immutability.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    immutability.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("releases", "0001_stream")]
    operations = [migrations.RunPython(install, uninstall)]
