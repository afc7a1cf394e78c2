"""Graded tests of ``finetune_step`` (finetune_train_step (simclr_homework)): cross-entropy step of a
classifier; the loss as a Python float and the number of correct predictions as a Python int.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from autograder.compare import as_number, as_sequence, describe, expect_number, expect_python_float, expect_tensor, fail
from autograder.in_sandbox import harness
from autograder.tests.tasks.shared import STEP_ATOL, STEP_RTOL, expect_training_mode, images, seeded, standin


def _labelled_batches(state: dict, steps: int, seed: int, size: int = 6) -> list:
    """Batches whose labels agree with the classifier's initial prediction for half the images."""
    model = harness.build("classifier", state)
    batches = []
    for i in range(steps):
        x = images(size, seed + i)
        with torch.no_grad():
            predicted = model(x).argmax(1)
        random = torch.randint(0, 10, (size,), generator=seeded(seed + 100 + i))
        y = torch.where(torch.arange(size) % 2 == 0, predicted, random)
        batches.append((x, y))
    return batches


@pytest.mark.task("finetune_step")
class TestFinetuneStep:
    WHAT = "finetune_train_step(classifier, x, y, optimizer) on a small stand-in classifier, SGD (momentum 0.9)"

    def _kwargs(self, steps: int, seed: int) -> dict:
        state = standin("classifier", seed)
        return dict(
            method="finetune",
            fn="finetune_train_step",
            state=state,
            batches=_labelled_batches(state, steps, seed),
            optimizer={"lr": 0.2, "momentum": 0.9},
        )

    def _steps(self, student: Any, reference: Any, steps: int, seed: int) -> None:
        kwargs = self._kwargs(steps, seed)
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        if steps > 1:
            expect_training_mode(actual, "finetune_train_step")
        for step, (ref, got) in enumerate(zip(expected["steps"], actual["steps"])):
            label = f"{self.WHAT}, step {step + 1}"
            ref_loss, ref_correct = ref["returned"]
            loss, correct = as_sequence(got["returned"], 2, label, "(loss, number correct)")
            expect_number(
                loss, as_number(ref_loss, label), f"the loss returned by {label}", rtol=STEP_RTOL, atol=STEP_ATOL
            )
            expect_number(
                correct,
                as_number(ref_correct, label),
                f"the number of correct predictions returned by {label} (a count, not a fraction)",
                rtol=0,
                atol=1e-9,
            )
            for name, value in ref["params"].items():
                expect_tensor(
                    got["params"][name], value, f"parameter `{name}` after {label}", rtol=STEP_RTOL, atol=STEP_ATOL
                )

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: cross-entropy loss, number of correct predictions, parameters after the update."""
        self._steps(student, reference, steps=1, seed=111)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any, draw: Callable) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._steps(student, reference, steps=2, seed=draw(112))

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float_and_int(self, student: Any, reference: Any) -> None:
        """The step returns (loss as a Python float, number correct as a Python int)."""
        kwargs = self._kwargs(1, 113)
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        loss, correct = as_sequence(
            actual["steps"][0]["returned"], 2, "finetune_train_step(...)", "(loss, number correct)"
        )
        expect_python_float(loss, "the loss returned by finetune_train_step")
        if isinstance(correct, bool) or not isinstance(correct, int):
            fail(
                f"the number of correct predictions should be a Python int (e.g. `(pred == y).sum().item()`); "
                f"got {describe(correct)}."
            )
        ref_loss, ref_correct = expected["steps"][0]["returned"]  # and they are this step's values
        expect_number(
            loss,
            as_number(ref_loss, "loss"),
            "the loss returned by finetune_train_step",
            rtol=STEP_RTOL,
            atol=STEP_ATOL,
        )
        expect_number(
            correct,
            as_number(ref_correct, "count"),
            "the number of correct predictions returned by finetune_train_step",
            rtol=0,
            atol=1e-9,
        )
