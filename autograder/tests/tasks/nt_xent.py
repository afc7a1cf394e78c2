"""Graded tests of ``nt_xent`` (nt_xent): the NT-Xent loss's value for several shapes and temperatures,
and its gradients (compared on the tangent space of the unit sphere, so re-normalising inside the
loss is accepted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from autograder.tests.tasks.shared import loss_grads, loss_value, positive_pairs


@pytest.mark.task("nt_xent")
class TestNTXent:
    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_value(self, student: Any, reference: Any) -> None:
        """NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5."""
        z1, z2 = positive_pairs(4, 8, seed=41)
        loss_value(
            student, reference, "nt_xent", [z1, z2], {"tau": 0.5}, "nt_xent(z1, z2, tau=0.5), z1 and z2 of shape (4, 8)"
        )

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_values_shapes_temperatures(self, student: Any, reference: Any, draw: Callable) -> None:
        """NT-Xent for other batch sizes, dimensions and temperatures (and the default tau)."""
        for n, d, tau, seed in ((16, 32, 0.1, 42), (1, 5, 0.5, 43), (7, 3, 2.0, 44), (9, 16, None, 45)):
            z1, z2 = positive_pairs(n, d, seed=draw(seed))
            kwargs = {} if tau is None else {"tau": tau}
            call = "nt_xent(z1, z2" + ("" if tau is None else f", tau={tau}") + ")"
            loss_value(student, reference, "nt_xent", [z1, z2], kwargs, f"{call}, z1 and z2 of shape ({n}, {d})")

    @pytest.mark.points(2)
    @pytest.mark.visibility("after_published")
    def test_gradients(self, student: Any, reference: Any, draw: Callable) -> None:
        """The gradients of NT-Xent with respect to z1 and z2."""
        for n, d, tau, seed in ((6, 10, 0.3, 46), (3, 4, 0.7, 47)):
            z1, z2 = positive_pairs(n, d, seed=draw(seed))
            loss_grads(
                student,
                reference,
                "nt_xent",
                [z1, z2],
                {"tau": tau},
                f"nt_xent(z1, z2, tau={tau}), z1 and z2 of shape ({n}, {d})",
                project=True,
            )
