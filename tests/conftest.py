import importlib

import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.conftest_stripe"]

_seed_migration = importlib.import_module("credits.migrations.0002_seed_packages_and_append_only")


@pytest.fixture(autouse=True)
def _seeded_packages(request):
    """Transactional tests flush every table, seeds included: put the packages back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    _seed_migration.seed_packages(apps, None)


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()
