"""Fixtures for the experiment and REST-contract tests.

alice owns, bob operates, charlie views; dave is no member; root is staff. Passwords are
hashed with a fast hasher here: the default (PBKDF2, a million rounds) costs most of a
second per user and would dominate the suite.
"""

import pytest
from django.contrib.auth.hashers import make_password

from experiments.models import Role

FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS
    make_password("warm-up")


@pytest.fixture
def team(alice, bob, charlie, dave, staff):
    return {"owner": alice, "operator": bob, "viewer": charlie, "non_member": dave, "staff": staff}


@pytest.fixture
def members(bob, charlie):
    """The members every experiment of these tests gets besides its owner."""
    return {bob: Role.OPERATOR, charlie: Role.VIEWER}
