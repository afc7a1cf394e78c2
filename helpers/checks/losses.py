"""Public checks of the two losses: NT-Xent (SimCLR) and the Barlow Twins loss.

Both are checked against closed forms on constructed inputs (aligned orthonormal pairs for
NT-Xent; centred, decorrelated features for Barlow Twins), against the invariances of their
definitions, and for gradients reaching both views. Wrong values are matched against the
usual mistakes (1/N instead of 1/(2N), missing temperature, sum instead of mean, ...) so the
hint names the likely one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from helpers.checks.checker import _Checker, _close, _describe, _num, _scalar_tensor

#: The checks of this family, re-exported by `helpers.checks` (a new check is listed here only).
__all__ = ["check_nt_xent", "check_barlow_loss"]


def _check_gradients_reach_both(
    chk: _Checker,
    loss_of: Callable[[torch.Tensor, torch.Tensor], Any],
    z1: torch.Tensor,
    z2: torch.Tensor,
    attached_hint: str,
    detached_hint: str,
) -> None:
    """`loss_of(z1, z2)` must be a loss on the graph with finite, non-zero gradients for both inputs."""
    leaf1, leaf2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    out = _scalar_tensor(chk, loss_of(leaf1, leaf2), "the return value")
    if not out.requires_grad:
        chk.fail("gradients", "a loss attached to z1 and z2", "a loss without grad_fn", attached_hint)
    out.backward()
    for name, leaf in (("z1", leaf1), ("z2", leaf2)):
        if leaf.grad is None or not torch.isfinite(leaf.grad).all() or not bool(leaf.grad.abs().sum() > 0):
            chk.fail(f"gradient with respect to {name}", "finite, non-zero", _describe(leaf.grad), detached_hint)
    chk.ok("gradients reach both z1 and z2")


def _orthonormal_views(n: int, cosine: float, gen: torch.Generator, dim: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views whose only non-zero similarities are the positives' `cosine` and self-similarity 1.

    With orthonormal rows e_1..e_2n of a random rotation: z1_i = e_i and
    z2_i = cos(theta) e_i + sin(theta) e_{n+i}. Every pair of different views except (z1_i, z2_i)
    is orthogonal. Shape: (n, dim) float32 each.
    """
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    rows = basis.T  # (dim, dim) orthonormal rows
    sine = math.sqrt(max(0.0, 1.0 - cosine**2))
    z1 = rows[:n]
    z2 = cosine * rows[:n] + sine * rows[n : 2 * n]
    return z1.float().contiguous(), z2.float().contiguous()


def _nt_xent_closed_form(n: int, tau: float, c: float) -> float:
    """NT-Xent of `_orthonormal_views`: each anchor sees exp(c/tau) once and exp(0) = 1 (2N-2) times."""
    return math.log1p((2 * n - 2) * math.exp(-c / tau))


def _nt_xent_diagnosis(value: float, n: int, tau: float, c: float) -> str:
    correct = _nt_xent_closed_form(n, tau, c)
    candidates = [
        (
            math.log1p((math.exp(1 / tau) + 2 * n - 2) * math.exp(-c / tau)),
            "this is the value without masking the diagonal: did you exclude k = i (self-similarity)? "
            "Set sim[i, i] to -inf (or a large negative number) before the softmax.",
        ),
        (2 * correct, "this is twice the loss: take the mean over all 2N anchors (1/(2N), not 1/N)."),
        (correct / 2, "this is half the loss: take the mean over all 2N anchors, each anchor's loss counted once."),
        (2 * n * correct, "this is the sum over the 2N anchors: take the mean."),
        (n * correct, "this is N times the loss: take the mean over the 2N anchors."),
        (
            math.log1p((2 * n - 2) * math.exp(-c * tau)),
            "the similarities were multiplied by tau: divide them by tau (sim / tau).",
        ),
        (math.log1p((2 * n - 2) * math.exp(-c)), "the temperature is missing: divide the similarities by tau."),
        (
            math.log1p((n - 1) * math.exp(-c / tau)),
            "the denominator only has the other view's N-1 negatives: it runs over all 2N-1 other "
            "views, including the other images of the same view (z1 against z1, z2 against z2).",
        ),
        (
            math.log(2 * n - 2) - c / tau if n > 1 else math.nan,
            "the positive is missing from the denominator: sum over all k != i, positive included.",
        ),
    ]
    for candidate, hint in candidates:
        if math.isfinite(candidate) and _close(value, candidate, rtol=1e-4, atol=1e-5):
            return hint
    return (
        "loss = mean over the 2N anchors i of -log(exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau)), "
        "with s the dot products of the 2N rows of cat([z1, z2]) and p the index of i's other view."
    )


