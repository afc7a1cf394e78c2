"""Tests of helpers.data: sources, cache, synthetic stand-in, augmentation and loaders.

Real-data tests decode only the test split of ../shared/data/cifar10-jpeg (once per module);
everything else runs on tiny folder and archive layouts written to tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image
from torch.testing import assert_close

from helpers.data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    LOCAL_ORDER_SEED,
    CIFAR10Tensors,
    DataSourceError,
    TwoViewTransform,
    class_balanced_indices,
    describe_cifar10_source,
    eval_transform,
    load_cifar10,
    loading,
    local_files,
    make_eval_loader,
    make_two_view_loader,
    two_view_collate,
)

FILE_NUMBERS = (10, 2, 1)  # written in this order; natural order is 1, 2, 10
PER_CLASS = len(FILE_NUMBERS)


# --------------------------------------------------------------------------------------
# Tiny layouts
# --------------------------------------------------------------------------------------


def _tiny_image(split: str, label: int, number: int, smooth: bool = False) -> np.ndarray:
    """A distinct 32x32 RGB image per (split, class, file number): uniform noise, or (smooth,
    for lossy JPEG) a colour gradient. Shape: (32, 32, 3) uint8."""
    gen = torch.Generator().manual_seed(1000 * (split == "test") + 100 * label + number)
    if not smooth:
        return torch.randint(0, 256, (32, 32, 3), generator=gen, dtype=torch.uint8).numpy()
    corners = torch.rand(2, 2, 3, generator=gen)  # RGB at the four corners
    ramp = torch.linspace(0, 1, 32)
    rows = corners[0] * (1 - ramp[:, None, None]) + corners[1] * ramp[:, None, None]  # (32, 2, 3)
    image = rows[:, :1] * (1 - ramp[None, :, None]) + rows[:, 1:] * ramp[None, :, None]  # (32, 32, 3)
    return (image * 255).round().to(torch.uint8).numpy()


def _expected(split: str, smooth: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """What load_cifar10 must return for a tiny layout (names numbered per class): classes in
    label order, files in natural order, then mixed by the permutation of seed
    LOCAL_ORDER_SEED. Shapes: (10 * PER_CLASS, 32, 32, 3) uint8, (10 * PER_CLASS,) int64."""
    images = [_tiny_image(split, label, n, smooth) for label in range(10) for n in sorted(FILE_NUMBERS)]
    labels = [label for label in range(10) for _ in FILE_NUMBERS]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(LOCAL_ORDER_SEED))
    return torch.from_numpy(np.stack(images))[order], torch.tensor(labels, dtype=torch.int64)[order]


def write_split(split_dir: Path, split: str, classes=CIFAR10_CLASSES, fmt: str = "png", size: int = 32) -> None:
    """Write <split_dir>/<class>/<n>.<fmt>, plus junk that the loader must skip."""
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        class_dir.mkdir(parents=True, exist_ok=True)
        for number in FILE_NUMBERS:
            image = Image.fromarray(_tiny_image(split, label, number, smooth=fmt == "jpg"))
            if size != 32:
                image = image.resize((size, size))
            if fmt == "jpg":
                image.save(class_dir / f"{number}.jpg", quality=95)
            else:
                image.save(class_dir / f"{number}.png")
        (class_dir / ".DS_Store").write_bytes(b"\0junk")
        (class_dir / f"._{FILE_NUMBERS[0]}.{fmt}").write_bytes(b"AppleDouble junk, not an image")
        (class_dir / "notes.txt").write_text("not an image")


def write_layout(base: Path, top: str | None = None, splits=("train", "test"), **kwargs) -> Path:
    """base/[top/]<split>/<class>/<n>.png; returns base."""
    for split in splits:
        write_split(base / top / split if top else base / split, split, **kwargs)
    (base / "README.txt").write_text("a readme beside the data")
    return base


def write_archive(path: Path, top: str | None = "cifar10-mini", splits=("train", "test"), **kwargs) -> Path:
    """A .tar.gz of [top/]<split>/<class>/<n>.png built from a scratch folder."""
    scratch = path.parent / "scratch" / path.name  # outside any source folder
    write_layout(scratch, top=None, splits=splits, **kwargs)
    with tarfile.open(path, "w:gz") as tar:
        for split in splits:
            tar.add(scratch / split, arcname=f"{top}/{split}" if top else split)
    return path


@pytest.fixture(scope="module")
def tiny_layouts(tmp_path_factory):
    """Every accepted layout of the same tiny dataset: name -> source path (read-only)."""
    tmp_path = tmp_path_factory.mktemp("layouts")
    archives = tmp_path / "archives"
    archives.mkdir()
    write_archive(archives / "train.tar.gz", splits=("train",))
    write_archive(archives / "test.tar.gz", splits=("test",))
    return {
        "folder": write_layout(tmp_path / "plain"),
        "nested folder": write_layout(tmp_path / "nested", top="cifar10-mini"),
        "archive, nested": write_archive(tmp_path / "both.tar.gz"),
        "archive, flat": write_archive(tmp_path / "flat.tgz", top=None),
        "folder of archives": archives,
    }


LAYOUT_NAMES = ["folder", "nested folder", "archive, nested", "archive, flat", "folder of archives"]


# --------------------------------------------------------------------------------------
# Local sources
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_local_layout_loads_exact_pixels_and_labels(tiny_layouts, tmp_path, layout, split):
    """Does each accepted layout give the same images in the same class-mixed order (files in
    natural order within a class, then one fixed permutation), skipping hidden files and
    non-images?"""
    images, labels = load_cifar10(split, source=tiny_layouts[layout], root=tmp_path / "root", verbose=False)
    expected_images, expected_labels = _expected(split)
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert images.shape == (10 * PER_CLASS, 32, 32, 3) and images.is_contiguous()
    assert_close(images, expected_images, rtol=0, atol=0)
    assert_close(labels, expected_labels)


def test_jpeg_folder_decodes_close_to_the_original(tmp_path):
    """JPEGs are decoded with Pillow to RGB uint8 within JPEG's error."""
    source = write_layout(tmp_path / "jpeg", splits=("test",), fmt="jpg")
    images, labels = load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)
    expected_images, expected_labels = _expected("test", smooth=True)
    assert_close(labels, expected_labels)
    error = (images.float() - expected_images.float()).abs().mean()
    assert error < 3, f"mean absolute JPEG error {error:.1f} is too large: wrong decoding or channel order?"


