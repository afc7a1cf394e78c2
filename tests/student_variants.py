"""Correct and wrong student answers to every graded task, for testing checks and graders.

Each variant is one function or class, registered with `@correct(task)` or `@wrong(task,
caught_publicly=...)`, whose docstring says what it does (and, for a wrong one, what is
wrong with it). Tasks are the grade ids of the notebooks ("nt_xent", "byol_step", ...), plus
"knn_probe" / "linear_probe" for the two halves of the "probes" task.

`caught_publicly=True` means the public self-check in `helpers.checks` is expected to
reject the variant; False marks mistakes that only a comparison with the reference
solution (the hidden autograder tests) can find. `tests/test_checks.py` holds both
promises; the autograder's tests reuse the same variants.

The model classes rebuild the notebooks' *given* `__init__`s (the seeds' architectures, from
`helpers.models`) and differ only in the graded `forward`. The step variants call the
module-level names `nt_xent`, `barlow_loss` and the correct model classes, as a notebook's
functions call the names defined in earlier cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from helpers.models import cifar_resnet18, projection_mlp


# ======================================================================================
# Registry
# ======================================================================================
@dataclass(frozen=True)
class Variant:
    """One registered answer to a task."""

    task: str
    obj: Any
    correct: bool
    caught_publicly: bool

    @property
    def name(self) -> str:
        return self.obj.__name__

    @property
    def description(self) -> str:
        return " ".join((self.obj.__doc__ or "").split())


VARIANTS: list[Variant] = []


def correct(task: str) -> Callable:
    """Register a correct answer to `task` (every check and grader must accept it)."""

    def register(obj):
        VARIANTS.append(Variant(task, obj, correct=True, caught_publicly=False))
        return obj

    return register


def wrong(task: str, caught_publicly: bool = True) -> Callable:
    """Register a wrong answer to `task`; `caught_publicly` says whether the public check rejects it."""

    def register(obj):
        VARIANTS.append(Variant(task, obj, correct=False, caught_publicly=caught_publicly))
        return obj

    return register


def variants(task: str | None = None, is_correct: bool | None = None) -> list[Variant]:
    """The registered variants, optionally of one task and/or one kind."""
    return [v for v in VARIANTS if (task is None or v.task == task) and (is_correct is None or v.correct == is_correct)]


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


# ======================================================================================
# extract_features
# ======================================================================================
@correct("extract_features")
def extract_features_seed(model, dataloader, normalize=False):
    """The seed's answer: no_grad forward, first element of a tuple/list, torch.cat, F.normalize."""
    device = next(model.parameters()).device
    features, labels = [], []
    for x, y in dataloader:
        with torch.no_grad():
            feat = _first(model(x.to(device)))
        features.append(feat.cpu())
        labels.append(y)
    features, labels = torch.cat(features), torch.cat(labels)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, labels


@correct("extract_features")
def extract_features_inference_mode(model, dataloader, normalize=False):
    """torch.inference_mode instead of no_grad, manual L2 norm, normalisation per batch."""
    features, labels = [], []
    with torch.inference_mode():
        for x, y in dataloader:
            feat = model(x)
            if isinstance(feat, (tuple, list)):
                feat = feat[0]
            if normalize:
                feat = feat / feat.norm(dim=1, keepdim=True)
            features.append(feat.cpu())
            labels.append(y.cpu())
    return torch.cat(features, dim=0), torch.cat(labels, dim=0)


@wrong("extract_features")
def extract_features_no_unwrap(model, dataloader, normalize=False):
    """Wrong: assumes the model returns a tensor; a (repr, proj) tuple breaks torch.cat."""
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            features.append(model(x).cpu())
            labels.append(y)
    features = torch.cat(features)
    return (F.normalize(features, dim=1) if normalize else features), torch.cat(labels)


@wrong("extract_features")
def extract_features_normalize_dim0(model, dataloader, normalize=False):
    """Wrong: normalize=True normalises each feature (column, dim=0) instead of each vector."""
    features, labels = extract_features_seed(model, dataloader)
    return (F.normalize(features, dim=0) if normalize else features), labels


@wrong("extract_features")
def extract_features_always_normalized(model, dataloader, normalize=False):
    """Wrong: ignores the flag and always L2-normalises."""
    features, labels = extract_features_seed(model, dataloader)
    return F.normalize(features, dim=1), labels


@wrong("extract_features")
def extract_features_grad_enabled(model, dataloader, normalize=False):
    """Wrong: runs the model with gradients enabled and only detaches afterwards (builds graphs, wastes memory)."""
    features, labels = [], []
    for x, y in dataloader:
        features.append(_first(model(x)).detach().cpu())
        labels.append(y)
    features = torch.cat(features)
    return (F.normalize(features, dim=1) if normalize else features), torch.cat(labels)


@wrong("extract_features")
def extract_features_float_labels(model, dataloader, normalize=False):
    """Wrong: returns the labels as float32."""
    features, labels = extract_features_seed(model, dataloader, normalize)
    return features, labels.float()


@wrong("extract_features")
def extract_features_last_batch_only(model, dataloader, normalize=False):
    """Wrong: overwrites instead of collecting, so only the last batch comes back."""
    with torch.no_grad():
        for x, y in dataloader:
            features, labels = _first(model(x)).cpu(), y
    return (F.normalize(features, dim=1) if normalize else features), labels


