"""Answers to `evaluate` (its cell defines `evaluate`; graded in simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "per_sample",
        "loss summed per sample, divided by the number of images",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, correct / seen
""",
        sample=True,
    ),
    correct(
        "batch_means",
        "mean of the per-batch mean losses, inference_mode",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    losses, hits, count = [], 0, 0
    with torch.inference_mode():
        for x, y in dataloader:
            out = classifier(x)
            losses.append(F.cross_entropy(out, y).item())
            hits += int((out.argmax(dim=1) == y).sum())
            count += y.numel()
    return sum(losses) / len(losses), hits / count
""",
        sample=True,
    ),
    correct(
        "restores_mode",
        "eval mode for the loop, then the classifier's incoming mode restored",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    was_training = classifier.training
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    classifier.train(was_training)
    return total / seen, correct / seen
""",
        sample=True,
    ),
    wrong(
        "percent",
        "accuracy in percent",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, 100.0 * correct / seen
""",
        hint="not percent",
        sample=True,
        loses=(
            "evaluate: Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters).",
            "evaluate: The classifier runs in eval mode and without recording gradients.",
        ),
    ),
    wrong(
        "train_mode",
        "never switches to eval mode",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, correct / seen
""",
        hint="call classifier.eval()",
        sample=True,
        loses=(
            "evaluate: Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters).",
            "evaluate: The classifier runs in eval mode and without recording gradients.",
            "evaluate: evaluate returns (mean loss, accuracy) as Python floats, the accuracy in [0, 1].",
        ),
    ),
    wrong(
        "grad_enabled",
        "records gradients while evaluating",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    for x, y in dataloader:
        logits = classifier(x)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen
""",
        hint="with torch.no_grad():",
        sample=True,
        loses=("evaluate: The classifier runs in eval mode and without recording gradients.",),
    ),
    wrong(
        "count",
        "returns the number correct instead of the accuracy",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, float(correct)
""",
        hint="number of correct predictions: divide",
        sample=True,
        loses=(
            "evaluate: Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters).",
            "evaluate: The classifier runs in eval mode and without recording gradients.",
        ),
    ),
    wrong(
        "summed_loss",
        "the loss summed over the batches, not averaged",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y).item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total, correct / seen
""",
        hint="the mean cross-entropy over all samples of the loader",
        sample=True,
        loses=(
            "evaluate: Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters).",
            "evaluate: The classifier runs in eval mode and without recording gradients.",
            "evaluate: evaluate returns (mean loss, accuracy) as Python floats, the accuracy in [0, 1].",
        ),
    ),
    wrong(
        "mean_of_batch_accuracies",
        "averages the per-batch accuracies; a smaller last batch gets too much weight",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    losses, accuracies = [], []
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            losses.append(F.cross_entropy(logits, y).item())
            accuracies.append((logits.argmax(1) == y).float().mean().item())
    return sum(losses) / len(losses), sum(accuracies) / len(accuracies)
""",
        hint="mean of the per-batch accuracies",
    ),
    wrong(
        "loss_not_divided",
        "returns the summed loss over the dataset instead of the mean",
        """
import torch
import torch.nn.functional as F


def evaluate(classifier, dataloader):

    classifier.eval()
    total_loss, correct_count, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct_count += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total_loss, correct_count / seen
""",
        hint="this is the summed loss",
    ),
]
