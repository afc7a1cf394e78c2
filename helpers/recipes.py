"""Training recipes: one small frozen dataclass per method (nanoGPT's ``GPTConfig`` style).

A notebook takes a recipe and overrides fields by keyword, e.g.
``recipe = dataclasses.replace(SIMCLR, epochs=50)``. Every recipe states where it comes
from and what was changed for this bundle.

A recipe also produces what the training loop needs, so that the notebooks, the homework and
the benchmarks train the same way and cannot drift apart: its optimiser
(``recipe.optimizer(model.parameters())``) and `helpers.train.fit`'s loop configuration
(``fit(step, model, optimizer, images, labels, **recipe.fit_kwargs(monitor=..., checkpoint=...))``:
epochs, batch size, views, warmup and schedule, k-NN monitor interval). BYOL's target decay
schedule is `EMABetaSchedule` (``BYOL.ema_schedule(ema)``), the only copy of it.

The seeds trained with AdamW at lr 0.5-0.6 (seed erratum 4), a learning rate of SGD/LARS
scale that AdamW does not converge with. All recipes here use SGD with momentum, the linear
scaling rule ``lr = base_lr * batch_size / 256`` (Goyal et al. 2017) and a warmup + cosine
schedule, the set-up of lightly's CIFAR-10 benchmarks and of solo-learn's CIFAR configs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class _SGDRecipe:
    """What every recipe shares: SGD with momentum under the linear scaling rule, and fit's
    loop (``views`` images per example, the recipe's ``warmup_epochs`` of linear warmup, then
    the cosine to 0 per step). The defaults are lightly's CIFAR-10 pre-training set-up.

    Attributes:
        epochs: passes over the 50,000 training images.
        batch_size: images per step (in pre-training, each contributes two views).
        base_lr: learning rate per 256 images; the optimiser gets ``lr``.
        momentum: SGD momentum.
        weight_decay: L2 penalty of SGD.
    """

    #: Views of an image per example: 2 for self-supervised pre-training, 1 for labelled batches.
    views: ClassVar[int] = 2

    epochs: int = 100
    batch_size: int = 512
    base_lr: float = 0.06
    momentum: float = 0.9
    weight_decay: float = 5e-4

    @property
    def lr(self) -> float:
        """The learning rate after the linear scaling rule: ``base_lr * batch_size / 256``."""
        return self.base_lr * self.batch_size / 256

    def to_dict(self) -> dict:
        """All fields plus the derived ``lr``, for reports and benchmark records."""
        return {**asdict(self), "lr": self.lr}

    def optimizer(self, params: Iterable, **options: Any):
        """``torch.optim.SGD`` over `params` with the recipe's ``lr``, momentum and weight decay.

        Args:
            params: parameters, or parameter groups (a group's own ``"lr"`` wins, e.g. a smaller
                encoder learning rate when fine-tuning everything).
            options: more keyword arguments of ``torch.optim.SGD``, e.g. ``fused=True``.
        """
        import torch

        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, **options)

    def fit_kwargs(self, **settings: Any) -> dict[str, Any]:
        """Keyword arguments of `helpers.train.fit` for this recipe, plus `settings`.

        The recipe decides ``epochs``, ``batch_size``, ``views``, ``warmup_epochs``, ``schedule``
        (and ``monitor_every`` for pre-training); `settings` adds the rest (``monitor``,
        ``checkpoint``, ``device``, ``on_epoch_end`` ...) and overrides any of the recipe's
        (e.g. ``monitor_every=1``). A name fit does not take is a TypeError here, not a silently
        ignored setting.
        """
        import inspect

        from helpers.train import fit

        known = {name for name, p in inspect.signature(fit).parameters.items() if p.kind is p.KEYWORD_ONLY}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"fit takes no keyword argument {', '.join(map(repr, unknown))}; known: {sorted(known)}")
        return {**self._loop(), **settings}

    def _loop(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "views": self.views,
            "warmup_epochs": self.warmup_epochs,
            "schedule": "cosine",
        }


@dataclass(frozen=True)
class Recipe(_SGDRecipe):
    """Hyperparameters shared by the three methods (besides the SGD ones of `_SGDRecipe`).

    Attributes:
        method: "simclr", "byol" or "barlow".
        warmup_epochs: linear warmup before the cosine decay.
        proj_hidden_dim: hidden width of the projection MLP g(.).
        proj_dim: output width of g(.), where the loss is computed.
        knn_every: epochs between two k-NN monitor evaluations.
    """

    method: str = "simclr"
    warmup_epochs: int = 10
    proj_hidden_dim: int = 2048
    proj_dim: int = 128
    knn_every: int = 5

    def _loop(self) -> dict[str, Any]:
        return {**super()._loop(), "monitor_every": self.knn_every}


@dataclass(frozen=True)
class SimCLRRecipe(Recipe):
    """SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709) on CIFAR-10.

    From lightly's CIFAR-10 benchmark set-up (ResNet-18, batch 512, SGD lr 0.06 x batch/256,
    momentum 0.9, weight decay 5e-4, cosine schedule) with the paper's CIFAR temperature 0.5
    (the CIFAR-10 experiments of its appendix B.9). Changed for the bundle: a 10-epoch
    warmup, and the seeds' projection head (512-2048-128).

    Attributes:
        temperature: tau of NT-Xent.
    """

    method: str = "simclr"
    temperature: float = 0.5


@dataclass(frozen=True)
class BYOLRecipe(Recipe):
    """BYOL (Grill et al. 2020, https://arxiv.org/abs/2006.07733) on CIFAR-10.

    From lightly's CIFAR-10 benchmark set-up (SGD lr 0.06 x batch/256, momentum 0.9, weight
    decay 5e-4, cosine) with the paper's target decay schedule: ``beta`` rises from
    ``ema_beta`` to 1 along a cosine over training (section 3.2 of the paper). Changed for
    the bundle: the seeds' heads (512-2048-128 projector and 128-2048-128 predictor, both with
    batch norm) and a 10-epoch warmup.

    Attributes:
        ema_beta: initial decay of the target network's exponential moving average.
        ema_cosine: raise beta to 1 along a cosine (True) or keep it constant (False, the seeds).
    """

    method: str = "byol"
    ema_beta: float = 0.99
    ema_cosine: bool = True

    def ema_beta_at(self, epoch: int) -> float:
        """The EMA decay for (0-based) ``epoch``: ``1 - (1 - beta0) (cos(pi k / K) + 1) / 2``."""
        if not self.ema_cosine:
            return self.ema_beta
        progress = min(max(epoch / max(self.epochs, 1), 0.0), 1.0)
        return 1.0 - (1.0 - self.ema_beta) * (math.cos(math.pi * progress) + 1.0) / 2.0

    def ema_schedule(self, ema: Any) -> EMABetaSchedule:
        """The `EMABetaSchedule` that sets ``ema.beta`` per epoch along this recipe."""
        return EMABetaSchedule(ema, self)


class EMABetaSchedule:
    """BYOL's target decay per epoch: sets ``ema.beta = recipe.ema_beta_at(finished epochs)``.

    Both fit's ``on_epoch_end`` (it records the beta the finished epoch used as ``ema_beta`` in
    the history) and an ``extra_state`` entry: its state is the number of finished epochs, so
    a resumed run continues with the beta of the epoch it resumes at (for its own `recipe`,
    e.g. a longer run's)::

        ema = EMA(beta=recipe.ema_beta)
        schedule = recipe.ema_schedule(ema)
        fit(step, online, optimizer, images, **recipe.fit_kwargs(
            extra_state={"target": target, "ema_beta": schedule}, on_epoch_end=schedule))

    Args:
        ema: the object whose ``beta`` the step's EMA update reads (the notebook's ``EMA``).
        recipe: a `BYOLRecipe`.
    """

    def __init__(self, ema: Any, recipe: BYOLRecipe) -> None:
        self.ema, self.recipe = ema, recipe
        self.finished = 0
        self.ema.beta = recipe.ema_beta_at(0)

    def __call__(self, epoch: int, history: Any = None) -> dict[str, float]:
        used = self.ema.beta
        self.finished = epoch
        self.ema.beta = self.recipe.ema_beta_at(epoch)  # for the next (0-based `epoch`) epoch
        return {"ema_beta": used}

    def state_dict(self) -> dict[str, int]:
        return {"finished_epochs": self.finished}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.finished = int(state["finished_epochs"])
        self.ema.beta = self.recipe.ema_beta_at(self.finished)


@dataclass(frozen=True)
class BarlowTwinsRecipe(Recipe):
    """Barlow Twins (Zbontar et al. 2021, https://arxiv.org/abs/2103.03230) on CIFAR-10.

    From lightly's CIFAR-10 benchmark set-up (SGD lr 0.06 x batch/256, momentum 0.9, weight
    decay 5e-4, cosine) with the paper's redundancy weight lambda = 5e-3 (called ``alpha``
    in the notebooks) and a wider projector (512-2048-2048 with batch norm), since Barlow
    Twins benefits from a high-dimensional embedding (Figure 4 of the paper).

    Attributes:
        alpha: weight of the redundancy-reduction term (the paper's lambda).
    """

    method: str = "barlow"
    alpha: float = 5e-3
    proj_dim: int = 2048


@dataclass(frozen=True)
class FinetuneRecipe(_SGDRecipe):
    """Supervised training of the classifier on top of a pre-trained encoder.

    ``mode="linear"`` is linear evaluation: the encoder is frozen (weights and batch-norm
    statistics) and only the last linear layer learns, which measures the representation
    itself (the protocol of the SimCLR paper, section 4). ``mode="full"`` fine-tunes every
    weight at a smaller learning rate for the encoder, which usually gains a few points but no
    longer isolates what self-supervision learned. The linear set-up follows solo-learn's
    CIFAR linear evaluation (SGD, momentum 0.9, no weight decay, cosine) shortened to 30
    epochs; training images get a random crop with 4-pixel padding and a horizontal flip.

    Labelled batches of one view, no warmup; besides `_SGDRecipe`'s fields (here 30 epochs,
    ``base_lr`` 0.1 for the linear layer, no weight decay):

    Attributes:
        mode: "linear" (frozen encoder) or "full" (everything trains).
        encoder_lr_ratio: encoder learning rate as a fraction of the head's (mode "full").
    """

    views: ClassVar[int] = 1
    warmup_epochs: ClassVar[int] = 0

    mode: str = "linear"
    encoder_lr_ratio: float = 0.1
    epochs: int = 30
    base_lr: float = 0.1
    weight_decay: float = 0.0


SIMCLR = SimCLRRecipe()
BYOL = BYOLRecipe()
BARLOW_TWINS = BarlowTwinsRecipe()
RECIPES = {"simclr": SIMCLR, "byol": BYOL, "barlow": BARLOW_TWINS}
LINEAR_EVAL = FinetuneRecipe()


@dataclass(frozen=True)
class PublicResult:
    """A CIFAR-10 result that others published for a recipe close to ours -- what to expect
    until this bundle's own GPU records exist (`benchmarks/README.md` shows both). Not measured
    here; every field is read off the source at `url`.

    Attributes:
        method: "simclr", "byol" or "barlow".
        source: who published it (a repository).
        url: the page, at the commit that was read.
        batch_size: images per step.
        epochs: pre-training epochs (ResNet-18 with the CIFAR stem in every row).
        metric: how the accuracy was measured (the classifiers differ between sources).
        accuracy: CIFAR-10 test accuracy in [0, 1].
        minutes: wall-clock pre-training time as published, or None.
        seconds_per_epoch: as published, or None.
        hardware: the GPU (and loader workers) named by the source, or None when it names none.
        differences: how the source's recipe differs from this bundle's.
    """

    method: str
    source: str
    url: str
    batch_size: int
    epochs: int
    metric: str
    accuracy: float
    minutes: float | None = None
    seconds_per_epoch: float | None = None
    hardware: str | None = None
    differences: str = ""


_DKOBAK = "https://github.com/dkobak/simclr-cifar10/blob/62504dece44b4b91fc708a5754a82a495732bafc/README.md"
_LIGHTLY = (
    "https://github.com/lightly-ai/lightly/blob/0243660ba10afc408e3f79541df537d8a2e24eb5/"
    "docs/source/getting_started/benchmarks.rst"
)
_LIGHTLY_SETUP = "best epoch's k-NN (k=200); no Gaussian blur; their heads and schedules"
_DKOBAK_SETUP = "SGD lr 0.06 x batch/256 without warmup, head 512-1024-128, grayscale p 0.1"


def _dkobak(epochs: int, metric: str, accuracy: float, **published: Any) -> PublicResult:
    """A result of dkobak/simclr-cifar10's README: SimCLR, batch 512, one A100 with 16 loader workers."""
    published = {"hardware": "A100, 16 loader workers", "differences": _DKOBAK_SETUP, **published}
    return PublicResult("simclr", "dkobak/simclr-cifar10", _DKOBAK, 512, epochs, metric, accuracy, **published)


