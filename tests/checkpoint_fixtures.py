"""Fixtures of the checkpoint tests: course files, and classifiers whose test accuracy is known in advance.

`write_config` writes a course.toml with the given ``[checkpoint]`` keys, `small_split_env`
points the grader at a calibration split and such a course.toml, and `run_graded` runs the
graded checkpoint tests (autograder/tests/test_checkpoint.py) through the real results plugin
in a nested pytest session, as the grader runs them, with only the notebook part of the
grading context stubbed (the checkpoint tests use just the submission folder).
`calibration_classifier` is a genuine ResNet-18 classifier whose weights are set (not
trained) so that it predicts the class encoded in an image's red level, and
`calibration_test_split(total, correct)` labels exactly `correct` images with the class they
show: saved with `helpers.save_classifier` and graded on that split, the checkpoint's
accuracy is exactly ``correct / total``, without training anything. (A test fixture, kept
out of the grader's package.)
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from autograder.assignments import ASSIGNMENTS
from autograder.checkpoint.rubric import ENV_CONFIG
from autograder.checkpoint.split import ENV_TEST_SPLIT, TestSplit, save_test_split
from autograder.grading import run_suite
from autograder.results import ResultsPlugin, build_results
from helpers.checkpoint import save_classifier
from helpers.data import CIFAR10_CLASSES
from helpers.models import LinearClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GRADED_TESTS = PROJECT_ROOT / "autograder" / "tests"
GRADED_MODULE = GRADED_TESTS / "test_checkpoint.py"
TASKS = list(ASSIGNMENTS["simclr_homework"].tasks)


def write_config(path: Path, **values) -> Path:
    """A course.toml with a [checkpoint] table of `values`."""
    lines = ["[checkpoint]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


#: Red-channel level (uint8) that identifies each class in a calibration split.
CALIBRATION_LEVELS: tuple[int, ...] = tuple(round((k + 0.5) / 10 * 255) for k in range(10))


def calibration_classifier() -> LinearClassifier:
    """A genuine ResNet-18 `LinearClassifier` whose prediction is known in advance.

    Its weights are set (not trained) so that the encoder's first feature is the mean red
    intensity of the image and the linear layer picks the class whose level in
    `CALIBRATION_LEVELS` is nearest:

    - stem: ``conv1`` copies the red channel into channel 0 (centre tap 1, all else 0),
      ``bn1`` passes channel 0 and zeroes the others;
    - every BasicBlock's ``bn2`` has weight and bias 0, so the residual branch adds 0 and
      the block is the identity (after ReLU, on non-negative inputs); each ``downsample``
      1x1 convolution copies channel 0;
    - average pooling gives ``h_0 = mean red`` in [0, 1], all other features 0;
    - ``fc``: ``logit_k = 2 c_k h_0 - c_k^2 = h_0^2 - (h_0 - c_k)^2``, nearest level wins.

    All the other convolution weights keep their random initialisation, so an evaluation
    costs exactly what a trained ResNet-18 costs. The input normalisation is the identity
    (mean 0, std 1). Save it with `helpers.save_classifier` to get a checkpoint whose
    accuracy on a `calibration_test_split` is exactly the fraction chosen there.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        classifier = LinearClassifier(num_classes=len(CIFAR10_CLASSES))
    finally:
        torch.random.set_rng_state(generator_state)
    encoder = classifier.encoder
    levels = torch.tensor(CALIBRATION_LEVELS, dtype=torch.float32) / 255  # (10,)

    def pass_channel_zero(bn: nn.BatchNorm2d) -> None:
        bn.weight.zero_()
        bn.weight[0] = 1.0
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)

    with torch.no_grad():
        encoder.conv1.weight.zero_()
        encoder.conv1.weight[0, 0, 1, 1] = 1.0  # channel 0 = red, centre tap of the 3x3 kernel
        pass_channel_zero(encoder.bn1)
        for stage in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
            for block in stage:
                block.bn2.weight.zero_()  # residual branch contributes exactly 0
                block.bn2.bias.zero_()
                if block.downsample is not None:
                    block.downsample[0].weight.zero_()
                    block.downsample[0].weight[0, 0, 0, 0] = 1.0
                    pass_channel_zero(block.downsample[1])
        classifier.fc.weight.zero_()
        classifier.fc.weight[:, 0] = 2 * levels  # (10, 512): only feature 0 counts
        classifier.fc.bias.copy_(-(levels**2))
    return classifier.eval()


