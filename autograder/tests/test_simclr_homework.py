"""Graded unit tests of simclr_homework.ipynb (CMU HW5): every code task of DESIGN.md's contract.

The tests live one task per module in ``tasks/`` (ssl_methods shares four tasks); this module
collects the classes of this assignment's tasks from the registry
(`autograder.contract.ASSIGNMENTS`). The checkpoint (`simclr_lin_best.pt` against the
75 % / 85 % thresholds) is graded by ``test_checkpoint.py``. Points sit on the tests
(`autograder.tests.tasks.unit_points`).
"""

import pytest

from autograder.tests.tasks import suite

pytestmark = pytest.mark.assignment("simclr_homework")

_SUITE = suite("simclr_homework")
globals().update(_SUITE)
__all__ = list(_SUITE)
