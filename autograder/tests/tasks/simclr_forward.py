"""Graded tests of ``simclr_forward`` (SimCLRModel.forward): (repr, proj) on stand-in parts (with
gradients) and on the given ResNet-18.
"""

from __future__ import annotations

from typing import Any

import pytest

from autograder.tests.tasks.shared import ForwardTests


@pytest.mark.task("simclr_forward")
class TestSimCLRForward(ForwardTests):
    CLASS, PARTS, NAMES = "SimCLRModel", ("encoder", "projector"), "(repr, proj)"

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_forward_standins(self, student: Any, reference: Any) -> None:
        """repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both."""
        self._standin_case(student, reference, seed=31)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_forward_resnet(self, student: Any, reference: Any) -> None:
        """The same on the given ResNet-18 encoder and projection head (eval mode)."""
        self._real_case(student, reference, seed=32)
