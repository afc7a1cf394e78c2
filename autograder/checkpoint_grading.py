"""Grade the submitted classifier checkpoint (`simclr_lin_best.pt`) on the CIFAR-10 test split.

The `simclr_homework` assignment (CMU 24-789 HW5) asks for a fine-tuned classifier whose
test accuracy reaches 75 % (full credit) and, for a bonus, 85 %. This module does the
grading; the graded pytest tests in ``autograder/tests/test_checkpoint.py`` call it and turn
its verdict into Gradescope results.

1. **Find** the file in the submission folder (`locate_checkpoint`): the exact name at the
   top level, else the exact name one or two folders down (a zipped folder), else a clear
   "wrong name" message that lists the files that look like checkpoints. The folder is
   listed without following links (`autograder.safe_files`); symbolic links are refused
   (they could point at the grader's own files).
2. **Load** it: opened as a regular file only (no link followed, no named pipe waited on,
   no device opened: `autograder.safe_files.open_regular`), then read from that open file
   by `helpers.checkpoint.load_classifier` (``torch.load(weights_only=True)``, strict keys
   and shapes, finite values, 10 classes, size cap), which first refuses a torch zip file
   whose members would inflate past the size cap (a "zip bomb": a few KB of DEFLATE that
   ``torch.load`` would expand to gigabytes) before ``torch.load`` sees it. Every problem
   is a `CheckpointError` whose message is shown to the student; nothing in the file ever
   runs.
3. **Evaluate** (`evaluate_classifier`) on the full test split, no augmentation, under
   ``torch.inference_mode``, in batches, on the GPU when there is one and else the CPU. The
   uint8 split stays as it is (30 MB); each batch is converted to float on its own, so the
   peak memory is the model plus one batch of activations. BatchNorm is folded into the
   preceding convolutions (`fold_batchnorm`; exact in eval mode up to float rounding) and
   tensors use the channels-last layout, which together made the ResNet-18 forward about
   three times faster than a plain eval-mode forward on this project's 2-core CPU; on glibc
   the freed activations are reused from batch to batch (`reuse_freed_memory`). Nothing on
   this path imports torchvision, so the grader's own memory is torch's and the data's.
4. **Score** (`score_accuracy`) with exact integer arithmetic: ``correct / total >=
   threshold / 100``, so 7,500 of 10,000 (75.00 %) earns full credit and 7,499 does not.

The test split (`resolve_test_split`), in order:

1. ``$SSL_LAB_TEST_SPLIT``: a prepared split file (``.pt``) or any source that
   `helpers.data.load_cifar10` accepts (a folder or ``.tar.gz`` of ``test/<class>/*.jpg``);
2. ``<project>/data/cifar10-test.pt``: the copy baked into the grading image (Gradescope's
   ``setup.sh`` downloads it, or ``gradescope --test-split`` embeds one in the zip);
3. torchvision's download in ``<project>/data/cifar-10-batches-py`` (never downloads here);
4. the course's ``test_split_sources`` (``course.toml``; ``../shared/data/cifar10-jpeg`` by
   default), then ``$SSL_LAB_CIFAR10``.

None available is a `TestSplitUnavailable` error: a grader error (not the student's fault),
which the results plugin reports as such in ``results.json``. A split with a number of
images other than the course's ``test_images`` (10,000) is refused the same way, so a
partial copy can never grade students.

The thresholds, points, visibility and evaluation settings come from ``course.toml``
(`load_course_config`; ``$SSL_LAB_COURSE_CONFIG`` names another file).

Command line (also used by Gradescope's ``setup.sh`` and by the benchmark)::

    python -m autograder.checkpoint_grading prepare [--source S] [--out data/cifar10-test.pt]
    python -m autograder.checkpoint_grading check                 # which test split would be used
    python -m autograder.checkpoint_grading grade SUBMISSION_DIR [--threads N] [--json]

References:
    - CMU 24-789 HW5 (``../shared/seeds/cmu-24789-hw5-simclr.md``): "To get full credits, the
      final accuracy on test set should be more than 75%. You will get 5 bonus credits if
      the accuracy on the test set is more than 85%."
    - Ioffe, Szegedy. Batch Normalization. ICML 2015 (inference: BN is an affine map per
      channel, so it folds into the convolution before it). https://arxiv.org/abs/1502.03167
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from autograder import course_settings, safe_files
from autograder.results import VISIBILITIES, GraderError
from helpers.checkpoint import MAX_ZIP_MEMBERS, CheckpointError, load_classifier
from helpers.checkpoint import check_zip_expansion as _check_zip_expansion
from helpers.data import CIFAR10_CLASSES, DataSourceError, load_cifar10
from helpers.models import LinearClassifier

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The course configuration shipped with the autograder.
DEFAULT_CONFIG = course_settings.DEFAULT_CONFIG
#: Environment variable naming another course configuration.
ENV_CONFIG = "SSL_LAB_COURSE_CONFIG"
#: Environment variable naming the test split (a prepared .pt file or a load_cifar10 source).
ENV_TEST_SPLIT = "SSL_LAB_TEST_SPLIT"
#: Environment variable of helpers.data naming a local CIFAR-10 copy (tried last).
ENV_CIFAR10 = "SSL_LAB_CIFAR10"
#: Where the grading image keeps its copy of the test split, relative to the project root
#: (on Gradescope the project root is /autograder/source).
BAKED_TEST_SPLIT = Path("data") / "cifar10-test.pt"
TEST_SPLIT_FORMAT = "ssl-lab-cifar10-test-split"
TEST_SPLIT_VERSION = 1
IMAGE_SHAPE = (32, 32, 3)
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".pkl", ".pickle", ".zip")
_SEARCH_DEPTH = 3  # folders below the submission root searched for the checkpoint
_SHOWN = 5


# ======================================================================================
# Errors
# ======================================================================================
class CourseConfigError(GraderError):
    """The course configuration is unreadable or impossible (a grader error)."""


class TestSplitUnavailable(GraderError):
    """No usable CIFAR-10 test split (a grader error, never the student's fault)."""

    __test__ = False  # not a pytest test class, whatever its name


# ======================================================================================
# The course configuration
# ======================================================================================
@dataclass(frozen=True)
class CheckpointRubric:
    """How the checkpoint is graded (the ``[checkpoint]`` table of ``course.toml``).

    Attributes:
        file: the file name students upload.
        full_credit_threshold: test accuracy in percent that earns `points` (inclusive).
        bonus_threshold: test accuracy in percent that earns `bonus_points` on top.
        points: points for reaching the full-credit threshold; below it, none.
        bonus_points: extra points for reaching the bonus threshold (0: no bonus test).
        visibility: Gradescope visibility of the checkpoint tests.
        test_images: the number of images the test split must have (10,000).
        batch_size: images per evaluation batch.
        threads: CPU threads for the evaluation; 0 uses every CPU this process may use.
        max_checkpoint_mb: larger checkpoints are refused unread.
        test_split_sources: local CIFAR-10 copies to try (relative to the project root).
    """

    file: str = "simclr_lin_best.pt"
    full_credit_threshold: float = 75.0
    bonus_threshold: float = 85.0
    points: float = 10.0
    bonus_points: float = 5.0
    visibility: str = "visible"
    test_images: int = 10_000
    batch_size: int = 100
    threads: int = 0
    max_checkpoint_mb: float = 200.0
    test_split_sources: tuple[str, ...] = ("../shared/data/cifar10-jpeg",)

    def __post_init__(self) -> None:
        problems = []
        if not self.file or Path(self.file).name != self.file or self.file in (".", ".."):
            problems.append(f"file must be a plain file name, got {self.file!r}")
        for name in ("full_credit_threshold", "bonus_threshold"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                problems.append(f"{name} must be a percentage in [0, 100], got {value}")
        if self.bonus_threshold < self.full_credit_threshold:
            problems.append(f"bonus_threshold ({self.bonus_threshold}) is below full_credit_threshold "
                            f"({self.full_credit_threshold})")
        for name in ("points", "bonus_points"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.visibility not in VISIBILITIES:
            problems.append(f"visibility must be one of {', '.join(VISIBILITIES)}, got {self.visibility!r}")
        for name, low in (("test_images", 1), ("batch_size", 1), ("threads", 0)):
            if getattr(self, name) < low:
                problems.append(f"{name} must be an integer >= {low}, got {getattr(self, name)}")
        if self.max_checkpoint_mb <= 0:
            problems.append(f"max_checkpoint_mb must be > 0, got {self.max_checkpoint_mb}")
        if problems:
            raise CourseConfigError("course configuration [checkpoint]: " + "; ".join(problems))

    @property
    def max_checkpoint_bytes(self) -> int:
        return int(self.max_checkpoint_mb * 2**20)

    @property
    def has_bonus(self) -> bool:
        return self.bonus_points > 0


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,), "full_credit_threshold": (int, float), "bonus_threshold": (int, float),
    "points": (int, float), "bonus_points": (int, float), "visibility": (str,), "test_images": (int,),
    "batch_size": (int,), "threads": (int,), "max_checkpoint_mb": (int, float), "test_split_sources": (list,),
}


def rubric_from_mapping(table: Mapping[str, Any], where: str = "[checkpoint]") -> CheckpointRubric:
    """A `CheckpointRubric` from a ``[checkpoint]`` table; unknown keys and wrong types are errors."""
    unknown = sorted(set(table) - set(_FIELD_TYPES))
    if unknown:
        close = {k: difflib.get_close_matches(k, _FIELD_TYPES, n=1) for k in unknown}
        hints = ", ".join(f"{k!r}" + (f" (did you mean {close[k][0]!r}?)" if close[k] else "") for k in unknown)
        raise CourseConfigError(f"{where}: unknown key(s) {hints}; known keys: {', '.join(_FIELD_TYPES)}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        types = _FIELD_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise CourseConfigError(f"{where}: {key} must be {' or '.join(t.__name__ for t in types)}, "
                                    f"got {value!r}")
        if key == "test_split_sources":
            if not all(isinstance(v, str) for v in value):
                raise CourseConfigError(f"{where}: test_split_sources must be a list of paths (strings)")
            value = tuple(value)
        elif float in types:
            value = float(value)
        values[key] = value
    try:
        return CheckpointRubric(**values)
    except CourseConfigError as error:
        raise CourseConfigError(f"{where}: {error}") from None


def load_course_config(path: str | os.PathLike | None = None) -> CheckpointRubric:
    """The checkpoint rubric of this course.

    Args:
        path: a TOML file; None reads ``$SSL_LAB_COURSE_CONFIG`` if set, else
            ``autograder/course.toml``.

    Returns:
        The rubric: `CheckpointRubric` defaults updated with the file's ``[checkpoint]`` table.

    Raises:
        CourseConfigError: the file is missing, not TOML, has other tables or unknown keys,
            wrong types or impossible values.
    """
    try:
        path, document = course_settings.read_course_document(path)
    except course_settings.CourseConfigError as error:
        raise CourseConfigError(str(error)) from None
    other = sorted(set(document) - {"checkpoint", "grading"})
    if other:
        raise CourseConfigError(f"{path}: unknown table(s) or key(s) {other}; only [checkpoint] and [grading] are read")
    table = document.get("checkpoint", {})
    if not isinstance(table, dict):
        raise CourseConfigError(f"{path}: [checkpoint] must be a table")
    try:
        course_settings.grading_settings_from_mapping(document.get("grading", {}), where=f"{path} [grading]")
    except course_settings.CourseConfigError as error:
        raise CourseConfigError(str(error)) from None
    return rubric_from_mapping(table, where=f"{path} [checkpoint]")




# ======================================================================================
# Scoring
# ======================================================================================
def _exact(value: float) -> Fraction:
    """The decimal a config number was written as (75.0 -> 75, 74.99 -> 7499/100), exactly."""
    return Fraction(repr(float(value)))


def format_percent(correct: int, total: int) -> str:
    """``correct / total`` in percent with two decimals, rounded DOWN (74.996 % -> "74.99"),
    so a shown accuracy is never higher than the one that was scored."""
    hundredths = math.floor(Fraction(100 * 100 * correct, total))  # accuracy in 1/100 %
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _threshold_text(value: float) -> str:
    return f"{float(value):g} %"


@dataclass(frozen=True)
class CheckpointScore:
    """The points a test accuracy earns under a rubric.

    Attributes:
        correct, total: images classified correctly, images evaluated.
        full_credit: whether ``correct / total >= full_credit_threshold / 100``.
        bonus: whether ``correct / total >= bonus_threshold / 100`` (and a bonus exists).
        points: points earned for full credit (0 or the rubric's `points`).
        bonus_points: bonus points earned (0 or the rubric's `bonus_points`).
        missing_for_full, missing_for_bonus: more correct images needed (0 when reached).
    """

    correct: int
    total: int
    full_credit: bool
    bonus: bool
    points: float
    bonus_points: float
    missing_for_full: int
    missing_for_bonus: int

    @property
    def accuracy(self) -> Fraction:
        return Fraction(self.correct, self.total)

    @property
    def percent_text(self) -> str:
        return format_percent(self.correct, self.total)


def score_accuracy(correct: int, total: int, rubric: CheckpointRubric) -> CheckpointScore:
    """Score `correct` of `total` test images, exactly (integers and fractions, no floats).

    Args:
        correct: images classified correctly, 0 <= correct <= total.
        total: images evaluated (> 0).
        rubric: thresholds in percent and points.

    Returns:
        The `CheckpointScore`; e.g. with the default rubric, 7,499 / 10,000 earns nothing,
        7,500 / 10,000 earns 10 points and 8,500 / 10,000 earns 10 + 5.
    """
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct} / {total}")
    accuracy = Fraction(correct, total)

    def needed(threshold: float) -> int:  # smallest number of correct images that reaches it
        return math.ceil(_exact(threshold) * total / 100)

    full = accuracy * 100 >= _exact(rubric.full_credit_threshold)
    bonus = rubric.has_bonus and full and accuracy * 100 >= _exact(rubric.bonus_threshold)
    return CheckpointScore(
        correct=correct, total=total, full_credit=full, bonus=bonus,
        points=rubric.points if full else 0.0, bonus_points=rubric.bonus_points if bonus else 0.0,
        missing_for_full=max(0, needed(rubric.full_credit_threshold) - correct),
        missing_for_bonus=max(0, needed(rubric.bonus_threshold) - correct),
    )