def check_nt_xent(nt_xent: Callable) -> None:
    """Check `nt_xent(z1, z2, tau=0.5)`, the NT-Xent loss of SimCLR.

    Closed form used: for perfectly aligned orthonormal pairs (z1_i = z2_i = e_i) every anchor
    has one positive with similarity 1 and 2N-2 negatives with similarity 0, so
    `loss = log(1 + (2N-2) * exp(-1/tau))`; with positives at cosine c, `exp(-c/tau)`.
    Also: a 0-d tensor, symmetric in (z1, z2), invariant to permuting the batch, gradients
    reach both inputs, inputs not modified.
    """
    chk = _Checker("nt_xent", "nt_xent")
    with chk:
        gen = torch.Generator().manual_seed(0)
        z1 = F.normalize(torch.randn(6, 8, generator=gen), dim=1)
        z2 = F.normalize(torch.randn(6, 8, generator=gen), dim=1)
        z1_copy, z2_copy = z1.clone(), z2.clone()
        loss = _scalar_tensor(chk, chk.call(nt_xent, z1, z2, tau=0.5), "the return value")
        if not (torch.equal(z1, z1_copy) and torch.equal(z2, z2_copy)):
            chk.fail(
                "inputs",
                "z1 and z2 unchanged",
                "modified in place",
                "don't write into the inputs (e.g. z.div_() or masked_fill_ on a view of them); "
                "use out-of-place operations.",
            )
        chk.ok("returns a 0-d float tensor and leaves its inputs unchanged")

        for n, tau in ((2, 0.5), (4, 0.1), (8, 1.0), (5, 0.2)):
            a, b = _orthonormal_views(n, 1.0, gen)
            value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b, tau=tau), "the return value"))
            expected = _nt_xent_closed_form(n, tau, 1.0)
            if not _close(value, expected, rtol=1e-4, atol=1e-5):
                chk.fail(
                    f"closed form for perfectly aligned orthonormal pairs (N={n}, tau={tau})",
                    f"{_num(expected)} = log(1 + (2N-2)·exp(-1/tau))",
                    _num(value),
                    _nt_xent_diagnosis(value, n, tau, 1.0),
                )
        chk.ok("closed form for aligned orthonormal pairs: log(1 + (2N-2)·exp(-1/tau)) for several N and tau")

        a, b = _orthonormal_views(4, 1.0, gen)
        value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b), "the return value"))
        if not _close(value, _nt_xent_closed_form(4, 0.5, 1.0), rtol=1e-4, atol=1e-5):
            chk.fail(
                "the default temperature",
                f"{_num(_nt_xent_closed_form(4, 0.5, 1.0))} (tau=0.5)",
                _num(value),
                "keep the signature nt_xent(z1, z2, tau=0.5).",
            )
        chk.ok("default tau = 0.5")

        previous = -math.inf
        for cosine in (1.0, 0.5, 0.0, -0.5):
            a, b = _orthonormal_views(5, cosine, gen)
            value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b, tau=0.5), "the return value"))
            expected = _nt_xent_closed_form(5, 0.5, cosine)
            if not _close(value, expected, rtol=1e-4, atol=1e-5):
                chk.fail(
                    f"closed form for positives at cosine similarity {cosine} (N=5, tau=0.5)",
                    f"{_num(expected)} = log(1 + (2N-2)·exp(-cos/tau))",
                    _num(value),
                    _nt_xent_diagnosis(value, 5, 0.5, cosine),
                )
            if value <= previous:
                chk.fail("the loss grows as the positives move apart", f"more than {_num(previous)}", _num(value), None)
            previous = value
        chk.ok("closed form for partially aligned pairs; the loss grows as the positives move apart")

        swapped = float(_scalar_tensor(chk, chk.call(nt_xent, z2, z1, tau=0.5), "the return value"))
        if not _close(swapped, float(loss), rtol=1e-5, atol=1e-6):
            chk.fail(
                "symmetry nt_xent(z1, z2) == nt_xent(z2, z1) (random unit vectors)",
                _num(float(loss)),
                _num(swapped),
                "use every one of the 2N views as an anchor (the views of z1 and of z2), not only the rows of z1.",
            )
        chk.ok("symmetric in (z1, z2)")

        perm = torch.randperm(6, generator=gen)
        permuted = float(_scalar_tensor(chk, chk.call(nt_xent, z1[perm], z2[perm], tau=0.5), "the return value"))
        if not _close(permuted, float(loss), rtol=1e-5, atol=1e-6):
            chk.fail(
                "invariance to reordering the batch (same permutation for z1 and z2)",
                _num(float(loss)),
                _num(permuted),
                "the positive of row i of z1 is row i of z2, wherever it sits in the batch.",
            )
        chk.ok("invariant to permuting the batch")

        _check_gradients_reach_both(
            chk,
            lambda a, b: chk.call(nt_xent, a, b, tau=0.5),
            z1,
            z2,
            "don't detach, use .data/.item() or torch.no_grad() inside the loss.",
            "both views must enter the loss without being detached.",
        )


