"""Answers to `simclr_step` (its cell defines `simclr_train_step`; graded in ssl_methods.ipynb and simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "separate_views",
        "two forward passes (the ssl_methods reference's way)",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        sample=True,
    ),
    correct(
        "concatenated",
        "one forward of both views, zero_grad after the step",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, z = model(torch.cat([x1, x2]))
    z1, z2 = z.chunk(2)
    loss = nt_xent(z1, z2, tau)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)
""",
        sample=True,
    ),
    correct(
        "zero_grad_first_concatenated",
        "both views in one forward pass, split with chunk; zero_grad(set_to_none=True) first",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    optimizer.zero_grad(set_to_none=True)
    _, proj = model(torch.cat([x1, x2]))
    proj1, proj2 = proj.chunk(2)
    loss = nt_xent(proj1, proj2, tau)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
""",
    ),
    wrong(
        "no_zero_grad",
        "never zeroes the gradients: they accumulate",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="call optimizer.zero_grad() before loss.backward()",
        sample=True,
        loses=("simclr_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
    wrong(
        "ignores_tau",
        "calls nt_xent with its default temperature",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="pass tau to nt_xent",
        sample=True,
        loses=(
            "simclr_step: One step: the returned loss and the parameters after the update (tau passed on).",
            "simclr_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "simclr_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "uses_repr",
        "applies the loss to the representations",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    optimizer.zero_grad()
    h1, _ = model(x1)
    h2, _ = model(x2)
    loss = nt_xent(torch.nn.functional.normalize(h1, dim=1), torch.nn.functional.normalize(h2, dim=1), tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="computed from the model's projections (its second output)",
        sample=True,
        loses=(
            "simclr_step: One step: the returned loss and the parameters after the update (tau passed on).",
            "simclr_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "simclr_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "same_view",
        "pairs each view with itself",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    optimizer.zero_grad()
    _, z1 = model(x1)
    loss = nt_xent(z1, z1, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="the nt_xent of the two views' projections",
        sample=True,
        loses=(
            "simclr_step: One step: the returned loss and the parameters after the update (tau passed on).",
            "simclr_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "simclr_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "eval_mode",
        "puts the model in eval mode for the step",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    model.eval()
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="don't call .eval()",
        sample=True,
        loses=("simclr_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
    wrong(
        "returns_tensor",
        "returns the loss tensor (keeps the graph alive) instead of a float",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
""",
        hint="return loss.item()",
    ),
    wrong(
        "zero_grad_after_backward",
        "zero_grad between backward and step erases the gradients; nothing is learned",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
""",
        hint="zero_grad between backward and step erases the gradients",
    ),
    wrong(
        "loss_after_update",
        "returns a loss recomputed after the update instead of the one that was optimised",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        return nt_xent(model(x1)[1], model(x2)[1], tau=tau).item()
""",
        hint="this is the loss after the update",
    ),
    wrong(
        "double_step",
        "calls optimizer.step() twice per batch",
        """
import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):

    _, proj1 = model(x1)
    _, proj2 = model(x2)
    loss = nt_xent(proj1, proj2, tau=tau)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    optimizer.step()
    return loss.item()
""",
        hint="call optimizer.step() once",
    ),
]
