"""What the operator commands ask of the database before they touch it."""

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def require_migrated(alias: str = DEFAULT_DB_ALIAS) -> None:
    """A clear error, instead of a traceback from the first query, when the database is
    missing tables: a fresh SQLite file or a new PostgreSQL database not migrated yet."""
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _backwards in pending[:3])
        more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
        raise CommandError(
            f"The database ({connection.settings_dict['NAME']}) has {len(pending)} unapplied migration(s): "
            f"{names}{more}. Run `manage.py migrate` first."
        )
