"""Where CIFAR-10 comes from: its constants, the accepted local layouts, and which source a load uses.

`_resolve_source` picks the source of `load_cifar10` (``synthetic=``, ``source=``,
``$SSL_LAB_CIFAR10``, torchvision's download into `root`) and `_locate_split` finds one split
in it; `describe_cifar10_source` says which, without loading anything. A source that cannot
be used raises `DataSourceError` with a message saying how to get the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: CIFAR-10's class names in label order (alphabetical, as torchvision and the folders have them).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: Per-channel mean and standard deviation of the CIFAR-10 training images in [0, 1] (RGB).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

ENV_SOURCE = "SSL_LAB_CIFAR10"
ENV_SYNTHETIC = "SSL_LAB_SYNTHETIC"
SPLITS = ("train", "test")
IMAGE_SIZE = 32
SYNTHETIC_SIZES = {"train": 2_000, "test": 500}
#: Seed of the one fixed permutation that mixes the classes of a local copy whose file names
#: do not carry CIFAR-10's own index (see `_assemble`).
LOCAL_ORDER_SEED = 10

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_TORCHVISION_FOLDER = "cifar-10-batches-py"
_HOW_TO_GET_DATA = (
    "How to get CIFAR-10:\n"
    "  - with internet access: load_cifar10(..., download=True) downloads it once with "
    "torchvision into <root>/cifar-10-batches-py (about 170 MB); or\n"
    f"  - offline: point source=... (or the environment variable {ENV_SOURCE}) at a local copy: "
    "a folder with train/<class>/*.jpg and test/<class>/*.jpg, a folder holding "
    "train.tar.gz and test.tar.gz of that layout, such a .tar.gz itself, or a folder holding "
    f"torchvision's {_TORCHVISION_FOLDER}/.\n"
    f"  - (offline demos and tests only, NOT CIFAR-10: synthetic=True or {ENV_SYNTHETIC}=1.)"
)


class DataSourceError(FileNotFoundError):
    """CIFAR-10 could not be found, or a source does not have the expected layout.

    A `FileNotFoundError`, so code that handles missing data catches it too. The message
    says what was tried and how to get the data.
    """


# --------------------------------------------------------------------------------------
# Resolving the source
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """Where load_cifar10 reads from. `kind`: folder | archive | torchvision | synthetic."""

    kind: str
    path: Path | None  # the source folder / archive, or the torchvision root
    origin: str  # "source=", "$SSL_LAB_CIFAR10" or "default"

    def describe(self) -> str:
        via = f" (from {self.origin})" if self.origin == f"${ENV_SOURCE}" else ""
        if self.kind == "synthetic":
            return "synthetic stand-in dataset (NOT CIFAR-10)"
        if self.kind == "torchvision":
            folder = self.path / _TORCHVISION_FOLDER
            state = "downloaded" if folder.is_dir() else "not downloaded yet"
            return f"torchvision CIFAR10 in {folder} ({state}){via}"
        return f"local {self.kind} {self.path}{via}"


@dataclass(frozen=True)
class _SplitLocation:
    """Where one split lies inside a local source."""

    kind: str  # "folder" (the <split>/ directory), "archive" or "torchvision"
    path: Path  # the split folder, the archive, or the torchvision root

    def describe(self) -> str:
        return f"{self.kind} {self.path}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _resolve_source(source, root, synthetic: bool) -> _Source:
    """Pick the source by the documented order (no decoding, no download)."""
    if synthetic or _truthy(os.environ.get(ENV_SYNTHETIC)):
        return _Source("synthetic", None, "synthetic=True" if synthetic else f"${ENV_SYNTHETIC}")
    if source is not None:
        return _local_source(Path(source).expanduser(), "source=")
    if os.environ.get(ENV_SOURCE, "").strip():
        return _local_source(Path(os.environ[ENV_SOURCE].strip()).expanduser(), f"${ENV_SOURCE}")
    return _Source("torchvision", Path(root), "default")


def _local_source(path: Path, origin: str) -> _Source:
    named = "source=" if origin == "source=" else f"the environment variable {ENV_SOURCE}"
    if not path.exists():
        raise DataSourceError(f"CIFAR-10 source {path} (given by {named}) does not exist.\n{_HOW_TO_GET_DATA}")
    if path.is_file():
        if not _is_archive(path):
            raise DataSourceError(
                f"CIFAR-10 source {path} (given by {named}) is a file but not a .tar.gz/.tgz/.tar "
                f"archive.\n{_HOW_TO_GET_DATA}"
            )
        return _Source("archive", path, origin)
    if path.name == _TORCHVISION_FOLDER:  # pointed at torchvision's folder itself
        return _Source("torchvision", path.parent, origin)
    if (path / _TORCHVISION_FOLDER).is_dir():
        return _Source("torchvision", path, origin)
    return _Source("folder", path, origin)


def _locate_split(src: _Source, split: str) -> _SplitLocation:
    """Find `split` inside a folder source: <split>/, else <split>.tar.gz, else */<split>/."""
    if src.kind == "archive":
        return _SplitLocation("archive", src.path)
    if src.kind == "torchvision":
        return _SplitLocation("torchvision", src.path)
    folder = src.path
    if (folder / split).is_dir():
        return _SplitLocation("folder", folder / split)
    for suffix in _ARCHIVE_SUFFIXES:
        if (folder / f"{split}{suffix}").is_file():
            return _SplitLocation("archive", folder / f"{split}{suffix}")
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not _is_hidden(d.name))
    nested = [d / split for d in subdirs if (d / split).is_dir()]
    if len(nested) == 1:
        return _SplitLocation("folder", nested[0])
    if len(nested) > 1:
        raise DataSourceError(
            f"CIFAR-10 source {folder} holds several '{split}/' folders "
            f"({', '.join(str(p) for p in nested)}); point source= at the one to use."
        )
    names = sorted(d.name for d in subdirs)
    if names and set(names) <= set(CIFAR10_CLASSES):
        hint = (
            " It looks like a single split's folder (its subfolders are class names); point "
            "source= at the folder that holds both train/ and test/."
        )
    else:
        hint = ""
    raise DataSourceError(
        f"No '{split}' split in the CIFAR-10 source {folder}: expected {split}/<class>/*, "
        f"<one folder>/{split}/<class>/*, or {split}.tar.gz there.{hint}\n{_HOW_TO_GET_DATA}"
    )


def describe_cifar10_source(
    source: str | os.PathLike | None = None,
    root: str | os.PathLike = "data",
    *,
    split: str | None = None,
    synthetic: bool = False,
) -> str:
    """Say where `load_cifar10` would take CIFAR-10 from, without loading or downloading.

    Follows the same order as `load_cifar10` (synthetic, `source`, ``$SSL_LAB_CIFAR10``,
    torchvision) and raises the same `DataSourceError` for a source that does not exist.

    Args:
        source: as in `load_cifar10`.
        root: as in `load_cifar10`.
        split: "train" or "test" to name the exact folder/archive of that split; None for
            the source as a whole.
        synthetic: as in `load_cifar10`.

    Returns:
        e.g. ``"local folder /data/cifar10-jpeg (from $SSL_LAB_CIFAR10)"`` or, with a split,
        ``"archive /data/cifar10-jpeg/test.tar.gz"``.
    """
    src = _resolve_source(source, root, synthetic)
    if split is None or src.kind in ("synthetic", "torchvision"):
        return src.describe()
    _check_split(split)
    return _locate_split(src, split).describe()