def _shortfall_text(score: CheckpointScore, threshold: float, missing: int) -> str:
    """'3.80 percentage points (380 more correct images)' below `threshold`, rounded up."""
    gap = _exact(threshold) - score.accuracy * 100  # > 0
    hundredths = math.ceil(gap * 100)
    noun = "image" if missing == 1 else "images"
    return f"{hundredths // 100}.{hundredths % 100:02d} percentage points ({missing:,} more correct {noun})"


# ======================================================================================
# The test split
# ======================================================================================
@dataclass(frozen=True)
class TestSplit:
    """The images the checkpoint is graded on.

    Attributes:
        images: Shape: (N, 32, 32, 3) uint8, HWC, RGB.
        labels: Shape: (N,) int64 in 0..9 (`helpers.data.CIFAR10_CLASSES` order).
        source: where it came from, for the student's feedback and the instructor.
    """

    __test__ = False

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _split_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_split_tensors(images: Any, labels: Any, where: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
            or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise TestSplitUnavailable(f"{where}: images must be a uint8 tensor of shape (N, 32, 32, 3), got "
                                   f"{getattr(images, 'dtype', type(images).__name__)} "
                                   f"{tuple(getattr(images, 'shape', ()))}")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
        raise TestSplitUnavailable(f"{where}: labels must be an int64 tensor of shape ({images.shape[0]},)")
    if labels.numel() == 0 or int(labels.min()) < 0 or int(labels.max()) >= len(CIFAR10_CLASSES):
        raise TestSplitUnavailable(f"{where}: labels must be class indices 0..9 (and at least one image)")


def save_test_split(images: torch.Tensor, labels: torch.Tensor, path: str | os.PathLike, source: str) -> Path:
    """Write a prepared test split file, atomically.

    The file is a ``torch.save`` of plain data, read back with ``weights_only=True``::

        {"format": "ssl-lab-cifar10-test-split", "version": 1, "source": str,
         "sha256": hex digest of the image and label bytes,
         "images": (N, 32, 32, 3) uint8, "labels": (N,) int64}

    Args:
        images: Shape: (N, 32, 32, 3) uint8.
        labels: Shape: (N,) int64 in 0..9.
        path: the file to write (folders are created).
        source: where the images came from (shown in every grade).

    Returns:
        The path written.
    """
    path = Path(path)
    _check_split_tensors(images, labels, "save_test_split")
    images, labels = images.contiguous(), labels.contiguous()
    payload = {"format": TEST_SPLIT_FORMAT, "version": TEST_SPLIT_VERSION, "source": str(source),
               "sha256": _split_digest(images, labels), "images": images, "labels": labels}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_test_split_file(path: str | os.PathLike) -> TestSplit:
    """Read a file written by `save_test_split` (weights-only) and verify its checksum.

    Raises:
        TestSplitUnavailable: unreadable, another format, wrong shapes or a checksum mismatch.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a grader problem
        raise TestSplitUnavailable(f"the test split file {path} cannot be read ({type(error).__name__}: "
                                   f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}); "
                                   f"prepare it again with `python -m autograder.checkpoint_grading prepare`") from None
    if not isinstance(payload, dict) or payload.get("format") != TEST_SPLIT_FORMAT:
        raise TestSplitUnavailable(f"{path} is not a prepared test split (no format {TEST_SPLIT_FORMAT!r}); "
                                   f"prepare one with `python -m autograder.checkpoint_grading prepare`")
    if payload.get("version") != TEST_SPLIT_VERSION:
        raise TestSplitUnavailable(f"{path} has test split version {payload.get('version')!r}, expected "
                                   f"{TEST_SPLIT_VERSION}; prepare it again")
    images, labels = payload.get("images"), payload.get("labels")
    _check_split_tensors(images, labels, str(path))
    if payload.get("sha256") != _split_digest(images, labels):
        raise TestSplitUnavailable(f"{path} is damaged: its images do not match the checksum recorded when it "
                                   f"was prepared; prepare it again")
    return TestSplit(images, labels, f"{payload.get('source', 'unknown source')}, prepared copy {path}")


def prepare_test_split(out: str | os.PathLike = PROJECT_ROOT / BAKED_TEST_SPLIT,
                       source: str | os.PathLike | None = None, download_root: str | os.PathLike | None = None,
                       download: bool = True, verbose: bool = True) -> Path:
    """Make the prepared test split file the grader reads first (``data/cifar10-test.pt``).

    Args:
        out: the file to write.
        source: a local CIFAR-10 copy (anything `helpers.data.load_cifar10` accepts, or a
            prepared ``.pt`` file, which is verified and copied); None uses
            ``$SSL_LAB_CIFAR10`` or torchvision's download.
        download_root: where torchvision downloads to and decoded splits are cached
            (default: a temporary folder, removed afterwards).
        download: allow torchvision to download CIFAR-10 (about 170 MB).
        verbose: print where the split came from.

    Returns:
        The path written.

    Raises:
        DataSourceError: no usable source (its message says how to get CIFAR-10).
        TestSplitUnavailable: a prepared source file is damaged.
    """
    if source is not None and Path(source).is_file() and Path(source).suffix == ".pt":
        split = load_test_split_file(source)
        return save_test_split(split.images, split.labels, out, split.source.split(", prepared copy ")[0])
    with contextlib.ExitStack() as stack:
        root = Path(download_root) if download_root else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        images, labels = load_cifar10("test", source=source, root=root, download=download, verbose=verbose)
        if source is not None:
            described = f"CIFAR-10 test split from {Path(source).resolve()}"
        elif os.environ.get(ENV_CIFAR10, "").strip():
            described = f"CIFAR-10 test split from ${ENV_CIFAR10} ({os.environ[ENV_CIFAR10].strip()})"
        else:
            described = "CIFAR-10 test split (official release, downloaded with torchvision)"
        return save_test_split(images, labels, out, described)


def _candidates(rubric: CheckpointRubric, project_root: Path, data_root: Path,
                environ: Mapping[str, str]) -> Iterator[tuple[str, Path, str]]:
    """(how it was named, path, kind) of every test split source in the documented order."""
    explicit = environ.get(ENV_TEST_SPLIT, "").strip()
    if explicit:
        yield f"${ENV_TEST_SPLIT}", Path(explicit).expanduser(), "explicit"
    yield "the copy baked into the grading image", project_root / BAKED_TEST_SPLIT, "file"
    yield "torchvision's download in data/", data_root / "cifar-10-batches-py", "torchvision"
    for source in rubric.test_split_sources:
        path = Path(source).expanduser()
        yield "course.toml test_split_sources", path if path.is_absolute() else project_root / path, "source"
    cifar = environ.get(ENV_CIFAR10, "").strip()
    if cifar:
        yield f"${ENV_CIFAR10}", Path(cifar).expanduser(), "source"


def resolve_test_split(rubric: CheckpointRubric | None = None, project_root: str | os.PathLike | None = None,
                       data_root: str | os.PathLike | None = None,
                       environ: Mapping[str, str] | None = None) -> TestSplit:
    """Find and load the CIFAR-10 test split (see the module docstring for the order).

    A source that is absent is skipped; one that is present but unusable (damaged, wrong
    layout, wrong number of images) stops the search with its reason, so a broken image is
    noticed instead of silently grading from somewhere else.

    Args:
        rubric: the course rubric (its `test_split_sources` and `test_images`).
        project_root: where ``data/cifar10-test.pt`` and relative sources are looked up
            (default: this project, `PROJECT_ROOT`).
        data_root: torchvision's download folder and the decode cache (default
            ``<project_root>/data``).
        environ: the environment (default ``os.environ``).

    Returns:
        The split, with `TestSplit.source` saying where it came from.

    Raises:
        TestSplitUnavailable: no source, or an unusable one (a grader error).
    """
    rubric = rubric or load_course_config()
    project_root = Path(project_root) if project_root is not None else PROJECT_ROOT
    data_root = Path(data_root) if data_root is not None else project_root / "data"
    environ = os.environ if environ is None else environ
    tried = []
    for named, path, kind in _candidates(rubric, project_root, data_root, environ):
        if not path.exists():
            if kind == "explicit":
                raise TestSplitUnavailable(f"${ENV_TEST_SPLIT} names {path}, which does not exist")
            tried.append(f"{named}: {path} (absent)")
            continue
        try:
            if path.is_file() and path.suffix == ".pt":
                split = load_test_split_file(path)
                split = dataclasses.replace(split, source=f"{split.source} ({named})")
            else:
                source = path.parent if kind == "torchvision" else path
                images, labels = load_cifar10("test", source=source, root=data_root, download=False, verbose=False)
                split = TestSplit(images, labels, f"CIFAR-10 test split from {path.resolve()} ({named})")
        except (DataSourceError, OSError, ValueError) as error:
            raise TestSplitUnavailable(f"the test split at {path} ({named}) cannot be used: "
                                       f"{str(error).splitlines()[0]}") from None
        if len(split) != rubric.test_images:
            raise TestSplitUnavailable(f"the test split at {path} ({named}) has {len(split):,} images; the course "
                                       f"expects {rubric.test_images:,} (course.toml test_images). Replace it with "
                                       f"the full CIFAR-10 test split")
        return split
    raise TestSplitUnavailable(
        "no CIFAR-10 test split is available, so the checkpoint cannot be graded. Tried, in order:\n  - "
        + "\n  - ".join(tried)
        + f"\nFix: build the Gradescope zip with `--test-split PATH` or let setup.sh download it; locally run "
          f"`python -m autograder.checkpoint_grading prepare` (downloads it into {BAKED_TEST_SPLIT}), or set "
          f"${ENV_TEST_SPLIT} / ${ENV_CIFAR10} to a copy.")


# ======================================================================================
# Finding and loading the checkpoint
# ======================================================================================
def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def locate_checkpoint(submission_dir: str | os.PathLike, file_name: str = "simclr_lin_best.pt") -> tuple[Path, str]:
    """Find the checkpoint in a submission folder.

    Returns:
        (path, note): the top-level ``file_name`` (note ""), else the only ``file_name`` in a
        sub-folder (note says where). A top-level folder of that name is returned as is
        (loading then explains it is a folder).

    Raises:
        CheckpointError: nothing of that name (listing similarly named files and other
            checkpoint files, with "rename it to ..."), several of that name in
            sub-folders, or a symbolic link.
    """
    root = Path(submission_dir)
    top = root / file_name
    if os.path.lexists(top):
        if top.is_symlink():
            raise CheckpointError(f"{file_name} in your submission is a symbolic link; upload the checkpoint "
                                  f"file itself (links are not followed).")
        return top, ""
    listing = safe_files.list_entries(root, _SEARCH_DEPTH)
    files = [entry.path for entry in listing.entries]
    unfollowed = ""
    if listing.links():
        unfollowed = (" Symbolic links in a submission are not followed ("
                      + ", ".join(entry.relative for entry in listing.links()[:_SHOWN])
                      + "): upload the files themselves.")
    exact = [p for p in files if p.name == file_name]
    if len(exact) == 1:
        if exact[0].is_symlink():
            raise CheckpointError(f"{_relative(exact[0], root)} in your submission is a symbolic link; upload the "
                                  f"checkpoint file itself.")
        return exact[0], f"Graded {_relative(exact[0], root)} (please put {file_name} at the top level of your submission)."
    if len(exact) > 1:
        listed = ", ".join(_relative(p, root) for p in exact[:_SHOWN])
        raise CheckpointError(f"Your submission has several files named {file_name} ({listed}) and none at the "
                              f"top level; submit exactly one, at the top level, beside your notebook.")
    wanted = file_name.lower()
    similar = [p for p in files if p.name.lower() == wanted or Path(p.name).stem.lower() == Path(wanted).stem
               or difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio() >= 0.6]
    similar.sort(key=lambda p: -difflib.SequenceMatcher(None, wanted, p.name.lower()).ratio())
    checkpoints = [p for p in files if p.suffix.lower() in _CHECKPOINT_SUFFIXES and p not in similar]
    save = f"helpers.save_classifier(classifier, '{file_name}')"
    if similar or checkpoints:
        listed = ", ".join(_relative(p, root) for p in (similar + checkpoints)[:_SHOWN])
        first = _relative((similar + checkpoints)[0], root)
        return_hint = (f"If {first} is your fine-tuned classifier, rename it to {file_name} (exactly this name, "
                       f"lower case) and resubmit")
        raise CheckpointError(f"No file named {file_name} in your submission. Files that look like checkpoints: "
                              f"{listed}. {return_hint}; otherwise save the classifier with {save}.{unfollowed}")
    present = ", ".join(_relative(p, root) for p in files[:_SHOWN]) or "nothing"
    raise CheckpointError(f"No file named {file_name} in your submission (it contains: {present}). Upload the "
                          f"fine-tuned classifier that your notebook saves with {save}, together with the notebook."
                          f"{unfollowed}")


def check_zip_expansion(path: str | os.PathLike, max_bytes: int) -> None:
    """`helpers.checkpoint.check_zip_expansion` on a submitted file, opened as
    `load_submitted_classifier` opens it (a file that cannot be opened is left to it).

    Raises:
        CheckpointError: the declared total exceeds `max_bytes`, or there are more than
            `MAX_ZIP_MEMBERS` members.
    """
    path = Path(path)
    try:
        fd = safe_files.open_regular(path, what="checkpoint")
    except safe_files.SubmittedFileError:
        return
    with os.fdopen(fd, "rb") as file:
        _check_zip_expansion(file, max_bytes, name=path.name)


def _student_message(error: Exception, submission_dir: Path) -> str:
    """A loader message with the grader's absolute submission path shortened."""
    text = str(error)
    for prefix in {str(submission_dir) + os.sep, str(submission_dir.resolve()) + os.sep}:
        text = text.replace(prefix, "")
    return text


