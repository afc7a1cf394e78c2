"""Tests of helpers.probes: the weighted k-NN monitor (InstDisc / solo-learn) and encoding."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from helpers.probes import KNNMonitor, encode_images, knn_accuracy


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def slow_weighted_knn_predictions(train_x, train_y, test_x, k, temperature, num_classes):
    """Straight from the InstDisc formula, one test point and one neighbour at a time."""
    predictions = []
    for query in test_x.tolist():
        similarities = []
        for index, key in enumerate(train_x.tolist()):
            dot = sum(q * v for q, v in zip(query, key))
            norm = math.sqrt(sum(q * q for q in query)) * math.sqrt(sum(v * v for v in key))
            similarities.append((dot / norm, index))
        similarities.sort(key=lambda si: -si[0])
        votes = [0.0] * num_classes
        for similarity, index in similarities[: min(k, len(similarities))]:
            votes[int(train_y[index])] += math.exp(similarity / temperature)
        predictions.append(max(range(num_classes), key=lambda c: (votes[c], -c)))  # ties: lowest class
    return torch.tensor(predictions)


@pytest.mark.parametrize("k", [1, 5, 20, 200])
@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5])
def test_knn_matches_the_formula_prediction_by_prediction(k, temperature):
    """Does knn_accuracy predict exactly what the InstDisc formula predicts, for every test point?"""
    g = torch.Generator().manual_seed(k * 1000 + int(temperature * 100))
    train_x, test_x = torch.randn(60, 8, generator=g), torch.randn(25, 8, generator=g)
    train_y = torch.randint(0, 4, (60,), generator=g)
    expected = slow_weighted_knn_predictions(train_x, train_y, test_x, k, temperature, 4)
    # Labels equal to the formula's predictions -> 100 %; shifted by one class -> 0 %: so every
    # single prediction is checked, not only the count of correct ones.
    assert knn_accuracy(train_x, train_y, test_x, expected, k=k, temperature=temperature, num_classes=4) == 1.0
    wrong = (expected + 1) % 4
    assert knn_accuracy(train_x, train_y, test_x, wrong, k=k, temperature=temperature, num_classes=4) == 0.0
    random_labels = torch.randint(0, 4, (25,), generator=g)
    assert knn_accuracy(train_x, train_y, test_x, random_labels, k=k, temperature=temperature, num_classes=4) == (
        pytest.approx((random_labels == expected).float().mean().item())
    )


def test_knn_is_scale_invariant_and_temperature_matters():
    """Features are L2-normalised (cosine similarity); the weights depend on T."""
    g = torch.Generator().manual_seed(1)
    train_x, test_x = torch.randn(40, 6, generator=g), torch.randn(30, 6, generator=g)
    train_y, test_y = torch.randint(0, 3, (40,), generator=g), torch.randint(0, 3, (30,), generator=g)
    scale = torch.rand(40, 1, generator=g) * 10 + 0.1
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=10, num_classes=3) == knn_accuracy(
        train_x * scale, train_y, 3 * test_x, test_y, k=10, num_classes=3
    )
    predictions = {t: slow_weighted_knn_predictions(train_x, train_y, test_x, 40, t, 3) for t in (0.01, 100.0)}
    assert not torch.equal(predictions[0.01], predictions[100.0])  # T changes the vote
    for t, expected in predictions.items():
        assert knn_accuracy(train_x, train_y, test_x, expected, k=40, temperature=t, num_classes=3) == 1.0


@pytest.mark.parametrize("k", [1, 200])
def test_knn_perfect_on_separated_clusters(k):
    """Well-separated class clusters are classified perfectly (k=200 > N uses every neighbour)."""
    g = torch.Generator().manual_seed(2)
    centers = torch.eye(5, 16) * 10  # (5, 16) orthogonal class directions
    train_y, test_y = torch.arange(50) % 5, torch.arange(30) % 5
    train_x = centers[train_y] + 0.3 * torch.randn(50, 16, generator=g)
    test_x = centers[test_y] + 0.3 * torch.randn(30, 16, generator=g)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=k, num_classes=5) == 1.0


def test_knn_chance_level_on_random_labels():
    """With labels unrelated to the features, accuracy is near 1 / num_classes."""
    g = torch.Generator().manual_seed(3)
    train_x, test_x = torch.randn(2000, 32, generator=g), torch.randn(2000, 32, generator=g)
    train_y, test_y = torch.randint(0, 10, (2000,), generator=g), torch.randint(0, 10, (2000,), generator=g)
    accuracy = knn_accuracy(train_x, train_y, test_x, test_y)
    assert isinstance(accuracy, float)
    assert 0.06 < accuracy < 0.14


def test_knn_ties_and_k_larger_than_train_set():
    """A tied vote goes to the lowest class index; k > N_train is capped, not an error."""
    train_x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    train_y = torch.tensor([2, 1, 0])
    query = torch.tensor([[1.0, 0.0]])
    # k=2: two identical neighbours of classes 2 and 1 -> tie -> class 1.
    assert knn_accuracy(train_x, train_y, query, torch.tensor([1]), k=2, num_classes=3) == 1.0
    assert knn_accuracy(train_x, train_y, query, torch.tensor([2]), k=2, num_classes=3) == 0.0
    # k=200 with 3 training points: the same as k=3.
    for label in range(3):
        assert knn_accuracy(train_x, train_y, query, torch.tensor([label]), k=200, num_classes=3) == knn_accuracy(
            train_x, train_y, query, torch.tensor([label]), k=3, num_classes=3
        )


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096])
def test_knn_chunking_invariance(chunk_size):
    """The result does not depend on how the test set is chunked."""
    g = torch.Generator().manual_seed(4)
    train_x, test_x = torch.randn(300, 12, generator=g), torch.randn(101, 12, generator=g)
    train_y, test_y = torch.randint(0, 10, (300,), generator=g), torch.randint(0, 10, (101,), generator=g)
    reference = knn_accuracy(train_x, train_y, test_x, test_y, k=20, chunk_size=101)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=20, chunk_size=chunk_size) == reference


def test_knn_accepts_numpy_and_low_precision():
    """NumPy arrays and bf16 features work; the answer is a Python float in [0, 1]."""
    g = torch.Generator().manual_seed(5)
    train_x, test_x = torch.randn(50, 8, generator=g), torch.randn(20, 8, generator=g)
    train_y, test_y = torch.randint(0, 10, (50,), generator=g), torch.randint(0, 10, (20,), generator=g)
    reference = knn_accuracy(train_x, train_y, test_x, test_y, k=5)
    from_numpy = knn_accuracy(train_x.numpy(), train_y.numpy(), test_x.numpy(), test_y.numpy(), k=5)
    assert from_numpy == reference and isinstance(from_numpy, float)
    low = knn_accuracy(train_x.bfloat16(), train_y, test_x.bfloat16(), test_y, k=5)
    assert 0.0 <= low <= 1.0


def test_knn_rejects_bad_input():
    """Mismatched shapes and out-of-range labels fail with a message."""
    x, y = torch.randn(10, 4), torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="same D"):
        knn_accuracy(x, y, torch.randn(3, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="num_classes"):
        knn_accuracy(x, y + 10, x, y, num_classes=10)


class Recorder(nn.Module):
    """Mean colour per channel as features; records what it was called with."""

    def __init__(self, tuple_output: bool = False):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3))
        self.norm = nn.BatchNorm1d(3)
        self.tuple_output = tuple_output
        self.calls = []

    def forward(self, x):
        self.calls.append(
            (
                tuple(x.shape),
                x.dtype,
                float(x.min()),
                float(x.max()),
                self.training,
                self.norm.training,
                torch.is_grad_enabled(),
            )
        )
        features = x.mean(dim=(2, 3)) * self.scale  # (B, 3)
        return (features, features * 2) if self.tuple_output else features


def colour_images(n: int, classes: int = 3, seed: int = 0):
    """uint8 (n, 8, 8, 3) images whose dominant channel is the class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 60, (n, 8, 8, 3), generator=g)
    images[torch.arange(n), :, :, labels] += 180
    return images.to(torch.uint8), labels