def test_verbose_prints_one_line_with_source_and_count(tiny_layouts, tmp_path, capsys):
    load_cifar10("test", source=tiny_layouts["folder of archives"], root=tmp_path, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert "CIFAR-10 test: 30 images from archive" in lines[0] and "test.tar.gz" in lines[0]


@pytest.mark.parametrize("kind", ["folder", "archive"])
def test_wrong_class_names_raise_a_clear_error(tmp_path, kind):
    classes = ("plane",) + CIFAR10_CLASSES[1:]
    if kind == "folder":
        source = write_layout(tmp_path / "bad", splits=("test",), classes=classes)
    else:
        source = write_archive(tmp_path / "bad.tar.gz", splits=("test",), classes=classes)
    with pytest.raises(DataSourceError, match=r"Missing: \['airplane'\]; unexpected: \['plane'\]"):
        load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)


def test_missing_class_folder_raises(tmp_path):
    source = write_layout(tmp_path / "nine", splits=("test",), classes=CIFAR10_CLASSES[:9])
    with pytest.raises(DataSourceError, match=r"Missing: \['truck'\]"):
        load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)


def test_images_that_are_not_32x32_are_rejected(tmp_path):
    source = write_layout(tmp_path / "big", splits=("test",), size=64)
    with pytest.raises(DataSourceError, match=r"64x64 pixels.*32x32"):
        load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)


def test_undecodable_image_names_the_file(tmp_path):
    source = write_layout(tmp_path / "broken", splits=("test",))
    (source / "test" / "cat" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataSourceError, match=r"Could not decode the image .*cat.1\.png"):
        load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)


@pytest.mark.parametrize(
    "case",
    ["missing path", "not an archive", "split missing in folder", "split missing in archive", "single split folder"],
)
def test_unusable_sources_explain_what_is_expected(tmp_path, case):
    if case == "missing path":
        source, pattern = tmp_path / "nowhere", r"(?s)nowhere.*does not exist.*download=True"
    elif case == "not an archive":
        source, pattern = tmp_path / "data.zip", r"not a \.tar\.gz"
        source.write_bytes(b"PK")
    elif case == "split missing in folder":
        source, pattern = write_layout(tmp_path / "train_only", splits=("train",)), r"No 'test' split.*test\.tar\.gz"
    elif case == "split missing in archive":
        source = write_archive(tmp_path / "train_only.tar.gz", splits=("train",))
        pattern = r"no 'test/<class>/<image>' members \(it holds: train\)"
    else:
        source, pattern = tmp_path / "one_split", r"single split's folder"
        write_split(source, "test")
    with pytest.raises(DataSourceError, match=pattern) as raised:
        load_cifar10("test", source=source, root=tmp_path / "root", verbose=False)
    assert isinstance(raised.value, FileNotFoundError)