def load_submitted_classifier(path: Path, rubric: CheckpointRubric, device: torch.device) -> LinearClassifier:
    """Open the submitted file as a regular file only (`autograder.safe_files.open_regular`:
    no link followed, no pipe waited on, no device opened), then
    `helpers.checkpoint.load_classifier` on that open file (size cap, zip-expansion guard,
    weights-only loading; see the module docstring)."""
    try:
        fd = safe_files.open_regular(path, what="checkpoint")
    except safe_files.SubmittedFileError as error:
        if error.kind in ("missing", "folder"):  # load_classifier's messages say what to do
            return load_classifier(path, map_location=device, max_bytes=rubric.max_checkpoint_bytes,
                                   expected_classes=10)
        raise CheckpointError(str(error)) from None
    with os.fdopen(fd, "rb") as file:
        return load_classifier(path, map_location=device, max_bytes=rubric.max_checkpoint_bytes, expected_classes=10,
                               file=file)


# ======================================================================================
# Evaluation
# ======================================================================================
def available_cpus() -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup CPU quota (Docker,
    Gradescope) rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = None
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            quota = int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        try:  # cgroup v1
            limit = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if limit > 0 and period > 0:
                quota = limit / period
        except (OSError, ValueError):
            pass
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


# glibc's mallopt(3) parameters and their defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_TRIM_THRESHOLD = _DEFAULT_MMAP_THRESHOLD = 128 * 1024


