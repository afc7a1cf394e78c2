"""Public self-checks: run one after each TODO cell to catch mistakes before you submit.

Each `check_*` function takes your function or class, runs a few small, seeded experiments
on it and prints one line per property that holds::

    >>> check_nt_xent(nt_xent)
    ✓ returns a 0-d float tensor and leaves its inputs unchanged
    ✓ closed form for aligned orthonormal pairs: log(1 + (2N-2)·exp(-1/tau)) for several N and tau
    ...
    All nt_xent checks passed.

When a property fails it raises `CheckFailure` (an `AssertionError`) whose message says what
was expected, what came back, and the most likely mistake. A function that still raises
`NotImplementedError` (the TODO stub) gives "not implemented yet".

What these checks are, and are not:
    - They contain no reference solution. They test what follows from each task's
      definition alone: shapes, dtypes, closed forms (e.g. NT-Xent of perfectly aligned
      orthonormal pairs is log(1 + (2N-2)·e^(-1/tau))), invariances (Barlow Twins is
      invariant to per-feature affine maps), exact values stated by the task (the EMA
      update, proj = normalize(projector(repr))), and the bookkeeping of a training step
      (one optimiser step, no accumulated gradients). Where a step's loss value is checked,
      it is computed with *your* loss function.
    - Passing them does not guarantee full marks: the autograder also compares your
      results with the reference on more inputs.
    - Models are small stand-ins or your own class with a tiny encoder swapped in for
      ResNet-18, so every check runs in about a second on a laptop CPU.
    - They run under a forked random state (your notebook's random stream is unchanged) and
      on one CPU thread; the thread setting is restored afterwards.

The task semantics are those of the notebooks' "Graded tasks" (SimCLR: Chen et al. 2020,
https://arxiv.org/abs/2002.05709; BYOL: Grill et al. 2020, https://arxiv.org/abs/2006.07733;
Barlow Twins: Zbontar et al. 2021, https://arxiv.org/abs/2103.03230).

The checks are grouped by task family: `evaluation` (feature extraction, probes, evaluate),
`networks` (the SimCLR/BYOL forwards and the EMA), `losses` (NT-Xent, Barlow Twins) and
`steps` (the SimCLR, Barlow Twins, BYOL and fine-tuning steps), over the shared machinery of
`checker` (running your code, messages, tolerances) and `stand_ins` (tiny models and inputs).
Import them from here: `from helpers.checks import check_nt_xent`. A new check is written in
its family's module and listed in that module's ``__all__``, which this package re-exports.
"""

from __future__ import annotations

from helpers.checks import evaluation, losses, networks, steps
from helpers.checks.checker import CheckFailure, NotImplementedYet
from helpers.checks.evaluation import *  # noqa: F403 -- each family lists its checks in its __all__
from helpers.checks.losses import *  # noqa: F403
from helpers.checks.losses import BARLOW_PRECISION_NOTE as BARLOW_PRECISION_NOTE  # the notebooks print it
from helpers.checks.networks import *  # noqa: F403
from helpers.checks.steps import *  # noqa: F403

__all__ = [
    "CheckFailure",
    "NotImplementedYet",
    *evaluation.__all__,
    *losses.__all__,
    *networks.__all__,
    *steps.__all__,
]
