"""A local copy of CIFAR-10: image folders and tar archives read into uint8 tensors, and their cache.

Images are decoded with Pillow (archives are read member by member as a stream, never
unpacked to disk), checked against `CIFAR10_CLASSES` and put in one class-mixed order
(`local_split_order`). A decoded split is saved under ``<root>/cache/`` (written atomically)
and read back with ``torch.load(weights_only=True)`` while its source is unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from helpers.data.sources import (
    CIFAR10_CLASSES,
    IMAGE_SIZE,
    LOCAL_ORDER_SEED,
    SPLITS,
    DataSourceError,
    _is_hidden,
    _SplitLocation,
)
from helpers.files import write_atomically

_CACHE_FORMAT = "ssl-lab-cifar10-cache"
_CACHE_VERSION = 2  # 2: class-mixed order of local copies (see `_assemble`)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}

# --------------------------------------------------------------------------------------
# Decoding local images (folders and archives)
# --------------------------------------------------------------------------------------


def _natural_key(name: str) -> tuple:
    """'img10.png' after 'img2.png': digit runs compare as numbers."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name)))


def _decode_image(data: bytes, where: str) -> np.ndarray:
    """Decode one JPEG/PNG to RGB. Shape: (32, 32, 3) uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataSourceError(f"Could not decode the image {where}: {error}") from error
    if rgb.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise DataSourceError(
            f"The image {where} is {rgb.shape[1]}x{rgb.shape[0]} pixels; CIFAR-10 images are "
            f"{IMAGE_SIZE}x{IMAGE_SIZE}. Is this source really CIFAR-10?"
        )
    return rgb


def _check_class_names(found: Iterable[str], where: str) -> None:
    found = set(found)
    if found == set(CIFAR10_CLASSES):
        return
    missing = sorted(set(CIFAR10_CLASSES) - found)
    unexpected = sorted(found - set(CIFAR10_CLASSES))
    raise DataSourceError(
        f"The class folders in {where} are {sorted(found)}; expected exactly CIFAR-10's ten "
        f"classes {list(CIFAR10_CLASSES)} (sorted alphabetically they give the labels 0..9). "
        f"Missing: {missing or 'none'}; unexpected: {unexpected or 'none'}. "
        "Rename the folders, or point source= at a CIFAR-10 copy."
    )


def _file_index(key: tuple) -> int | None:
    """The number a file name consists of ('0042.jpg' -> 42), from its natural key, else None."""
    if len(key) == 3 and key[0] == "" and isinstance(key[1], int) and re.fullmatch(r"\.[A-Za-z]+", key[2]):
        return key[1]
    return None


def local_split_order(keys: Sequence[tuple]) -> torch.Tensor:
    """The order in which a local copy's images are returned, from their files' natural keys.

    `keys` are the natural keys of the files in class order (classes in label order, files in
    natural order within a class). When every file name is a number and the numbers of the
    whole split are exactly 0..N-1 (a copy exported with CIFAR-10's own index in its names),
    the split comes back in that order: CIFAR-10's own, as torchvision gives it. Otherwise
    (names numbered per class, as in ``cifar10-jpeg/<split>/<class>/0000.jpg``) the classes are
    mixed by one fixed permutation (seed `LOCAL_ORDER_SEED`) of that class order, so the same
    copy gives the same order from a folder, an archive or the cache, and "the first images"
    of a split are of every class, never nine airplanes.

    Returns:
        Shape: (N,) int64, indices into the class-ordered list.
    """
    n = len(keys)
    numbers = [_file_index(key) for key in keys]
    if None not in numbers and sorted(numbers) == list(range(n)):
        return torch.argsort(torch.tensor(numbers, dtype=torch.int64))
    return torch.randperm(n, generator=torch.Generator().manual_seed(LOCAL_ORDER_SEED))


def _assemble(decoded: dict[str, list[tuple[tuple, np.ndarray]]], where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-class lists into one split, in `local_split_order`."""
    empty = [name for name in CIFAR10_CLASSES if not decoded.get(name)]
    if empty:
        raise DataSourceError(f"No images for the classes {empty} in {where}.")
    arrays, labels, keys = [], [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        items = sorted(decoded[name], key=lambda item: item[0])
        arrays.extend(array for _, array in items)
        keys.extend(key for key, _ in items)
        labels.extend([label] * len(items))
    order = local_split_order(keys)  # (N,)
    images = torch.from_numpy(np.stack([arrays[i] for i in order.tolist()]))  # (N, 32, 32, 3) uint8
    return images, torch.tensor(labels, dtype=torch.int64)[order]  # (N,)


def _image_entries(class_dir: Path) -> list[os.DirEntry]:
    """The image files of one class folder (hidden files and non-images skipped).

    `os.scandir` reads file types from the directory itself, so listing 50,000 files costs
    no per-file system call.
    """
    with os.scandir(class_dir) as entries:
        return [
            entry
            for entry in entries
            if not _is_hidden(entry.name)
            and os.path.splitext(entry.name)[1].lower() in _IMAGE_SUFFIXES
            and entry.is_file()
        ]


def _decode_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode <split_dir>/<class>/* into (images (N,32,32,3) uint8, labels (N,) int64)."""
    class_dirs = {d.name: d for d in split_dir.iterdir() if d.is_dir() and not _is_hidden(d.name)}
    _check_class_names(class_dirs, split_dir)
    decoded = {
        name: [(_natural_key(e.name), _decode_image(Path(e.path).read_bytes(), e.path)) for e in _image_entries(d)]
        for name, d in class_dirs.items()
    }
    return _assemble(decoded, str(split_dir))


def _archive_entry(name: str, split: str) -> tuple[str, str | None] | None:
    """Place an archive member in the layout ``[<top>/]<split>/<class>[/<file>]``.

    Returns ``(class, file)`` for a file, ``(class, None)`` for a class folder, None for
    anything else (other splits, hidden files, deeper nesting).
    """
    parts = [part for part in name.split("/") if part and part != "."]
    if any(_is_hidden(part) for part in parts):
        return None
    for top in (0, 1):  # <split>/... or one folder down: <top>/<split>/...
        rest = parts[top:]
        if len(parts) > top and rest[0] == split and len(rest) in (2, 3):
            return rest[1], (rest[2] if len(rest) == 3 else None)
    return None


def _decode_archive(archive: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stream a tar(.gz) member by member (nothing is unpacked to disk) and decode `split`."""
    decoded: dict[str, list[tuple[tuple, np.ndarray]]] = {}
    splits_seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                splits_seen.update(p for p in member.name.split("/")[:2] if p in SPLITS)
                entry = _archive_entry(member.name, split)
                if entry is None:
                    continue
                class_name, file_name = entry
                files = decoded.setdefault(class_name, [])
                if file_name is None or not member.isfile():
                    continue
                if Path(file_name).suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                data = tar.extractfile(member).read()
                files.append((_natural_key(file_name), _decode_image(data, f"{archive}:{member.name}")))
    except DataSourceError:
        raise
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataSourceError(f"Could not read the archive {archive}: {error}. Is it complete?") from error
    if not decoded:
        seen = f" (it holds: {', '.join(sorted(splits_seen))})" if splits_seen else ""
        raise DataSourceError(
            f"The archive {archive} has no '{split}/<class>/<image>' members{seen}; expected "
            f"{split}/<class>/*.jpg, at most one folder down (e.g. cifar10-jpeg/{split}/cat/0000.jpg)."
        )
    _check_class_names(decoded, f"{archive} ({split}/)")
    return _assemble(decoded, f"{archive} ({split}/)")


# --------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------


def _source_identity(location: _SplitLocation, split: str) -> str:
    """A string that changes whenever the split's source changes.

    An archive: its resolved path, size and modification time. A folder: its resolved path
    and, per class folder, the folder's modification time and a hash of its image names.
    Adding, removing or renaming files (which is also how most tools replace a file) changes
    it; overwriting an image in place under the same name does not (delete
    ``<root>/cache/`` then). Not stat-ing 50,000 files keeps a cached load well under a second.
    """
    path = location.path.resolve()
    head = f"{_CACHE_FORMAT}|v{_CACHE_VERSION}|{split}|{location.kind}|{path}"
    if location.kind == "archive":
        stat = path.stat()
        return f"{head}|{stat.st_size}|{stat.st_mtime_ns}"
    rows = [f"{path.stat().st_mtime_ns}"]
    for class_dir in sorted(d for d in path.iterdir() if d.is_dir()):
        names = sorted(entry.name for entry in _image_entries(class_dir))
        digest = hashlib.sha256("/".join(names).encode()).hexdigest()[:16]
        rows.append(f"{class_dir.name}:{class_dir.stat().st_mtime_ns}:{len(names)}:{digest}")
    return head + "|" + "|".join(rows)


def _cache_path(root, split: str, identity: str) -> Path:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(root) / "cache" / f"cifar10-{split}-{digest}.pt"


def _read_cache(path: Path, identity: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached split, or None when absent; a corrupt file is reported and ignored."""
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = entry["images"], entry["labels"]
        valid = (
            entry.get("format") == _CACHE_FORMAT
            and entry.get("identity") == identity
            and isinstance(images, torch.Tensor)
            and images.dtype == torch.uint8
            and images.ndim == 4
            and tuple(images.shape[1:]) == (IMAGE_SIZE, IMAGE_SIZE, 3)
            and isinstance(labels, torch.Tensor)
            and labels.dtype == torch.int64
            and labels.shape == (images.shape[0],)
            and (labels.numel() == 0 or (int(labels.min()) >= 0 and int(labels.max()) < 10))
        )
        if not valid:
            raise ValueError("unexpected contents")
    except Exception as error:  # any unreadable cache is rebuilt, never fatal
        reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0][:120]  # torch's run long
        warnings.warn(
            f"Ignoring the unreadable CIFAR-10 cache {path} ({type(error).__name__}: "
            f"{reason}); decoding the source again and rewriting it.",
            stacklevel=4,
        )
        return None
    return images, labels


def _write_cache(path: Path, identity: str, images: torch.Tensor, labels: torch.Tensor, description: str) -> bool:
    """Save atomically (temporary file + os.replace); a failure only warns."""
    entry = {
        "format": _CACHE_FORMAT,
        "version": _CACHE_VERSION,
        "identity": identity,
        "source": description,
        "images": images.contiguous(),
        "labels": labels.contiguous(),
    }
    try:  # readable by all (mode 0o644): a shared data/ folder should stay usable
        write_atomically(path, lambda file: torch.save(entry, file), fsync=False)
    except OSError as error:
        warnings.warn(
            f"Could not write the CIFAR-10 cache {path} ({error}); the next load will decode the source again.",
            stacklevel=4,
        )
        return False
    return True


# --------------------------------------------------------------------------------------
# Reading a local split (decoded, or from the cache)
# --------------------------------------------------------------------------------------


def _load_local_split(location: _SplitLocation, split: str, root, description: str):
    """Decode a local folder/archive split, or read it from the cache.

    Returns:
        images (N, 32, 32, 3) uint8, labels (N,) int64, and a note for the verbose line.
    """
    identity = _source_identity(location, split)
    cache = _cache_path(root, split, identity)
    cached = _read_cache(cache, identity)
    if cached is not None:
        return (*cached, f"; cached in {cache}")
    if location.kind == "folder":
        images, labels = _decode_folder(location.path)
    else:
        images, labels = _decode_archive(location.path, split)
    written = _write_cache(cache, identity, images, labels, description)
    return images, labels, (f"; decoded, cached in {cache}" if written else "; decoded (not cached)")
