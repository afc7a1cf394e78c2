"""Public checks of the evaluation tasks: feature extraction, the k-NN and linear probes, `evaluate`.

Each check runs the student's function on a stand-in whose answer is known: a linear
feature model, clusters that are perfectly separable (or XOR-shaped, which no linear
classifier solves), and a classifier with known predictions on a loader of uneven batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.checks.checker import (
    CheckFailure,
    NotImplementedYet,
    _Checker,
    _close,
    _describe,
    _max_diff,
    _num,
    _python_float,
    _resolve_device,
    _tensors_close,
    _unit_columns,
    _unit_rows,
    _unpack,
)
from helpers.checks.stand_ins import _ControlledClassifier, _cross_entropies

#: The checks of this family, re-exported by `helpers.checks` (a new check is listed here only).
__all__ = ["check_extract_features", "check_probes", "check_evaluate"]


class _LinearFeatureModel(nn.Module):
    """A stand-in encoder whose features are a fixed linear map of the flattened image.

    It works on whatever device the input is on and records whether gradients were enabled
    during each forward. `output` selects the return type: "tensor", "tuple" or "list"
    (features first, then a second output, as the SSL models return (repr, proj)).
    """

    def __init__(self, in_dim: int, out_dim: int, output: str = "tensor") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / math.sqrt(in_dim))
        self.output = output
        self.grad_enabled: list[bool] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1) @ self.weight.to(x.device).T  # (B, out_dim)

    def forward(self, x: torch.Tensor):
        self.grad_enabled.append(torch.is_grad_enabled())
        f = self.features(x)
        if self.output == "tensor":
            return f
        second = f[:, :3] * 2.0 + 1.0  # (B, 3), a "projection" that must not be returned
        return (f, second) if self.output == "tuple" else [f, second]


def check_extract_features(extract_features_and_labels: Callable, device: str | torch.device | None = None) -> None:
    """Check `extract_features_and_labels(model, dataloader, normalize=False)`.

    Expected: `(features (N, D) float on the CPU, labels (N,) int64 on the CPU)`, all batches
    in loader order, the first element when the model returns a tuple/list, L2-normalised
    rows when `normalize=True`, and no autograd graph (forward under torch.no_grad()).

    Args:
        extract_features_and_labels: your function.
        device: where the stand-in model lives (default: `helpers.get_device()`).
    """
    chk = _Checker("extract_features", "extract_features_and_labels")
    with chk:
        device = _resolve_device(device)
        fn = extract_features_and_labels
        images = torch.rand(10, 3, 4, 4)
        labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
        loader = DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=False)  # batches 4, 4, 2
        model = _LinearFeatureModel(48, 6).to(device)
        with torch.no_grad():
            expected = model.features(images.to(device)).cpu()  # (10, 6)

        output = chk.call(fn, model, loader, normalize=False, name="extract_features_and_labels")
        features, got_labels = _unpack(chk, output, 2, "(features, labels)")
        for name, value in (("features", features), ("labels", got_labels)):
            if not isinstance(value, torch.Tensor):
                chk.fail(
                    f"the type of {name}",
                    "a torch.Tensor",
                    _describe(value),
                    "collect the batches in a list and torch.cat(list, dim=0) them.",
                )
        if features.shape != expected.shape:
            if features.shape[0] in (4, 2):
                hint = "only one batch came back: concatenate the features of all batches with torch.cat(..., dim=0)."
            else:
                hint = "features are (N, D): one row per image, all batches concatenated."
            chk.fail(
                "features shape", f"{tuple(expected.shape)} (N=10 images, D=6 features)", _describe(features), hint
            )
        if not features.is_floating_point():
            chk.fail("features dtype", "a floating-point tensor", _describe(features), None)
        if features.device.type != "cpu":
            chk.fail(
                "features device",
                "on the CPU",
                _describe(features),
                "move each batch's features to the CPU (`feat.cpu()`) before collecting them.",
            )
        if got_labels.shape != labels.shape or got_labels.dtype != torch.int64 or got_labels.device.type != "cpu":
            chk.fail(
                "labels",
                "an int64 CPU tensor of shape (10,)",
                _describe(got_labels),
                "collect the loader's labels `y` per batch and torch.cat them (they are already int64).",
            )
        chk.ok("returns (features (N, D) float CPU, labels (N,) int64 CPU)")

        if not torch.equal(got_labels, labels):
            chk.fail(
                "label values",
                f"the loader's labels in order: {labels.tolist()}",
                str(got_labels.tolist()),
                "keep the loader's order; don't shuffle or sort.",
            )
        if not _tensors_close(features, expected):
            if _tensors_close(features, F.normalize(expected, dim=1)):
                hint = "these are L2-normalised although normalize=False."
            else:
                hint = "features[i] must be model(x)[i] for the i-th image, in loader order."
            chk.fail(
                "feature values (normalize=False)",
                "the model's outputs, batch after batch",
                f"max abs difference {_max_diff(features, expected):.3g}",
                hint,
            )
        chk.ok("features and labels are the model's outputs in loader order")

        if features.requires_grad or features.grad_fn is not None or any(model.grad_enabled):
            chk.fail(
                "gradients",
                "no autograd graph: the forward pass runs under torch.no_grad()",
                f"gradients enabled during the forward pass={any(model.grad_enabled)}, "
                f"features.requires_grad={features.requires_grad}",
                "wrap the loop (or the model call) in `with torch.no_grad():` — detaching afterwards "
                "still builds the graph and wastes memory.",
            )
        chk.ok("no gradients are tracked")

        unwrap = (
            "if the output is a tuple or list, take its first element: "
            "`if isinstance(out, (tuple, list)): out = out[0]`."
        )
        for kind in ("tuple", "list"):
            wrapped = _LinearFeatureModel(48, 6, output=kind).to(device)
            wrapped.load_state_dict(model.state_dict())
            what = f"a model that returns a {kind} (features, projection)"
            try:
                out = chk.call(fn, wrapped, loader, normalize=False, name="extract_features_and_labels")
            except NotImplementedYet:
                raise
            except CheckFailure as err:
                cause = err.__cause__
                chk.fail(
                    what,
                    "the features, i.e. the first element of the model's output",
                    f"{type(cause).__name__}: {cause}" if cause else str(err),
                    unwrap,
                )
            got = _unpack(chk, out, 2, "(features, labels)")[0]
            if not isinstance(got, torch.Tensor) or not _tensors_close(got.cpu(), expected):
                chk.fail(what, "the features, i.e. the first element of the model's output", _describe(got), unwrap)
        chk.ok("uses the first element when the model returns a tuple or list")

        out = chk.call(fn, model, loader, normalize=True, name="extract_features_and_labels")
        normalized = _unpack(chk, out, 2, "(features, labels)")[0]
        if not isinstance(normalized, torch.Tensor) or normalized.shape != expected.shape:
            chk.fail("normalize=True output", f"shape {tuple(expected.shape)}", _describe(normalized), None)
        if not _unit_rows(normalized):
            hint = (
                "the columns have unit norm: normalise each feature vector (row), `F.normalize(features, dim=1)`."
                if _unit_columns(normalized)
                else "with normalize=True divide each row by its L2 norm."
            )
            chk.fail(
                "normalize=True",
                "every row with L2 norm 1",
                f"row norms {normalized.norm(dim=1)[:4].tolist()}...",
                hint,
            )
        if not _tensors_close(normalized.cpu(), F.normalize(expected, dim=1)):
            chk.fail(
                "normalize=True values",
                "the model's features divided by their row norms",
                f"max abs difference {_max_diff(normalized.cpu(), F.normalize(expected, dim=1)):.3g}",
                None,
            )
        chk.ok("normalize=True gives unit-norm rows of the same features")


def _clusters(num_classes: int, per_class: int, dim: int, gen: torch.Generator, spread: float = 0.5):
    centres = 10.0 * torch.eye(num_classes, dim)  # (C, dim), far apart
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (C * per_class,)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=gen)
    return points.numpy().astype(np.float32), labels.numpy()


def _knn_k5_data() -> tuple[np.ndarray, ...]:
    """2-D points where only k = 5 (of k = 1, 3, 5, 7) predicts the test point's label.

    Around the test point at the origin: two class-0 points at distance 0.50, then three
    class-1 points at 0.55-0.57, then two more class-0 points at 0.60-0.61; everything else is
    far away. 1-NN and 3-NN vote class 0, 5-NN votes 3:2 for class 1 (also when weighted by
    1 / distance), 7-NN votes 4:3 for class 0.
    """
    near = [
        (0.50, 0, 0.0),
        (0.50, 0, 3.1),
        (0.55, 1, 1.2),
        (0.56, 1, 2.0),
        (0.57, 1, 4.4),
        (0.60, 0, 5.3),
        (0.61, 0, 0.6),
    ]
    points = [(r * math.cos(a), r * math.sin(a)) for r, _, a in near]
    classes = [c for _, c, _ in near]
    for i in range(10):  # far padding so both classes have plenty of training points
        points += [(8.0 + 0.1 * i, 8.0), (-8.0 - 0.1 * i, -8.0)]
        classes += [0, 1]
    train_x = np.array(points, dtype=np.float32)
    train_y = np.array(classes, dtype=np.int64)
    return train_x, train_y, np.zeros((1, 2), dtype=np.float32), np.array([1], dtype=np.int64)


def check_probes(run_knn_probe: Callable, run_linear_probe: Callable) -> None:
    """Check `run_knn_probe(...)` and `run_linear_probe(...)`.

    Both take `(train_features, train_labels, test_features, test_labels)` (NumPy arrays, as
    the notebook passes them) and return the test accuracy as a float in [0, 1]: k-NN with
    k = 5, and a logistic-regression (linear) classifier.
    """
    chk = _Checker("probes", "run_knn_probe / run_linear_probe")
    with chk:
        gen = torch.Generator().manual_seed(0)
        train_x, train_y = _clusters(4, 20, 8, gen)
        test_x, test_y = _clusters(4, 10, 8, gen)
        probes = (("run_knn_probe", run_knn_probe), ("run_linear_probe", run_linear_probe))

        for name, probe in probes:
            acc = chk.call(probe, train_x, train_y, test_x, test_y, name=name)
            acc = _python_float(
                chk,
                acc,
                f"{name} return type",
                "return a Python float, e.g. `float(accuracy_score(...))` or `.item()`.",
            )
            if _close(acc, 100.0):
                chk.fail(
                    f"{name} on perfectly separable clusters",
                    "1.0 (a fraction in [0, 1])",
                    _num(acc),
                    "return the accuracy as a fraction; the notebook multiplies by 100 when printing.",
                )
            if not _close(acc, 1.0):
                hint = (
                    "0 on perfectly separable clusters: is this the error rate (1 - accuracy)?"
                    if _close(acc, 0.0)
                    else "fit on the training features/labels and score on the test features/labels."
                )
                chk.fail(f"{name} on perfectly separable clusters", "1.0", _num(acc), hint)
        chk.ok("both return a float, 1.0 on perfectly separable clusters (a fraction, not percent)")

        # Test points at the cluster centres: 7 of 10 carry their cluster's label, 3 another one.
        centres = (10.0 * torch.eye(4, 8)).numpy().astype(np.float32)
        cluster = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
        known_x = centres[cluster]
        known_y = cluster.copy()
        known_y[[2, 5, 9]] = [0, 3, 2]  # three wrong labels -> accuracy exactly 0.7
        for name, probe in probes:
            acc = _python_float(
                chk,
                chk.call(probe, train_x, train_y, known_x, known_y, name=name),
                f"{name} return type",
                "return a Python float.",
            )
            if not _close(acc, 0.7):
                if _close(acc, 0.3):
                    hint = "that is the error rate (1 - accuracy)."
                elif _close(acc, 1.0):
                    hint = "that is the training accuracy: score the predictions on test_features against test_labels."
                elif _close(acc, 70.0):
                    hint = "return a fraction in [0, 1], not percent."
                else:
                    hint = "accuracy = mean(predictions on test_features == test_labels)."
                chk.fail(
                    f"{name} with known test accuracy (7 of 10 test labels match their cluster)", "0.7", _num(acc), hint
                )
        chk.ok("both return the test accuracy (0.7 where 7 of 10 test labels are right)")

        knn_x, knn_y, query_x, query_y = _knn_k5_data()
        acc = _python_float(
            chk,
            chk.call(run_knn_probe, knn_x, knn_y, query_x, query_y, name="run_knn_probe"),
            "run_knn_probe return type",
            "return a Python float.",
        )
        if not _close(acc, 1.0):
            chk.fail(
                "k-NN uses k = 5 neighbours",
                "1.0 (the 5 nearest neighbours vote 3:2 for the right class)",
                _num(acc),
                "use KNeighborsClassifier(n_neighbors=5) with the default Euclidean distance "
                "(k = 1, 3 or 7 vote for the wrong class here).",
            )
        chk.ok("the k-NN probe votes over k = 5 neighbours")

        # XOR: four clusters, opposite corners share a class. No linear classifier gets more
        # than 3 of the 4 clusters right; a non-linear one (e.g. k-NN) gets all of them.
        corners = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]) * 4
        xor_labels = torch.tensor([0, 0, 1, 1])
        which = torch.arange(4).repeat_interleave(15)
        xor_x = (corners[which] + 0.3 * torch.randn(len(which), 2, generator=gen)).numpy().astype(np.float32)
        xor_y = xor_labels[which].numpy()
        acc = _python_float(
            chk,
            chk.call(run_linear_probe, xor_x, xor_y, xor_x, xor_y, name="run_linear_probe"),
            "run_linear_probe return type",
            "return a Python float.",
        )
        if acc > 0.75 + 0.05:
            chk.fail(
                "the linear probe is linear (XOR data, which no linear classifier separates)",
                "at most about 0.75",
                _num(acc),
                "run_linear_probe must fit a linear classifier (LogisticRegression), not k-NN or an MLP.",
            )
        chk.ok("the linear probe is a linear classifier (it cannot solve XOR)")


def check_evaluate(evaluate: Callable, device: str | torch.device | None = None) -> None:
    """Check `evaluate(classifier, dataloader) -> (mean loss float, accuracy float in [0, 1])`.

    Uses a stand-in classifier whose predictions are known and a loader of 10 samples in
    batches of 4, 4 and 2 (7 correct). Expected: accuracy 0.7 (correct / all samples, a
    fraction), the mean cross-entropy (per sample; the mean of the batch means is accepted
    too), every forward pass in eval mode without gradients. The mode the model is left in is
    not checked: leaving it in eval mode and restoring the mode it came in with are both correct.
    """
    chk = _Checker("evaluate", "evaluate")
    with chk:
        device = _resolve_device(device)
        num_classes, scale = 4, 3.0
        predicted = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
        labels = torch.tensor([0, 1, 2, 3, 0, 2, 2, 0, 1, 1])  # batches of 4, 4, 2 with 4, 2, 1 correct
        inputs = F.one_hot(predicted, num_classes).float()  # (10, 4)
        loader = DataLoader(TensorDataset(inputs, labels), batch_size=4, shuffle=False)
        losses = _cross_entropies(predicted, labels, num_classes, scale)
        per_sample = float(losses.mean())
        per_batch = float(torch.stack([chunk.mean() for chunk in losses.split(4)]).mean())

        model = _ControlledClassifier(num_classes, scale).to(device).train()
        out = chk.call(evaluate, model, loader, name="evaluate")
        loss, accuracy = _unpack(chk, out, 2, "(loss, accuracy)")
        loss = _python_float(chk, loss, "the returned loss", "return a Python float (total_loss / n, with .item()).")
        accuracy = _python_float(chk, accuracy, "the returned accuracy", "return a Python float (.item()).")
        chk.ok("returns (loss: float, accuracy: float)")

        if not _close(accuracy, 0.7, rtol=1e-6, atol=1e-9):
            if _close(accuracy, 70.0):
                hint = "return a fraction in [0, 1], not percent."
            elif _close(accuracy, 7.0):
                hint = "that is the number of correct predictions: divide by the number of samples."
            elif _close(accuracy, (1.0 + 0.5 + 0.5) / 3):
                hint = (
                    "that is the mean of the per-batch accuracies; the last batch is smaller: count correct "
                    "predictions over all samples and divide by the number of samples."
                )
            else:
                hint = "accuracy = (number of samples with argmax(logits) == y) / (number of samples)."
            chk.fail("accuracy (10 samples, 7 correct)", "0.7", _num(accuracy), hint)
        chk.ok("accuracy is correct / all samples, as a fraction in [0, 1]")

        if not (_close(loss, per_sample, rtol=1e-4, atol=1e-6) or _close(loss, per_batch, rtol=1e-4, atol=1e-6)):
            hint = (
                "this is the summed loss: divide by the number of samples."
                if _close(loss, float(losses.sum()), rtol=1e-4)
                else "loss = the mean cross-entropy over all samples of the loader."
            )
            chk.fail("the mean loss", f"{_num(per_sample)} (mean cross-entropy over the 10 samples)", _num(loss), hint)
        chk.ok("the loss is the mean cross-entropy")

        # Only the forward passes matter: an evaluate that gives the model back in the mode it came
        # in with (train, here) is as correct as one that leaves it in eval mode, and the grader
        # accepts both.
        if not model.training_modes or any(model.training_modes):
            chk.fail(
                "evaluation mode",
                "every forward pass in eval mode",
                f"forward modes {['train' if m else 'eval' for m in model.training_modes]}",
                "call classifier.eval() before the loop (BatchNorm and dropout behave differently in train mode).",
            )
        chk.ok("every forward pass runs in eval mode")
        if any(model.grad_modes):
            chk.fail(
                "gradients",
                "forward passes under torch.no_grad()",
                "gradients were enabled",
                "wrap the loop in `with torch.no_grad():` (evaluation needs no graph).",
            )
        chk.ok("no gradients are tracked")
