"""Answers to `barlow_loss` (its cell defines `barlow_loss`; graded in ssl_methods.ipynb and simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed_unbiased",
        "the seed's: unbiased variance, off_diagonal helper",
        """
import torch


def off_diagonal(x):
    bs, d = x.shape
    return x.flatten()[:-1].view(bs - 1, bs + 1)[:, 1:].flatten()


def barlow_loss(z1, z2, alpha, eps=1e-5):
    B, d = z1.shape
    z1 = (z1 - z1.mean(dim=0, keepdim=True)) / torch.sqrt(z1.var(dim=0, keepdim=True) + eps)
    z2 = (z2 - z2.mean(dim=0, keepdim=True)) / torch.sqrt(z2.var(dim=0, keepdim=True) + eps)
    cross_corr = z1.T @ z2 / B
    invariance_term = torch.diagonal(cross_corr).add_(-1).pow_(2).sum()
    redundancy_term = off_diagonal(cross_corr).pow_(2).sum()
    return invariance_term + alpha * redundancy_term
""",
        sample=True,
    ),
    correct(
        "batch_norm",
        "F.batch_norm without affine (biased std), masks",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n, d = z1.shape
    a = F.batch_norm(z1, None, None, training=True, eps=eps)
    b = F.batch_norm(z2, None, None, training=True, eps=eps)
    c = a.T @ b / n
    eye = torch.eye(d, dtype=torch.bool)
    return ((1 - c[eye]) ** 2).sum() + alpha * (c[~eye] ** 2).sum()
""",
        sample=True,
    ),
    correct(
        "cmu_formula_centred",
        "the CMU formula (2) on batch-centred outputs",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    a = z1 - z1.mean(0)
    b = z2 - z2.mean(0)
    c = (a.T @ b) / (a.pow(2).sum(0).sqrt()[:, None] * b.pow(2).sum(0).sqrt()[None, :])
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        sample=True,
    ),
    correct(
        "float32_under_autocast",
        "the notebook's float32 answer: autocast switched off inside the loss, inputs cast with .float()",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1, z2 = z1.float(), z2.float()
        z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
        z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
        c = z1.T @ z2 / z1.shape[0]
        on = torch.diagonal(c)
        return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
    ),
    correct(
        "biased_std",
        "biased standard deviation plus eps, off-diagonal by masking",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    z1 = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = z1.T @ z2 / z1.shape[0]
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).masked_fill(torch.eye(c.shape[0], dtype=torch.bool, device=c.device), 0).sum()
    return on + alpha * off
""",
    ),
    wrong(
        "not_centred",
        "divides by the std without subtracting the mean",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n = z1.shape[0]
    a = z1 / torch.sqrt(z1.var(0) + eps)
    b = z2 / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="subtract each feature's batch mean",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005.",
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "rows_standardized",
        "standardises each sample instead of each feature",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n = z1.shape[0]
    a = (z1 - z1.mean(1, keepdim=True)) / torch.sqrt(z1.var(1, keepdim=True) + eps)
    b = (z2 - z2.mean(1, keepdim=True)) / torch.sqrt(z2.var(1, keepdim=True) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="standardised per feature along the batch (dim=0)",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005.",
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "diagonal_in_redundancy",
        "the redundancy term includes the diagonal",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    return (1 - torch.diagonal(c)).pow(2).sum() + alpha * c.pow(2).sum()
""",
        hint="must skip the diagonal",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005.",
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "alpha_ignored",
        "uses a fixed 0.005 instead of alpha",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + 0.005 * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="+ alpha * sum_{i != j} C_ij^2",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "not_divided_by_n",
        "forgets to divide C by N",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="divide z1n.T @ z2n by the batch size N",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005.",
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "means",
        "averages the terms instead of summing them",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).mean() + alpha * (c.pow(2).sum() - on.pow(2).sum()) / (d * d - d)
""",
        hint="sum the squared entries (don't average them)",
        sample=True,
        loses=(
            "barlow_loss: Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005.",
            "barlow_loss: Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too).",
            "barlow_loss: The gradients of the Barlow Twins loss with respect to z1 and z2.",
        ),
    ),
    wrong(
        "cmu_formula_raw",
        "the CMU formula (2) on raw, un-centred outputs (cosine of columns, not correlation)",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    c = (z1.T @ z2) / (z1.norm(dim=0)[:, None] * z2.norm(dim=0)[None, :])
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="subtract each feature's batch mean",
    ),
    wrong(
        "alpha_one",
        "the off-diagonal term is not multiplied by alpha",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="multiply the off-diagonal sum by alpha",
    ),
    wrong(
        "only_z1_standardized",
        "standardises z1 but feeds z2 raw",
        """
import torch
import torch.nn.functional as F


def barlow_loss(z1, z2, alpha, eps=1e-5):

    z1 = (z1 - z1.mean(0)) / (z1.std(0) + eps)
    c = z1.T @ z2 / z1.shape[0]
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
""",
        hint="standardised per feature along the batch (dim=0)",
    ),
]
