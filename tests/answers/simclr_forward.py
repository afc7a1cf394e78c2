"""Answers to `simclr_forward` (its cell defines `SimCLRModel`; graded in ssl_methods.ipynb and simclr_homework.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "f_normalize",
        "F.normalize",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
""",
        sample=True,
    ),
    correct(
        "manual_norm",
        "a manual norm with eps",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        representation = self.encoder(x)
        projection = self.projector(representation)
        return representation, projection / (projection.norm(dim=-1, keepdim=True) + 1e-8)
""",
        sample=True,
    ),
    correct(
        "given_normalize",
        "the seed's: the given self.normalize (x / (||x|| + eps))",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return h, self.normalize(self.projector(h))
""",
    ),
    wrong(
        "unnormalized",
        "the projections are not L2-normalised",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return h, self.projector(h)
""",
        hint="L2-normalise proj",
        sample=True,
        loses=(
            "simclr_forward: repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both.",
            "simclr_forward: The same on the given ResNet-18 encoder and projection head (eval mode).",
        ),
    ),
    wrong(
        "normalize_dim0",
        "normalises along the batch (dim=0)",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=0)
""",
        hint="normalised along the batch (dim=0)",
        sample=True,
        loses=(
            "simclr_forward: repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both.",
            "simclr_forward: The same on the given ResNet-18 encoder and projection head (eval mode).",
        ),
    ),
    wrong(
        "normalized_repr",
        "projects a normalised representation and returns it",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = F.normalize(self.encoder(x), dim=1)
        return h, F.normalize(self.projector(h), dim=1)
""",
        hint="repr is L2-normalised",
        sample=True,
        loses=(
            "simclr_forward: repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both.",
            "simclr_forward: The same on the given ResNet-18 encoder and projection head (eval mode).",
        ),
    ),
    wrong(
        "swapped",
        "returns (proj, repr)",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return F.normalize(self.projector(h), dim=1), h
""",
        hint="returns (repr, proj), in this order",
        sample=True,
        loses=(
            "simclr_forward: repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both.",
            "simclr_forward: The same on the given ResNet-18 encoder and projection head (eval mode).",
        ),
    ),
    wrong(
        "frozen_encoder",
        "computes the representation under no_grad: the encoder never learns",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        with torch.no_grad():
            h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
""",
        hint="non-zero gradients in self.encoder",
        sample=True,
        loses=(
            "simclr_forward: repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both.",
        ),
    ),
    wrong(
        "proj_only",
        "returns only the projection",
        """
import torch
import torch.nn.functional as F


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):

        return F.normalize(self.projector(self.encoder(x)), dim=1)
""",
        hint="return all 2 values",
    ),
]
