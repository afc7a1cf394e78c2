"""A fast linear probe on frozen features, for the end of a time-to-accuracy benchmark.

Linear evaluation measures a frozen representation by the test accuracy of a linear
classifier trained on top of it. This module uses the linear-evaluation protocol of SimCLR's
transfer experiments (Chen et al. 2020, https://arxiv.org/abs/2002.05709, appendix on transfer
learning, after Kornblith, Shlens & Le 2019, https://arxiv.org/abs/1805.08974): an L2-regularised
multinomial logistic regression on features of the un-augmented images, fitted with
L-BFGS, the regularisation strength chosen on a held-out part of the training set and
the classifier then refitted on the whole training set.

Everything is full-batch over precomputed features on one device: one L-BFGS iteration is
a few (N, D) x (D, C) matrix products (N = 50,000, D = 512, C = 10 for CIFAR-10), so the probe
costs little next to encoding the images (its own time is in the result). It is benchmark tooling, not one of the notebooks'
probes: the students' graded `run_linear_probe` is scikit-learn's `LogisticRegression`, which
fits the same kind of model on the CPU (at its default C = 1 and without the validation
search, so the two numbers can differ a little).

Usage::

    from helpers.probes import encode_images
    from benchmarks.linear_probe import linear_probe

    train_features = encode_images(model, train_images)   # (50000, 512) on the model's device
    test_features = encode_images(model, test_images)     # (10000, 512)
    result = linear_probe(train_features, train_labels, test_features, test_labels)
    print(f"linear probe: {100 * result.accuracy:.1f} %  (weight decay {result.weight_decay:g})")
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_WEIGHT_DECAYS", "LinearProbeResult", "fit_logistic_regression", "linear_probe"]

#: Candidate strengths of the L2 penalty `(wd / 2) ||W||^2` added to the mean cross-entropy,
#: tried from the strongest to the weakest (each fit starts from the previous solution).
DEFAULT_WEIGHT_DECAYS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass
class LinearProbeResult:
    """What `linear_probe` measured.

    Attributes:
        accuracy: test accuracy of the final classifier, in [0, 1].
        train_accuracy: its accuracy on the training features.
        weight_decay: the L2 strength chosen on the validation split (refitted on everything).
        validation_accuracy: candidate weight decay (as a string, JSON-friendly) -> accuracy on
            the held-out validation split.
        iterations: L-BFGS iterations of the final fit.
        seconds: wall-clock time of the whole probe (selection and final fit).
        num_train, num_test, feature_dim, num_classes: the problem's size.
        device: where it ran.
        protocol: one line describing the probe, for records.
    """

    accuracy: float
    train_accuracy: float
    weight_decay: float
    validation_accuracy: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    seconds: float = 0.0
    num_train: int = 0
    num_test: int = 0
    feature_dim: int = 0
    num_classes: int = 0
    device: str = "cpu"
    protocol: str = ""

    def to_dict(self) -> dict:
        """Plain types only, for a JSON benchmark record."""
        return asdict(self)


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Zero mean and unit variance per feature, with the training set's statistics.

    Features that are constant on the training set (e.g. a ReLU unit that never fires) get a
    divisor of 1 instead of 0, so they stay constant (zero) instead of becoming NaN.

    Shape: (N, D) each -> (N, D) each.
    """
    mean = train.mean(dim=0, keepdim=True)  # (1, D)
    std = train.std(dim=0, unbiased=False, keepdim=True)  # (1, D)
    std = torch.where(std > 1e-6 * std.max().clamp_min(1e-12), std, torch.ones_like(std))
    return [(x - mean) / std for x in (train, *others)]


