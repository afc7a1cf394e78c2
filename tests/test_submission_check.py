"""helpers.submission: the homework's last cell, which checks the files a student uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
import torch

from helpers import submission
from helpers.checkpoint import CheckpointError, save_classifier
from helpers.models import LinearClassifier, cifar_resnet18

PROJECT_ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 40


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """A saved classifier with seeded random weights, test images, and labels on which it is right exactly half the time."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    classifier = LinearClassifier(cifar_resnet18()).eval()
    save_classifier(classifier, tmp_path / "simclr_lin_best.pt")
    images = torch.randint(0, 256, (N_IMAGES, 32, 32, 3), dtype=torch.uint8)  # (N, 32, 32, 3) as load_cifar10 gives
    with torch.no_grad():  # computed here independently: the whole batch at once, pixels scaled to [0, 1]
        predictions = classifier(images.permute(0, 3, 1, 2).float() / 255).argmax(dim=1)  # (N,)
    labels = predictions.clone()
    labels[N_IMAGES // 2 :] = (labels[N_IMAGES // 2 :] + 1) % 10  # wrong on the second half
    return tmp_path / "simclr_lin_best.pt", images, labels


def test_accuracy_is_measured_as_the_grader_does(saved):
    """Raw [0, 1] pixels, every batch counted: exactly the fraction of right labels."""
    path, images, labels = saved
    from helpers.checkpoint import load_classifier

    classifier = load_classifier(path)
    assert submission.classifier_accuracy(classifier, images, labels, "cpu", batch_size=16) == 0.5  # 3 batches
    assert submission.classifier_accuracy(classifier, images, (labels + 1) % 10, "cpu", batch_size=16) == 0.0
    assert submission.classifier_accuracy(classifier, images[:16], labels[:16], "cpu") == 1.0  # the right half only


def test_check_submission_prints_what_the_grader_will_see(saved, capsys):
    path, images, labels = saved
    assert submission.check_submission(path.name, images, labels, notebook="simclr_homework.ipynb", device="cpu") == 0.5
    out = capsys.readouterr().out
    assert "loads with helpers.checkpoint.load_classifier" in out
    assert f"test accuracy of simclr_lin_best.pt: 50.00 % on {N_IMAGES} test images" in out
    assert "Below 75 %." in out
    assert (
        "Note: no simclr_homework.ipynb in" in out
        and "Upload to Gradescope: simclr_homework.ipynb and simclr_lin_best.pt" in out
    )
    (path.parent / "simclr_homework.ipynb").write_text("{}")
    submission.check_submission(path.name, images, labels, device="cpu")
    assert "simclr_homework.ipynb is here." in capsys.readouterr().out


def test_missing_or_broken_checkpoint_stops_with_a_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images, labels = torch.zeros(2, 32, 32, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.long)
    with pytest.raises(FileNotFoundError, match="run part 6"):
        submission.check_submission("simclr_lin_best.pt", images, labels, device="cpu")
    (tmp_path / "simclr_lin_best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        submission.check_submission("simclr_lin_best.pt", images, labels, device="cpu")


def test_verdict_at_the_edges_of_the_default_rubric():
    """75 % and 85 % are inclusive, as in the grader's rubric; and they are the course's defaults."""
    assert submission.verdict(0.7499).startswith("Below 75 %")
    assert submission.verdict(0.75).startswith("At least 75 %: full credit. The bonus needs 85 %")
    assert submission.verdict(0.8499).startswith("At least 75 %")
    assert submission.verdict(0.85) == "At least 85 %: full credit and the bonus."
    with open(PROJECT_ROOT / "autograder" / "course.toml", "rb") as fh:
        rubric = tomllib.load(fh)["checkpoint"]
    assert submission.FULL_CREDIT_ACCURACY == rubric["full_credit_threshold"] / 100
    assert submission.BONUS_ACCURACY == rubric["bonus_threshold"] / 100
