"""Tests of the autograder.checkpoint package (test split, loading, evaluation, grading) and the graded
checkpoint tests (autograder/tests/test_checkpoint.py); the rubric and its scoring are in
tests/test_checkpoint_rubric.py.

Accuracies are known without training anything (tests/checkpoint_fixtures.py): `calibration_classifier`
is a genuine ResNet-18 classifier whose weights are set so that it predicts the class encoded in an
image's red level, and `calibration_test_split(total, correct)` labels exactly `correct`
images with the class they show. The graded tests run through the real results plugin
(`autograder.results.ResultsPlugin`) in a nested pytest session, as the grader runs them,
with only the notebook part of the grading context stubbed (the checkpoint tests use just
the submission folder). One real-data test evaluates a randomly initialised classifier on
the full CIFAR-10 test split of ../shared/data/cifar10-jpeg.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from checkpoint_fixtures import (
    calibration_classifier,
    calibration_test_split,
    checkpoint_tests,
    run_graded,
    save_calibration_checkpoint,
    small_split_env,
    write_config,
)
from torch import nn

from autograder.checkpoint import evaluation
from autograder.checkpoint import split as split_module
from autograder.checkpoint.evaluation import evaluate_classifier, fold_batchnorm
from autograder.checkpoint.grading import grade_checkpoint
from autograder.checkpoint.loading import check_zip_expansion, load_submitted_classifier, locate_checkpoint
from autograder.checkpoint.rubric import DEFAULT_CONFIG, ENV_CONFIG, CheckpointRubric, load_course_config
from autograder.checkpoint.split import TestSplitUnavailable, resolve_test_split, save_test_split
from helpers.checkpoint import CheckpointError, save_classifier
from helpers.models import LinearClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


# ======================================================================================
# Fixtures
# ======================================================================================
@pytest.fixture(scope="module")
def calibration_checkpoint(tmp_path_factory) -> Path:
    return save_calibration_checkpoint(tmp_path_factory.mktemp("calibration"))


@pytest.fixture(scope="module")
def weightless() -> dict[str, torch.Tensor]:
    """The LinearClassifier state_dict's keys, shapes and dtypes, each a broadcast of one value
    (files of a few KB that load in milliseconds; see tests/test_checkpoint.py)."""
    state = LinearClassifier(mean=CIFAR_MEAN, std=CIFAR_STD).state_dict()
    light = {}
    for index, (key, value) in enumerate(state.items()):
        if key in ("mean", "std"):
            light[key] = value.clone()
        else:
            light[key] = torch.tensor(index / 1000 if value.is_floating_point() else index, dtype=value.dtype).expand(
                value.shape
            )
    return light


# ======================================================================================
# The test split
# ======================================================================================
def _jpeg_source(folder: Path, per_class: int = 2) -> Path:
    """A tiny CIFAR-like source: test/<class>/<i>.png."""
    from PIL import Image

    from helpers.data import CIFAR10_CLASSES

    for label, name in enumerate(CIFAR10_CLASSES):
        (folder / "test" / name).mkdir(parents=True)
        for index in range(per_class):
            Image.new("RGB", (32, 32), (label * 20, index * 50, 7)).save(folder / "test" / name / f"{index}.png")
    return folder


def test_split_resolution_order(tmp_path, monkeypatch):
    """$SSL_LAB_TEST_SPLIT first, then the baked copy data/cifar10-test.pt, then the
    configured local sources; each grade says which one it used."""
    project = tmp_path / "project"
    project.mkdir()
    source = _jpeg_source(tmp_path / "jpeg")
    rubric = CheckpointRubric(test_images=20, test_split_sources=("../jpeg",))
    data_root = tmp_path / "data-root"

    split = resolve_test_split(rubric, project_root=project, data_root=data_root, environ={})
    assert len(split) == 20 and str(source.resolve()) in split.source and "test_split_sources" in split.source
    assert (data_root / "cache").is_dir()  # decoded once, cached for the next grade

    baked = calibration_test_split(20, 20)
    save_test_split(baked.images, baked.labels, project / "data" / "cifar10-test.pt", "the baked copy")
    split = resolve_test_split(rubric, project_root=project, data_root=data_root, environ={})
    assert split.source.startswith("the baked copy") and "baked into the grading image" in split.source
    torch.testing.assert_close(split.images, baked.images, rtol=0, atol=0)

    explicit = calibration_test_split(20, 3, seed=5)
    path = save_test_split(explicit.images, explicit.labels, tmp_path / "explicit.pt", "explicit copy")
    split = resolve_test_split(
        rubric, project_root=project, data_root=data_root, environ={split_module.ENV_TEST_SPLIT: str(path)}
    )
    assert split.source.startswith("explicit copy") and "$SSL_LAB_TEST_SPLIT" in split.source
    torch.testing.assert_close(split.labels, explicit.labels, rtol=0, atol=0)


def test_no_split_is_a_grader_error_listing_what_was_tried(tmp_path):
    rubric = CheckpointRubric(test_split_sources=("nowhere",))
    with pytest.raises(TestSplitUnavailable) as info:
        resolve_test_split(rubric, project_root=tmp_path, environ={})
    message = str(info.value)
    assert "no CIFAR-10 test split is available" in message
    assert str(tmp_path / "data" / "cifar10-test.pt") in message and str(tmp_path / "nowhere") in message
    assert "--test-split" in message and "prepare" in message
    with pytest.raises(TestSplitUnavailable, match="does not exist"):
        resolve_test_split(rubric, project_root=tmp_path, environ={split_module.ENV_TEST_SPLIT: str(tmp_path / "x.pt")})


def test_partial_or_damaged_split_is_refused(tmp_path):
    """A split of the wrong size (a partial copy) or with a wrong checksum never grades anyone."""
    split = calibration_test_split(30, 30)
    path = save_test_split(split.images, split.labels, tmp_path / "data" / "cifar10-test.pt", "copy")
    with pytest.raises(TestSplitUnavailable, match="has 30 images; the course expects 10,000"):
        resolve_test_split(CheckpointRubric(), project_root=tmp_path, environ={})
    payload = torch.load(path, weights_only=True)
    payload["labels"][0] = (payload["labels"][0] + 1) % 10
    torch.save(payload, path)
    with pytest.raises(TestSplitUnavailable, match="damaged"):
        resolve_test_split(CheckpointRubric(test_images=30), project_root=tmp_path, environ={})
    path.write_bytes(b"not a torch file")
    with pytest.raises(TestSplitUnavailable, match="cannot be read"):
        resolve_test_split(CheckpointRubric(test_images=30), project_root=tmp_path, environ={})


def test_prepare_copies_a_prepared_file_and_decodes_a_source(tmp_path):
    source = _jpeg_source(tmp_path / "jpeg", per_class=1)
    out = split_module.prepare_test_split(tmp_path / "a.pt", source=source, download=False, verbose=False)
    split = split_module.load_test_split_file(out)
    assert len(split) == 10 and f"from {source.resolve()}" in split.source
    again = split_module.load_test_split_file(
        split_module.prepare_test_split(tmp_path / "b.pt", source=out, verbose=False)
    )
    torch.testing.assert_close(again.images, split.images, rtol=0, atol=0)
    assert again.source.split(", prepared copy")[0] == split.source.split(", prepared copy")[0]


# ======================================================================================
# Finding, guarding and evaluating
# ======================================================================================
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["simclr_lin_best.pth", "notes.txt"], "rename it to simclr_lin_best.pt"),
        (["Simclr_Lin_Best.PT"], "Simclr_Lin_Best.PT"),
        (["checkpoints/model_epoch_9.pt"], "checkpoints/model_epoch_9.pt"),
        (["notebook.ipynb"], "it contains: notebook.ipynb"),
        ([], "it contains: nothing"),
        (["a/simclr_lin_best.pt", "b/simclr_lin_best.pt"], "several files named simclr_lin_best.pt"),
    ],
)
def test_locate_reports_wrong_names_with_suggestions(tmp_path, files, expected):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(CheckpointError) as info:
        locate_checkpoint(tmp_path)
    assert expected in str(info.value)
    assert "notes.txt" not in str(info.value)


def test_locate_accepts_a_nested_file_and_refuses_links(tmp_path):
    (tmp_path / "hw5").mkdir()
    (tmp_path / "hw5" / "simclr_lin_best.pt").write_bytes(b"x")
    path, note = locate_checkpoint(tmp_path)
    assert path == tmp_path / "hw5" / "simclr_lin_best.pt" and "hw5/simclr_lin_best.pt" in note
    (tmp_path / "simclr_lin_best.pt").symlink_to(tmp_path / "hw5" / "simclr_lin_best.pt")
    with pytest.raises(CheckpointError, match="symbolic link"):
        locate_checkpoint(tmp_path)


def _deflated_copy(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return target


def test_zip_bomb_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A few KB of DEFLATE that torch.load would inflate past the size cap is never loaded."""
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(8 * 2**20)}, plain)  # 32 MiB of zeros
    bomb = _deflated_copy(plain, tmp_path / "simclr_lin_best.pt")
    assert bomb.stat().st_size < 200_000
    assert torch.load(bomb, weights_only=True)["w"].numel() == 8 * 2**20  # torch.load would inflate it

    def no_loading(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_loading)
    with pytest.raises(CheckpointError, match=r"would expand to 33,\d{3},\d{3} bytes .* more than the limit of 16 MiB"):
        check_zip_expansion(bomb, 16 * 2**20)
    check_zip_expansion(plain, 64 * 2**20)  # within the cap: nothing to say


