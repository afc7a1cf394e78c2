"""Answers to `byol_forward` (its cell defines `BYOLModel`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed",
        "the seed's F.normalize(eps=1e-8)",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        repr = self.encoder(x)
        proj = self.projector(repr)
        pred = self.predictor(proj)
        return repr, F.normalize(proj, dim=-1, eps=1e-8), F.normalize(pred, dim=-1, eps=1e-8)
""",
        sample=True,
    ),
    correct(
        "manual_norm",
        "manual norms, a list instead of a tuple",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        h = self.encoder(x)
        z = self.projector(h)
        q = self.predictor(z)
        return [h, z / z.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)]
""",
        sample=True,
    ),
    wrong(
        "pred_unnormalized",
        "pred is not normalised",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        h = self.encoder(x)
        z = self.projector(h)
        return h, F.normalize(z, dim=1), self.predictor(z)
""",
        hint="L2-normalise pred",
        sample=True,
        loses=(
            "byol_forward: repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three.",
            "byol_forward: The same on the given ResNet-18 encoder, projector and predictor (eval mode).",
        ),
    ),
    wrong(
        "pred_from_unit_proj",
        "feeds the normalised projection to the predictor",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        h = self.encoder(x)
        z = F.normalize(self.projector(h), dim=1)
        return h, z, F.normalize(self.predictor(z), dim=1)
""",
        hint="the predictor was applied to the normalised projection",
        sample=True,
        loses=(
            "byol_forward: repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three.",
            "byol_forward: The same on the given ResNet-18 encoder, projector and predictor (eval mode).",
        ),
    ),
    wrong(
        "proj_unnormalized",
        "proj is not normalised",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        h = self.encoder(x)
        z = self.projector(h)
        return h, z, F.normalize(self.predictor(z), dim=1)
""",
        hint="L2-normalise proj",
        sample=True,
        loses=(
            "byol_forward: repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three.",
            "byol_forward: The same on the given ResNet-18 encoder, projector and predictor (eval mode).",
        ),
    ),
    wrong(
        "two_outputs",
        "returns only (repr, pred)",
        """
import torch
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    def forward(self, x):

        h = self.encoder(x)
        return h, F.normalize(self.predictor(self.projector(h)), dim=1)
""",
        hint="return all 3 values",
        sample=True,
        loses=(
            "byol_forward: repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three.",
            "byol_forward: The same on the given ResNet-18 encoder, projector and predictor (eval mode).",
        ),
    ),
]