@pytest.mark.parametrize("tuple_output", [False, True])
def test_encode_images_batches_converts_and_restores_modes(tuple_output):
    """uint8 HWC -> float [0, 1] CHW, batched, no grad, eval mode, modes restored, tuple -> first."""
    images, _ = colour_images(10)
    encoder = Recorder(tuple_output)
    encoder.train()
    encoder.norm.eval()  # deliberately frozen submodule: must stay in eval afterwards
    features = encode_images(encoder, images, batch_size=4)
    assert features.shape == (10, 3) and features.dtype == torch.float32 and not features.requires_grad
    assert [c[0] for c in encoder.calls] == [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
    assert all(c[1] == torch.float32 and 0.0 <= c[2] and c[3] <= 1.0 for c in encoder.calls)
    assert not any(c[4] or c[5] or c[6] for c in encoder.calls)  # eval mode, no grad
    assert encoder.training and not encoder.norm.training
    expected = images.permute(0, 3, 1, 2).float().div(255).mean(dim=(2, 3))
    assert_close(features, expected)


def test_encode_images_restores_modes_after_an_error():
    """An encoder that raises leaves the train/eval flags as they were."""

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    encoder = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        encode_images(encoder, torch.zeros(2, 4, 4, 3, dtype=torch.uint8))
    assert encoder.training


def test_encode_images_accepts_chw_and_float():
    """(N, 3, H, W) uint8 and float inputs give the same features as HWC uint8."""
    images, _ = colour_images(6)
    encoder = Recorder()
    reference = encode_images(encoder, images)
    assert_close(encode_images(encoder, images.permute(0, 3, 1, 2)), reference)
    assert_close(encode_images(encoder, images.permute(0, 3, 1, 2).float() / 255), reference)


@pytest.mark.parametrize("tuple_output", [False, True])
def test_knn_monitor_on_separable_images(tuple_output):
    """A colour encoder separates colour classes perfectly; the monitor returns a float."""
    train_images, train_labels = colour_images(60, seed=0)
    test_images, test_labels = colour_images(30, seed=1)
    monitor = KNNMonitor(train_images, train_labels, test_images, test_labels, k=20, num_classes=3)
    encoder = Recorder(tuple_output).train()
    accuracy = monitor(encoder)
    assert accuracy == 1.0 and isinstance(accuracy, float)
    assert encoder.training


def test_knn_monitor_subsets():
    """max_train/max_test and subset() keep class-balanced subsets and the settings."""
    train_images, train_labels = colour_images(60)
    test_images, test_labels = colour_images(30, seed=1)
    monitor = KNNMonitor(
        train_images, train_labels, test_images, test_labels, k=7, temperature=0.2, max_train=12, num_classes=3
    )
    assert monitor.train_images.shape[0] == 12 and monitor.test_images.shape[0] == 30
    assert torch.bincount(monitor.train_labels).tolist() == [4, 4, 4]
    small = monitor.subset(max_train=6, max_test=9)
    assert (small.train_images.shape[0], small.test_images.shape[0]) == (6, 9)
    assert (small.k, small.temperature, small.num_classes) == (7, 0.2, 3)
    assert torch.bincount(small.test_labels).tolist() == [3, 3, 3]
    assert small(Recorder()) == 1.0