@wrong("extract_features", caught_publicly=False)
def extract_features_left_on_device(model, dataloader, normalize=False):
    """Wrong: leaves the features on the model's device. Invisible on a CPU-only machine
    (the public check catches it when it runs on a GPU)."""
    device = next(model.parameters()).device
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            features.append(_first(model(x.to(device))))
            labels.append(y)
    features = torch.cat(features)
    return (F.normalize(features, dim=1) if normalize else features), torch.cat(labels)


# ======================================================================================
# probes
# ======================================================================================
@correct("knn_probe")
def run_knn_probe_seed(train_features, train_labels, test_features, test_labels):
    """The seed's answer: KNeighborsClassifier(n_neighbors=5), accuracy_score."""
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, knn.predict(test_features))


@correct("knn_probe")
def run_knn_probe_score(train_features, train_labels, test_features, test_labels):
    """KNeighborsClassifier(5).score, converted to a Python float."""
    return float(KNeighborsClassifier(5).fit(train_features, train_labels).score(test_features, test_labels))


@wrong("knn_probe")
def run_knn_probe_percent(train_features, train_labels, test_features, test_labels):
    """Wrong: returns the accuracy in percent (seed erratum 5 in reverse)."""
    return 100.0 * run_knn_probe_seed(train_features, train_labels, test_features, test_labels)


@wrong("knn_probe")
def run_knn_probe_train_accuracy(train_features, train_labels, test_features, test_labels):
    """Wrong: scores on the training set."""
    knn = KNeighborsClassifier(n_neighbors=5).fit(train_features, train_labels)
    return float(knn.score(train_features, train_labels))


@wrong("knn_probe")
def run_knn_probe_k1(train_features, train_labels, test_features, test_labels):
    """Wrong: 1-nearest-neighbour instead of k = 5."""
    return float(KNeighborsClassifier(1).fit(train_features, train_labels).score(test_features, test_labels))


@wrong("knn_probe")
def run_knn_probe_error_rate(train_features, train_labels, test_features, test_labels):
    """Wrong: returns the error rate, 1 - accuracy."""
    return 1.0 - run_knn_probe_seed(train_features, train_labels, test_features, test_labels)


@wrong("knn_probe")
def run_knn_probe_tensor(train_features, train_labels, test_features, test_labels):
    """Wrong: returns a torch tensor instead of a float."""
    return torch.tensor(run_knn_probe_seed(train_features, train_labels, test_features, test_labels))


@correct("linear_probe")
def run_linear_probe_seed(train_features, train_labels, test_features, test_labels):
    """The seed's answer: LogisticRegression(max_iter=1000), accuracy_score."""
    logreg = LogisticRegression(max_iter=1000)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))


@wrong("linear_probe")
def run_linear_probe_knn(train_features, train_labels, test_features, test_labels):
    """Wrong: the "linear" probe is a k-NN classifier (it separates XOR, no linear model can)."""
    return run_knn_probe_seed(train_features, train_labels, test_features, test_labels)


@wrong("linear_probe")
def run_linear_probe_percent(train_features, train_labels, test_features, test_labels):
    """Wrong: returns the accuracy in percent."""
    return 100.0 * run_linear_probe_seed(train_features, train_labels, test_features, test_labels)


@wrong("linear_probe")
def run_linear_probe_train_accuracy(train_features, train_labels, test_features, test_labels):
    """Wrong: scores on the training set."""
    logreg = LogisticRegression(max_iter=1000).fit(train_features, train_labels)
    return float(logreg.score(train_features, train_labels))


@wrong("linear_probe", caught_publicly=False)
def run_linear_probe_unconverged(train_features, train_labels, test_features, test_labels):
    """Wrong: stops the optimiser after 2 iterations, far from the logistic-regression optimum on
    real features. Easy synthetic clusters are separated anyway, so only a comparison with the
    reference accuracy on real features shows it."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        logreg = LogisticRegression(max_iter=2).fit(train_features, train_labels)
    return float(logreg.score(test_features, test_labels))


# ======================================================================================
# Models: the given __init__s and the graded forwards
# ======================================================================================
class SimCLRModelGiven(nn.Module):
    """The given part of the notebook's SimCLRModel: encoder f and projector g (no BatchNorm, as the seed)."""

    def __init__(self, proj_dim=128, hidden=2048):
        super().__init__()
        self.encoder = cifar_resnet18()
        self.projector = projection_mlp(512, hidden, proj_dim, batch_norm=False)

    def normalize(self, x, eps=1e-8):
        """Normalizes a batch of feature vectors (given helper of the seed)."""
        return x / (x.norm(dim=-1, keepdim=True) + eps)

    def forward(self, x):
        """The TODO stub as nbgrader leaves it."""
        raise NotImplementedError()


@correct("simclr_forward")
class SimCLRModelFNormalize(SimCLRModelGiven):
    """repr = encoder(x); proj = F.normalize(projector(repr), dim=1)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, F.normalize(self.projector(repr_), dim=1)


@correct("simclr_forward")
class SimCLRModelManualNorm(SimCLRModelGiven):
    """The seed's answer: the given self.normalize (x / (||x|| + eps))."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, self.normalize(self.projector(repr_))


@wrong("simclr_forward")
class SimCLRModelUnnormalized(SimCLRModelGiven):
    """Wrong: the projections are not L2-normalised."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, self.projector(repr_)


@wrong("simclr_forward")
class SimCLRModelNormalizedDim0(SimCLRModelGiven):
    """Wrong: normalises along the batch dimension (dim=0)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, F.normalize(self.projector(repr_), dim=0)


@wrong("simclr_forward")
class SimCLRModelNormalizedRepr(SimCLRModelGiven):
    """Wrong: returns a normalised representation."""

    def forward(self, x):
        repr_ = F.normalize(self.encoder(x), dim=1)
        return repr_, F.normalize(self.projector(repr_), dim=1)


