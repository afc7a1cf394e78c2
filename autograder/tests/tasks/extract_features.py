"""Graded tests of ``extract_features`` (extract_features_and_labels): features and labels of a loader,
in order, optionally normalised, without gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from autograder.compare import as_sequence, expect_tensor, fail
from autograder.tests.tasks.shared import images, returned, seeded, standin


@pytest.mark.task("extract_features")
class TestExtractFeatures:
    N, BATCH = 10, 4

    def _case(self, student: Any, reference: Any, net: str, normalize: bool | None, seed: int) -> tuple:
        state = standin(net, seed)
        x, y = images(self.N, seed), torch.randint(0, 10, (self.N,), generator=seeded(seed + 1))
        kwargs = dict(
            fn="extract_features_and_labels",
            net_kind=net,
            state=state,
            images=x,
            labels=y,
            batch_size=self.BATCH,
            normalize=normalize,
        )
        expected = reference.run("extract_features", **kwargs)
        actual = student.run("extract_features", like=expected, **kwargs)
        call = (
            "extract_features_and_labels(model, loader"
            + ("" if normalize is None else f", normalize={normalize}")
            + ")"
        )
        features, labels = as_sequence(returned(actual), 2, call, "(features, labels)")
        ref_features, ref_labels = returned(expected)
        what = f"{call} with {self.N} images in batches of {self.BATCH}"
        expect_tensor(features, ref_features, f"the features of {what}", dtype_kind="float")
        expect_tensor(labels, ref_labels, f"the labels of {what}", dtype_kind="int64", rtol=0, atol=0)
        return actual

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_tensor_output(self, student: Any, reference: Any) -> None:
        """Features and labels of a model that returns a tensor, in the loader's order."""
        self._case(student, reference, "features-tensor", None, seed=11)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_tuple_and_list_output(self, student: Any, reference: Any) -> None:
        """The features are the first element when the model returns a tuple or a list."""
        self._case(student, reference, "features-tuple", False, seed=12)
        self._case(student, reference, "features-list", False, seed=13)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_normalize_without_gradients(self, student: Any, reference: Any, draw: Callable) -> None:
        """normalize=True gives unit rows, and the features carry no autograd graph."""
        actual = self._case(student, reference, "features-list", True, seed=draw(14))
        if actual.get("features_require_grad"):
            fail(
                "the features still require gradients: extract them inside `with torch.no_grad():` (or "
                "detach them), so no autograd graph is kept for the whole dataset."
            )
