"""Fetch CIFAR-10 and fill the decoded-split cache, so notebooks start without waiting.

Usage (from the project root, or anywhere):

    python data/prepare.py                       # torchvision download into data/
    python data/prepare.py --source ~/cifar10-jpeg   # a local folder or .tar.gz (see data/README.md)
    SSL_LAB_CIFAR10=~/cifar10-jpeg python data/prepare.py

It loads both splits with `helpers.data.load_cifar10` (same source order as the notebooks)
and prints, per split, where the images came from, how many there are per class, and the
per-channel mean. Exit status 1 with the loader's explanation when no source works.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DATA_DIR.parent))  # `python data/prepare.py` puts data/ first on the path

from helpers.data import CIFAR10_CLASSES, SPLITS, DataSourceError, load_cifar10  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None,
                        help="local CIFAR-10: a folder (train/<class>/*, test/<class>/*), a folder "
                             "holding train.tar.gz/test.tar.gz, or a .tar.gz (default: "
                             "$SSL_LAB_CIFAR10, else the torchvision download)")
    parser.add_argument("--root", default=str(DATA_DIR),
                        help="download and cache folder (default: this data/ folder)")
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both")
    parser.add_argument("--no-download", action="store_true",
                        help="do not let torchvision download; fail if the data is not there")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    splits = SPLITS if args.split == "both" else (args.split,)
    for split in splits:
        start = time.perf_counter()
        try:
            images, labels = load_cifar10(split, source=args.source, root=args.root,
                                          download=not args.no_download, verbose=True)
        except DataSourceError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        counts = labels.bincount(minlength=len(CIFAR10_CLASSES)).tolist()
        mean = (images.float().mean(dim=(0, 1, 2)) / 255).tolist()  # (3,) RGB in [0, 1]
        print(f"  {split}: images {tuple(images.shape)} {images.dtype}, per class "
              + " ".join(f"{name}={count}" for name, count in zip(CIFAR10_CLASSES, counts)))
        print(f"  {split}: per-channel mean {[round(m, 4) for m in mean]}, "
              f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
