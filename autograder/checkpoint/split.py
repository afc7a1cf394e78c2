"""The CIFAR-10 test split the checkpoint is graded on: prepared files, and where to find one.

`resolve_test_split` looks, in order:

1. ``$SSL_LAB_TEST_SPLIT``: a prepared split file (``.pt``) or any source that
   `helpers.data.load_cifar10` accepts (a folder or ``.tar.gz`` of ``test/<class>/*.jpg``);
2. ``<project>/data/cifar10-test.pt``: the copy baked into the grading image (Gradescope's
   ``setup.sh`` downloads it, ``gradescope --test-split`` embeds one in the zip, and
   ``python -m autograder checkpoint prepare`` makes one locally);
3. torchvision's download in ``<project>/data/cifar-10-batches-py`` (never downloads here);
4. the course's ``test_split_sources`` (``course.toml``; none by default), then
   ``$SSL_LAB_CIFAR10``.

None available is a `TestSplitUnavailable` error: a grader error (not the student's fault),
which the results plugin reports as such in ``results.json``. A split with a number of
images other than the course's ``test_images`` (10,000) is refused the same way, so a
partial copy can never grade students.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autograder.checkpoint.rubric import CheckpointRubric, load_course_config
from autograder.results import GraderError
from helpers.data import CIFAR10_CLASSES, DataSourceError, load_cifar10
from helpers.files import UnexpectedFile, read_tagged

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


class TestSplitUnavailable(GraderError):
    """No usable CIFAR-10 test split (a grader error, never the student's fault)."""

    __test__ = False  # not a pytest test class, whatever its name


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
    if (
        not isinstance(images, torch.Tensor)
        or images.dtype != torch.uint8
        or images.ndim != 4
        or tuple(images.shape[1:]) != IMAGE_SHAPE
    ):
        raise TestSplitUnavailable(
            f"{where}: images must be a uint8 tensor of shape (N, 32, 32, 3), got "
            f"{getattr(images, 'dtype', type(images).__name__)} "
            f"{tuple(getattr(images, 'shape', ()))}"
        )
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
    payload = {
        "format": TEST_SPLIT_FORMAT,
        "version": TEST_SPLIT_VERSION,
        "source": str(source),
        "sha256": _split_digest(images, labels),
        "images": images,
        "labels": labels,
    }
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
        payload = read_tagged(path, TEST_SPLIT_FORMAT, TEST_SPLIT_VERSION, "prepared test split")
    except UnexpectedFile as error:
        raise TestSplitUnavailable(
            f"{error}; prepare it again with `python -m autograder checkpoint prepare`"
        ) from None
    images, labels = payload.get("images"), payload.get("labels")
    _check_split_tensors(images, labels, str(path))
    if payload.get("sha256") != _split_digest(images, labels):
        raise TestSplitUnavailable(
            f"{path} is damaged: its images do not match the checksum recorded when it was prepared; prepare it again"
        )
    return TestSplit(images, labels, f"{payload.get('source', 'unknown source')}, prepared copy {path}")


def prepare_test_split(
    out: str | os.PathLike = PROJECT_ROOT / BAKED_TEST_SPLIT,
    source: str | os.PathLike | None = None,
    download_root: str | os.PathLike | None = None,
    download: bool = True,
    verbose: bool = True,
) -> Path:
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


def candidate_sources(
    rubric: CheckpointRubric, project_root: Path, data_root: Path, environ: Mapping[str, str]
) -> Iterator[tuple[str, Path, str]]:
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


def resolve_test_split(
    rubric: CheckpointRubric | None = None,
    project_root: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> TestSplit:
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
    for named, path, kind in candidate_sources(rubric, project_root, data_root, environ):
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
            raise TestSplitUnavailable(
                f"the test split at {path} ({named}) cannot be used: {str(error).splitlines()[0]}"
            ) from None
        if len(split) != rubric.test_images:
            raise TestSplitUnavailable(
                f"the test split at {path} ({named}) has {len(split):,} images; the course "
                f"expects {rubric.test_images:,} (course.toml test_images). Replace it with "
                f"the full CIFAR-10 test split"
            )
        return split
    raise TestSplitUnavailable(
        "no CIFAR-10 test split is available, so the checkpoint cannot be graded. Tried, in order:\n  - "
        + "\n  - ".join(tried)
        + f"\nFix: build the Gradescope zip with `--test-split PATH` or let setup.sh download it; locally run "
        f"`python -m autograder checkpoint prepare` (downloads it into {BAKED_TEST_SPLIT}), or set "
        f"${ENV_TEST_SPLIT} / ${ENV_CIFAR10} to a copy."
    )


__all__ = [
    "BAKED_TEST_SPLIT",
    "ENV_CIFAR10",
    "ENV_TEST_SPLIT",
    "TestSplit",
    "TestSplitUnavailable",
    "candidate_sources",
    "load_test_split_file",
    "prepare_test_split",
    "resolve_test_split",
    "save_test_split",
]