def _glibc() -> Any:
    """The C library when it is glibc (Linux), else None."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[bool]:
    """Within the block, keep freed memory in the heap for the next allocation (glibc only).

    A ResNet-18 forward pass on a CPU allocates and frees the same few activation tensors
    (up to 26 MB each for 100 images) every batch. glibc serves blocks that large with
    mmap(2) and returns them with munmap(2) (or trims the heap), so every batch faults
    fresh zeroed pages in again: on this project's 2-core machine 6-7 % of the CPU time went
    to the kernel, and an interleaved comparison in one process gave a median of 9.4 s per
    1,000 images against 7.8 s with the memory reused. Raising the mmap and trim thresholds
    for the evaluation makes each batch reuse the memory of the one before, for about 26 MB
    more at the peak. Afterwards the thresholds go back to glibc's defaults and the memory is returned
    (`malloc_trim`). Yields whether the setting took effect (False off glibc).
    """
    libc = _glibc()
    if libc is None:
        yield False
        return
    high = 1 << 30
    changed = bool(libc.mallopt(_M_MMAP_THRESHOLD, high)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, high))
    try:
        yield changed
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with `count` intra-op threads (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Give `conv` the weights and bias of ``bn(conv(x))`` (eval mode), in place.

    The arithmetic is that of `torch.nn.utils.fusion.fuse_conv_bn_weights`; unlike
    `fuse_conv_bn_eval` it copies no module, and the new weight is made channels-last once
    here (the layout the evaluation uses), so the model is never held twice in memory.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                        bn.weight, bn.bias)
    conv.weight = nn.Parameter(weight.detach().contiguous(memory_format=torch.channels_last), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=False)


def fold_batchnorm(classifier: LinearClassifier) -> LinearClassifier:
    """Fold every eval-mode BatchNorm2d of the ResNet-18 encoder into the convolution before it.

    In eval mode BN is the per-channel affine map ``y = (x - mu) / sqrt(var + eps) * gamma +
    beta`` (Ioffe & Szegedy 2015), so ``bn(conv(x))`` equals one convolution with scaled
    weights and a bias; the logits change only by float rounding (about 1e-6). The pairs are
    those of torchvision's ResNet: ``conv1/bn1`` of the stem and of every BasicBlock,
    ``conv2/bn2``, and ``downsample[0]/downsample[1]``. The classifier is changed IN PLACE
    (its BN layers become ``nn.Identity``, its folded weights channels-last and without
    gradients) and returned; use it for inference only.
    """
    classifier.eval()
    encoder = classifier.encoder
    with torch.no_grad():
        if isinstance(getattr(encoder, "bn1", None), nn.BatchNorm2d):
            _fold_into(encoder.conv1, encoder.bn1)
            encoder.bn1 = nn.Identity()
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            for block in getattr(encoder, stage, ()):
                for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
                    bn = getattr(block, bn_name, None)
                    if isinstance(bn, nn.BatchNorm2d):
                        _fold_into(getattr(block, conv_name), bn)
                        setattr(block, bn_name, nn.Identity())
                downsample = getattr(block, "downsample", None)
                if isinstance(downsample, nn.Sequential) and len(downsample) == 2 \
                        and isinstance(downsample[1], nn.BatchNorm2d):
                    _fold_into(downsample[0], downsample[1])
                    block.downsample = nn.Sequential(downsample[0])
    return classifier


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate_classifier` measured.

    Attributes:
        correct: images whose arg-max logit is the label (non-finite logits count as wrong).
        total: images evaluated.
        per_class_correct, per_class_total: the same per class (10 entries).
        non_finite: images whose logits contained NaN or an infinity.
        seconds: wall time of the evaluation loop.
        device: where it ran ("cpu", "cuda:0").
        threads: CPU threads used.
        batch_size: images per batch.
    """

    correct: int
    total: int
    per_class_correct: tuple[int, ...]
    per_class_total: tuple[int, ...]
    non_finite: int
    seconds: float
    device: str
    threads: int
    batch_size: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate_classifier(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                        batch_size: int = 200, device: str | torch.device | None = None,
                        threads: int | None = None) -> Evaluation:
    """Test accuracy of `classifier` on uint8 images, without augmentation.

    Args:
        classifier: maps raw images ``(B, 3, 32, 32)`` float in [0, 1] to logits ``(B, C)``
            (a `LinearClassifier`: the normalisation is inside). It is moved to `device` and
            put in eval mode (and channels-last layout).
        images: Shape: (N, 32, 32, 3) uint8 HWC, on the CPU (each batch is moved and
            converted on its own: ``x = images[i:j].permute(0, 3, 1, 2).float() / 255``).
        labels: Shape: (N,) int64 class indices.
        batch_size: images per forward pass.
        device: where to run; None: CUDA if available, else the CPU (`helpers.runtime.get_device`).
        threads: CPU threads for the run (restored afterwards); None keeps the current number.

    Returns:
        An `Evaluation` (counts are exact integers).
    """
    from helpers.runtime import get_device

    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    device = torch.device(device) if device is not None else get_device()
    if device.type == "mps":  # grading needs reproducible float32 arithmetic: CUDA or CPU
        device = torch.device("cpu")
    num_classes = len(CIFAR10_CLASSES)
    with contextlib.ExitStack() as stack:
        if threads is not None:
            stack.enter_context(torch_threads(threads))
        used_threads = torch.get_num_threads()
        if device.type == "cpu":
            stack.enter_context(reuse_freed_memory())
        classifier = classifier.to(device).eval().to(memory_format=torch.channels_last)
        started = time.perf_counter()
        correct_per_class = torch.zeros(num_classes, dtype=torch.int64, device=device)
        total_per_class = torch.zeros(num_classes, dtype=torch.int64, device=device)
        non_finite = torch.zeros((), dtype=torch.int64, device=device)
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                batch = images[start:start + batch_size].to(device, non_blocking=True)  # (B, 32, 32, 3) uint8
                x = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, 32, 32) in [0, 1], channels-last strides
                y = labels[start:start + batch_size].to(device, non_blocking=True)  # (B,)
                logits = classifier(x)  # (B, C)
                finite = torch.isfinite(logits).all(dim=1)  # (B,)
                hit = (logits.argmax(dim=1) == y) & finite  # (B,)
                correct_per_class += torch.bincount(y[hit], minlength=num_classes)[:num_classes]
                total_per_class += torch.bincount(y, minlength=num_classes)[:num_classes]
                non_finite += (~finite).sum()
        per_class_correct = tuple(int(v) for v in correct_per_class.tolist())  # synchronises
        per_class_total = tuple(int(v) for v in total_per_class.tolist())
        seconds = time.perf_counter() - started
    return Evaluation(correct=sum(per_class_correct), total=int(images.shape[0]),
                      per_class_correct=per_class_correct, per_class_total=per_class_total,
                      non_finite=int(non_finite), seconds=seconds, device=str(device), threads=used_threads,
                      batch_size=batch_size)