def _lightly(method: str, epochs: int, accuracy: float, minutes: float) -> PublicResult:
    """A row of lightly's CIFAR-10 benchmark table: batch 512, the best epoch's k-NN accuracy (k=200)."""
    metric = "k-NN (k=200), best epoch"
    return PublicResult(method, "lightly", _LIGHTLY, 512, epochs, metric, accuracy, minutes, differences=_LIGHTLY_SETUP)


#: Published CIFAR-10 results with ResNet-18 (see `PublicResult`), SimCLR, BYOL, Barlow Twins.
PUBLIC_RESULTS = (
    _dkobak(100, "linear readout on precomputed features (Adam)", 0.856, minutes=20.0),
    _dkobak(100, "k-NN (k=10, cosine)", 0.832, minutes=20.0),
    _dkobak(
        1000,
        "linear readout on precomputed features (Adam)",
        0.917,
        seconds_per_epoch=11.9,
        differences="SGD lr 0.03 x batch/256, head 512-1024-128, grayscale p 0.1",
    ),
    _lightly("simclr", 200, 0.848, minutes=87.1),
    _lightly("byol", 200, 0.868, minutes=108.3),
    _lightly("barlow", 200, 0.819, minutes=153.3),
    _lightly("simclr", 800, 0.879, minutes=331.1),
    _lightly("byol", 800, 0.910, minutes=400.9),
    _lightly("barlow", 800, 0.859, minutes=517.5),
)
