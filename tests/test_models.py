"""Tests of helpers.models: the CIFAR ResNet-18 encoder, the projection heads and the
classifier of the graded checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from helpers.models import LinearClassifier, cifar_resnet18, projection_mlp

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def seeds_encoder() -> nn.Module:
    """The encoder exactly as the seeds' SimCLRModel / BYOLModel / BarlowTwinsModel build it."""
    enc = resnet18(weights=None)
    enc.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    enc.maxpool = nn.Identity()
    enc.fc = nn.Identity()
    return enc


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    torch.manual_seed(0)
    return cifar_resnet18().eval()


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def small_encoder() -> nn.Module:
    """A tiny conv + BatchNorm encoder (8 features) for the mode and gradient semantics."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


# ----------------------------------------------------------------------------- encoder


def test_encoder_maps_cifar_images_to_512_features_through_the_cifar_stem(encoder):
    """Does the encoder map (B, 3, 32, 32) images to (B, 512) features with SimCLR's CIFAR
    stem: 3x3 stride-1 conv1 without bias, no max-pool, no fc, so the residual stages see
    32x32, 16x16, 8x8 and 4x4 maps?"""
    conv1 = encoder.conv1
    assert (conv1.in_channels, conv1.out_channels) == (3, 64)
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1) and conv1.padding == (1, 1)
    assert conv1.bias is None
    assert isinstance(encoder.maxpool, nn.Identity)
    assert isinstance(encoder.fc, nn.Identity)

    sizes = {}
    hooks = [
        getattr(encoder, name).register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape))
        )
        for name in ("layer1", "layer2", "layer3", "layer4")
    ]
    try:
        with torch.no_grad():
            features = encoder(torch.rand(2, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    assert features.shape == (2, 512) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert sizes == {
        "layer1": (2, 64, 32, 32),
        "layer2": (2, 128, 16, 16),
        "layer3": (2, 256, 8, 8),
        "layer4": (2, 512, 4, 4),
    }


@pytest.mark.parametrize("batch_size", [1, 3])
def test_encoder_output_is_one_512_vector_per_image(encoder, batch_size):
    """(B, 3, H, W) -> (B, 512) for any batch size (small 8x8 images keep this test fast;
    the average pool makes the output size independent of H and W)."""
    with torch.no_grad():
        assert encoder(torch.rand(batch_size, 3, 8, 8)).shape == (batch_size, 512)


def test_encoder_matches_the_seeds_construction():
    """Does cifar_resnet18() have the seeds' state_dict keys and shapes, and, built under the
    same seed, the very same initial weights and outputs (so a state_dict of the seeds'
    encoder loads strictly into it and computes the same function)?"""
    torch.manual_seed(123)
    ours = cifar_resnet18().eval()
    torch.manual_seed(123)
    theirs = seeds_encoder().eval()
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    assert not any(key.startswith("fc.") for key in ours_state)
    for key, value in theirs_state.items():
        assert ours_state[key].shape == value.shape, key
        torch.testing.assert_close(ours_state[key], value, rtol=0, atol=0, msg=key)
    ours.load_state_dict(theirs_state, strict=True)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_resnet18_is_torchvisions_resnet18():
    """helpers' ResNet18 restates torchvision's resnet18(weights=None): same modules in the
    same order, same state_dict keys, and under the same seed the same weights and outputs
    (ImageNet stem, max-pool and fc included)."""
    from helpers.models import ResNet18

    torch.manual_seed(7)
    ours = ResNet18().eval()
    ours_rng = torch.random.get_rng_state()
    torch.manual_seed(7)
    theirs = resnet18(weights=None).eval()
    assert torch.equal(ours_rng, torch.random.get_rng_state()), "a different number of random draws"
    assert [(name, type(m).__name__) for name, m in ours.named_modules() if name] == [
        (name, type(m).__name__) for name, m in theirs.named_modules() if name
    ]
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        torch.testing.assert_close(ours_state[key], value, rtol=0, atol=0, msg=key)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------- heads


def test_projection_mlp_without_batch_norm_is_the_seeds_simclr_projector():
    """batch_norm=False: Linear-ReLU-Linear with the seeds' SimCLR projector keys."""
    seeds = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(inplace=True), nn.Linear(2048, 128))
    head = projection_mlp(512, 2048, 128, batch_norm=False)
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    assert {k: v.shape for k, v in head.state_dict().items()} == {k: v.shape for k, v in seeds.state_dict().items()}