# ======================================================================================
# Grading one submission
# ======================================================================================
@dataclass
class CheckpointGrade:
    """The verdict on one submission's checkpoint.

    Attributes:
        ok: the checkpoint was loaded and evaluated (else `problem` says why not).
        problem: the student-facing reason it could not be graded.
        checkpoint: the file that was graded (None when none was found).
        note: a remark to show with the result (e.g. found in a sub-folder).
        evaluation, score: the measurement and the points (when `ok`).
        test_split_source: where the test images came from.
        load_seconds: time spent finding, checking and loading the checkpoint.
    """

    ok: bool
    rubric: CheckpointRubric
    problem: str = ""
    checkpoint: Path | None = None
    note: str = ""
    evaluation: Evaluation | None = None
    score: CheckpointScore | None = None
    test_split_source: str = ""
    load_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    # --- messages for the two graded tests -------------------------------------------------
    def _measurement(self) -> str:
        ev, sc, name = self.evaluation, self.score, self.rubric.file
        lines = [f"{name}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} CIFAR-10 test images "
                 f"classified correctly).",
                 f"Test split: {self.test_split_source}."]
        per_class = ", ".join(f"{cls} {format_percent(c, t) if t else '-'} %" for cls, c, t in
                              zip(CIFAR10_CLASSES, ev.per_class_correct, ev.per_class_total))
        lines.append(f"Per class: {per_class}.")
        if ev.non_finite:
            lines.append(f"{ev.non_finite:,} images gave NaN or infinite logits and were counted as wrong.")
        lines.append(f"Evaluated without augmentation on {ev.device} ({ev.threads} thread(s), batches of "
                     f"{ev.batch_size}) in {ev.seconds:.1f} s.")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def full_credit_message(self) -> str:
        """The output of the full-credit test."""
        if not self.ok:
            return f"{self.problem}\n\nThis checkpoint earns 0 of {self.rubric.points:g} points."
        sc, rubric = self.score, self.rubric
        text = self._measurement() + "\n\n"
        if sc.full_credit:
            return text + (f"Full credit: {sc.percent_text} % >= {_threshold_text(rubric.full_credit_threshold)} earns "
                           f"{rubric.points:g} points.")
        text += (f"{sc.percent_text} % is {_shortfall_text(sc, rubric.full_credit_threshold, sc.missing_for_full)} "
                 f"below the {_threshold_text(rubric.full_credit_threshold)} needed for credit, so this checkpoint "
                 f"earns 0 of {rubric.points:g} points.")
        return text + "\n" + self._advice()

    def bonus_message(self) -> str:
        """The output of the bonus test."""
        rubric = self.rubric
        if not self.ok:
            return f"No bonus: the checkpoint could not be graded (see the test above).\n{self.problem}"
        sc = self.score
        head = (f"{rubric.file}: test accuracy {sc.percent_text} % ({sc.correct:,} of {sc.total:,} test images; "
                f"test split: {self.test_split_source}).")
        if sc.bonus:
            return f"{head}\nBonus: {sc.percent_text} % >= {_threshold_text(rubric.bonus_threshold)} earns " \
                   f"{rubric.bonus_points:g} extra points."
        reason = f"{_shortfall_text(sc, rubric.bonus_threshold, sc.missing_for_bonus)} below"
        return f"{head}\nNo bonus: {sc.percent_text} % is {reason} the {_threshold_text(rubric.bonus_threshold)} " \
               f"needed for the {rubric.bonus_points:g} bonus points."

    def _advice(self) -> str:
        sc = self.score
        if sc.accuracy <= Fraction(12, 100):
            return ("An accuracy near 10 % is chance level. Either the classifier did not learn, or it expects "
                    "differently scaled inputs: the grader feeds raw images in [0, 1] (no augmentation) and the "
                    "model must normalise them itself, with the mean/std buffers of helpers.LinearClassifier set "
                    "to the statistics you normalised with while training (e.g. CIFAR10_MEAN / CIFAR10_STD). Check "
                    "your own test accuracy with the notebook's evaluate() before saving.")
        return ("To improve it: pre-train SimCLR longer, fine-tune the whole network (not only the linear layer) "
                "with a suitable learning rate, and save the best epoch's classifier with "
                "helpers.save_classifier. Check that your notebook's evaluate() reports the same accuracy on the "
                "test set.")

    def to_dict(self) -> dict:
        """A JSON-ready summary (for results' extra data, the CLI and the benchmark)."""
        out: dict[str, Any] = {"ok": self.ok, "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                               "problem": self.problem or None, "note": self.note or None,
                               "test_split": self.test_split_source or None,
                               "load_seconds": round(self.load_seconds, 3)}
        if self.ok:
            out.update(accuracy_percent=float(self.score.accuracy * 100), correct=self.score.correct,
                       total=self.score.total, points=self.score.points, bonus_points=self.score.bonus_points,
                       evaluation=self.evaluation.to_dict())
        return out