def calibration_test_split(total: int, correct: int, seed: int = 0) -> TestSplit:
    """Images on which `calibration_classifier` is right exactly `correct` times of `total`.

    Image ``i`` shows class ``k = i mod 10`` as a constant red level ``CALIBRATION_LEVELS[k]``
    with random green and blue noise; its label is ``k`` for `correct` randomly chosen
    images and a random other class for the rest.

    Returns:
        A `TestSplit` (images (total, 32, 32, 3) uint8, labels (total,) int64).
    """
    if not 0 <= correct <= total or total < 1:
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")
    generator = torch.Generator().manual_seed(seed)
    shown = torch.arange(total) % 10  # (N,) the class the image shows
    images = torch.randint(0, 256, (total, 32, 32, 3), dtype=torch.uint8, generator=generator)  # (N, 32, 32, 3)
    images[..., 0] = torch.tensor(CALIBRATION_LEVELS, dtype=torch.uint8)[shown][:, None, None]
    labels = shown.clone()
    wrong = torch.randperm(total, generator=generator)[correct:]  # images whose label is another class
    labels[wrong] = (shown[wrong] + 1 + torch.randint(0, 9, (len(wrong),), generator=generator)) % 10
    return TestSplit(
        images,
        labels.to(torch.int64),
        f"calibration split ({total:,} synthetic images, {correct:,} labelled as their class)",
    )


def save_calibration_checkpoint(folder: Path) -> Path:
    """The calibration classifier saved with helpers.save_classifier in `folder` (a real 45 MB checkpoint)."""
    return save_classifier(calibration_classifier(), folder / "simclr_lin_best.pt")


def small_split_env(monkeypatch, tmp_path: Path, total: int, correct: int, **config) -> Path:
    """Point the grader at a calibration split of `total` images and a matching course config."""
    split = calibration_test_split(total, correct)
    path = save_test_split(split.images, split.labels, tmp_path / f"split-{total}-{correct}.pt", split.source)
    settings = dict(test_images=total, batch_size=32, threads=1)
    settings.update(config)
    monkeypatch.setenv(ENV_TEST_SPLIT, str(path))
    monkeypatch.setenv(ENV_CONFIG, str(write_config(tmp_path / "course.toml", **settings)))
    return path


class _ContextPlugin:
    """Hands a grading context to autograder/tests/conftest.py, as autograder.grading does."""

    def __init__(self, context: SimpleNamespace) -> None:
        self.sslgrader_context = context


def run_graded(submission: Path) -> tuple[ResultsPlugin, dict]:
    """Run autograder/tests/test_checkpoint.py as the grader does; returns (plugin, results.json dict).

    The module is imported afresh so that it reads the current course configuration.
    """
    plugin = ResultsPlugin("simclr_homework", TASKS)
    context = SimpleNamespace(submission_dir=submission, extracted=SimpleNamespace(task_problem=lambda task: None))
    code = run_suite(plugin, _ContextPlugin(context), target=GRADED_MODULE)
    assert code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), code
    error = (
        "The grader itself failed (not your fault; tell your instructor):\n" + "\n".join(plugin.grader_errors)
        if plugin.grader_errors
        else None
    )
    return plugin, build_results(plugin, [], 0.0, error=error)


def checkpoint_tests(results: dict) -> dict[str, dict]:
    """The checkpoint tests of a results dict, by kind ("accuracy" / "bonus")."""
    tests = [t for t in results["tests"] if t["tags"] == ["checkpoint"]]
    return {("bonus" if "Bonus" in t["name"] else "accuracy"): t for t in tests}
