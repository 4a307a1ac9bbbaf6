import importlib

import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.conftest_stripe"]

_seed_migration = importlib.import_module("credits.migrations.0002_seed_packages_and_append_only")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Let the test database TRUNCATE the books: pytest-django flushes every table
    between transactional tests, which the append-only triggers refuse elsewhere."""
    from django.db import connection, connections

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            f'ALTER DATABASE "{connection.settings_dict["NAME"]}" SET books.allow_truncate = on'
        )
        cursor.execute("SET books.allow_truncate = on")
    connections.close_all()  # new connections pick the setting up
    yield


@pytest.fixture(autouse=True)
def _seeded_packages(request):
    """Transactional tests flush every table, seeds included: put the packages and
    the books' fixed accounts back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    from books.services import ensure_fixed_accounts

    _seed_migration.seed_packages(apps, None)
    ensure_fixed_accounts()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture(autouse=True)
def _fresh_artist_pages():
    """Artist pages held in memory (tracks.catalog) are the process's: a test's rolled
    back versions and slugs must not meet the next test's."""
    from tracks import catalog

    catalog.forget()
    yield
    catalog.forget()