def test_fold_batchnorm_keeps_the_function(weightless):
    """Folding eval-mode BN into the convolutions changes the logits only by float rounding
    and leaves no BatchNorm layer."""
    torch.manual_seed(0)
    model = LinearClassifier(mean=CIFAR_MEAN, std=CIFAR_STD)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    model.eval()
    images = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        expected = model(images)
        folded = fold_batchnorm(model)
        actual = folded(images.contiguous(memory_format=torch.channels_last))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


class _RowLogits(nn.Module):
    """A stand-in classifier: logits from a per-image lookup keyed by the image's red level."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)  # (256, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = (x[:, 0, 0, 0] * 255).round().long()  # (B,)
        return self.table[red]  # (B, C)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_evaluate_counts_exactly_and_nonfinite_logits_are_wrong(batch_size):
    """Correct counts per class for any batch size; NaN or infinite logits are counted wrong
    and reported."""
    table = torch.full((256, 10), -1.0)
    for level in range(256):
        table[level, level % 10] = 1.0  # predicts red level mod 10
    table[3] = float("nan")  # images of red level 3 get NaN logits
    table[13, 3] = float("inf")
    images = torch.zeros(50, 32, 32, 3, dtype=torch.uint8)
    images[:, :, :, 0] = torch.arange(50, dtype=torch.uint8)[:, None, None]  # red levels 0..49
    labels = torch.arange(50) % 10  # right for every image except levels 3 and 13
    labels[40:] = (labels[40:] + 1) % 10  # wrong for levels 40..49
    threads = torch.get_num_threads()
    evaluation = evaluate_classifier(_RowLogits(table), images, labels, batch_size=batch_size, device="cpu", threads=1)
    assert torch.get_num_threads() == threads
    assert (evaluation.correct, evaluation.total, evaluation.non_finite) == (38, 50, 2)
    assert evaluation.per_class_total == (5,) * 10
    assert evaluation.per_class_correct == (4, 4, 4, 2, 4, 4, 4, 4, 4, 4)  # class 3: levels 3 (NaN), 13 (inf)
    assert evaluation.threads == 1 and evaluation.batch_size == batch_size


def test_calibration_classifier_accuracy_is_exact():
    """The calibration ResNet-18 is right on exactly the images labelled with their class."""
    split = calibration_test_split(60, 41, seed=3)
    evaluation = evaluate_classifier(
        calibration_classifier(), split.images, split.labels, batch_size=25, device="cpu", threads=1
    )
    assert (evaluation.correct, evaluation.total) == (41, 60)


class _FakeLibc:
    """Records the mallopt / malloc_trim calls of `reuse_freed_memory`."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_freed_memory_is_reused_during_evaluation_and_the_defaults_come_back(monkeypatch):
    """On glibc the evaluation raises the mmap and trim thresholds (so each batch reuses the
    memory of the one before instead of faulting fresh pages in), and afterwards restores
    glibc's defaults and returns the memory, also when the evaluation fails."""
    libc = _FakeLibc()
    monkeypatch.setattr(evaluation, "_glibc", lambda: libc)
    with evaluation.reuse_freed_memory() as active:
        assert active
        assert libc.calls == [("mallopt", -3, 1 << 30), ("mallopt", -1, 1 << 30)]
    assert libc.calls[2:] == [("mallopt", -3, 128 * 1024), ("mallopt", -1, 128 * 1024), ("malloc_trim", 0)]

    libc.calls.clear()
    with pytest.raises(RuntimeError):
        evaluate_classifier(
            _Failing(),
            torch.zeros(4, 32, 32, 3, dtype=torch.uint8),
            torch.zeros(4, dtype=torch.long),
            device="cpu",
            threads=1,
        )
    assert [call[0] for call in libc.calls] == ["mallopt"] * 4 + ["malloc_trim"]
    assert libc.calls[-3:-1] == [("mallopt", -3, 128 * 1024), ("mallopt", -1, 128 * 1024)]

    monkeypatch.setattr(evaluation, "_glibc", lambda: None)  # macOS, Windows, musl: nothing to change
    with evaluation.reuse_freed_memory() as active:
        assert not active