@wrong("simclr_forward")
class SimCLRModelSwappedOutputs(SimCLRModelGiven):
    """Wrong: returns (proj, repr) instead of (repr, proj)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return F.normalize(self.projector(repr_), dim=1), repr_


@wrong("simclr_forward")
class SimCLRModelProjOnly(SimCLRModelGiven):
    """Wrong: returns only the projection."""

    def forward(self, x):
        return F.normalize(self.projector(self.encoder(x)), dim=1)


@wrong("simclr_forward")
class SimCLRModelFrozenEncoder(SimCLRModelGiven):
    """Wrong: computes the representation under torch.no_grad(), so the encoder never learns."""

    def forward(self, x):
        with torch.no_grad():
            repr_ = self.encoder(x)
        return repr_, F.normalize(self.projector(repr_), dim=1)


class BYOLModelGiven(nn.Module):
    """The given part of the notebook's BYOLModel: encoder, projector and predictor with BatchNorm."""

    def __init__(self, proj_dim=128, hidden_dim=2048):
        super().__init__()
        self.encoder = cifar_resnet18()
        self.projector = projection_mlp(512, hidden_dim, proj_dim, batch_norm=True)
        self.predictor = projection_mlp(proj_dim, hidden_dim, proj_dim, batch_norm=True)

    def forward(self, x):
        """The TODO stub as nbgrader leaves it."""
        raise NotImplementedError()


@correct("byol_forward")
class BYOLModelSeed(BYOLModelGiven):
    """The seed's answer: pred = predictor(un-normalised proj), both normalised with F.normalize(eps=1e-8)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        proj = self.projector(repr_)
        pred = self.predictor(proj)
        return repr_, F.normalize(proj, dim=-1, eps=1e-8), F.normalize(pred, dim=-1, eps=1e-8)


@correct("byol_forward")
class BYOLModelManualNorm(BYOLModelGiven):
    """Manual L2 norms: v / v.norm(dim=1, keepdim=True)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        proj = self.projector(repr_)
        pred = self.predictor(proj)
        return repr_, proj / proj.norm(dim=1, keepdim=True), pred / pred.norm(dim=1, keepdim=True)


@wrong("byol_forward")
class BYOLModelPredUnnormalized(BYOLModelGiven):
    """Wrong: pred is not normalised."""

    def forward(self, x):
        repr_ = self.encoder(x)
        proj = self.projector(repr_)
        return repr_, F.normalize(proj, dim=1), self.predictor(proj)


@wrong("byol_forward")
class BYOLModelPredFromNormalizedProj(BYOLModelGiven):
    """Wrong: feeds the normalised projection to the predictor (q takes g(f(x)) itself)."""

    def forward(self, x):
        repr_ = self.encoder(x)
        proj = F.normalize(self.projector(repr_), dim=1)
        return repr_, proj, F.normalize(self.predictor(proj), dim=1)


@wrong("byol_forward")
class BYOLModelTwoOutputs(BYOLModelGiven):
    """Wrong: returns (repr, pred) only."""

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, F.normalize(self.predictor(self.projector(repr_)), dim=1)


@wrong("byol_forward")
class BYOLModelProjUnnormalized(BYOLModelGiven):
    """Wrong: proj is returned without normalisation."""

    def forward(self, x):
        repr_ = self.encoder(x)
        proj = self.projector(repr_)
        return repr_, proj, F.normalize(self.predictor(proj), dim=1)


class BarlowTwinsModelGiven(nn.Module):
    """The notebook's BarlowTwinsModel, given in full (its forward is not a task)."""

    def __init__(self, proj_dim=128, hidden_dim=2048):
        super().__init__()
        self.encoder = cifar_resnet18()
        self.projector = projection_mlp(512, hidden_dim, proj_dim, batch_norm=True)

    def forward(self, x):
        repr_ = self.encoder(x)
        return repr_, self.projector(repr_)


# ======================================================================================
# NT-Xent
# ======================================================================================
@correct("nt_xent")
def nt_xent_seed(z1, z2, tau=0.5):
    """The seed's answer: cat the views, mask the diagonal with -1e9, cross-entropy (mean over 2N anchors)."""
    b = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)  # (2B, d)
    sim = (z @ z.t()) / tau  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -1e9)
    targets = torch.arange(b, device=z.device)
    return F.cross_entropy(sim, torch.cat([targets + b, targets]))


@correct("nt_xent")
def nt_xent_blocks(z1, z2, tau=0.5):
    """Separate blocks: positives on the diagonal of z1 @ z2.T, same-view negatives with -inf diagonals."""
    n = z1.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z1.device)
    s12 = z1 @ z2.T / tau
    s11 = (z1 @ z1.T / tau).masked_fill(eye, float("-inf"))
    s22 = (z2 @ z2.T / tau).masked_fill(eye, float("-inf"))
    logits1 = torch.cat([s12, s11], dim=1)  # anchors of view 1: (N, 2N)
    logits2 = torch.cat([s12.T, s22], dim=1)  # anchors of view 2
    targets = torch.arange(n, device=z1.device)
    return (F.cross_entropy(logits1, targets) + F.cross_entropy(logits2, targets)) / 2


@correct("nt_xent")
def nt_xent_loop(z1, z2, tau=0.5):
    """A slow loop straight from equation (1) of the SimCLR paper (cosine similarity, k != i)."""
    z = torch.cat([z1, z2])
    n2 = z.shape[0]
    losses = []
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sims = torch.stack([F.cosine_similarity(z[i], z[k], dim=0) for k in range(n2)]) / tau
        denominator = torch.stack([torch.exp(sims[k]) for k in range(n2) if k != i]).sum()
        losses.append(-torch.log(torch.exp(sims[j]) / denominator))
    return torch.stack(losses).mean()


