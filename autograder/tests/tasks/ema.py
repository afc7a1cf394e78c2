"""Graded tests of ``ema`` (EMA.update): the target's weights after one and several updates, in place,
without autograd history, the online network untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from autograder.compare import expect_tensor, fail
from autograder.tests.tasks.shared import perturbed, standin


@pytest.mark.task("ema")
class TestEMA:
    def _run(self, student: Any, reference: Any, beta: float, updates: int, requires_grad: bool, seed: int) -> tuple:
        online = standin("byol", seed)
        kwargs = dict(
            cls="EMA",
            beta=beta,
            online_state=online,
            target_state=perturbed(online, seed + 1),
            updates=updates,
            target_requires_grad=requires_grad,
        )
        expected = reference.run("ema", **kwargs)
        actual = student.run("ema", like=expected, **kwargs)
        for step, (ref, got) in enumerate(zip(expected["targets"], actual["targets"])):
            for name in ref:
                expect_tensor(
                    got[name], ref[name], f"target parameter `{name}` after {step + 1} update(s) with beta={beta}"
                )
        for name, value in expected["online"].items():
            expect_tensor(actual["online"][name], value, f"online parameter `{name}` (must not change)")
        return expected, actual

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_one_update(self, student: Any, reference: Any) -> None:
        """One EMA update: w_target = beta * w_target + (1 - beta) * w_online, online unchanged."""
        self._run(student, reference, beta=0.9, updates=1, requires_grad=False, seed=71)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_repeated_updates(self, student: Any, reference: Any, draw: Callable) -> None:
        """Three updates with beta = 0.75; the online network and its gradients are untouched."""
        _, actual = self._run(student, reference, beta=0.75, updates=3, requires_grad=False, seed=draw(72))
        if not actual["online_grads_kept"]:
            fail("EMA.update changed the online network's gradients; it must only write the target's weights.")

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_in_place_without_autograd(self, student: Any, reference: Any, draw: Callable) -> None:
        """In place, without autograd history, also when the target's parameters require grad."""
        _, actual = self._run(student, reference, beta=0.6, updates=2, requires_grad=True, seed=draw(73))
        if not actual["same_objects"]:
            fail(
                "EMA.update replaced the target's parameter objects; update them in place "
                "(e.g. `target_param.mul_(beta).add_(online_param, alpha=1 - beta)` inside torch.no_grad()), "
                "so the target keeps the same Parameters."
            )
        if not actual["leaves"]:
            fail(
                "after EMA.update the target's parameters have autograd history (grad_fn is set): "
                "do the update inside `with torch.no_grad():`."
            )
        if actual["requires_grad"] != [True] * len(actual["requires_grad"]):
            fail("EMA.update changed requires_grad of the target's parameters; leave it as it was.")
