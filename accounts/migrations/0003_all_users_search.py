"""Trigram indexes for the All users search (PostgreSQL only).

The search is `UPPER(column) LIKE UPPER('%term%')` (Django's icontains): a
B-tree cannot serve a leading wildcard, a pg_trgm GIN index on the same
expression can. On SQLite the search scans the table, which is fine at the
sizes SQLite is used for. CONCURRENTLY (hence atomic = False) so adding the
indexes to a live table with a million users does not block logins.
"""

from django.db import migrations

INDEXES = {
    "accounts_user_email_trgm": "UPPER(email::text) gin_trgm_ops",
    "accounts_user_name_trgm": "UPPER(name::text) gin_trgm_ops",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
            f"ON accounts_user USING gin ({expression})"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0002_user_list_indexes"),
    ]

    operations = [
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
