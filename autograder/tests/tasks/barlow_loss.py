"""Graded tests of ``barlow_loss`` (barlow_loss): the Barlow Twins loss's value and gradients; the
biased and the unbiased standard deviation (computed here from the task's formula) are both
accepted, each with its own gradient.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from autograder.tests.tasks.shared import correlated_embeddings, loss_grads, loss_value


def _barlow_variant(z1: torch.Tensor, z2: torch.Tensor, alpha: float, eps: float, unbiased: bool) -> tuple:
    """The Barlow Twins loss of the task's formula with a biased or unbiased std, and its gradients."""
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    n = a.shape[0]

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=unbiased) + eps)

    c = standardise(a).T @ standardise(b) / n
    on = torch.diagonal(c)
    loss = (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
    loss.backward()
    return loss.detach(), [a.grad, b.grad]


def _barlow_alternatives(z1: torch.Tensor, z2: torch.Tensor, alpha: float, eps: float = 1e-5) -> dict:
    return {f"{'unbiased' if u else 'biased'} std": _barlow_variant(z1, z2, alpha, eps, u) for u in (False, True)}


@pytest.mark.task("barlow_loss")
class TestBarlowLoss:
    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_value(self, student: Any, reference: Any) -> None:
        """Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005."""
        z1, z2 = correlated_embeddings(32, 8, seed=81)
        loss_value(
            student,
            reference,
            "barlow_loss",
            [z1, z2],
            {"alpha": 5e-3},
            "barlow_loss(z1, z2, alpha=0.005), z1 and z2 of shape (32, 8)",
            {k: v[0].item() for k, v in _barlow_alternatives(z1, z2, 5e-3).items()},
        )

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_values_shapes_alphas(self, student: Any, reference: Any) -> None:
        """Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too)."""
        for n, d, alpha, eps, seed in ((64, 16, 0.3, None, 82), (8, 4, 1.0, None, 83), (16, 32, 5e-3, 1e-5, 84)):
            z1, z2 = correlated_embeddings(n, d, seed=seed)
            kwargs = {"alpha": alpha} if eps is None else {"alpha": alpha, "eps": eps}
            call = f"barlow_loss(z1, z2, alpha={alpha}" + ("" if eps is None else f", eps={eps}") + ")"
            alternatives = {k: v[0].item() for k, v in _barlow_alternatives(z1, z2, alpha, eps or 1e-5).items()}
            loss_value(
                student,
                reference,
                "barlow_loss",
                [z1, z2],
                kwargs,
                f"{call}, z1 and z2 of shape ({n}, {d})",
                alternatives,
            )

    @pytest.mark.points(2)
    @pytest.mark.visibility("after_published")
    def test_gradients(self, student: Any, reference: Any) -> None:
        """The gradients of the Barlow Twins loss with respect to z1 and z2."""
        for n, d, alpha, seed in ((24, 6, 0.5, 85), (10, 12, 0.05, 86)):
            z1, z2 = correlated_embeddings(n, d, seed=seed)
            loss_grads(
                student,
                reference,
                "barlow_loss",
                [z1, z2],
                {"alpha": alpha},
                f"barlow_loss(z1, z2, alpha={alpha}), z1 and z2 of shape ({n}, {d})",
                alternatives=_barlow_alternatives(z1, z2, alpha),
            )