@correct("nt_xent")
def nt_xent_renormalize_logsumexp(z1, z2, tau=0.5):
    """Normalises the inputs again (seed erratum 9) and writes the log-softmax with logsumexp."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = z.shape[0]
    sim = z @ z.T / tau - 1e9 * torch.eye(n2, device=z.device)  # self-similarity pushed to ~ -inf
    positives = torch.cat([torch.arange(n2 // 2, n2), torch.arange(0, n2 // 2)]).to(z.device)
    return (torch.logsumexp(sim, dim=1) - sim[torch.arange(n2), positives]).mean()


@wrong("nt_xent")
def nt_xent_no_self_mask(z1, z2, tau=0.5):
    """Wrong: the denominator includes k = i (self-similarity not masked)."""
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    targets = torch.arange(b, device=z.device)
    return F.cross_entropy(z @ z.T / tau, torch.cat([targets + b, targets]))


@wrong("nt_xent")
def nt_xent_mean_over_n(z1, z2, tau=0.5):
    """Wrong: (1/N) * sum over the 2N anchors (the EPFL markdown's formula, seed erratum 1)."""
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = (z @ z.T / tau).masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z1.device), -1e9)
    targets = torch.arange(b, device=z1.device)
    return F.cross_entropy(sim, torch.cat([targets + b, targets]), reduction="sum") / b


@wrong("nt_xent")
def nt_xent_sum(z1, z2, tau=0.5):
    """Wrong: sums over the 2N anchors instead of averaging."""
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = (z @ z.T / tau).masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z1.device), -1e9)
    targets = torch.arange(b, device=z1.device)
    return F.cross_entropy(sim, torch.cat([targets + b, targets]), reduction="sum")


@wrong("nt_xent")
def nt_xent_temperature_multiplied(z1, z2, tau=0.5):
    """Wrong: multiplies the similarities by tau."""
    return nt_xent_seed(z1, z2, 1.0 / tau)


@wrong("nt_xent")
def nt_xent_one_direction(z1, z2, tau=0.5):
    """Wrong: only the N views of z1 are anchors (negatives from both views)."""
    n = z1.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z1.device)
    logits = torch.cat([z1 @ z2.T, (z1 @ z1.T).masked_fill(eye, float("-inf"))], dim=1) / tau
    return F.cross_entropy(logits, torch.arange(n, device=z1.device))


@wrong("nt_xent")
def nt_xent_cross_view_negatives(z1, z2, tau=0.5):
    """Wrong: CLIP-style InfoNCE; only the other view's N-1 images are negatives."""
    logits = z1 @ z2.T / tau
    targets = torch.arange(z1.shape[0], device=z1.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


@wrong("nt_xent")
def nt_xent_positive_excluded(z1, z2, tau=0.5):
    """Wrong: the positive is left out of the denominator (the decoupled DCL loss, not NT-Xent)."""
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = z @ z.T / tau
    positives = torch.cat([torch.arange(b, 2 * b, device=z1.device), torch.arange(b, device=z1.device)])
    mask = torch.eye(2 * b, dtype=torch.bool, device=z1.device)
    mask[torch.arange(2 * b, device=z1.device), positives] = True
    negatives = torch.logsumexp(sim.masked_fill(mask, float("-inf")), dim=1)
    return (negatives - sim[torch.arange(2 * b, device=z1.device), positives]).mean()


@wrong("nt_xent")
def nt_xent_per_anchor(z1, z2, tau=0.5):
    """Wrong: returns the 2N per-anchor losses instead of their mean."""
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = (z @ z.T / tau).masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z1.device), -1e9)
    targets = torch.arange(b, device=z1.device)
    return F.cross_entropy(sim, torch.cat([targets + b, targets]), reduction="none")


@wrong("nt_xent")
def nt_xent_item(z1, z2, tau=0.5):
    """Wrong: returns loss.item(), a Python float that cannot be backpropagated."""
    return nt_xent_seed(z1, z2, tau).item()


@wrong("nt_xent")
def nt_xent_detached(z1, z2, tau=0.5):
    """Wrong: detaches the inputs, so no gradient reaches the model."""
    return nt_xent_seed(z1.detach(), z2.detach(), tau)


#: The notebook's `nt_xent`, which the step variants call.
nt_xent = nt_xent_seed


# ======================================================================================
# Barlow Twins loss
# ======================================================================================
def _off_diagonal(c):
    d = c.shape[0]
    return c.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


@correct("barlow_loss")
def barlow_loss_seed(z1, z2, alpha, eps=1e-5):
    """The seed's answer: unbiased variance, sqrt(var + eps), the off_diagonal view trick."""
    b = z1.shape[0]
    z1 = (z1 - z1.mean(dim=0, keepdim=True)) / torch.sqrt(z1.var(dim=0, keepdim=True) + eps)
    z2 = (z2 - z2.mean(dim=0, keepdim=True)) / torch.sqrt(z2.var(dim=0, keepdim=True) + eps)
    c = z1.T @ z2 / b
    return torch.diagonal(c).add(-1).pow(2).sum() + alpha * _off_diagonal(c).pow(2).sum()


