"""Answers to `barlow_step` (its cell defines `barlow_train_step`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "separate_views",
        "two forward passes",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        sample=True,
    ),
    correct(
        "concatenated",
        "one forward of both views, alpha positional",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    _, z = model(torch.cat([x1, x2]))
    z1, z2 = torch.split(z, x1.shape[0])
    loss = barlow_loss(z1, z2, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
""",
        sample=True,
    ),
    wrong(
        "ignores_alpha",
        "calls barlow_loss with a fixed alpha",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=5e-3)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="pass alpha to barlow_loss",
        sample=True,
        loses=(
            "barlow_step: One step: the returned loss and the parameters after the update (alpha passed on).",
            "barlow_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "barlow_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "no_zero_grad",
        "never zeroes the gradients",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="call optimizer.zero_grad() before loss.backward()",
        sample=True,
        loses=("barlow_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
    wrong(
        "returns_tensor",
        "returns the loss tensor",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss
""",
        hint="return loss.item()",
        sample=True,
        loses=("barlow_step: The step returns the loss as a Python float.",),
    ),
    wrong(
        "uses_repr",
        "applies the loss to the representations",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    optimizer.zero_grad()
    h1, _ = model(x1)
    h2, _ = model(x2)
    loss = barlow_loss(h1, h2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="computed from the model's projections (its second output)",
        sample=True,
        loses=(
            "barlow_step: One step: the returned loss and the parameters after the update (alpha passed on).",
            "barlow_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "barlow_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "no_optimizer_step",
        "forgets optimizer.step()",
        """
import torch


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    return loss.item()
""",
        hint="optimizer.zero_grad(); loss.backward(); optimizer.step()",
        sample=True,
        loses=(
            "barlow_step: One step: the returned loss and the parameters after the update (alpha passed on).",
            "barlow_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
        ),
    ),
]
