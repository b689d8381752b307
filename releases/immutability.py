"""Database triggers that make the stream append-only, on PostgreSQL and on SQLite."""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "shiplog_stream"

POSTGRES_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{TABLE} is append-only: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$
    """,
    # Statement-level, so an UPDATE or DELETE that matches no row is refused too.
    f"""
    CREATE TRIGGER {TABLE}_immutable
    BEFORE UPDATE OR DELETE OR TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse_change()
    """,
]
POSTGRES_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {TABLE}_immutable ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_refuse_change()",
]

# SQLite has no TRUNCATE; its DELETE without WHERE fires these row triggers like any other.
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END
    """,
]
SQLITE_UNINSTALL = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
]


def install_statements(vendor: str) -> list[str]:
    """Return the SQL that makes the stream append-only on this database."""
    return {"postgresql": POSTGRES_INSTALL, "sqlite": SQLITE_INSTALL}[vendor]


def uninstall_statements(vendor: str) -> list[str]:
    """Return the SQL that removes the triggers (migrations and test teardown only)."""
    return {"postgresql": POSTGRES_UNINSTALL, "sqlite": SQLITE_UNINSTALL}[vendor]


def suspend_statements(vendor: str) -> tuple[list[str], list[str]]:
    """Return (before, after) SQL that lifts the triggers around a test database flush.

    On PostgreSQL this needs the table's owner, which the application's role is not.
    """
    if vendor == "postgresql":
        return (
            [f"ALTER TABLE {TABLE} DISABLE TRIGGER {TABLE}_immutable"],
            [f"ALTER TABLE {TABLE} ENABLE TRIGGER {TABLE}_immutable"],
        )
    return uninstall_statements(vendor), install_statements(vendor)


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers on `connection`'s database."""
    with connection.cursor() as cursor:
        for statement in install_statements(connection.vendor):
            cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop the triggers from `connection`'s database."""
    with connection.cursor() as cursor:
        for statement in uninstall_statements(connection.vendor):
            cursor.execute(statement)
