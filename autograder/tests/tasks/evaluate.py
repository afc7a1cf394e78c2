"""Graded tests of ``evaluate`` (evaluate (simclr_homework)): mean loss and accuracy of a classifier
with batch norm and dropout in eval mode without gradients; the mean per sample or the mean of the
per-batch means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from autograder.compare import as_number, as_sequence, expect_number, expect_python_float, fail
from autograder.in_sandbox import harness
from autograder.tests.tasks.shared import images, seeded, standin


@pytest.mark.task("evaluate")
class TestEvaluate:
    N, BATCH = 10, 4

    def _run(self, student: Any, reference: Any, seed: int) -> tuple[dict, dict, dict]:
        state = standin("bn-classifier", seed)
        x = images(self.N, seed)
        y = torch.randint(0, 10, (self.N,), generator=seeded(seed + 1))
        kwargs = dict(fn="evaluate", state=state, images=x, labels=y, batch_size=self.BATCH)
        expected = reference.run("evaluate", **kwargs)
        return kwargs, expected, student.run("evaluate", like=expected, **kwargs)

    @staticmethod
    def _mean_of_batch_means(kwargs: dict) -> float:
        model = harness.build("bn-classifier", kwargs["state"]).eval()
        with torch.no_grad():
            losses = [
                F.cross_entropy(
                    model(kwargs["images"][i : i + kwargs["batch_size"]]),
                    kwargs["labels"][i : i + kwargs["batch_size"]],
                ).item()
                for i in range(0, len(kwargs["labels"]), kwargs["batch_size"])
            ]
        return sum(losses) / len(losses)

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_loss_and_accuracy(self, student: Any, reference: Any) -> None:
        """Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters)."""
        self._expect_values(*self._run(student, reference, seed=121))

    def _expect_values(self, kwargs: dict, expected: dict, actual: dict) -> None:
        what = f"evaluate(classifier, loader) over {self.N} images in batches of {self.BATCH}"
        loss, accuracy = as_sequence(actual["returned"], 2, what, "(mean loss, accuracy)")
        ref_loss, ref_accuracy = expected["returned"]
        value = as_number(loss, f"the mean loss of {what}")
        if not math.isclose(value, self._mean_of_batch_means(kwargs), rel_tol=1e-4, abs_tol=1e-5):
            expect_number(value, as_number(ref_loss, what), f"the mean loss of {what}")
        accuracy = as_number(accuracy, f"the accuracy of {what}")
        if 1 < accuracy <= 100:
            fail(f"the accuracy of {what} should be a fraction in [0, 1]; got {accuracy:g} (a percentage?).")
        expect_number(accuracy, as_number(ref_accuracy, what), f"the accuracy of {what}", rtol=0, atol=1e-6)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_eval_mode_without_gradients(self, student: Any, reference: Any, draw: Callable) -> None:
        """The classifier runs in eval mode and without recording gradients."""
        kwargs, expected, actual = self._run(student, reference, seed=draw(122))
        if actual["forward_calls"] == 0:
            fail("evaluate never called the classifier.")
        if actual["training_calls"]:
            fail(
                "evaluate ran the classifier in training mode: call `classifier.eval()` first (batch norm and "
                "dropout behave differently at test time)."
            )
        if actual["grad_enabled_calls"]:
            fail("evaluate recorded gradients: wrap the loop in `with torch.no_grad():` (or torch.inference_mode()).")
        self._expect_values(kwargs, expected, actual)  # and the values that eval mode gives

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_floats(self, student: Any, reference: Any) -> None:
        """evaluate returns (mean loss, accuracy) as Python floats, the accuracy in [0, 1]."""
        kwargs, expected, actual = self._run(student, reference, seed=123)
        loss, accuracy = as_sequence(actual["returned"], 2, "evaluate(classifier, loader)", "(mean loss, accuracy)")
        expect_python_float(loss, "the mean loss returned by evaluate")
        expect_python_float(accuracy, "the accuracy returned by evaluate")
        if not 0.0 <= accuracy <= 1.0:
            fail(f"the accuracy should be a fraction in [0, 1]; got {accuracy:g}.")
        self._expect_values(kwargs, expected, actual)  # the floats must be the loss and the accuracy
