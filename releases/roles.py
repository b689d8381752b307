"""The least-privilege database role the application connects as, on PostgreSQL.

Migrations run as the tables' owner; the application runs as a role that may only SELECT and
INSERT on the stream (never UPDATE, DELETE or TRUNCATE, and, not being the owner or a
superuser, never ALTER it to disable its triggers), and read and write the projections. It
may TRUNCATE the release projections alone, which a rebuild empties at once.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from releases.immutability import TABLE

# The tables `projector.bulk_rebuild` empties: projections only, never the stream.
TRUNCATABLE = ("releases_timelineentry", "releases_release", "releases_knowntag")


def grant_statements(role: str) -> list[sql.Composable]:
    """Return the GRANTs that give `role` what the application needs, and no more."""
    name = sql.Identifier(role)
    stream = sql.Identifier(TABLE)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        # Everything else first, then take back what the stream must never allow.
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            name
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
        sql.SQL("REVOKE ALL ON {} FROM {}").format(stream, name),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(stream, name),
        sql.SQL("GRANT TRUNCATE ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(table) for table in TRUNCATABLE), name
        ),
    ]


def ensure_role(connection: BaseDatabaseWrapper, role: str, password: str | None = None) -> None:
    """Create `role` if it is missing (as a login role) and grant it the application's rights."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            statement: sql.Composable = sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            ).format(sql.Identifier(role))
            if password:
                statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
            cursor.execute(statement)
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.settings_dict["NAME"]), sql.Identifier(role)
            )
        )
        for statement in grant_statements(role):
            cursor.execute(statement)