@correct("barlow_loss")
def barlow_loss_float32_under_autocast(z1, z2, alpha, eps=1e-5):
    """The notebook's float32 answer: autocast switched off inside the loss, inputs cast with .float()."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1, z2 = z1.float(), z2.float()
        z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
        z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
        c = z1.T @ z2 / z1.shape[0]
        return (1 - torch.diagonal(c)).pow(2).sum() + alpha * _off_diagonal(c).pow(2).sum()


@correct("barlow_loss")
def barlow_loss_biased_std(z1, z2, alpha, eps=1e-5):
    """Biased standard deviation plus eps, off-diagonal by masking."""
    z1 = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = z1.T @ z2 / z1.shape[0]
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).masked_fill(torch.eye(c.shape[0], dtype=torch.bool, device=c.device), 0).sum()
    return on + alpha * off


@correct("barlow_loss")
def barlow_loss_batch_norm(z1, z2, alpha, eps=1e-5):
    """The Barlow Twins paper's code: an affine-free BatchNorm (biased var, eps inside the sqrt)."""
    z1n = F.batch_norm(z1, None, None, training=True, eps=eps)
    z2n = F.batch_norm(z2, None, None, training=True, eps=eps)
    c = z1n.T @ z2n / z1.shape[0]
    return (torch.diagonal(c) - 1).pow(2).sum() + alpha * (c.pow(2).sum() - torch.diagonal(c).pow(2).sum())


@correct("barlow_loss")
def barlow_loss_cmu_formula_centred(z1, z2, alpha, eps=1e-5):
    """The CMU seed's formula (2), C_ij = <z_i, z_j> / (||z_i|| ||z_j||), on batch-centred features."""
    a = z1 - z1.mean(0)
    b = z2 - z2.mean(0)
    c = (a.T @ b) / (a.norm(dim=0)[:, None] * b.norm(dim=0)[None, :])
    diag = torch.diagonal(c)
    return (1 - diag).pow(2).sum() + alpha * (c.pow(2).sum() - diag.pow(2).sum())


@wrong("barlow_loss")
def barlow_loss_not_centred(z1, z2, alpha, eps=1e-5):
    """Wrong: the CMU formula (2) on raw, un-centred outputs (cosine of columns, not correlation)."""
    c = (z1.T @ z2) / (z1.norm(dim=0)[:, None] * z2.norm(dim=0)[None, :])
    diag = torch.diagonal(c)
    return (1 - diag).pow(2).sum() + alpha * (c.pow(2).sum() - diag.pow(2).sum())


@wrong("barlow_loss")
def barlow_loss_rows_standardized(z1, z2, alpha, eps=1e-5):
    """Wrong: standardises each sample (dim=1) instead of each feature along the batch."""
    z1 = (z1 - z1.mean(1, keepdim=True)) / (z1.std(1, keepdim=True) + eps)
    z2 = (z2 - z2.mean(1, keepdim=True)) / (z2.std(1, keepdim=True) + eps)
    c = z1.T @ z2 / z1.shape[0]
    return (torch.diagonal(c) - 1).pow(2).sum() + alpha * _off_diagonal(c).pow(2).sum()


@wrong("barlow_loss")
def barlow_loss_diagonal_in_redundancy(z1, z2, alpha, eps=1e-5):
    """Wrong: the redundancy term sums over all entries, diagonal included."""
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + eps)
    c = z1.T @ z2 / z1.shape[0]
    return (torch.diagonal(c) - 1).pow(2).sum() + alpha * c.pow(2).sum()


@wrong("barlow_loss")
def barlow_loss_alpha_ignored(z1, z2, alpha, eps=1e-5):
    """Wrong: the off-diagonal term is not multiplied by alpha."""
    return barlow_loss_seed(z1, z2, 1.0, eps)


@wrong("barlow_loss")
def barlow_loss_not_divided_by_n(z1, z2, alpha, eps=1e-5):
    """Wrong: C = z1n.T @ z2n without dividing by the batch size."""
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + eps)
    c = z1.T @ z2
    return (torch.diagonal(c) - 1).pow(2).sum() + alpha * _off_diagonal(c).pow(2).sum()


@wrong("barlow_loss")
def barlow_loss_means(z1, z2, alpha, eps=1e-5):
    """Wrong: averages the squared entries instead of summing them."""
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + eps)
    z2 = (z2 - z2.mean(0)) / (z2.std(0) + eps)
    c = z1.T @ z2 / z1.shape[0]
    return (torch.diagonal(c) - 1).pow(2).mean() + alpha * _off_diagonal(c).pow(2).mean()


@wrong("barlow_loss")
def barlow_loss_only_z1_standardized(z1, z2, alpha, eps=1e-5):
    """Wrong: standardises z1 but feeds z2 raw."""
    z1 = (z1 - z1.mean(0)) / (z1.std(0) + eps)
    c = z1.T @ z2 / z1.shape[0]
    return (torch.diagonal(c) - 1).pow(2).sum() + alpha * _off_diagonal(c).pow(2).sum()


#: The notebook's `barlow_loss`, which the step variants call.
barlow_loss = barlow_loss_seed


# ======================================================================================
# SimCLR and Barlow Twins training steps
# ======================================================================================
@correct("simclr_step")
def simclr_train_step_separate(model, x1, x2, optimizer, tau=0.5):
    """The seed's loop body: forward each view, nt_xent, zero_grad, backward, step, loss.item()."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@correct("simclr_step")
def simclr_train_step_concatenated(model, x1, x2, optimizer, tau=0.5):
    """Both views in one forward pass (torch.cat), split with chunk; zero_grad(set_to_none=True) first."""
    optimizer.zero_grad(set_to_none=True)
    _, proj = model(torch.cat([x1, x2]))
    proj1, proj2 = proj.chunk(2)
    loss = nt_xent(proj1, proj2, tau)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@wrong("simclr_step")
def simclr_train_step_no_zero_grad(model, x1, x2, optimizer, tau=0.5):
    """Wrong: never zeroes the gradients, so they accumulate across steps."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("simclr_step")