# --------------------------------------------------------------------------------------
# Barlow Twins loss
# --------------------------------------------------------------------------------------
def _decorrelated(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, d) float64 features that are centred, pairwise orthogonal, with biased variance 1 each."""
    a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(dim=0, keepdim=True))  # orthonormal, still zero-mean columns
    return q * math.sqrt(n)


def _barlow_candidates(n: int, correct: Callable[[float], float]) -> list[float]:
    """The loss for C's entries c = 1 (biased std) and c = (N-1)/N (unbiased std); both accepted."""
    return [correct(1.0), correct((n - 1) / n)]


def _barlow_diagnosis(value: float, d: int, alpha: float, n: int, case: str) -> str:
    """The likely mistake behind a wrong closed-form value.

    Each candidate is the value a known mistake gives, as a function of the entry value c of
    C (1 with the biased std, (N-1)/N with the unbiased one); both c are tried.
    """
    general = (
        "loss = sum_i (1 - C_ii)^2 + alpha * sum_{i != j} C_ij^2 with C = z1n.T @ z2n / N, "
        "z1n, z2n standardised per feature along the batch (dim=0)."
    )
    skip_diagonal = "the redundancy term must skip the diagonal: sum over i != j only."
    divide = "divide z1n.T @ z2n by the batch size N."
    if case == "identity":  # C = c I
        candidates = [
            (lambda c: d * (1 - n * c) ** 2, divide),
            (lambda c: d * (1 + c) ** 2, "the invariance term is (1 - C_ii)^2."),
            (lambda c: d * (1 - c) ** 2 + alpha * d * c**2, skip_diagonal),
        ]
    elif case == "rank1":  # every C_ij = c
        candidates = [
            (lambda c: d * (1 - c) ** 2 + alpha * d * d * c**2, skip_diagonal),
            (lambda c: d * (1 - c) ** 2 + d * (d - 1) * c**2, "multiply the off-diagonal sum by alpha."),
            (lambda c: d * (1 - n * c) ** 2 + alpha * d * (d - 1) * (n * c) ** 2, divide),
            (lambda c: (1 - c) ** 2 + alpha * c**2, "sum the squared entries (don't average them)."),
        ]
    else:  # C = c P, a permutation without fixed points
        candidates = [(lambda c: d + d * c**2, "multiply the off-diagonal sum by alpha.")]
    for formula, hint in candidates:
        if any(_close(value, formula(c), rtol=1e-3, atol=1e-5) for c in (1.0, (n - 1) / n)):
            return hint
    return general


