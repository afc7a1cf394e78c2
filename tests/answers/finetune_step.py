"""Answers to `finetune_step` (its cell defines `finetune_train_step`; graded in simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "standard",
        "zero_grad first, argmax",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
""",
        sample=True,
    ),
    correct(
        "max_indices",
        "logits.max(1) indices, nn.CrossEntropyLoss, zero_grad last",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    criterion = torch.nn.CrossEntropyLoss()
    outputs = classifier(x)
    loss = criterion(outputs, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    _, predicted = outputs.max(1)
    return float(loss), int(predicted.eq(y).sum())
""",
        sample=True,
    ),
    wrong(
        "no_zero_grad",
        "never zeroes the gradients",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
""",
        hint="call optimizer.zero_grad() before loss.backward()",
        sample=True,
        loses=("finetune_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
    wrong(
        "accuracy_fraction",
        "returns the batch accuracy instead of the count",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).float().mean().item()
""",
        hint="that is the accuracy",
        sample=True,
        loses=(
            "finetune_step: One step: cross-entropy loss, number of correct predictions, parameters after the update.",
            "finetune_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "finetune_step: The step returns (loss as a Python float, number correct as a Python int).",
        ),
    ),
    wrong(
        "tensors",
        "returns tensors instead of Python numbers",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) == y).sum()
""",
        hint="return loss.item()",
        sample=True,
        loses=("finetune_step: The step returns (loss as a Python float, number correct as a Python int).",),
    ),
    wrong(
        "summed_loss",
        "sums the cross-entropy over the batch",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
""",
        hint="this is the sum over the batch",
        sample=True,
        loses=(
            "finetune_step: One step: cross-entropy loss, number of correct predictions, parameters after the update.",
            "finetune_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "finetune_step: The step returns (loss as a Python float, number correct as a Python int).",
        ),
    ),
    wrong(
        "eval_mode",
        "runs the step in eval mode",
        """
import torch
import torch.nn.functional as F


def finetune_train_step(classifier, x, y, optimizer):

    classifier.eval()
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
""",
        hint="don't call classifier.eval()",
        sample=True,
        loses=("finetune_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
]