def _check_inputs(features: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if features.ndim != 2:
        raise ValueError(f"{name} features must be a matrix (N, D), got shape {tuple(features.shape)}")
    if labels.shape != features.shape[:1]:
        raise ValueError(f"{name} labels must have shape ({features.shape[0]},), got {tuple(labels.shape)}")
    if features.shape[0] == 0:
        raise ValueError(f"{name} features are empty")
    if not torch.isfinite(features).all():
        raise ValueError(f"{name} features contain NaN or inf; the encoder has diverged, fix its training first")


def fit_logistic_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    weight_decay: float,
    max_iter: int = 500,
    tolerance: float = 1e-7,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Multinomial logistic regression by full-batch L-BFGS (strong Wolfe line search).

    Minimises ``mean_i CE(W x_i + b, y_i) + (weight_decay / 2) ||W||^2`` (the bias is not
    penalised), which is scikit-learn's ``LogisticRegression(C=1 / (weight_decay * N))``
    objective divided by N.

    Args:
        features: Shape: (N, D) float, on the device to fit on.
        labels: Shape: (N,) int64 in [0, num_classes).
        num_classes: C.
        weight_decay: the L2 strength (>= 0).
        max_iter: L-BFGS iterations at most.
        tolerance: stop when the largest gradient entry falls below this.
        init: (W (C, D), b (C,)) to start from (a warm start), else zeros.

    Returns:
        W: Shape: (C, D). b: Shape: (C,). The number of L-BFGS iterations run.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    features = features.float()
    labels = labels.to(device=features.device, dtype=torch.long)
    dim = features.shape[1]
    if init is None:
        weight = torch.zeros(num_classes, dim, device=features.device)  # (C, D)
        bias = torch.zeros(num_classes, device=features.device)  # (C,)
    else:
        weight, bias = (t.detach().clone().float().to(features.device) for t in init)
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=tolerance,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        logits = torch.addmm(bias, features, weight.T)  # (N, C) = x W^T + b
        loss = F.cross_entropy(logits, labels) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    iterations = int(optimizer.state[optimizer.param_groups[0]["params"][0]].get("n_iter", 0))
    return weight.detach(), bias.detach(), iterations


@torch.no_grad()
def _accuracy(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> float:
    predictions = torch.addmm(bias, features, weight.T).argmax(dim=1)  # (N,)
    return (predictions == labels).float().mean().item()


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    weight_decays: Sequence[float] = DEFAULT_WEIGHT_DECAYS,
    validation_fraction: float = 0.1,
    max_iter: int = 500,
    num_classes: int | None = None,
    standardize: bool = True,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> LinearProbeResult:
    """Test accuracy of an L2-regularised logistic regression on frozen features.

    1. Features are standardised with the training set's mean and standard deviation
       (L-BFGS converges in far fewer iterations on a well-conditioned problem).
    2. A seeded random `validation_fraction` of the training features is held out; for every
       candidate in `weight_decays` (strongest first, each warm-started from the previous
       solution) a classifier is fitted on the rest and scored on the held-out part.
    3. The best candidate (the stronger penalty on a tie) is refitted on all training
       features, warm-started from its validation-stage solution, and scored on the test set.

    Args:
        train_features: Shape: (N_train, D), any float dtype, on any device.
        train_labels: Shape: (N_train,) integer classes.
        test_features: Shape: (N_test, D).
        test_labels: Shape: (N_test,).
        weight_decays: candidate L2 strengths; one value skips the validation split.
        validation_fraction: share of the training features held out for the selection.
        max_iter: L-BFGS iterations per fit.
        num_classes: C; None infers it from the labels.
        standardize: standardise the features first (step 1).
        device: where to fit; default: the device of `train_features`.
        seed: seed of the validation split.

    Returns:
        A `LinearProbeResult` (``.accuracy`` is the test accuracy in [0, 1]).
    """
    started = time.perf_counter()
    train_features, test_features = torch.as_tensor(train_features), torch.as_tensor(test_features)
    train_labels, test_labels = torch.as_tensor(train_labels).long(), torch.as_tensor(test_labels).long()
    _check_inputs(train_features, train_labels, "train")
    _check_inputs(test_features, test_labels, "test")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train and test features differ in dimension: {train_features.shape[1]} vs {test_features.shape[1]}"
        )
    weight_decays = [float(wd) for wd in weight_decays]
    if not weight_decays or any(wd < 0 or not math.isfinite(wd) for wd in weight_decays):
        raise ValueError(f"weight_decays must be a non-empty list of finite values >= 0, got {weight_decays}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction}")
    device = torch.device(device) if device is not None else train_features.device
    if num_classes is None:
        num_classes = int(torch.cat([train_labels, test_labels]).max()) + 1
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f"train labels must lie in [0, {num_classes})")

    x_train = train_features.to(device=device, dtype=torch.float32)  # (N_train, D)
    x_test = test_features.to(device=device, dtype=torch.float32)  # (N_test, D)
    y_train, y_test = train_labels.to(device), test_labels.to(device)
    if standardize:
        x_train, x_test = _standardize(x_train, x_test)

    # Step 2: choose the weight decay on a held-out split (strongest penalty first).
    candidates = sorted(set(weight_decays), reverse=True)
    validation_accuracy: dict[str, float] = {}
    chosen, init = candidates[0], None
    n_val = int(round(validation_fraction * x_train.shape[0]))
    if len(candidates) > 1 and 0 < n_val < x_train.shape[0]:
        order = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(seed)).to(device)  # (N_train,)
        val_index, fit_index = order[:n_val], order[n_val:]
        best, warm, solutions = -1.0, None, {}
        for wd in candidates:
            weight, bias, _ = fit_logistic_regression(
                x_train[fit_index], y_train[fit_index], num_classes, wd, max_iter=max_iter, init=warm
            )
            warm = solutions[wd] = (weight, bias)
            score = _accuracy(weight, bias, x_train[val_index], y_train[val_index])
            validation_accuracy[f"{wd:g}"] = score
            if score > best:  # strict: a tie keeps the stronger penalty, tried first
                best, chosen = score, wd
        init = solutions[chosen]

    # Step 3: refit on all training features with the chosen penalty; score on the test set.
    weight, bias, iterations = fit_logistic_regression(
        x_train, y_train, num_classes, chosen, max_iter=max_iter, init=init
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return LinearProbeResult(
        accuracy=_accuracy(weight, bias, x_test, y_test),
        train_accuracy=_accuracy(weight, bias, x_train, y_train),
        weight_decay=chosen,
        validation_accuracy=validation_accuracy,
        iterations=iterations,
        seconds=time.perf_counter() - started,
        num_train=int(x_train.shape[0]),
        num_test=int(x_test.shape[0]),
        feature_dim=int(x_train.shape[1]),
        num_classes=int(num_classes),
        device=str(device),
        protocol=(
            "multinomial logistic regression on frozen, standardised features of un-augmented images; "
            f"full-batch L-BFGS; L2 strength chosen among {[f'{wd:g}' for wd in candidates]} on a "
            f"{validation_fraction:g} held-out split, then refitted on all training images"
        ),
    )
