"""Answers to `nt_xent` (its cell defines `nt_xent`; graded in ssl_methods.ipynb and simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed",
        "the seed's: masked_fill(-1e9) and cross_entropy",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    B, d = z1.shape
    z = torch.cat([z1, z2], dim=0)
    sim = (z @ z.t()) / tau
    mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    sim.masked_fill_(mask, -1e9)
    targets = torch.arange(B, device=z.device)
    targets = torch.cat([targets + B, targets], dim=0)
    return F.cross_entropy(sim, targets)
""",
        sample=True,
    ),
    correct(
        "loop",
        "a loop over the 2N anchors, straight from the paper's equation",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    z = torch.cat([z1, z2])
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = torch.stack([z[i] @ z[k] / tau for k in range(2 * n) if k != i])
        total = total - (z[i] @ z[j] / tau - torch.logsumexp(sims, dim=0))
    return total / (2 * n)
""",
        sample=True,
    ),
    correct(
        "renormalize_logsumexp",
        "re-normalises its inputs, explicit logsumexp",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.T / tau
    logits = logits - torch.eye(2 * n) * 1e12
    positives = torch.cat([torch.diagonal(logits, n), torch.diagonal(logits, -n)])
    return (torch.logsumexp(logits, dim=1) - positives).mean()
""",
        sample=True,
    ),
    correct(
        "blocks",
        "separate blocks: positives on the diagonal of z1 @ z2.T, same-view negatives with -inf diagonals",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z1.device)
    s12 = z1 @ z2.T / tau
    s11 = (z1 @ z1.T / tau).masked_fill(eye, float("-inf"))
    s22 = (z2 @ z2.T / tau).masked_fill(eye, float("-inf"))
    logits1 = torch.cat([s12, s11], dim=1)  # anchors of view 1: (N, 2N)
    logits2 = torch.cat([s12.T, s22], dim=1)  # anchors of view 2
    targets = torch.arange(n, device=z1.device)
    return (F.cross_entropy(logits1, targets) + F.cross_entropy(logits2, targets)) / 2
""",
    ),
    correct(
        "loop_cosine",
        "a slow loop straight from equation (1) of the SimCLR paper, with its cosine similarity",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    z = torch.cat([z1, z2])
    n2 = z.shape[0]
    losses = []
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sims = torch.stack([F.cosine_similarity(z[i], z[k], dim=0) for k in range(n2)]) / tau
        denominator = torch.stack([torch.exp(sims[k]) for k in range(n2) if k != i]).sum()
        losses.append(-torch.log(torch.exp(sims[j]) / denominator))
    return torch.stack(losses).mean()
""",
    ),
    wrong(
        "no_self_mask",
        "self-similarity not masked",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = z @ z.T / tau
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)
""",
        hint="did you exclude k = i (self-similarity)?",
        sample=True,
        loses=(
            "nt_xent: NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5.",
            "nt_xent: NT-Xent for other batch sizes, dimensions and temperatures (and the default tau).",
            "nt_xent: The gradients of NT-Xent with respect to z1 and z2.",
        ),
    ),
    wrong(
        "mean_over_n",
        "sums the 2N terms and divides by N (the EPFL markdown's 1/N)",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets, reduction="sum") / n
""",
        hint="mean over all 2N anchors (1/(2N), not 1/N)",
        sample=True,
        loses=(
            "nt_xent: NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5.",
            "nt_xent: NT-Xent for other batch sizes, dimensions and temperatures (and the default tau).",
            "nt_xent: The gradients of NT-Xent with respect to z1 and z2.",
        ),
    ),
    wrong(
        "tau_multiplied",
        "multiplies by the temperature",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T * tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)
""",
        hint="the similarities were multiplied by tau",
        sample=True,
        loses=(
            "nt_xent: NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5.",
            "nt_xent: NT-Xent for other batch sizes, dimensions and temperatures (and the default tau).",
            "nt_xent: The gradients of NT-Xent with respect to z1 and z2.",
        ),
    ),
    wrong(
        "one_direction",
        "only the anchors of the first view",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z1 @ z.T / tau).masked_fill(torch.eye(n, 2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(logits, torch.arange(n, 2 * n))
""",
        hint="use every one of the 2N views as an anchor",
        sample=True,
        loses=(
            "nt_xent: NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5.",
            "nt_xent: NT-Xent for other batch sizes, dimensions and temperatures (and the default tau).",
            "nt_xent: The gradients of NT-Xent with respect to z1 and z2.",
        ),
    ),
    wrong(
        "cross_view_only",
        "negatives from the other view only",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    logits = z1 @ z2.T / tau
    targets = torch.arange(z1.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
""",
        hint="including the other images of the same view",
        sample=True,
        loses=(
            "nt_xent: NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5.",
            "nt_xent: NT-Xent for other batch sizes, dimensions and temperatures (and the default tau).",
            "nt_xent: The gradients of NT-Xent with respect to z1 and z2.",
        ),
    ),
    wrong(
        "returns_float",
        "returns loss.item(): no gradient can flow",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets).item()
""",
        hint="return the tensor itself",
        sample=True,
        loses=("nt_xent: The gradients of NT-Xent with respect to z1 and z2.",),
    ),
    wrong(
        "sum",
        "sums over the 2N anchors instead of averaging",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)

    return F.cross_entropy(logits, targets, reduction="sum")
""",
        hint="this is the sum over the 2N anchors",
    ),
    wrong(
        "positive_excluded",
        "leaves the positive out of the denominator (the decoupled DCL loss, not NT-Xent)",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    sim = z @ z.T / tau
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    mask[torch.arange(2 * n, device=z.device), positives] = True
    negatives = torch.logsumexp(sim.masked_fill(mask, float("-inf")), dim=1)
    return (negatives - sim[torch.arange(2 * n, device=z.device), positives]).mean()
""",
        hint="the positive is missing from the denominator",
    ),
    wrong(
        "per_anchor",
        "returns the 2N per-anchor losses instead of their mean",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)

    return F.cross_entropy(logits, targets, reduction="none")
""",
        hint="reduce to a single number",
    ),
    wrong(
        "detached",
        "detaches the inputs, so no gradient reaches the model",
        """
import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):

    z1, z2 = z1.detach(), z2.detach()

    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -1e9)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)

    return F.cross_entropy(logits, targets)
""",
        hint="don't detach",
    ),
]
