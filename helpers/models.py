"""The networks of SSL Lab: the CIFAR ResNet-18 encoder, projection heads and the classifier.

Every method in the notebooks (SimCLR, BYOL, Barlow Twins, fine-tuning) uses the same
encoder `f(.)`: torchvision's ResNet-18 with the CIFAR stem of SimCLR and no classification
layer, built exactly as the seeds build it, so a state_dict a student saves from their own
`resnet18(weights=None)` with the three replaced layers loads into `cifar_resnet18()` and
back. `LinearClassifier` is the architecture of the graded checkpoint
(`helpers.checkpoint.save_classifier` / `load_classifier`).

`ResNet18` and `BasicBlock` restate torchvision's `resnet18` (same modules, names, forward
and initialisation, in the same order, so the same seed gives the same weights; a test
compares the two). They live here so that this module needs torch alone: the grader loads
and evaluates checkpoints without importing torchvision, whose import costs about 200 MB
of memory and a few seconds on Gradescope's small containers.

References:
    - [0] He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
      https://arxiv.org/abs/1512.03385
    - [1] Chen, Kornblith, Norouzi, Hinton. A Simple Framework for Contrastive Learning of
      Visual Representations (SimCLR). ICML 2020, appendix B.9 (CIFAR-10 variant of the
      ResNet stem) and B.6 (linear evaluation). https://arxiv.org/abs/2002.05709
    - [2] Grill et al. Bootstrap Your Own Latent (BYOL). NeurIPS 2020.
      https://arxiv.org/abs/2006.07733
    - [3] Zbontar, Jing, Misra, LeCun, Deny. Barlow Twins. ICML 2021.
      https://arxiv.org/abs/2103.03230
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: Dimension of the ResNet-18 representation (the input of its removed `fc`).
RESNET18_FEATURE_DIM = 512


class BasicBlock(nn.Module):
    """The two-convolution residual block of ResNet-18 [0]; torchvision's `BasicBlock`.

    `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, where the shortcut is the
    identity or, when the block changes the resolution or width, `downsample` (a 1x1
    convolution with the block's stride and a BatchNorm2d).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))  # (B, planes, H / stride, W / stride)
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 [0] as torchvision's `resnet18(weights=None)` builds it (ImageNet stem).

    Modules, state_dict keys, forward and initialisation (Kaiming-normal fan-out
    convolutions, BatchNorm weight 1 and bias 0, PyTorch's default for `fc`) are torchvision's,
    created in the same order, so under the same seed both give the same weights.
    `cifar_resnet18()` adapts it to CIFAR.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, blocks=2)
        self.layer2 = self._make_layer(128, blocks=2, stride=2)
        self.layer3 = self._make_layer(256, blocks=2, stride=2)
        self.layer4 = self._make_layer(512, blocks=2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc: nn.Module = nn.Linear(512 * BasicBlock.expansion, num_classes)
        for module in self.modules():
            # A model built on the meta device (the checkpoint loader's) holds no values to
            # initialise; normal_ on meta tensors would also import torch._dynamo (seconds).
            if isinstance(module, nn.Conv2d) and not module.weight.is_meta:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * BasicBlock.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * BasicBlock.expansion
        layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512)
        return self.fc(x)


def cifar_resnet18() -> nn.Module:
    """The ResNet-18 encoder `f(.)` of the seeds, adapted to 32x32 CIFAR images.

    torchvision's ImageNet ResNet-18 [0] starts with a 7x7 stride-2 convolution and a
    stride-2 max-pool, which shrink a 32x32 image to 8x8 before the first residual block.
    SimCLR's CIFAR-10 variant ([1], appendix B.9) replaces the first convolution by a 3x3
    stride-1 one and removes the max-pool, so the residual stages see 32x32, 16x16, 8x8 and
    4x4 feature maps. The classification layer `fc` is replaced by the identity, so the
    output is the 512-d average-pooled representation `h = f(x)`.

    The layers are built and replaced in the same order as in the seeds
    (`enc = resnet18(weights=None); enc.conv1 = ...; enc.maxpool = ...; enc.fc = ...`), so
    the state_dict keys match and, under the same random seed, so do the initial weights.

    Returns:
        A `ResNet18` (torchvision's layout) mapping images `(B, 3, H, W)` float to features
        `(B, 512)` (for CIFAR, H = W = 32). Its state_dict keys are those of torchvision's
        resnet18 without `fc.weight` / `fc.bias`.
    """
    encoder = ResNet18()
    # CIFAR stem ([1], B.9): 3x3 stride-1 conv1 instead of 7x7 stride 2, and no max-pool.
    encoder.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    encoder.maxpool = nn.Identity()
    # Remove the classification layer: the encoder outputs the representation h = f(x).
    encoder.fc = nn.Identity()  # (B, 512)
    return encoder


def projection_mlp(
    in_dim: int = RESNET18_FEATURE_DIM,
    hidden_dim: int = 2048,
    out_dim: int = 128,
    batch_norm: bool = True,
    last_bn: bool = False,
) -> nn.Sequential:
    """A two-layer MLP head: Linear -> [BatchNorm1d] -> ReLU -> Linear -> [BatchNorm1d].

    The projector `g(.)` of SimCLR [1] (`batch_norm=False`, the seeds' `SimCLRModel`) and the
    projector / predictor `q(.)` of BYOL [2] and Barlow Twins [3] (`batch_norm=True`, the
    seeds' `BYOLModel` and `BarlowTwinsModel`). The layers sit at the seeds' indices
    (`0` Linear, `1` BatchNorm1d, `3` Linear; without batch norm `0` Linear, `2` Linear), so
    state_dicts of the seeds' heads load into it.

    Args:
        in_dim: input dimension (512, the ResNet-18 representation, for a projector;
            `out_dim` of the projector for a BYOL predictor).
        hidden_dim: width of the hidden layer (2048 in the seeds).
        out_dim: output dimension (128 in the seeds).
        batch_norm: put a BatchNorm1d after the hidden Linear layer.
        last_bn: also put a BatchNorm1d without learnable affine parameters after the last
            Linear layer, as the Barlow Twins reference implementation [3] does (its loss
            standardises the outputs anyway; SimSiam does the same).

    Returns:
        `nn.Sequential` mapping `(B, in_dim)` to `(B, out_dim)`. With batch norm it needs
        B > 1 in training mode.
    """
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]  # (B, hidden_dim)
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden_dim))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]  # (B, out_dim)
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def _channel_buffer(values: Sequence[float], name: str) -> torch.Tensor:
    """Per-channel statistics as a `(1, 3, 1, 1)` float32 tensor (broadcasts over B, H, W)."""
    # Validated on the CPU in Python, so this also works inside `with torch.device("meta")`.
    flat = torch.as_tensor(values, dtype=torch.float64, device="cpu").flatten().tolist()
    if len(flat) != 3 or not all(math.isfinite(v) for v in flat):
        raise ValueError(
            f"`{name}` needs one finite value per RGB channel (3 values), got {flat}. "
            "Pass e.g. helpers.data.CIFAR10_MEAN / CIFAR10_STD."
        )
    if name == "std" and min(flat) <= 0:
        raise ValueError(f"`std` must be three positive numbers, got {flat}.")
    return torch.tensor(flat, dtype=torch.float32).view(1, 3, 1, 1)  # (1, 3, 1, 1)


class LinearClassifier(nn.Module):
    """The classifier of the graded checkpoint: input normalisation, encoder, one linear layer.

    `logits = fc(encoder((x - mean) / std))`. The per-channel normalisation lives in the model
    as the buffers `mean` and `std`, so whoever evaluates a saved classifier (the grader)
    feeds raw images in [0, 1] and needs nothing else from its author.

    Linear evaluation ([1], appendix B.6) trains only `fc` on top of a frozen pretrained
    encoder: call `freeze_encoder()`. Fine-tuning trains everything: leave it unfrozen (the
    default) or call `unfreeze_encoder()`.

    Attributes:
        mean: buffer `(1, 3, 1, 1)` float32, the per-channel mean subtracted from the input.
        std: buffer `(1, 3, 1, 1)` float32, the per-channel standard deviation.
        encoder: `f(.)`, maps `(B, 3, 32, 32)` to `(B, feature_dim)`; `cifar_resnet18()`
            when none is given.
        fc: `nn.Linear(feature_dim, num_classes)`.

    The state_dict keys are `mean`, `std`, `encoder.*` (the keys of `cifar_resnet18()`),
    `fc.weight`, `fc.bias`, in this order.

    Example:
        >>> classifier = LinearClassifier(simclr_model.encoder, mean=CIFAR10_MEAN, std=CIFAR10_STD)
        >>> classifier.freeze_encoder()       # linear evaluation: only fc learns
        >>> logits = classifier(images)       # images (B, 3, 32, 32) float in [0, 1]
    """

    def __init__(
        self,
        encoder: nn.Module | None = None,
        num_classes: int = 10,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
        feature_dim: int = RESNET18_FEATURE_DIM,
    ) -> None:
        """Build the classifier.

        Args:
            encoder: the (pretrained) encoder; a new `cifar_resnet18()` when None. It is
                used as is, not copied: training the classifier trains this module.
            num_classes: number of classes C (10 for CIFAR-10).
            mean: per-channel mean of the training images in [0, 1] (3 values), e.g.
                `helpers.data.CIFAR10_MEAN`. The default (0, 0, 0) means no centring.
            std: per-channel standard deviation (3 positive values), e.g. `CIFAR10_STD`.
            feature_dim: dimension of the encoder output (512 for ResNet-18).
        """
        super().__init__()
        mean_buffer = _channel_buffer(mean, "mean")
        std_buffer = _channel_buffer(std, "std")
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be at least 1, got {num_classes}.")
        self.register_buffer("mean", mean_buffer)  # (1, 3, 1, 1)
        self.register_buffer("std", std_buffer)  # (1, 3, 1, 1)
        self.encoder = encoder if encoder is not None else cifar_resnet18()
        self.fc = nn.Linear(feature_dim, num_classes)
        self._encoder_frozen = False

    @property
    def num_classes(self) -> int:
        """Number of classes C, the output dimension of `fc`."""
        return self.fc.out_features

    @property
    def encoder_frozen(self) -> bool:
        """True between `freeze_encoder()` and `unfreeze_encoder()`."""
        return self._encoder_frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of raw images.

        Args:
            x: images `(B, 3, 32, 32)` float in [0, 1] (not normalised: the model does it).

        Returns:
            logits `(B, num_classes)`.
        """
        if not x.is_floating_point():
            raise TypeError(
                f"LinearClassifier expects float images in [0, 1], got dtype {x.dtype}; "
                "convert uint8 images with `x.float() / 255`."
            )
        x = (x - self.mean) / self.std  # (B, 3, H, W), per-channel standardised
        features = self.encoder(x)  # (B, feature_dim)
        return self.fc(features)  # (B, num_classes)

    def freeze_encoder(self) -> LinearClassifier:
        """Freeze the encoder for linear evaluation; only `fc` keeps learning.

        Two things happen, because freezing the parameters alone is not enough:

        1. every encoder parameter gets `requires_grad = False`, so it receives no gradient
           and an optimiser leaves it unchanged (pass `classifier.fc.parameters()` to the
           optimiser, or all parameters: frozen ones have `grad is None` and are skipped);
        2. the encoder stays in eval mode: `train()` is overridden so that, while the encoder
           is frozen, `classifier.train()` puts `fc` in training mode but calls
           `encoder.eval()` afterwards. Its BatchNorm layers therefore normalise with their
           stored running statistics and do not update them, so the features are exactly
           those of the pretrained encoder, in every epoch ([1], B.6).

        Calling `classifier.encoder.train()` directly bypasses (2).

        Returns:
            self, for chaining.
        """
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        self._encoder_frozen = True
        self.encoder.eval()
        return self

    def unfreeze_encoder(self) -> LinearClassifier:
        """Undo `freeze_encoder()` for fine-tuning: all encoder parameters learn again and the
        encoder follows the classifier's train / eval mode (its BatchNorm statistics update
        in training mode).

        Returns:
            self, for chaining.
        """
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(True)
        self._encoder_frozen = False
        self.encoder.train(self.training)
        return self

    def train(self, mode: bool = True) -> LinearClassifier:
        """`nn.Module.train`, except that a frozen encoder stays in eval mode."""
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()
        return self

    def extra_repr(self) -> str:
        if self.mean.is_meta:
            return f"encoder_frozen={self._encoder_frozen}"
        mean = [round(v, 4) for v in self.mean.flatten().tolist()]
        std = [round(v, 4) for v in self.std.flatten().tolist()]
        return f"mean={mean}, std={std}, encoder_frozen={self._encoder_frozen}"