def test_truncated_archive_is_a_data_source_error(tmp_path):
    archive = write_archive(tmp_path / "full.tar.gz", splits=("test",))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataSourceError, match=r"Could not read the archive"):
        load_cifar10("test", source=truncated, root=tmp_path / "root", verbose=False)


@pytest.mark.parametrize(("split", "limit"), [("bad", None), ("test", 0), ("test", -3), ("test", 2.5), ("test", True)])
def test_bad_split_or_limit_is_a_value_error(tmp_path, split, limit):
    with pytest.raises(ValueError):
        load_cifar10(split, synthetic=True, limit=limit, root=tmp_path, verbose=False)


# --------------------------------------------------------------------------------------
# Source resolution: argument, environment, torchvision, error
# --------------------------------------------------------------------------------------


class FakeCIFAR10:
    """Stands in for torchvision.datasets.CIFAR10 and records how it was called."""

    calls: list[dict] = []
    fail_with: Exception | None = None

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        FakeCIFAR10.calls.append({"root": Path(root), "train": train, "download": download})
        if FakeCIFAR10.fail_with is not None:
            raise FakeCIFAR10.fail_with
        n = 20 if train else 10
        self.data = np.arange(n * 32 * 32 * 3, dtype=np.int64).reshape(n, 32, 32, 3).astype(np.uint8)
        self.targets = [i % 10 for i in range(n)]
        self.classes = list(CIFAR10_CLASSES)


@pytest.fixture
def fake_torchvision(monkeypatch):
    FakeCIFAR10.calls, FakeCIFAR10.fail_with = [], None
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    return FakeCIFAR10


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("download", [True, False])
def test_default_source_is_torchvision_with_root_and_download(fake_torchvision, tmp_path, split, download):
    images, labels = load_cifar10(split, root=tmp_path / "dl", download=download, verbose=False)
    assert fake_torchvision.calls == [{"root": tmp_path / "dl", "train": split == "train", "download": download}]
    n = 20 if split == "train" else 10
    assert images.shape == (n, 32, 32, 3) and images.dtype == torch.uint8
    assert_close(labels, torch.arange(n) % 10)
    assert not (tmp_path / "dl" / "cache").exists(), "torchvision's arrays need no second cache"


def test_source_folder_with_torchvision_batches_is_read_without_download(fake_torchvision, tmp_path):
    (tmp_path / "mine" / "cifar-10-batches-py").mkdir(parents=True)
    load_cifar10("test", source=tmp_path / "mine", root=tmp_path / "root", download=True, verbose=False)
    assert fake_torchvision.calls == [{"root": tmp_path / "mine", "train": False, "download": False}]


def test_no_source_and_no_download_says_how_to_get_the_data(tmp_path):
    """Real torchvision, offline: nothing in root and download=False."""
    with pytest.raises(DataSourceError) as raised:
        load_cifar10("test", root=tmp_path / "empty", download=False, verbose=False)
    message = str(raised.value)
    for needed in ("SSL_LAB_CIFAR10", "download=True", "source=", "train.tar.gz"):
        assert needed in message, f"{needed!r} missing from: {message}"


def test_failed_download_is_wrapped_with_the_cause(fake_torchvision, tmp_path):
    fake_torchvision.fail_with = urllib.error.URLError("no network")
    with pytest.raises(DataSourceError, match=r"(?s)could not download.*no network.*SSL_LAB_CIFAR10") as raised:
        load_cifar10("train", root=tmp_path, download=True, verbose=False)
    assert isinstance(raised.value.__cause__, urllib.error.URLError)


