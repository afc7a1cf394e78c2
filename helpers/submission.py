"""The homework's last check before uploading: the files are there, the checkpoint loads the
way the grader loads it, and its accuracy on the test images says where it stands.

The grader evaluates ``simclr_lin_best.pt`` on the 10,000 CIFAR-10 test images, raw pixels in
[0, 1], no augmentation (``../shared/DESIGN.md``, checkpoint format); `check_submission` does
the same with the test images the notebook loaded, so a student sees the number before
uploading. The thresholds of the course's rubric are in ``autograder/course.toml``, which
students do not get; the two below are its defaults (a test keeps them equal).

Usage, in the submission cell of ``simclr_homework.ipynb``::

    from helpers.submission import check_submission
    check_submission("simclr_lin_best.pt", test_images, test_labels, notebook="simclr_homework.ipynb")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from helpers.checkpoint import load_classifier
from helpers.data import make_eval_loader
from helpers.runtime import get_device, smoke_mode

#: Test accuracy (a fraction) for the checkpoint's full credit, and for its bonus.
FULL_CREDIT_ACCURACY = 0.75
BONUS_ACCURACY = 0.85


def classifier_accuracy(
    classifier: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
) -> float:
    """The fraction of images the classifier labels correctly, as the grader measures it.

    Args:
        classifier: maps raw images, Shape: (B, 3, 32, 32) float in [0, 1], to logits (B, C);
            already in eval mode (`load_classifier` returns it so).
        images: Shape: (N, 32, 32, 3) uint8, as `load_cifar10` returns them.
        labels: Shape: (N,) int64.
        device: where the batches go (the classifier's device); default `get_device()`.
        batch_size: images per forward pass.

    Returns:
        Correct predictions / N, a float in [0, 1].
    """
    device = get_device() if device is None else torch.device(device)
    correct = 0
    with torch.no_grad():  # no augmentation, raw [0, 1] pixels: the input normalisation is in the model
        for x, y in make_eval_loader(images, labels, batch_size=batch_size):  # x (B, 3, 32, 32), y (B,)
            predictions = classifier(x.to(device)).argmax(dim=1).cpu()  # (B,)
            correct += int((predictions == y).sum())
    return correct / len(labels)


def verdict(accuracy: float) -> str:
    """What a test accuracy (a fraction) earns under the default rubric, and what to try next."""
    full, bonus = f"{100 * FULL_CREDIT_ACCURACY:g} %", f"{100 * BONUS_ACCURACY:g} %"
    if accuracy >= BONUS_ACCURACY:
        return f"At least {bonus}: full credit and the bonus."
    if accuracy >= FULL_CREDIT_ACCURACY:
        return f"At least {full}: full credit. The bonus needs {bonus}: pre-train longer, or fine-tune in mode='full'."
    return f"Below {full}. Check parts 1a, 2 and 4, pre-train for the full recipe, and see part 5 for full fine-tuning."


def check_submission(
    checkpoint: str | os.PathLike,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    notebook: str = "simclr_homework.ipynb",
    device: str | torch.device | None = None,
) -> float:
    """Check the two files of the homework's submission and print what the grader will see.

    Loads `checkpoint` with the grader's loader (`helpers.checkpoint.load_classifier`),
    measures its accuracy on the given test images (`classifier_accuracy`), prints it with its
    `verdict`, says whether `notebook` is in the working folder, and names both files to upload.

    Args:
        checkpoint: the classifier file, e.g. "simclr_lin_best.pt".
        test_images: Shape: (N, 32, 32, 3) uint8, the test split (all 10,000 images, as the
            grader uses; a subset in smoke mode).
        test_labels: Shape: (N,) int64.
        notebook: the notebook's file name, uploaded under exactly this name.
        device: where to evaluate; default `get_device()`.

    Returns:
        The test accuracy, a fraction in [0, 1].

    Raises:
        FileNotFoundError: no file at `checkpoint` (run the fine-tuning first).
        helpers.checkpoint.CheckpointError: the file is not a checkpoint the grader can load
            (the message says why).
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path.resolve()} does not exist: run part 6 (fine-tuning) first.")
    device = get_device() if device is None else torch.device(device)
    classifier = load_classifier(path, map_location=device)  # the grader's loader: raises CheckpointError if broken
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB, loads with helpers.checkpoint.load_classifier")
    accuracy = classifier_accuracy(classifier, test_images, test_labels, device)
    print(
        f"test accuracy of {path}: {100 * accuracy:.2f} % on {len(test_labels):,} test images"
        + ("  (smoke mode: a subset, meaningless)" if smoke_mode() else "")
    )
    print(verdict(accuracy))
    if Path(notebook).is_file():
        print(f"{notebook} is here. Save it (with outputs) before uploading.")
    else:
        print(f"Note: no {notebook} in {Path.cwd()}. Upload this notebook under exactly that name.")
    print(f"Upload to Gradescope: {notebook} and {path}")
    return accuracy