def grade_checkpoint(submission_dir: str | os.PathLike, rubric: CheckpointRubric | None = None,
                     test_split: TestSplit | None = None, device: str | torch.device | None = None,
                     threads: int | None = None) -> CheckpointGrade:
    """Find, load, evaluate and score a submission's checkpoint.

    The checkpoint is loaded before the test split is looked up, so a bad file is reported
    to the student even on a grader without test data.

    Args:
        submission_dir: the submitted folder.
        rubric: the course rubric (default: `load_course_config()`).
        test_split: the images to grade on (default: `resolve_test_split(rubric)`).
        device: where to evaluate (default: CUDA if available, else the CPU).
        threads: CPU threads (default: the rubric's `threads`, 0 meaning `available_cpus()`).

    Returns:
        A `CheckpointGrade`; a bad file gives ``ok=False`` with the reason in `problem`.

    Raises:
        TestSplitUnavailable: the checkpoint is fine but no test split can be found (a
            grader error).
    """
    from helpers.runtime import get_device

    rubric = rubric or load_course_config()
    submission_dir = Path(submission_dir)
    device = torch.device(device) if device is not None else get_device()
    if device.type == "mps":
        device = torch.device("cpu")
    if threads is None:
        threads = rubric.threads or available_cpus()
    started = time.perf_counter()
    try:
        path, note = locate_checkpoint(submission_dir, rubric.file)
        with torch_threads(threads):
            classifier = load_submitted_classifier(path, rubric, device)
    except CheckpointError as error:
        return CheckpointGrade(ok=False, rubric=rubric, problem=_student_message(error, submission_dir),
                               load_seconds=time.perf_counter() - started)
    load_seconds = time.perf_counter() - started
    if test_split is None:
        test_split = resolve_test_split(rubric)
    fold_batchnorm(classifier)
    evaluation = evaluate_classifier(classifier, test_split.images, test_split.labels, batch_size=rubric.batch_size,
                                     device=device, threads=threads)
    del classifier
    score = score_accuracy(evaluation.correct, evaluation.total, rubric)
    return CheckpointGrade(ok=True, rubric=rubric, checkpoint=path, note=note, evaluation=evaluation, score=score,
                           test_split_source=test_split.source, load_seconds=load_seconds)