def check_barlow_loss(barlow_loss: Callable) -> None:
    """Check `barlow_loss(z1, z2, alpha, eps=1e-5)`, the Barlow Twins loss.

    Closed forms (C = z1n.T @ z2n / N of the standardised features):
      - z1 = z2 with centred, decorrelated, unit-variance features: C = I, loss ~ 0;
      - z1 = z2 whose d features are all the same: every C_ij = 1, loss = alpha·d(d-1);
      - z2 = z1 with its features cyclically shifted: C is a permutation matrix without
        diagonal, loss = d + alpha·d.
    Biased and unbiased standard deviations are both accepted (they make C_ij = 1 or (N-1)/N).
    Invariances: swapping z1 and z2, per-feature shifts and positive scalings (up to eps),
    reordering the batch. Gradients reach both inputs.
    """
    chk = _Checker("barlow_loss", "barlow_loss")
    with chk:
        gen = torch.Generator().manual_seed(0)
        n, d = 256, 8
        z1 = torch.randn(64, d, generator=gen) * 2.0 + 1.0
        z2 = z1 + 0.8 * torch.randn(64, d, generator=gen)
        alpha = 0.3
        z1_copy = z1.clone()
        base = _scalar_tensor(chk, chk.call(barlow_loss, z1, z2, alpha), "the return value")
        if not torch.equal(z1, z1_copy):
            chk.fail(
                "inputs", "z1 unchanged", "modified in place", "standardise out of place: z1n = (z1 - mean) / std."
            )
        if float(base) < 0:
            chk.fail("sign", "a loss >= 0 (a sum of squares)", _num(float(base)), None)
        base = float(base)
        chk.ok("returns a non-negative 0-d float tensor")

        identity = _decorrelated(n, d, gen).float()
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, identity, identity.clone(), 0.5), "the return value"))
        if abs(value) > 5e-4:
            chk.fail(
                "z1 = z2 with centred, decorrelated, unit-variance features (C = I)",
                f"~0 (exactly 0 with the biased std, d/N^2 = {_num(d / n**2)} with the unbiased one)",
                _num(value),
                _barlow_diagnosis(value, d, 0.5, n, "identity"),
            )
        chk.ok("C = I (identical decorrelated views) gives loss ~0")

        column = _decorrelated(n, 1, gen)
        rank1 = column.repeat(1, d).float()  # (n, d): all features identical
        for alpha_ in (0.005, 0.5):
            value = float(_scalar_tensor(chk, chk.call(barlow_loss, rank1, rank1.clone(), alpha_), "the return value"))
            candidates = _barlow_candidates(n, lambda c, alpha_=alpha_: d * (1 - c) ** 2 + alpha_ * d * (d - 1) * c**2)
            if not any(_close(value, c, rtol=2e-4, atol=1e-5) for c in candidates):
                chk.fail(
                    f"z1 = z2 with all {d} features identical (every C_ij = 1), alpha={alpha_}",
                    f"{_num(candidates[0])} = alpha·d(d-1) (or {_num(candidates[1])} with the unbiased std)",
                    _num(value),
                    _barlow_diagnosis(value, d, alpha_, n, "rank1"),
                )
        chk.ok("all-identical features give the closed form alpha·d(d-1)")

        shifted = identity.roll(1, dims=1)  # feature j of z2 = feature j-1 of z1
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, identity, shifted, 0.5), "the return value"))
        candidates = _barlow_candidates(n, lambda c: d * 1.0 + 0.5 * d * c**2)
        if not any(_close(value, c, rtol=2e-4, atol=1e-5) for c in candidates):
            chk.fail(
                "z2 = z1 with its features cyclically shifted (C is an off-diagonal permutation), alpha=0.5",
                f"{_num(candidates[0])} = d + alpha·d (or {_num(candidates[1])} with the unbiased std)",
                _num(value),
                _barlow_diagnosis(value, d, 0.5, n, "permutation"),
            )
        chk.ok("permuted features give the closed form d + alpha·d")

        swapped = float(_scalar_tensor(chk, chk.call(barlow_loss, z2, z1, alpha), "the return value"))
        if not _close(swapped, base, rtol=1e-4, atol=1e-6):
            chk.fail(
                "symmetry barlow_loss(z1, z2) == barlow_loss(z2, z1)",
                _num(base),
                _num(swapped),
                "standardise both inputs the same way.",
            )
        chk.ok("symmetric in (z1, z2)")

        shift = 5.0 * torch.randn(1, d, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1 + shift, z2, alpha), "the return value"))
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail(
                "invariance to adding a constant to each feature of z1",
                _num(base),
                _num(value),
                "subtract each feature's batch mean (mean over dim=0) before dividing by its std.",
            )
        scale = 0.5 + 2.5 * torch.rand(1, d, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1, z2 * scale, alpha), "the return value"))
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail(
                "invariance to scaling each feature of z2 by a positive factor",
                _num(base),
                _num(value),
                "divide each centred feature by its standard deviation over the batch (dim=0).",
            )
        value = float(
            _scalar_tensor(chk, chk.call(barlow_loss, z1 * scale + shift, z2 - shift, alpha), "the return value")
        )
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail(
                "invariance to per-feature affine maps of both inputs",
                _num(base),
                _num(value),
                "standardise each feature along the batch: (z - z.mean(0)) / z.std(0).",
            )
        chk.ok("invariant to per-feature shifts and positive scalings (up to eps)")

        perm = torch.randperm(64, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1[perm], z2[perm], alpha), "the return value"))
        if not _close(value, base, rtol=1e-4, atol=1e-6):
            chk.fail(
                "invariance to reordering the batch (same permutation for z1 and z2)",
                _num(base),
                _num(value),
                "statistics are over the batch dimension (dim=0), pairs are rows with the same index.",
            )
        chk.ok("invariant to permuting the batch")

        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1, z2, alpha, eps=1e-5), "the return value"))
        if not _close(value, base, rtol=1e-6, atol=1e-7):
            chk.fail(
                "the default eps (a call without eps must equal eps=1e-5)",
                _num(value),
                _num(base),
                "keep the signature barlow_loss(z1, z2, alpha, eps=1e-5).",
            )

        _check_gradients_reach_both(
            chk,
            lambda a, b: chk.call(barlow_loss, a, b, alpha),
            z1,
            z2,
            "don't detach or use .data/.item() inside the loss.",
            "both inputs must enter the loss without being detached.",
        )
        _note_barlow_precision(chk, barlow_loss, z1, z2, alpha)


