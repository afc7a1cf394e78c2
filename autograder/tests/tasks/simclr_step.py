"""Graded tests of ``simclr_step`` (simclr_train_step): one and two SimCLR steps on a stand-in model,
the returned loss a Python float.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from autograder.tests.tasks.shared import StepTests, check_returned_floats


@pytest.mark.task("simclr_step")
class TestSimCLRStep(StepTests):
    METHOD, FN, LOSS, KWARGS = "simclr", "simclr_train_step", "nt_xent", {"tau": 0.3}

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: the returned loss and the parameters after the update (tau passed on)."""
        self._steps(student, reference, steps=1, seed=51)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any, draw: Callable) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._steps(student, reference, steps=2, seed=draw(52))

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float(self, student: Any, reference: Any) -> None:
        """The step returns the loss as a Python float."""
        check_returned_floats(student, reference, self._kwargs(1, 53), f"the value returned by {self.FN}")