# ======================================================================================
# Calibration checkpoints: classifiers of known accuracy (for tests and demos)
# ======================================================================================
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
        classifier.fc.bias.copy_(-levels**2)
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
    return TestSplit(images, labels.to(torch.int64),
                     f"calibration split ({total:,} synthetic images, {correct:,} labelled as their class)")


# ======================================================================================
# Command line
# ======================================================================================
def _main_prepare(args: argparse.Namespace) -> int:
    try:
        path = prepare_test_split(args.out, source=args.source, download_root=args.download_root,
                                  download=not args.no_download)
    except (DataSourceError, TestSplitUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    split = load_test_split_file(path)
    print(f"wrote {path}: {len(split):,} images ({path.stat().st_size / 2**20:.1f} MiB) from {split.source}")
    return 0


def _main_check(args: argparse.Namespace) -> int:
    try:
        rubric = load_course_config(args.config)
        split = resolve_test_split(rubric)
    except GraderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    counts = torch.bincount(split.labels, minlength=10).tolist()
    print(f"test split: {len(split):,} images, per class {counts}\nfrom {split.source}")
    print(f"rubric: {json.dumps(dataclasses.asdict(rubric))}")
    return 0


def _main_grade(args: argparse.Namespace) -> int:
    try:
        rubric = load_course_config(args.config)
        if args.batch_size:
            rubric = dataclasses.replace(rubric, batch_size=args.batch_size)
        split = load_test_split_file(args.test_split) if args.test_split else None
        grade = grade_checkpoint(args.submission, rubric, test_split=split, device=args.device, threads=args.threads)
    except GraderError as error:
        print(f"grader error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(grade.to_dict(), indent=1))
    else:
        print(grade.full_credit_message())
        if rubric.has_bonus:
            print("\n" + grade.bonus_message())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.checkpoint_grading",
                                     description="Checkpoint grading: prepare the test split, check it, grade.")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="write the prepared CIFAR-10 test split file")
    prepare.add_argument("--out", type=Path, default=PROJECT_ROOT / BAKED_TEST_SPLIT,
                         help=f"file to write (default {BAKED_TEST_SPLIT})")
    prepare.add_argument("--source", default=None, help="a local CIFAR-10 copy (folder, .tar.gz, or a prepared .pt); "
                                                        "default: $SSL_LAB_CIFAR10 or torchvision's download")
    prepare.add_argument("--download-root", default=None, help="where torchvision downloads (default: a temp folder)")
    prepare.add_argument("--no-download", action="store_true", help="never download")
    prepare.set_defaults(run=_main_prepare)
    check = commands.add_parser("check", help="say which test split the grader would use")
    check.add_argument("--config", default=None, help="course configuration (default: course.toml)")
    check.set_defaults(run=_main_check)
    grade = commands.add_parser("grade", help="grade the checkpoint of one submission folder")
    grade.add_argument("submission", type=Path)
    grade.add_argument("--config", default=None)
    grade.add_argument("--test-split", default=None, help="a prepared test split file (default: resolved)")
    grade.add_argument("--threads", type=int, default=None)
    grade.add_argument("--batch-size", type=int, default=None)
    grade.add_argument("--device", default=None)
    grade.add_argument("--json", action="store_true", help="print a JSON summary")
    grade.set_defaults(run=_main_grade)
    args = parser.parse_args(argv)
    return args.run(args)


__all__ = [
    "CALIBRATION_LEVELS", "CheckpointGrade", "CheckpointRubric", "CheckpointScore", "CourseConfigError",
    "Evaluation", "TestSplit", "TestSplitUnavailable", "available_cpus", "calibration_classifier",
    "calibration_test_split", "check_zip_expansion", "evaluate_classifier", "fold_batchnorm", "format_percent",
    "grade_checkpoint", "load_course_config", "load_submitted_classifier", "load_test_split_file",
    "locate_checkpoint", "prepare_test_split", "resolve_test_split", "rubric_from_mapping", "save_test_split",
    "score_accuracy",
]

if __name__ == "__main__":
    raise SystemExit(main())