#: The note `check_barlow_loss` prints when the loss does not stay in float32 under autocast.
BARLOW_PRECISION_NOTE = (
    "note: under fit's mixed precision (torch.autocast, on a GPU) your barlow_loss runs its matrix "
    "products in {dtype}{error}. `.float()` alone is not enough: autocast casts the operands of `@` "
    "back to {dtype}. To compute the loss in float32, put its body inside "
    "`with torch.autocast(device_type=z1.device.type, enabled=False):` and call `.float()` on z1 and z2 "
    "there. (Not an error: the grader accepts both; the float32 loss is the one the notebook asks for.)"
)


def _note_barlow_precision(
    chk: _Checker, barlow_loss: Callable, z1: torch.Tensor, z2: torch.Tensor, alpha: float
) -> None:
    """Say whether `barlow_loss` stays in float32 when `fit` runs the step under autocast.

    `fit` runs every training step under ``torch.autocast`` (bfloat16 on recent GPUs), where a
    matrix product of two float32 tensors is computed in bfloat16. CPU autocast has the same
    rule, so the check can see it here: the loss is called on float32 inputs under a CPU
    bfloat16 autocast and compared with its own float32 value. A loss that runs in bfloat16
    is correct for the grader (which compares in float32), so this is a note, not a failure.
    """
    exact = chk.call(barlow_loss, z1, z2, alpha)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = chk.call(barlow_loss, z1, z2, alpha)
    if not isinstance(mixed, torch.Tensor) or not isinstance(exact, torch.Tensor):
        return
    error = abs(float(mixed) - float(exact)) / max(abs(float(exact)), 1e-12)
    if mixed.dtype == torch.float32 and error <= 1e-5:
        chk.ok("stays in float32 under fit's mixed precision (torch.autocast)")
        return
    detail = f" (relative error {error:.1e} on this batch; result dtype {mixed.dtype})"
    print(BARLOW_PRECISION_NOTE.format(dtype="bfloat16", error=detail), flush=True)
