"""Create the two roles of the web UI: maintainers act, viewers read."""

from __future__ import annotations

from django.db import migrations

ROLES = ("maintainers", "viewers")


def create_roles(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("releases", "0005_retry_attempts"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