def simclr_train_step_returns_tensor(model, x1, x2, optimizer, tau=0.5):
    """Wrong: returns the loss tensor (keeps the graph alive) instead of a float."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@wrong("simclr_step")
def simclr_train_step_ignores_tau(model, x1, x2, optimizer, tau=0.5):
    """Wrong: calls nt_xent without the step's tau (always 0.5)."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("simclr_step")
def simclr_train_step_uses_repr(model, x1, x2, optimizer, tau=0.5):
    """Wrong: the loss is computed on the (normalised) representations; the projector never trains."""
    repr1, _ = model(x1)
    repr2, _ = model(x2)
    loss = nt_xent(F.normalize(repr1, dim=1), F.normalize(repr2, dim=1), tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("simclr_step")
def simclr_train_step_zero_grad_after_backward(model, x1, x2, optimizer, tau=0.5):
    """Wrong: zero_grad between backward and step erases the gradients; nothing is learned."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


@wrong("simclr_step")
def simclr_train_step_loss_after_update(model, x1, x2, optimizer, tau=0.5):
    """Wrong: returns a loss recomputed after the update instead of the one that was optimised."""
    simclr_train_step_separate(model, x1, x2, optimizer, tau)
    with torch.no_grad():
        return nt_xent(model(x1)[1], model(x2)[1], tau=tau).item()


@wrong("simclr_step")
def simclr_train_step_double_step(model, x1, x2, optimizer, tau=0.5):
    """Wrong: calls optimizer.step() twice per batch."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    optimizer.step()
    return loss.item()


@wrong("simclr_step")
def simclr_train_step_eval_mode(model, x1, x2, optimizer, tau=0.5):
    """Wrong: switches the model to eval mode, so BatchNorm uses running statistics while training."""
    model.eval()
    return simclr_train_step_separate(model, x1, x2, optimizer, tau)


@correct("barlow_step")
def barlow_train_step_seed(model, x1, x2, optimizer, alpha=5e-3):
    """The seed's loop body: forward each view, barlow_loss, zero_grad, backward, step, loss.item()."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = barlow_loss(proj1, proj2, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("barlow_step")
def barlow_train_step_ignores_alpha(model, x1, x2, optimizer, alpha=5e-3):
    """Wrong: uses a hard-coded alpha = 5e-3 instead of the argument."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = barlow_loss(proj1, proj2, alpha=5e-3)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("barlow_step")
def barlow_train_step_no_zero_grad(model, x1, x2, optimizer, alpha=5e-3):
    """Wrong: never zeroes the gradients."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = barlow_loss(proj1, proj2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("barlow_step")
def barlow_train_step_returns_tensor(model, x1, x2, optimizer, alpha=5e-3):
    """Wrong: returns the loss tensor instead of a float."""
    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = barlow_loss(proj1, proj2, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@wrong("barlow_step")
def barlow_train_step_uses_repr(model, x1, x2, optimizer, alpha=5e-3):
    """Wrong: the loss is computed on the representations; the projector never trains."""
    repr1, _ = model(x1)
    repr2, _ = model(x2)
    loss = barlow_loss(repr1, repr2, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# ======================================================================================
# EMA
# ======================================================================================
@correct("ema")
class EMASeed:
    """The seed's answer: target_param.data = beta * target.data + (1 - beta) * online.data."""

    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for online_param, target_param in zip(online.parameters(), target.parameters()):
            target_param.data = self.beta * target_param.data + (1 - self.beta) * online_param.data


@correct("ema")
class EMALerp:
    """In-place lerp_ under torch.no_grad(): w_t += (1 - beta) * (w_o - w_t)."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.lerp_(o, 1.0 - self.beta)


@correct("ema")
class EMAForeach:
    """torch._foreach_mul_ / _foreach_add_ over all parameters at once (one kernel per op on a GPU)."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        target_params = list(target.parameters())
        torch._foreach_mul_(target_params, self.beta)
        torch._foreach_add_(target_params, list(online.parameters()), alpha=1.0 - self.beta)


@correct("ema")
class EMAStateDict:
    """Averages every floating-point entry of the state_dict (BatchNorm running stats too; integer counters copied)."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        online_state = online.state_dict()
        for name, t in target.state_dict().items():
            if t.is_floating_point():
                t.mul_(self.beta).add_(online_state[name], alpha=1 - self.beta)
            else:
                t.copy_(online_state[name])


@wrong("ema")
class EMASwappedWeights:
    """Wrong: beta weights the online network: w_t = (1 - beta) w_t + beta w_o."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.copy_((1 - self.beta) * t + self.beta * o)


@wrong("ema")
class EMAUpdatesOnline:
    """Wrong: updates the online network towards the target (roles swapped)."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            o.copy_(self.beta * o + (1 - self.beta) * t)


@wrong("ema")
class EMAWithAutogradHistory:
    """Wrong: in-place update without torch.no_grad(); the target joins the online network's graph."""

    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(self.beta).add_((1 - self.beta) * o)


@wrong("ema")
class EMAHardcodedBeta:
    """Wrong: ignores self.beta and always uses 0.99."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.copy_(0.99 * t + 0.01 * o)


@wrong("ema")
class EMARebindsLoopVariable:
    """Wrong: `t = beta * t + ...` rebinds the loop variable; the target never changes."""

    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t = self.beta * t + (1 - self.beta) * o  # noqa: PLW2901 - the mistake itself


@wrong("ema")
class EMANewParameters:
    """Wrong: replaces the target's Parameter objects instead of updating them in place."""

    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        online_params = dict(online.named_parameters())
        for module_name, module in target.named_modules():
            for name, t in list(module.named_parameters(recurse=False)):
                o = online_params[f"{module_name}.{name}" if module_name else name]
                module._parameters[name] = nn.Parameter(self.beta * t + (1 - self.beta) * o,
                                                        requires_grad=t.requires_grad)


# ======================================================================================
# BYOL step
# ======================================================================================
def _byol_pair_loss(pred, proj):
    """2 - 2 cos per pair of normalised vectors. Shape: (B, d), (B, d) -> (B,)."""
    return 2 - 2 * (pred * proj).sum(dim=-1)


@correct("byol_step")
def byol_train_step_seed(online, target, ema, optimizer, x1, x2):
    """The seed's answer: online on cat[x1, x2], target on cat[x2, x1] under no_grad, mean over the 2N terms."""
    _, _, pred = online(torch.cat([x1, x2], dim=0))
    with torch.no_grad():
        _, proj_target, _ = target(torch.cat([x2, x1], dim=0))
    loss = _byol_pair_loss(pred, proj_target.detach()).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@correct("byol_step")
def byol_train_step_paper_sum(online, target, ema, optimizer, x1, x2):
    """The paper's L + L~ (twice the seed's mean), views forwarded separately, target outputs detached."""
    _, _, pred1 = online(x1)
    _, _, pred2 = online(x2)
    _, proj1, _ = target(x1)
    _, proj2, _ = target(x2)
    loss = _byol_pair_loss(pred1, proj2.detach()).mean() + _byol_pair_loss(pred2, proj1.detach()).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@correct("byol_step")
def byol_train_step_cosine_similarity(online, target, ema, optimizer, x1, x2):
    """F.cosine_similarity and the squared distance form ||p - z||^2 (equal for unit vectors)."""
    _, _, pred1 = online(x1)
    _, _, pred2 = online(x2)
    with torch.no_grad():
        proj1 = target(x1)[1]
        proj2 = target(x2)[1]
    loss = 0.5 * ((pred1 - proj2).pow(2).sum(1).mean() + (2 - 2 * F.cosine_similarity(pred2, proj1, dim=1)).mean())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@wrong("byol_step")
def byol_train_step_one_view_order(online, target, ema, optimizer, x1, x2):
    """Wrong: only pred_online(x1) against proj_target(x2); the loss is not symmetrised."""
    _, _, pred1 = online(x1)
    with torch.no_grad():
        proj2 = target(x2)[1]
    loss = _byol_pair_loss(pred1, proj2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@wrong("byol_step")
def byol_train_step_ema_before_step(online, target, ema, optimizer, x1, x2):
    """Wrong: the EMA update runs before optimizer.step(), with the old online weights."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(pred, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    ema.update(online, target)
    optimizer.step()
    return loss.item()


@wrong("byol_step")
def byol_train_step_ema_wrong_network(online, target, ema, optimizer, x1, x2):
    """Wrong: ema.update(target, online) moves the online network towards the target."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(pred, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(target, online)
    return loss.item()


@wrong("byol_step")
def byol_train_step_no_ema(online, target, ema, optimizer, x1, x2):
    """Wrong: never updates the target network."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(pred, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("byol_step")
def byol_train_step_no_stop_gradient(online, target, ema, optimizer, x1, x2):
    """Wrong: the target's projections are not detached (no stop-gradient sg(.))."""
    _, _, pred = online(torch.cat([x1, x2]))
    _, proj_target, _ = target(torch.cat([x2, x1]))
    loss = _byol_pair_loss(pred, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@wrong("byol_step")
def byol_train_step_no_zero_grad(online, target, ema, optimizer, x1, x2):
    """Wrong: never zeroes the gradients."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(pred, proj_target).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@wrong("byol_step")
def byol_train_step_returns_tensor(online, target, ema, optimizer, x1, x2):
    """Wrong: returns the loss tensor."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(pred, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss


@wrong("byol_step")
def byol_train_step_without_predictor(online, target, ema, optimizer, x1, x2):
    """Wrong: compares the online *projections* with the target's; the predictor is never trained."""
    _, proj_online, _ = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = _byol_pair_loss(proj_online, proj_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


@wrong("byol_step", caught_publicly=False)
def byol_train_step_target_predictions(online, target, ema, optimizer, x1, x2):
    """Wrong: regresses onto the target's *predictions* instead of its projections. Symmetric,
    bounded and correctly stepped, so only the value compared with the reference shows it."""
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        pred_target = target(torch.cat([x2, x1]))[2]
    loss = _byol_pair_loss(pred, pred_target).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()


# ======================================================================================
# Fine-tuning step and evaluation
# ======================================================================================
@correct("finetune_step")
def finetune_train_step_standard(classifier, x, y, optimizer):
    """Cross-entropy, zero_grad/backward/step, (loss.item(), correct count via argmax)."""
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(dim=1) == y).sum().item()


@correct("finetune_step")
def finetune_train_step_max(classifier, x, y, optimizer):
    """nn.CrossEntropyLoss module, logits.max(1) for the predictions, int() of the count."""
    optimizer.zero_grad(set_to_none=True)
    logits = classifier(x)
    loss = nn.CrossEntropyLoss()(logits, y)
    loss.backward()
    optimizer.step()
    _, predicted = logits.detach().max(1)
    return float(loss.detach()), int(predicted.eq(y).sum())


@wrong("finetune_step")
def finetune_train_step_no_zero_grad(classifier, x, y, optimizer):
    """Wrong: never zeroes the gradients."""
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(dim=1) == y).sum().item()


@wrong("finetune_step")
def finetune_train_step_accuracy(classifier, x, y, optimizer):
    """Wrong: returns the batch accuracy instead of the number of correct predictions."""
    loss, n_correct = finetune_train_step_standard(classifier, x, y, optimizer)
    return loss, n_correct / len(y)


@wrong("finetune_step")
def finetune_train_step_tensors(classifier, x, y, optimizer):
    """Wrong: returns tensors (the loss still attached to the graph)."""
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss, (logits.argmax(dim=1) == y).sum()


@wrong("finetune_step")
def finetune_train_step_eval_mode(classifier, x, y, optimizer):
    """Wrong: puts the classifier in eval mode during training."""
    classifier.eval()
    return finetune_train_step_standard(classifier, x, y, optimizer)


@wrong("finetune_step")
def finetune_train_step_summed_loss(classifier, x, y, optimizer):
    """Wrong: optimises and returns the summed (not mean) cross-entropy."""
    logits = classifier(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(dim=1) == y).sum().item()


@correct("evaluate")
def evaluate_per_sample(classifier, dataloader):
    """Per-sample mean: sum of cross-entropies / number of samples, correct / samples, under no_grad."""
    classifier.eval()
    device = next(classifier.parameters()).device
    total_loss, correct_count, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            x, y = x.to(device), y.to(device)
            logits = classifier(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct_count += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total_loss / seen, correct_count / seen


@correct("evaluate")
def evaluate_batch_mean_loss(classifier, dataloader):
    """Mean of the per-batch mean losses (the common `running_loss / len(loader)`), inference_mode."""
    classifier.eval()
    losses, correct_count, seen = [], 0, 0
    with torch.inference_mode():
        for x, y in dataloader:
            logits = classifier(x)
            losses.append(F.cross_entropy(logits, y).item())
            correct_count += int((logits.argmax(1) == y).sum())
            seen += y.numel()
    return sum(losses) / len(losses), correct_count / seen


@correct("evaluate")
def evaluate_restores_mode(classifier, dataloader):
    """Eval mode for every forward pass, then gives the classifier back in the mode it came in with."""
    was_training = classifier.training
    classifier.eval()
    total_loss, correct_count, seen = 0.0, 0, 0
    try:
        with torch.no_grad():
            for x, y in dataloader:
                logits = classifier(x)
                total_loss += F.cross_entropy(logits, y, reduction="sum").item()
                correct_count += (logits.argmax(1) == y).sum().item()
                seen += len(y)
    finally:
        classifier.train(was_training)
    return total_loss / seen, correct_count / seen


@wrong("evaluate")
def evaluate_percent(classifier, dataloader):
    """Wrong: returns the accuracy in percent."""
    loss, accuracy = evaluate_per_sample(classifier, dataloader)
    return loss, 100.0 * accuracy


@wrong("evaluate")
def evaluate_train_mode(classifier, dataloader):
    """Wrong: never switches to eval mode (BatchNorm/dropout in training behaviour)."""
    total_loss, correct_count, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct_count += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total_loss / seen, correct_count / seen


@wrong("evaluate")
def evaluate_grad_enabled(classifier, dataloader):
    """Wrong: evaluates with gradients enabled (builds graphs for nothing)."""
    classifier.eval()
    total_loss, correct_count, seen = 0.0, 0, 0
    for x, y in dataloader:
        logits = classifier(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct_count += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total_loss / seen, correct_count / seen


@wrong("evaluate")
def evaluate_count(classifier, dataloader):
    """Wrong: returns the number of correct predictions as the accuracy."""
    loss, accuracy = evaluate_per_sample(classifier, dataloader)
    return loss, float(round(accuracy * len(dataloader.dataset)))


@wrong("evaluate")
def evaluate_mean_of_batch_accuracies(classifier, dataloader):
    """Wrong: averages per-batch accuracies; a smaller last batch gets too much weight."""
    classifier.eval()
    losses, accuracies = [], []
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            losses.append(F.cross_entropy(logits, y).item())
            accuracies.append((logits.argmax(1) == y).float().mean().item())
    return sum(losses) / len(losses), sum(accuracies) / len(accuracies)


@wrong("evaluate")
def evaluate_summed_loss(classifier, dataloader):
    """Wrong: returns the summed loss over the dataset instead of the mean."""
    classifier.eval()
    total_loss, correct_count, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct_count += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total_loss, correct_count / seen


# ======================================================================================
# Stubs
# ======================================================================================
def not_implemented(*args, **kwargs):
    """The TODO stub nbgrader leaves in a function cell."""
    # YOUR CODE HERE
    raise NotImplementedError()


class NotImplementedEMA:
    """The EMA cell's TODO stub: update raises NotImplementedError."""

    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        raise NotImplementedError()


# For the tests: the correct partners a check needs besides the variant under test.
CORRECT_SIMCLR_MODEL = SimCLRModelFNormalize
CORRECT_BYOL_MODEL = BYOLModelSeed
CORRECT_EMA = EMALerp
CORRECT_KNN_PROBE = run_knn_probe_seed
CORRECT_LINEAR_PROBE = run_linear_probe_seed
CORRECT_BARLOW_MODEL = BarlowTwinsModelGiven
