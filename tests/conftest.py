import pytest

from tests.factories import UserFactory

pytest_plugins = ["tests.conftest_stripe"]


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()
