"""Graded tests of ``probes`` (run_knn_probe / run_linear_probe): test accuracy of a k-NN and a
logistic-regression probe on seeded clusters (and an XOR layout no linear probe can fit), on tensors
and NumPy arrays.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from autograder.compare import as_number, describe, expect_number, fail
from autograder.tests.tasks.shared import returned, seeded


def _probe_data(seed: int, d: int, per_class: int, test_per_class: int, spread: float, noise: float) -> tuple:
    """3 Gaussian clusters; a fraction `noise` of the training labels is wrong."""
    g = seeded(seed)
    centres = torch.randn(3, d, generator=g) * 1.5

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(3).repeat_interleave(count)
        return centres[labels] + spread * torch.randn(len(labels), d, generator=g), labels

    train_x, train_y = draw(per_class)
    test_x, test_y = draw(test_per_class)
    flip = torch.rand(len(train_y), generator=g) < noise
    train_y = torch.where(flip, (train_y + 1 + torch.randint(0, 2, train_y.shape, generator=g)) % 3, train_y)
    order = torch.randperm(len(train_y), generator=g)
    return train_x[order], train_y[order], test_x, test_y


def _xor_data(seed: int) -> tuple:
    """Two classes in XOR layout (plus noise dimensions): no linear classifier beats chance by
    much, a nearest-neighbour classifier gets nearly everything right."""
    g = seeded(seed)

    def draw(per_cluster: int) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]).repeat_interleave(per_cluster, 0)
        labels = torch.tensor([0, 0, 1, 1]).repeat_interleave(per_cluster)
        x = torch.cat(
            [signs * 2 + 0.4 * torch.randn(signs.shape, generator=g), 0.3 * torch.randn(len(signs), 3, generator=g)],
            dim=1,
        )
        return x, labels

    train_x, train_y = draw(20)
    test_x, test_y = draw(10)
    order = torch.randperm(len(train_y), generator=g)
    return train_x[order], train_y[order], test_x, test_y


@pytest.mark.task("probes")
class TestProbes:
    def _accuracy(
        self,
        student: Any,
        reference: Any,
        fn: str,
        data: tuple,
        numpy: bool,
        tolerance: float,
        python_float: bool = False,
    ) -> None:
        call = dict(fn=fn, args=list(data), kwargs={}, numpy_args=numpy)
        reference_result = reference.run("call", **call)
        expected = as_number(returned(reference_result), fn)
        actual = returned(student.run("call", like=reference_result, **call))
        kind = "NumPy arrays" if numpy else "CPU tensors"
        what = f"{fn} on {len(data[0])} training and {len(data[2])} test samples ({kind})"
        if python_float and (isinstance(actual, bool) or not isinstance(actual, float)):
            fail(f"{what} should return a Python float (e.g. `float(accuracy)`); got {describe(actual)}.")
        value = as_number(actual, what)
        if not 0.0 <= value <= 1.0:
            fail(
                f"{what} should return the test accuracy as a fraction in [0, 1]; got {value:g}"
                + (" (a percentage?)" if 1 < value <= 100 else "")
                + "."
            )
        expect_number(value, expected, what, rtol=0, atol=tolerance + 1e-9)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_knn_accuracy(self, student: Any, reference: Any) -> None:
        """run_knn_probe: test accuracy of a k-NN (k = 5) classifier, as a fraction."""
        data = _probe_data(21, d=6, per_class=30, test_per_class=15, spread=1.3, noise=0.3)
        self._accuracy(student, reference, "run_knn_probe", data, numpy=False, tolerance=1 / 45)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_linear_accuracy(self, student: Any, reference: Any) -> None:
        """run_linear_probe: test accuracy of a logistic regression, as a fraction."""
        data = _probe_data(22, d=40, per_class=12, test_per_class=20, spread=5.0, noise=0.0)
        self._accuracy(student, reference, "run_linear_probe", data, numpy=False, tolerance=0.05)
        self._accuracy(student, reference, "run_linear_probe", _xor_data(25), numpy=False, tolerance=0.05)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_numpy_inputs(self, student: Any, reference: Any) -> None:
        """Both probes also accept NumPy arrays and return Python floats."""
        data = _probe_data(23, d=6, per_class=30, test_per_class=15, spread=1.3, noise=0.3)
        self._accuracy(student, reference, "run_knn_probe", data, numpy=True, tolerance=1 / 45, python_float=True)
        data = _probe_data(24, d=40, per_class=12, test_per_class=20, spread=5.0, noise=0.0)
        self._accuracy(student, reference, "run_linear_probe", data, numpy=True, tolerance=0.05, python_float=True)
