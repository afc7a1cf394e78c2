"""The learning-rate schedule of `helpers.train.fit`: linear warmup, then a half cosine (or constant).

fit multiplies every parameter group's base learning rate by `lr_multiplier` before each
optimiser step, so the schedule is a function of the step alone (and a resumed run continues
on the same curve).
"""

from __future__ import annotations

import math

__all__ = ["lr_multiplier"]


def lr_multiplier(
    step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine", min_lr_ratio: float = 0.0
) -> float:
    """The factor fit applies to every base learning rate at (0-based) optimiser `step`.

    Linear warmup (Goyal et al. 2017, https://arxiv.org/abs/1706.02677) over `warmup_steps`:
    ``(step + 1) / warmup_steps``, reaching 1 at the last warmup step. Then either constant 1,
    or a half cosine (SGDR, Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983) from 1
    at ``step == warmup_steps`` down to `min_lr_ratio` at ``step == total_steps``:
    ``r + (1 - r) (1 + cos(pi t)) / 2`` with ``t = (step - warmup_steps) / (total_steps - warmup_steps)``.

    Args:
        step: optimiser steps taken before this one.
        total_steps: steps of the whole run (epochs x steps per epoch).
        warmup_steps: length of the linear warmup.
        schedule: "cosine" or "constant".
        min_lr_ratio: final learning rate as a fraction of the base one (cosine only).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine', 'constant' or 'none', got {schedule!r}")
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