def test_environment_variable_is_used_before_torchvision(fake_torchvision, tiny_layouts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SSL_LAB_CIFAR10", str(tiny_layouts["nested folder"]))
    images, labels = load_cifar10("test", root=tmp_path / "root")
    assert fake_torchvision.calls == []
    assert_close(images, _expected("test")[0], rtol=0, atol=0)
    assert "$SSL_LAB_CIFAR10" in capsys.readouterr().out


def test_explicit_source_wins_over_the_environment(tiny_layouts, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_LAB_CIFAR10", str(tmp_path / "does-not-exist"))
    images, _ = load_cifar10("test", source=tiny_layouts["folder"], root=tmp_path / "root", verbose=False)
    assert len(images) == 10 * PER_CLASS


def test_broken_environment_variable_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_LAB_CIFAR10", str(tmp_path / "does-not-exist"))
    with pytest.raises(DataSourceError, match=r"does-not-exist.*environment variable SSL_LAB_CIFAR10"):
        load_cifar10("test", root=tmp_path / "root", verbose=False)


def test_describe_cifar10_source(tiny_layouts, tmp_path, monkeypatch):
    archives = tiny_layouts["folder of archives"]
    assert describe_cifar10_source(archives) == f"local folder {archives}"
    assert describe_cifar10_source(archives, split="test") == f"archive {archives / 'test.tar.gz'}"
    assert describe_cifar10_source(root=tmp_path) == (
        f"torchvision CIFAR10 in {tmp_path / 'cifar-10-batches-py'} (not downloaded yet)"
    )
    assert "NOT CIFAR-10" in describe_cifar10_source(archives, synthetic=True)
    monkeypatch.setenv("SSL_LAB_CIFAR10", str(archives))
    assert describe_cifar10_source().endswith("(from $SSL_LAB_CIFAR10)")
    with pytest.raises(DataSourceError):
        describe_cifar10_source(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------


def _cache_files(root: Path) -> list[Path]:
    return sorted((root / "cache").glob("*.pt"))


@pytest.mark.parametrize("layout", ["nested folder", "archive, flat"])
def test_second_load_reads_the_cache(tiny_layouts, tmp_path, layout, capsys, monkeypatch):
    source, root = tiny_layouts[layout], tmp_path / "root"
    first = load_cifar10("test", source=source, root=root)
    assert "decoded, cached in" in capsys.readouterr().out
    assert len(_cache_files(root)) == 1
    monkeypatch.setattr(local_files, "_decode_image", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_cifar10("test", source=source, root=root)
    assert "; cached in" in capsys.readouterr().out
    assert_close(second, first, rtol=0, atol=0)


@pytest.mark.parametrize("change", ["replaced file", "added file", "removed file"])
def test_changed_folder_makes_a_fresh_cache_entry(tmp_path, change):
    source, root = write_layout(tmp_path / "src", splits=("test",)), tmp_path / "root"
    before, _ = load_cifar10("test", source=source, root=root, verbose=False)
    bird = source / "test" / "bird"  # label 2; its files in order: 1, 2, 10
    if change == "replaced file":  # written beside it, then renamed over it, as editors do
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bird / "new.png")
        os.replace(bird / "new.png", bird / "2.png")
    elif change == "added file":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bird / "3.png")
    else:
        (bird / "2.png").unlink()
    os.utime(bird, ns=(10**18, 10**18))  # a distinct folder mtime even on coarse file systems
    after, labels = load_cifar10("test", source=source, root=root, verbose=False)
    expected_count = PER_CLASS + {"replaced file": 0, "added file": 1, "removed file": -1}[change]
    assert int(labels.bincount()[2]) == expected_count
    black = (after.flatten(1).amax(dim=1) == 0).nonzero().flatten()
    assert len(black) == (0 if change == "removed file" else 1), "the new image is the one black image"
    if len(black):
        assert int(labels[black[0]]) == 2
    fresh, fresh_labels = load_cifar10("test", source=source, root=tmp_path / "fresh", verbose=False)
    assert_close(after, fresh, rtol=0, atol=0)  # what the cache gave is what the files hold now
    assert_close(labels, fresh_labels)
    assert len(_cache_files(root)) == 2


def test_changed_archive_makes_a_fresh_cache_entry(tmp_path):
    archive, root = tmp_path / "test.tar.gz", tmp_path / "root"
    write_archive(archive, splits=("test",))
    load_cifar10("test", source=archive, root=root, verbose=False)
    write_archive(archive, splits=("test",), classes=("plane",) + CIFAR10_CLASSES[1:])
    os.utime(archive, ns=(10**18, 10**18))
    with pytest.raises(DataSourceError, match="plane"):  # re-read, not served from the old cache
        load_cifar10("test", source=archive, root=root, verbose=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong contents", "other source"])
def test_corrupt_cache_is_rebuilt_with_a_warning(tiny_layouts, tmp_path, damage):
    source, root = tiny_layouts["folder"], tmp_path / "root"
    expected = load_cifar10("test", source=source, root=root, verbose=False)
    (cache,) = _cache_files(root)
    if damage == "garbage":
        cache.write_bytes(b"\x00not a torch file")
    elif damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:500])
    elif damage == "wrong contents":
        torch.save({"format": "ssl-lab-cifar10-cache", "images": torch.zeros(3, 32, 32, 3), "labels": [1]}, cache)
    else:
        entry = torch.load(cache, weights_only=True)
        torch.save({**entry, "identity": "some other source"}, cache)
    with pytest.warns(UserWarning, match="unreadable CIFAR-10 cache"):
        rebuilt = load_cifar10("test", source=source, root=root, verbose=False)
    assert_close(rebuilt, expected, rtol=0, atol=0)
    entry = torch.load(cache, weights_only=True)  # rewritten and valid again
    assert_close(entry["images"], expected[0], rtol=0, atol=0)
    assert not list((root / "cache").glob("*.tmp")), "temporary files left behind"


def test_unwritable_cache_only_warns(tiny_layouts, tmp_path):
    root = tmp_path / "root-is-a-file"
    root.write_text("")
    with pytest.warns(UserWarning, match="Could not write the CIFAR-10 cache"):
        images, _ = load_cifar10("test", source=tiny_layouts["folder"], root=root, verbose=False)
    assert len(images) == 10 * PER_CLASS


# --------------------------------------------------------------------------------------
# Synthetic stand-in and limit
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_splits():
    with pytest.warns(UserWarning):
        return {split: load_cifar10(split, synthetic=True, verbose=False) for split in ("train", "test")}


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_synthetic_mode_always_warns_that_it_is_not_cifar10(tmp_path, monkeypatch, how, tiny_layouts, capsys):
    if how == "environment":
        monkeypatch.setenv("SSL_LAB_SYNTHETIC", "1")
    with pytest.warns(UserWarning, match="SYNTHETIC stand-in dataset, not CIFAR-10"):
        images, labels = load_cifar10("test", source=tiny_layouts["folder"], root=tmp_path, synthetic=how == "argument")
    assert images.shape == (500, 32, 32, 3) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert "NOT CIFAR-10" in capsys.readouterr().out


def test_synthetic_data_is_deterministic_balanced_and_learnable(synthetic_splits):
    (train_x, train_y), (test_x, test_y) = synthetic_splits["train"], synthetic_splits["test"]
    assert train_x.shape == (2000, 32, 32, 3) and test_x.shape == (500, 32, 32, 3)
    assert_close(train_y.bincount(), torch.full((10,), 200))
    assert_close(test_y.bincount(), torch.full((10,), 50))
    again = loading._synthetic_split.__wrapped__("test")  # generated afresh, bypassing the memo
    assert_close(again[0], test_x, rtol=0, atol=0)
    assert not torch.equal(train_x[:500], test_x), "train and test must be different draws"
    # 5-NN on raw pixels (cosine of centred vectors) must beat chance (10 %) by far.
    train = torch.nn.functional.normalize(
        train_x.flatten(1).float() - train_x.flatten(1).float().mean(1, keepdim=True), dim=1
    )
    test = torch.nn.functional.normalize(
        test_x.flatten(1).float() - test_x.flatten(1).float().mean(1, keepdim=True), dim=1
    )
    neighbours = (test @ train.T).topk(5, dim=1).indices  # (500, 5)
    accuracy = (train_y[neighbours].mode(dim=1).values == test_y).float().mean().item()
    assert 0.4 < accuracy, f"raw-pixel 5-NN accuracy {accuracy:.2f}: the synthetic classes are not learnable"


@pytest.mark.parametrize("limit", [10, 25, 137, 1999])
def test_limit_takes_the_first_images_of_each_class(synthetic_splits, tmp_path, limit):
    full_x, full_y = synthetic_splits["train"]
    with pytest.warns(UserWarning):
        images, labels = load_cifar10("train", synthetic=True, limit=limit, root=tmp_path, verbose=False)
    assert len(labels) == limit
    counts = labels.bincount(minlength=10)
    assert counts.max() - counts.min() <= 1, counts
    expected = torch.cat([torch.nonzero(full_y == c).flatten()[: int(counts[c])] for c in range(10)]).sort().values
    assert_close(images, full_x[expected], rtol=0, atol=0)
    assert_close(labels, full_y[expected])


def test_limit_above_the_split_size_keeps_everything(tiny_layouts, tmp_path):
    images, _ = load_cifar10("test", source=tiny_layouts["folder"], root=tmp_path, limit=10_000, verbose=False)
    assert len(images) == 10 * PER_CLASS


# --------------------------------------------------------------------------------------
# Real data (../shared/data/cifar10-jpeg)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_test_split(cifar_source, data_root):
    return load_cifar10("test", source=cifar_source / "test.tar.gz", root=data_root, verbose=False)


@pytest.mark.realdata
def test_real_test_split_from_the_archive(real_test_split):
    images, labels = real_test_split
    assert images.shape == (10_000, 32, 32, 3) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and int(labels.min()) == 0 and int(labels.max()) == 9
    assert_close(labels.bincount(), torch.full((10,), 1000))
    mean = images.float().mean(dim=(0, 1, 2)) / 255  # (3,)
    assert_close(mean, torch.tensor(CIFAR10_MEAN), rtol=0, atol=0.01)


@pytest.mark.realdata
def test_real_folder_source_is_the_same_data_and_a_fast_cache_hit(real_test_split, cifar_source, data_root, capsys):
    start = time.perf_counter()
    images, labels = load_cifar10("test", source=cifar_source, root=data_root)
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "; cached in" in out and "10,000 images" in out, out
    assert seconds < 1.0, f"a cached load took {seconds:.2f} s"
    assert_close(images, real_test_split[0], rtol=0, atol=0)
    assert_close(labels, real_test_split[1])


def test_names_carrying_the_split_index_give_that_order(tmp_path):
    """A copy whose file names are CIFAR-10's own index over the whole split is returned in that order."""
    base = tmp_path / "indexed"
    order = torch.randperm(30, generator=torch.Generator().manual_seed(3))  # image k is file number order[k]
    labels = torch.arange(30) % 10
    for k in range(30):
        folder = base / "test" / CIFAR10_CLASSES[int(labels[k])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_tiny_image("test", int(labels[k]), k)).save(folder / f"{int(order[k]):05d}.png")
    images, got_labels = load_cifar10("test", source=base, root=tmp_path / "root", verbose=False)
    by_index = torch.argsort(order)  # file number i holds image by_index[i]
    assert_close(got_labels, labels[by_index])
    assert_close(
        images,
        torch.from_numpy(np.stack([_tiny_image("test", int(labels[k]), k) for k in by_index.tolist()])),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_source_gives_a_class_mixed_order(tiny_layouts, synthetic_splits, fake_torchvision, tmp_path, split):
    """No source returns its split sorted by class: the first 10 images hold several classes."""
    folder = load_cifar10(split, source=tiny_layouts["folder"], root=tmp_path / "a", verbose=False)[1]
    archive = load_cifar10(split, source=tiny_layouts["archive, nested"], root=tmp_path / "b", verbose=False)[1]
    torchvision_labels = load_cifar10(split, root=tmp_path / "c", verbose=False)[1]
    for labels in (folder, archive, synthetic_splits[split][1], torchvision_labels):
        assert len(labels[:10].unique()) >= 4, labels[:10]
    assert_close(folder, archive)


@pytest.mark.realdata
def test_real_copy_is_class_mixed_and_the_same_from_folder_and_archive(real_test_split, cifar_source, data_root):
    """The real copy (names numbered per class) comes back mixed: the first nine images are not nine airplanes."""
    images, labels = real_test_split
    assert len(labels[:9].unique()) >= 5, labels[:9]
    assert int(labels[:100].bincount(minlength=10).min()) > 0, "every class among the first 100 images"
    folder_images, folder_labels = load_cifar10("test", source=cifar_source, root=data_root / "other", verbose=False)
    assert_close(folder_labels, labels)
    assert_close(folder_images, images, rtol=0, atol=0)


@pytest.mark.realdata
def test_real_limit_is_class_balanced(real_test_split, cifar_source, data_root):
    images, labels = load_cifar10("test", source=cifar_source, root=data_root, limit=50, verbose=False)
    assert_close(labels.bincount(), torch.full((10,), 5))
    full_images, full_labels = real_test_split
    first_five = torch.cat([torch.nonzero(full_labels == c).flatten()[:5] for c in range(10)]).sort().values
    assert_close(images, full_images[first_five], rtol=0, atol=0)


# --------------------------------------------------------------------------------------
# Transforms, dataset, collate, loaders
# --------------------------------------------------------------------------------------


def _random_uint8_image(seed: int = 0, size: int = 32) -> torch.Tensor:
    """Shape: (3, size, size) uint8."""
    return torch.randint(0, 256, (3, size, size), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.parametrize("kind", ["tensor", "pil"])
@pytest.mark.parametrize("size", [32, 64])
def test_two_view_transform_gives_two_different_float_views(kind, size):
    image = _random_uint8_image()
    if kind == "pil":
        image = Image.fromarray(image.permute(1, 2, 0).numpy())
    torch.manual_seed(0)
    view1, view2 = TwoViewTransform(size=size)(image)
    for view in (view1, view2):
        assert type(view) is torch.Tensor and view.dtype == torch.float32
        assert view.shape == (3, size, size)
        assert 0.0 <= float(view.min()) and float(view.max()) <= 1.0
    assert not torch.equal(view1, view2), "the two views must be augmented independently"


def test_two_view_transform_is_the_seed_pipeline_with_its_parameters():
    transform = TwoViewTransform(size=32, s=0.5, blur_p=0.3, crop_scale=(0.3, 0.9))
    steps = {type(step).__name__: step for step in transform.transform.transforms}
    assert steps["RandomResizedCrop"].scale == (0.3, 0.9) and list(steps["RandomResizedCrop"].size) == [32, 32]
    jitter_apply, blur_apply = [s for s in transform.transform.transforms if type(s).__name__ == "RandomApply"]
    jitter, blur = jitter_apply.transforms[0], blur_apply.transforms[0]
    assert jitter_apply.p == 0.8 and blur_apply.p == 0.3
    assert_close(torch.tensor(jitter.brightness), torch.tensor([0.6, 1.4]))
    assert_close(torch.tensor(jitter.hue), torch.tensor([-0.1, 0.1]))
    assert list(blur.kernel_size) == [3, 3] and list(blur.sigma) == [0.1, 2.0]
    assert steps["RandomGrayscale"].p == 0.2
    assert list(TwoViewTransform(size=96).transform.transforms[5].transforms[0].kernel_size) == [5, 5]
    text = repr(transform)
    assert text.startswith("TwoViewTransform(size=32, s=0.5, blur_p=0.3, crop_scale=(0.3, 0.9))")
    assert "ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1) with p=0.8" in text


def test_two_view_transform_is_reproducible_and_picklable():
    transform, image = TwoViewTransform(), _random_uint8_image(1)
    torch.manual_seed(3)
    first = transform(image)
    torch.manual_seed(3)
    assert_close(transform(image), first)
    assert_close(pickle.loads(pickle.dumps(transform))(image)[0].shape, first[0].shape)  # DataLoader workers


def test_eval_transform_scales_to_unit_range_exactly():
    image = _random_uint8_image(2)
    assert_close(eval_transform(image), image.float() / 255)
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    assert_close(eval_transform(pil), image.float() / 255)


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_cifar10_tensors_items(layout):
    images = torch.stack([_random_uint8_image(i).permute(1, 2, 0) for i in range(6)])  # (6, 32, 32, 3)
    labels = torch.arange(6) % 3
    stored = images if layout == "HWC" else images.permute(0, 3, 1, 2).contiguous()
    dataset = CIFAR10Tensors(stored, labels)
    assert len(dataset) == 6
    x, y = dataset[4]
    assert_close(x, images[4].permute(2, 0, 1).float() / 255)
    assert y == 1 and isinstance(y, int)
    seen = []
    CIFAR10Tensors(stored, labels, transform=lambda img: seen.append(img) or "out")[2]
    assert seen[0].dtype == torch.uint8 and seen[0].shape == (3, 32, 32)
    assert_close(seen[0], images[2].permute(2, 0, 1))
    assert CIFAR10Tensors(stored, None)[0][1] == -1


@pytest.mark.parametrize("bad", ["float images", "one channel", "label count"])
def test_cifar10_tensors_rejects_bad_inputs(bad):
    images, labels = torch.zeros(4, 32, 32, 3, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    if bad == "float images":
        images = images.float()
    elif bad == "one channel":
        images = images[..., :1]
    else:
        labels = labels[:3]
    with pytest.raises(ValueError):
        CIFAR10Tensors(images, labels)


def test_two_view_collate_stacks_views_and_labels():
    batch = [
        ((torch.full((3, 8, 8), float(i)), torch.full((3, 8, 8), -float(i))), label)
        for i, label in enumerate([3, torch.tensor(7), 1])
    ]
    x1, x2, y = two_view_collate(batch)
    assert x1.shape == x2.shape == (3, 3, 8, 8)
    assert_close(x1[:, 0, 0, 0], torch.tensor([0.0, 1.0, 2.0]))
    assert_close(x2[:, 0, 0, 0], -torch.tensor([0.0, 1.0, 2.0]))
    assert_close(y, torch.tensor([3, 7, 1]))


@pytest.fixture(scope="module")
def forty_images():
    gen = torch.Generator().manual_seed(5)
    return torch.randint(0, 256, (40, 32, 32, 3), generator=gen, dtype=torch.uint8), torch.arange(40)


def _copy_pair(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A cheap stand-in for TwoViewTransform where only the loader's order matters."""
    return image, image.clone()


def test_two_view_loader_shuffles_by_default_and_drops_the_last_batch(forty_images):
    images, ids = forty_images

    def epoch(seed: int) -> torch.Tensor:
        loader = make_two_view_loader(
            images,
            ids,
            batch_size=16,
            transform=_copy_pair,
            num_workers=0,
            generator=torch.Generator().manual_seed(seed),
        )
        batches = list(loader)
        assert [len(y) for _, _, y in batches] == [16, 16]  # 40 // 16, the incomplete batch dropped
        for x1, _, y in batches:  # each pair still belongs to its label
            assert_close(x1, images[y].permute(0, 3, 1, 2))
        return torch.cat([y for _, _, y in batches])

    seen = epoch(0)
    assert len(set(seen.tolist())) == 32
    assert not torch.equal(seen, torch.arange(32)), "make_two_view_loader must shuffle by default (seed erratum 3)"
    assert_close(epoch(0), seen)  # the generator makes the order reproducible
    assert not torch.equal(epoch(1), seen)


def test_two_view_loader_default_transform_and_options(forty_images):
    images, ids = forty_images
    loader = make_two_view_loader(images[:10], ids[:10], batch_size=4, num_workers=0, shuffle=False, drop_last=False)
    assert isinstance(loader.dataset.transform, TwoViewTransform)
    batches = list(loader)
    assert [len(b[2]) for b in batches] == [4, 4, 2]
    assert_close(torch.cat([b[2] for b in batches]), torch.arange(10))
    x1, x2, y = batches[0]
    assert x1.shape == x2.shape == (4, 3, 32, 32) and x1.dtype == x2.dtype == torch.float32
    assert 0 <= float(x1.min()) and float(x1.max()) <= 1 and not torch.equal(x1, x2)


def test_eval_loader_keeps_order_and_every_image(forty_images):
    images, ids = forty_images
    batches = list(make_eval_loader(images, ids, batch_size=16))
    assert [len(y) for _, y in batches] == [16, 16, 8]
    x = torch.cat([b[0] for b in batches])  # (40, 3, 32, 32)
    assert_close(x, images.permute(0, 3, 1, 2).float() / 255)
    assert_close(torch.cat([b[1] for b in batches]), ids)


# --------------------------------------------------------------------------------------
# data/prepare.py
# --------------------------------------------------------------------------------------


def _prepare_module(project_root: Path):
    spec = importlib.util.spec_from_file_location("ssl_lab_data_prepare", project_root / "data" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_loads_and_caches_both_splits(project_root, tiny_layouts, tmp_path, capsys):
    prepare = _prepare_module(project_root)
    root = tmp_path / "root"
    assert prepare.main(["--source", str(tiny_layouts["nested folder"]), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "CIFAR-10 train: 30 images" in out and "CIFAR-10 test: 30 images" in out
    assert "airplane=3" in out and "per-channel mean" in out
    assert len(_cache_files(root)) == 2


def test_prepare_reports_a_missing_source(project_root, tmp_path, capsys):
    prepare = _prepare_module(project_root)
    assert prepare.main(["--source", str(tmp_path / "nowhere"), "--root", str(tmp_path)]) == 1
    assert "SSL_LAB_CIFAR10" in capsys.readouterr().err


def test_class_balanced_indices():
    """Round-robin over the classes, sorted, nested, whole set when n >= N."""
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1, 2, 2, 2, 2])
    chosen = class_balanced_indices(labels, 6)
    assert chosen.tolist() == sorted(chosen.tolist())
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [2, 2, 2]
    assert set(class_balanced_indices(labels, 3).tolist()) <= set(chosen.tolist())
    assert class_balanced_indices(labels, 100).tolist() == list(range(12))
    assert class_balanced_indices(None, 5, size=3).tolist() == [0, 1, 2]
    counts = torch.bincount(labels[class_balanced_indices(labels, 7)], minlength=3).tolist()
    assert sorted(counts) == [2, 2, 3]