def test_glibc_is_found_only_where_it_is(monkeypatch):
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert evaluation._glibc() is not None
    monkeypatch.setattr(platform, "libc_ver", lambda *args, **kwargs: ("", ""))
    assert evaluation._glibc() is None


class _Failing(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("broken model")


def test_grading_path_does_not_import_torchvision(tmp_path):
    """Loading, folding and evaluating a checkpoint needs torch alone: torchvision's import
    (about 200 MB and seconds) would not fit Gradescope's small containers as well."""
    torch.manual_seed(0)
    save_classifier(LinearClassifier(mean=CIFAR_MEAN, std=CIFAR_STD), tmp_path / "simclr_lin_best.pt")
    code = f"""
import sys, torch
from autograder.checkpoint.evaluation import evaluate_classifier, fold_batchnorm
from autograder.checkpoint.loading import load_submitted_classifier
from autograder.checkpoint.rubric import load_course_config
from pathlib import Path
classifier = load_submitted_classifier(Path({str(tmp_path / "simclr_lin_best.pt")!r}), load_course_config(), torch.device("cpu"))
evaluation = evaluate_classifier(fold_batchnorm(classifier), torch.zeros(3, 32, 32, 3, dtype=torch.uint8),
                                 torch.zeros(3, dtype=torch.long), device="cpu", threads=1)
assert evaluation.total == 3
print(sorted(m for m in sys.modules if m.split(".")[0] == "torchvision"))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSL_LAB_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_available_cpus_is_within_the_affinity():
    assert 1 <= evaluation.available_cpus() <= max(1, len(os.sched_getaffinity(0)))


# ======================================================================================
# The graded tests, through the results plugin
# ======================================================================================
@pytest.mark.parametrize(
    ("correct", "accuracy_score", "bonus_score", "phrases"),
    [
        (
            74,
            0.0,
            0.0,
            [
                "test accuracy 74.00 % (74 of 100",
                "1.00 percentage points (1 more correct image) below the 75 % needed for credit",
                "earns 0 of 10 points",
            ],
        ),
        (75, 10.0, 0.0, ["test accuracy 75.00 % (75 of 100", "Full credit: 75.00 % >= 75 % earns 10 points"]),
        (85, 10.0, 5.0, ["test accuracy 85.00 % (85 of 100", "Full credit"]),
    ],
)
def test_graded_thresholds_with_a_checkpoint_of_known_accuracy(
    tmp_path, monkeypatch, calibration_checkpoint, correct, accuracy_score, bonus_score, phrases
):
    """74 % earns nothing (and says how far off), 75 % earns the full 10 points, 85 % earns 10
    plus the 5 bonus points on top (max_score 0); the output names the accuracy to two
    decimals, the number of images and the source of the test split."""
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    split_path = small_split_env(monkeypatch, tmp_path, 100, correct)
    plugin, results = run_graded(submission)
    assert not plugin.grader_errors
    tests = checkpoint_tests(results)
    accuracy, bonus = tests["accuracy"], tests["bonus"]
    assert (accuracy["score"], accuracy["max_score"]) == (accuracy_score, 10.0)
    assert (bonus["score"], bonus["max_score"]) == (bonus_score, 0.0)
    assert accuracy["status"] == ("passed" if accuracy_score else "failed")
    assert bonus["status"] == ("passed" if bonus_score else "failed")
    for phrase in phrases:
        assert phrase in accuracy["output"], accuracy["output"]
    assert f"prepared copy {split_path}" in accuracy["output"]
    assert "Evaluated without augmentation on cpu" in accuracy["output"]
    assert f"{correct}.00 %" in bonus["output"]
    assert results["score"] == accuracy_score + bonus_score
    assert accuracy["name"].startswith("checkpoint: simclr_lin_best.pt reaches 75 % accuracy")


def test_graded_points_and_thresholds_come_from_the_course_config(tmp_path, monkeypatch, calibration_checkpoint):
    """With points = 7, full_credit_threshold = 70 and no bonus, 74 % earns 7 points and no
    bonus test exists."""
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    small_split_env(
        monkeypatch,
        tmp_path,
        100,
        74,
        points=7,
        bonus_points=0,
        full_credit_threshold=70,
        bonus_threshold=90,
        visibility="after_published",
    )
    plugin, results = run_graded(submission)
    tests = checkpoint_tests(results)
    assert list(tests) == ["accuracy"]
    assert (tests["accuracy"]["score"], tests["accuracy"]["max_score"]) == (7.0, 7.0)
    assert tests["accuracy"]["visibility"] == "after_published"
    assert "74.00 % >= 70 % earns 7 points" in tests["accuracy"]["output"]
    assert "reaches 70 % accuracy" in tests["accuracy"]["name"]


@pytest.mark.parametrize(
    ("correct", "accuracy", "bonus"),
    [
        (70, ("failed", 0.0), ("failed", 0.0)),
        (80, ("failed", 5.0), ("failed", 0.0)),
        (95, ("passed", 10.0), ("passed", 2.5)),
    ],
)
def test_graded_linear_rubric_gives_partial_credit(
    tmp_path, monkeypatch, calibration_checkpoint, correct, accuracy, bonus
):
    """credit = "linear", 0 at 70 %, full at 90 %, bonus up to 100 %: 80 % fails the
    full-credit test with 5 of its 10 points (Gradescope shows the partial score), 95 % passes
    it and earns half the bonus; the test names state the scale."""
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    small_split_env(
        monkeypatch,
        tmp_path,
        100,
        correct,
        credit="linear",
        zero_credit_threshold=70,
        full_credit_threshold=90,
        bonus_threshold=100,
    )
    plugin, results = run_graded(submission)
    assert not plugin.grader_errors
    tests = checkpoint_tests(results)
    assert (tests["accuracy"]["status"], tests["accuracy"]["score"]) == accuracy
    assert (tests["bonus"]["status"], tests["bonus"]["score"]) == bonus
    assert (tests["accuracy"]["max_score"], tests["bonus"]["max_score"]) == (10.0, 0.0)
    assert results["score"] == accuracy[1] + bonus[1]
    assert "scaled from 0 points at 70 % to 10 points at 90 %" in tests["accuracy"]["name"]
    if correct == 80:
        assert (
            "80.00 % stands 50.00 % of the way from 70 % to 90 %, so this checkpoint earns 5 of 10 points"
            in tests["accuracy"]["output"]
        )


def _hostile_pickle(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return pickle.dumps({"state_dict": Payload()}, protocol=2)


def _bad_file(kind: str, folder: Path, weightless: dict) -> tuple[str, list[str]]:
    """Write one kind of bad checkpoint into `folder`; returns (kind, phrases the message must contain)."""
    target = folder / "simclr_lin_best.pt"
    if kind == "missing":
        (folder / "notes.txt").write_text("no checkpoint here")
        return kind, ["No file named simclr_lin_best.pt in your submission", "notes.txt", "save_classifier"]
    if kind == "wrong name":
        torch.save(weightless, folder / "simclr_best_epoch.pt")
        return kind, ["simclr_best_epoch.pt", "rename it to simclr_lin_best.pt"]
    if kind == "empty":
        target.touch()
        return kind, ["is empty (0 bytes)"]
    if kind == "truncated":
        buffer = io.BytesIO()
        torch.save(weightless, buffer)
        target.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        return kind, ["truncated or corrupted"]
    if kind == "not a checkpoint":
        target.write_text('{"cells": [], "nbformat": 4}')
        return kind, ["is not a PyTorch checkpoint", "Jupyter notebook"]
    if kind == "code-running pickle":
        target.write_bytes(_hostile_pickle(folder.parent / "PWNED"))
        return kind, ["not allowed", "nothing in it was run"]
    if kind == "code-running torch file":
        torch.save({"state_dict": SimpleNamespace(x=1)}, target)
        return kind, ["not allowed", "not loaded"]
    if kind == "wrong keys":
        state = {k: v for k, v in weightless.items() if not k.startswith("fc.")}
        state["projector.0.weight"] = torch.zeros(4, 512)
        torch.save(state, target)
        return kind, ["missing keys: fc.weight, fc.bias", "projector.0.weight"]
    if kind == "nan":
        state = dict(weightless)
        state["fc.bias"] = torch.tensor([0.0] * 9 + [float("nan")])
        torch.save(state, target)
        return kind, ["fc.bias contains 1 NaN or infinite"]
    if kind == "inf":
        state = dict(weightless)
        state["fc.weight"] = torch.full((10, 512), float("inf"))
        torch.save(state, target)
        return kind, ["fc.weight contains", "NaN or infinite"]
    if kind == "100 classes":
        state = dict(weightless, **{"fc.weight": torch.zeros(100, 512), "fc.bias": torch.zeros(100)})
        torch.save(state, target)
        return kind, ["100 classes", "expected 10"]
    if kind == "over the size cap":  # the course's cap is 16 MiB in this test
        with open(target, "wb") as handle:
            handle.truncate(16 * 2**20 + 1)  # sparse
        return kind, ["larger than the limit of 16,777,216 bytes", "was not read"]
    if kind == "zip bomb":
        plain = folder.parent / "plain.pt"
        torch.save({"w": torch.zeros(8 * 2**20)}, plain)  # 32 MiB of zeros, about 32 KB deflated
        _deflated_copy(plain, target)
        plain.unlink()
        return kind, ["would expand to", "more than the limit of 16 MiB", "not loaded"]
    if kind == "a directory":
        target.mkdir()
        (target / "model.pt").write_bytes(b"x")
        return kind, ["is a folder, not a file", "model.pt"]
    if kind == "symlink":
        secret = folder.parent / "secret.txt"
        secret.write_text("the grader's secret")
        target.symlink_to(secret)
        return kind, ["symbolic link"]
    raise ValueError(kind)


BAD_FILES = [
    "missing",
    "wrong name",
    "empty",
    "truncated",
    "not a checkpoint",
    "code-running pickle",
    "code-running torch file",
    "wrong keys",
    "nan",
    "inf",
    "100 classes",
    "over the size cap",
    "zip bomb",
    "a directory",
    "symlink",
]


def test_every_bad_file_gets_a_clear_message_and_zero(tmp_path, monkeypatch, weightless):
    """Each bad checkpoint fails both checkpoint tests with the loader's message, earns 0, is
    not a grader error, runs no code, and does not stop the next submission from being graded
    (the graded module runs once per submission, as in `grade-all`)."""
    small_split_env(monkeypatch, tmp_path, 20, 20, max_checkpoint_mb=16)
    for kind in BAD_FILES:
        submission = tmp_path / kind.replace(" ", "_") / "submission"
        submission.mkdir(parents=True)
        _, phrases = _bad_file(kind, submission, weightless)
        plugin, results = run_graded(submission)
        assert not plugin.grader_errors, (kind, plugin.grader_errors)
        tests = checkpoint_tests(results)
        assert {t["status"] for t in tests.values()} == {"failed"}, kind
        assert results["score"] == 0, kind
        for phrase in phrases:
            assert phrase in tests["accuracy"]["output"], (kind, phrase, tests["accuracy"]["output"])
        assert "earns 0 of 10 points" in tests["accuracy"]["output"], kind
        assert "could not be graded" in tests["bonus"]["output"], kind
        assert str(submission) not in tests["accuracy"]["output"], kind  # paths relative to the submission
        assert "the grader's secret" not in json.dumps(results), kind
    assert not (tmp_path / "code-running_pickle" / "PWNED").exists()


def test_missing_test_split_is_a_grader_error_in_results(tmp_path, monkeypatch, calibration_checkpoint):
    """A good checkpoint on a grader without test data: both tests fail as grader errors and
    the results say so (not the student's fault); a bad checkpoint still gets its own message."""
    monkeypatch.setattr(split_module, "PROJECT_ROOT", tmp_path / "empty-project")
    monkeypatch.setenv(ENV_CONFIG, str(write_config(tmp_path / "course.toml", test_split_sources=[])))
    submission = tmp_path / "submission"
    submission.mkdir()
    os.link(calibration_checkpoint, submission / "simclr_lin_best.pt")
    plugin, results = run_graded(submission)
    assert len(plugin.grader_errors) == 2
    assert results["output"].startswith("The grader itself failed (not your fault; tell your instructor)")
    assert "no CIFAR-10 test split is available" in results["output"]
    for test in checkpoint_tests(results).values():
        assert test["status"] == "failed" and test["score"] == 0
        assert "not your fault" in test["output"]

    (submission / "simclr_lin_best.pt").unlink()
    (submission / "simclr_lin_best.pt").write_bytes(b"")
    plugin, results = run_graded(submission)
    assert not plugin.grader_errors
    assert "is empty (0 bytes)" in checkpoint_tests(results)["accuracy"]["output"]


# ======================================================================================
# Real data
# ======================================================================================
@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.timeout(1800)  # 10,000 ResNet-18 forwards: about 1-2 CPU-minutes, much longer on a busy machine
def test_random_classifier_on_the_real_test_split_scores_about_chance(cifar_source, tmp_path, data_root):
    """A randomly initialised classifier, graded on the full 10,000-image CIFAR-10 test split of
    ../shared/data/cifar10-jpeg, scores about 10 % and earns nothing; the output names the
    split and the number of images."""
    torch.manual_seed(0)
    submission = tmp_path / "submission"
    save_classifier(LinearClassifier(mean=CIFAR_MEAN, std=CIFAR_STD), submission / "simclr_lin_best.pt")
    rubric = dataclasses.replace(load_course_config(DEFAULT_CONFIG), test_split_sources=(str(cifar_source),))
    split = resolve_test_split(rubric, project_root=tmp_path, data_root=data_root, environ={})
    assert len(split) == 10_000 and torch.bincount(split.labels).tolist() == [1000] * 10
    grade = grade_checkpoint(submission, rubric, test_split=split, device="cpu", threads=2)
    assert grade.ok and grade.evaluation.total == 10_000 and grade.evaluation.non_finite == 0
    assert 0.05 <= grade.score.accuracy <= 0.15, grade.score.percent_text
    assert grade.score.points == 0 and grade.score.bonus_points == 0
    message = grade.full_credit_message()
    assert "of 10,000 CIFAR-10 test images" in message and str(cifar_source.resolve()) in message
    assert "chance level" in message and "earns 0 of 10 points" in message


# ======================================================================================
# What the submission folder holds besides regular files
# ======================================================================================
@pytest.mark.timeout(60)
def test_a_nested_named_pipe_is_refused_by_name_without_blocking(tmp_path):
    """A pipe named like the checkpoint in a sub-folder is found and refused as a pipe
    (it was silently skipped, and the student told there was no checkpoint)."""
    (tmp_path / "hw5").mkdir()
    os.mkfifo(tmp_path / "hw5" / "simclr_lin_best.pt")
    path, _ = locate_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=r"simclr_lin_best.pt in your submission is a named pipe"):
        load_submitted_classifier(path, load_course_config(), torch.device("cpu"))


@pytest.mark.parametrize("target", ["link to a file", "link to /dev/zero"])
def test_loading_never_follows_a_link_even_when_handed_one(tmp_path, weightless, target):
    """load_submitted_classifier opens without following links, whatever path it is given."""
    real = tmp_path / "real.pt"
    torch.save(
        {
            "format": "ssl-lab-classifier",
            "version": 1,
            "num_classes": 10,
            "mean": list(CIFAR_MEAN),
            "std": list(CIFAR_STD),
            "state_dict": weightless,
        },
        real,
    )
    link = tmp_path / "simclr_lin_best.pt"
    link.symlink_to(real if target == "link to a file" else Path("/dev/zero"))
    with pytest.raises(CheckpointError, match="symbolic link"):
        load_submitted_classifier(link, load_course_config(), torch.device("cpu"))


def test_a_linked_sub_folder_is_not_followed_and_the_message_says_so(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "simclr_lin_best.pt").write_bytes(b"x")
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "hw5").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CheckpointError) as info:
        locate_checkpoint(submission)
    assert "No file named simclr_lin_best.pt" in str(info.value)
    assert "Symbolic links in a submission are not followed (hw5)" in str(info.value)
