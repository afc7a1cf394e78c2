"""Answers to `byol_step` (its cell defines `byol_train_step`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed_mean",
        "concatenated views, mean over the 2N terms",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, _, pred = online(torch.cat([x1, x2], dim=0))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1], dim=0))
    loss = (2 - 2 * (pred * proj.detach()).sum(dim=-1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        sample=True,
    ),
    correct(
        "paper_sum",
        "the paper's L + L~ averaged over N (twice the mean), detach",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad(set_to_none=True)
    p1, p2 = online(x1)[2], online(x2)[2]
    t1, t2 = target(x1)[1].detach(), target(x2)[1].detach()
    loss = ((2 - 2 * (p1 * t2).sum(1)) + (2 - 2 * (p2 * t1).sum(1))).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return float(loss.item())
""",
        sample=True,
    ),
    correct(
        "cosine_similarity",
        "F.cosine_similarity",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad()
    _, _, p1 = online(x1)
    _, _, p2 = online(x2)
    with torch.no_grad():
        t1 = target(x1)[1]
        t2 = target(x2)[1]
    loss = 0.5 * ((2 - 2 * F.cosine_similarity(p1, t2, dim=-1)).mean()
                  + (2 - 2 * F.cosine_similarity(p2, t1, dim=-1)).mean())
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        sample=True,
    ),
    correct(
        "squared_distance",
        "the squared distance ||p - z||^2 for one view order, 2 - 2 F.cosine_similarity for the other "
        "(equal for unit vectors)",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

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
""",
    ),
    wrong(
        "one_view_order",
        "only prediction(x1) against target(x2)",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad()
    _, _, p1 = online(x1)
    with torch.no_grad():
        t2 = target(x2)[1]
    loss = (2 - 2 * (p1 * t2).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        hint="use both view orders",
        sample=True,
        loses=(
            "byol_step: One step: the loss, the online update, then the target's EMA of the updated online network.",
            "byol_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "byol_step: No gradient reaches the target network, even when its parameters require grad.",
            "byol_step: The step returns the loss as a Python float.",
        ),
    ),
    wrong(
        "ema_before_step",
        "updates the target before the optimiser step",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    ema.update(online, target)
    optimizer.step()
    return loss.item()
""",
        hint="call ema.update after optimizer.step()",
        sample=True,
        loses=(
            "byol_step: One step: the loss, the online update, then the target's EMA of the updated online network.",
            "byol_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "byol_step: No gradient reaches the target network, even when its parameters require grad.",
        ),
    ),
    wrong(
        "ema_wrong_network",
        "ema.update(target, online)",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(target, online)
    return loss.item()
""",
        hint="ema.update(online, target) — online first",
        sample=True,
        loses=(
            "byol_step: One step: the loss, the online update, then the target's EMA of the updated online network.",
            "byol_step: Two consecutive steps with one optimiser (gradients must not accumulate).",
            "byol_step: No gradient reaches the target network, even when its parameters require grad.",
        ),
    ),
    wrong(
        "no_stop_gradient",
        "the target's projections are not detached",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        hint="sg(.) in the paper",
        sample=True,
        loses=("byol_step: No gradient reaches the target network, even when its parameters require grad.",),
    ),
    wrong(
        "no_zero_grad",
        "never zeroes the gradients",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        hint="call optimizer.zero_grad() before loss.backward()",
        sample=True,
        loses=("byol_step: Two consecutive steps with one optimiser (gradients must not accumulate).",),
    ),
    wrong(
        "no_ema",
        "never updates the target network",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = (2 - 2 * (pred * proj_target).sum(dim=-1)).mean()

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""",
        hint="the target did not change",
    ),
    wrong(
        "returns_tensor",
        "returns the loss tensor",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = (2 - 2 * (pred * proj_target).sum(dim=-1)).mean()

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss
""",
        hint="return loss.item()",
    ),
    wrong(
        "without_predictor",
        "compares the online *projections* with the target's; the predictor is never trained",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, proj_online, _ = online(torch.cat([x1, x2]))
    with torch.no_grad():
        proj_target = target(torch.cat([x2, x1]))[1]
    loss = (2 - 2 * (proj_online * proj_target).sum(dim=-1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        hint="predictions (third output)",
    ),
    wrong(
        "target_predictions",
        "regresses onto the target's *predictions* instead of its projections: symmetric, bounded and "
        "correctly stepped, so only the value compared with the reference shows it",
        """
import torch
import torch.nn.functional as F


def byol_train_step(online, target, ema, optimizer, x1, x2):

    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        pred_target = target(torch.cat([x2, x1]))[2]
    loss = (2 - 2 * (pred * pred_target).sum(dim=-1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
""",
        hint=None,
    ),
]