@pytest.mark.parametrize("in_dim, hidden_dim, out_dim", [(512, 2048, 128), (128, 64, 32)])
def test_projection_mlp_with_batch_norm_is_the_seeds_byol_head(in_dim, hidden_dim, out_dim):
    """batch_norm=True: Linear-BN-ReLU-Linear with the seeds' BYOL / Barlow Twins head keys,
    mapping (B, in_dim) to (B, out_dim)."""
    seeds = nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)
    )
    head = projection_mlp(in_dim, hidden_dim, out_dim)
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    head.load_state_dict(seeds.state_dict(), strict=True)
    out = head(torch.randn(6, in_dim))
    assert out.shape == (6, out_dim)


def test_projection_mlp_last_bn_standardises_outputs():
    """last_bn=True appends a BatchNorm1d without affine parameters: in training mode every
    output feature has zero mean and unit variance over the batch."""
    torch.manual_seed(0)
    head = projection_mlp(16, 32, 8, batch_norm=True, last_bn=True)
    last = head[-1]
    assert isinstance(last, nn.BatchNorm1d) and not last.affine
    assert last.num_features == 8
    out = head(torch.randn(64, 16) * 3 + 1)  # (64, 8)
    torch.testing.assert_close(out.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------- classifier


class CaptureInput(nn.Module):
    """A stand-in encoder that records what it receives and flattens it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach().clone()
        return x.flatten(1)  # (B, 3 * H * W)


def test_classifier_normalises_inside_the_model():
    """Does the classifier feed (x - mean) / std, per channel, to the encoder and its output
    to fc?"""
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.25, 4.0)
    capture = CaptureInput()
    model = LinearClassifier(capture, num_classes=5, mean=mean, std=std, feature_dim=3 * 4 * 4)
    x = torch.rand(2, 3, 4, 4)
    logits = model(x)

    expected = torch.empty_like(x)
    for channel in range(3):
        expected[:, channel] = (x[:, channel] - mean[channel]) / std[channel]
    torch.testing.assert_close(capture.seen, expected)
    torch.testing.assert_close(logits, expected.flatten(1) @ model.fc.weight.T + model.fc.bias)
    assert logits.shape == (2, 5)


def test_classifier_buffers():
    """Are mean / std (1, 3, 1, 1) float32 buffers holding the given values?"""
    model = LinearClassifier(nn.Flatten(), mean=CIFAR_MEAN, std=CIFAR_STD, feature_dim=48)
    assert model.mean.shape == (1, 3, 1, 1) and model.std.shape == (1, 3, 1, 1)
    assert model.mean.dtype == torch.float32 and model.std.dtype == torch.float32
    torch.testing.assert_close(model.mean.flatten(), torch.tensor(CIFAR_MEAN))
    torch.testing.assert_close(model.std.flatten(), torch.tensor(CIFAR_STD))
    assert set(dict(model.named_buffers())) == {"mean", "std"}


def test_classifier_state_dict_layout():
    """Is the state_dict mean, std, the seeds' encoder keys under `encoder.`, then fc (512 -> C),
    with nothing else? (Built on the meta device: only names and shapes matter here.)"""
    with torch.device("meta"):
        model = LinearClassifier(num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD)
        seeds = seeds_encoder()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    encoder_shapes = {f"encoder.{k}": tuple(v.shape) for k, v in seeds.state_dict().items()}
    assert list(shapes) == ["mean", "std", *encoder_shapes, "fc.weight", "fc.bias"]
    assert shapes == {
        "mean": (1, 3, 1, 1),
        "std": (1, 3, 1, 1),
        **encoder_shapes,
        "fc.weight": (10, 512),
        "fc.bias": (10,),
    }
    assert model.fc.in_features == 512 and model.num_classes == 10


@pytest.mark.parametrize("num_classes, batch_size, size", [(10, 2, 16), (100, 3, 8)])
def test_classifier_output_shape(encoder, num_classes, batch_size, size):
    """Does the classifier map raw (B, 3, H, W) images to (B, C) logits?"""
    model = LinearClassifier(encoder, num_classes=num_classes, mean=CIFAR_MEAN, std=CIFAR_STD).eval()
    with torch.no_grad():
        assert model(torch.rand(batch_size, 3, size, size)).shape == (batch_size, num_classes)


def test_classifier_uses_the_given_encoder_object(encoder):
    model = LinearClassifier(encoder)
    assert model.encoder is encoder


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"mean": (0.5, 0.5)}, "3 values"),
        ({"std": (0.2, 0.0, 0.2)}, "positive"),
        ({"std": (0.2, -1.0, 0.2)}, "positive"),
        ({"mean": (0.5, float("nan"), 0.5)}, "finite"),
    ],
)
def test_classifier_rejects_bad_normalisation(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        LinearClassifier(nn.Flatten(), feature_dim=48, **kwargs)


def test_classifier_rejects_uint8_images_with_a_hint():
    model = LinearClassifier(nn.Flatten(), feature_dim=48)
    with pytest.raises(TypeError, match=r"x.float\(\) / 255"):
        model(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_classifier_is_built_on_the_meta_device_without_data():
    """The checkpoint loader builds the classifier on the meta device; that must work."""
    with torch.device("meta"):
        model = LinearClassifier(num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD)
    assert model.mean.is_meta and model.fc.weight.is_meta
    assert "encoder_frozen" in repr(model)


# ----------------------------------------------------------------------------- freezing


def test_frozen_encoder_gets_no_gradient_and_keeps_its_batch_norm_statistics():
    """Linear evaluation: after freeze_encoder() and train(), a training step changes fc only:
    encoder parameters get no gradient and stay put, and its BatchNorm running statistics do
    not move, because the encoder stays in eval mode."""
    torch.manual_seed(0)
    model = LinearClassifier(num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD)
    assert model.freeze_encoder() is model
    model.train()
    assert model.training and model.fc.training
    assert not model.encoder.training
    assert all(not bn.training for bn in batch_norms(model.encoder))
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.fc.parameters())

    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fc_before = model.fc.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])  # small images: fast, same semantics
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.fc.weight.grad is not None and model.fc.weight.grad.abs().sum() > 0
    optimizer.step()

    for key, before in encoder_before.items():  # weights, running_mean/var, num_batches_tracked
        torch.testing.assert_close(model.encoder.state_dict()[key], before, rtol=0, atol=0, msg=key)
    assert not torch.equal(model.fc.weight, fc_before)


def test_freeze_survives_eval_then_train():
    model = LinearClassifier(small_encoder(), feature_dim=8)
    model.train().freeze_encoder()
    model.eval()
    model.train()
    assert model.encoder_frozen and model.training and not model.encoder.training


def test_unfrozen_encoder_trains_and_updates_batch_norm_statistics():
    """After unfreeze_encoder(), the encoder follows train() again, gets gradients and
    updates its BatchNorm statistics (fine-tuning)."""
    torch.manual_seed(0)
    model = LinearClassifier(small_encoder(), num_classes=4, feature_dim=8)
    model.freeze_encoder()
    model.train()
    assert model.unfreeze_encoder() is model
    assert not model.encoder_frozen
    assert model.encoder.training and all(bn.training for bn in batch_norms(model.encoder))
    assert all(p.requires_grad for p in model.parameters())

    running_mean = model.encoder[1].running_mean.clone()
    loss = nn.functional.cross_entropy(model(torch.rand(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert not torch.equal(model.encoder[1].running_mean, running_mean)


def test_new_classifier_is_not_frozen():
    model = LinearClassifier(small_encoder(), feature_dim=8)
    model.train()
    assert not model.encoder_frozen and model.encoder.training
