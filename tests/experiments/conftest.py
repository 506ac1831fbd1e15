"""Fixtures for the experiment and REST-contract tests.

alice owns, bob operates, charlie views; dave is no member; root is staff.
"""

import pytest

from experiments.models import Role


@pytest.fixture
def team(alice, bob, charlie, dave, staff):
    return {"owner": alice, "operator": bob, "viewer": charlie, "non_member": dave, "staff": staff}


@pytest.fixture
def members(bob, charlie):
    """The members every experiment of these tests gets besides its owner."""
    return {bob: Role.OPERATOR, charlie: Role.VIEWER}
