"""Graded tests of ``byol_forward`` (BYOLModel.forward): (repr, proj, pred) on stand-in parts (with
gradients) and on the given ResNet-18.
"""

from __future__ import annotations

from typing import Any

import pytest

from autograder.tests.tasks.shared import ForwardTests


@pytest.mark.task("byol_forward")
class TestBYOLForward(ForwardTests):
    CLASS, PARTS, NAMES = "BYOLModel", ("encoder", "projector", "predictor"), "(repr, proj, pred)"

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_forward_standins(self, student: Any, reference: Any) -> None:
        """repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three."""
        self._standin_case(student, reference, seed=61)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_forward_resnet(self, student: Any, reference: Any) -> None:
        """The same on the given ResNet-18 encoder, projector and predictor (eval mode)."""
        self._real_case(student, reference, seed=62)
