"""Graded tests of ``byol_step`` (byol_train_step): the loss, the online update and the target's EMA of
the updated online network, over one and two steps, with stop-gradient. The mean over the 2N terms
and the paper's sum ``L + L~`` (twice that) are both accepted, each with its own parameter
trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from autograder.compare import GradingFailure, as_number, expect_tensor, fail
from autograder.in_sandbox import harness
from autograder.tests.tasks.shared import (
    STEP_ATOL,
    STEP_RTOL,
    StepTests,
    check_returned_floats,
    expect_training_mode,
    explain_precision,
    perturbed,
    standin,
)


def _byol_mean_loss(kwargs: dict) -> float:
    """The BYOL loss, mean over the 2N terms, of the first batch (from the task's formula)."""
    online, target = harness.build("byol", kwargs["state"]), harness.build("byol", kwargs["target_state"])
    x1, x2 = kwargs["batches"][0]
    with torch.no_grad():
        p1, p2 = online(x1)[2], online(x2)[2]
        t1, t2 = target(x1)[1], target(x2)[1]
        return float(torch.cat([2 - 2 * (p1 * t2).sum(1), 2 - 2 * (p2 * t1).sum(1)]).mean())


@pytest.mark.task("byol_step")
class TestBYOLStep(StepTests):
    METHOD, FN, LOSS = "byol", "byol_train_step", None
    WHAT = "byol_train_step(online, target, ema, optimizer, x1, x2) on small stand-in networks, SGD (momentum 0.9)"

    @staticmethod
    def _candidates(reference: Any, kwargs: dict) -> tuple[dict, dict, float]:
        """The reference's steps, and the steps of the other accepted loss convention (the
        paper's sum, twice the mean, or the mean, half the sum) with the scale between them."""
        expected = reference.run("train_steps", **kwargs)
        ratio = as_number(expected["steps"][0]["returned"], "reference loss") / _byol_mean_loss(kwargs)
        scale = 2.0 if abs(ratio - 1) < 1e-3 else 0.5
        alternative = reference.run("train_steps", **{**kwargs, "optimizer": {"lr": 0.2 * scale, "momentum": 0.9}})
        return expected, alternative, scale

    def _byol(self, student: Any, reference: Any, steps: int, seed: int, requires_grad: bool) -> dict:
        online = standin("byol", seed)
        kwargs = self._kwargs(
            steps, seed, target_state=perturbed(online, seed + 3), beta=0.9, target_requires_grad=requires_grad
        )
        kwargs["state"] = online
        expected, alternative, scale = self._candidates(reference, kwargs)
        actual = student.run("train_steps", like=expected, trajectories=[expected, alternative], **kwargs)
        if steps > 1:
            expect_training_mode(actual, self.FN)
        errors = []
        for candidate, loss_scale in ((expected, 1.0), (alternative, scale)):
            try:
                self._compare_steps(candidate, actual, self.WHAT, loss_scale)
                for step, (ref, got) in enumerate(zip(candidate["steps"], actual["steps"])):
                    for name, value in ref["target"].items():
                        expect_tensor(
                            got["target"][name],
                            value,
                            f"target parameter `{name}` after step {step + 1} "
                            "(it should be the EMA of the *updated* online network)",
                            rtol=STEP_RTOL,
                            atol=STEP_ATOL,
                        )
                return actual
            except GradingFailure as failure:
                errors.append(str(failure))
        explain_precision(reference, kwargs, actual, self.FN, GradingFailure(errors[0]))
        raise AssertionError  # unreachable

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: the loss, the online update, then the target's EMA of the updated online network."""
        self._byol(student, reference, steps=1, seed=101, requires_grad=False)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any, draw: Callable) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._byol(student, reference, steps=2, seed=draw(102), requires_grad=False)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_stop_gradient(self, student: Any, reference: Any, draw: Callable) -> None:
        """No gradient reaches the target network, even when its parameters require grad."""
        actual = self._byol(student, reference, steps=1, seed=draw(103), requires_grad=True)
        touched = actual["steps"][0]["target_grads"]
        if touched:
            fail(
                f"the target network received gradients ({', '.join(touched[:3])}...): compute its projections "
                "under `torch.no_grad()` (or detach them): the target is a fixed regression target (stop-gradient)."
            )

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float(self, student: Any, reference: Any) -> None:
        """The step returns the loss as a Python float."""
        online = standin("byol", 104)
        kwargs = self._kwargs(1, 104, target_state=perturbed(online, 107), beta=0.9)
        kwargs["state"] = online
        check_returned_floats(
            student, reference, kwargs, f"the value returned by {self.FN}", loss_scales=(1.0, 2.0, 0.5)
        )
