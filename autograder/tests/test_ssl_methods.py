"""Graded tests of ssl_methods.ipynb (EPFL exercise 2): every task of DESIGN.md's contract.

The tests live one task per module in ``tasks/`` (simclr_homework shares four tasks); this
module collects the classes of this assignment's tasks from the registry
(`autograder.contract.ASSIGNMENTS`). Points sit on the tests (`autograder.tests.tasks.unit_points`).
"""

import pytest

from autograder.tests.tasks import suite

pytestmark = pytest.mark.assignment("ssl_methods")

_SUITE = suite("ssl_methods")
globals().update(_SUITE)
__all__ = list(_SUITE)
