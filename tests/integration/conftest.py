import os

import pytest

from tests.integration.servers import manage, postgres_database, production_env


@pytest.fixture(scope="session")
def postgres_env():
    """One migrated PostgreSQL database (and its server environment) for the whole run.

    Migrating takes most of the setup time, so the two-server and the outage
    tests share it; each creates its own users. Only for @pytest.mark.postgres
    tests, which tests/conftest.py skips on SQLite.
    """
    with postgres_database(f"portal_integration_{os.getpid()}") as database_url:
        env = production_env(DATABASE_URL=database_url)
        manage(env, "migrate", "--no-input", "--skip-checks", "-v0")
        yield env
