"""Throughput of SimCLR's two-view augmentation: per image on CPU workers vs batched on the device.

Measures, on one machine in one run, how many CIFAR-10-sized source images per second
(each turned into TWO augmented 32x32 views) come out of

(a) the seeds' per-image torchvision pipeline (`helpers.data.TwoViewTransform`, the
    ``SimCLRTransform`` of EPFL exercise 2 on ``torchvision.transforms.v2``) run by
    ``--workers`` DataLoader worker processes over uint8 images, collated into batches
    (`helpers.data.two_view_collate`), and
(b) `helpers.augment.BatchTwoViewAugment` on a uint8 batch that already sits on the device
    (CUDA when available, else the CPU; every image with its own random parameters),

prints both and their ratio, and writes a JSON record to
``benchmarks/results/augment_throughput-<device-slug>.json``.

Usage (from the project root)::

    python benchmarks/augment_throughput.py                      # random uint8 images
    python benchmarks/augment_throughput.py --source ../shared/data/cifar10-jpeg
    python benchmarks/augment_throughput.py --smoke --results-dir /tmp/results   # CI-sized

Both measurements warm up first (worker start-up, first-call allocations, CUDA kernels)
and time a steady state of about ``--seconds`` each; CUDA work is synchronised before the
clock is read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import psutil
import torch
from torch.utils.data import DataLoader, RandomSampler

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # run as a script: make `helpers` importable
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.machine import available_cpus, cpu_model, describe_device  # noqa: E402
from helpers.augment import BatchTwoViewAugment  # noqa: E402

DEFAULT_RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
UNIT = "source images per second (each image yields two augmented 32x32 views)"


# ---------------------------------------------------------------------------- images
def load_images(source: str | None, num_images: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """uint8 images, Shape: (N, 32, 32, 3): real CIFAR-10 from `source`, else random pixels.

    Random pixels cost the same to augment as real ones (no op's cost depends on content).
    """
    if source:
        from helpers.data import load_cifar10

        images, _ = load_cifar10("train", source=source, limit=num_images, verbose=False)
        return images, f"CIFAR-10 train images from {source}"
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num_images, 32, 32, 3), dtype=torch.uint8, generator=generator)
    return images, "random uint8 images of CIFAR-10 shape (32, 32, 3)"


# ---------------------------------------------------------------------------- (a) per image
def _per_image_pipeline():
    """(images -> dataset of view pairs, collate function, name) for the seeds' SimCLRTransform."""
    from helpers.data import CIFAR10Tensors, TwoViewTransform, two_view_collate

    def make_dataset(images):
        return CIFAR10Tensors(images, None, transform=TwoViewTransform())

    return make_dataset, two_view_collate, "helpers.data.TwoViewTransform"


class CpuClock:
    """CPU seconds used by this process and its children (the DataLoader workers) together.

    Wall-clock throughput is what the benchmark reports; CPU time beside it shows whether
    the machine was shared: images per CPU-second hardly change with other load, images per
    second do.
    """

    def __init__(self) -> None:
        self._process = psutil.Process()

    def __call__(self) -> float:
        total = sum(self._process.cpu_times()[:2])  # user + system of this process, all threads
        for child in self._process.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:  # a worker that just exited
                pass
        return total


def _measurement(count: int, wall: float, cpu: float) -> dict[str, float]:
    return {
        "images": count,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "images_per_s": count / wall,
        "images_per_cpu_s": count / max(cpu, 1e-9),
    }


def measure_per_image(
    images: torch.Tensor, batch_size: int, workers: int, seconds: float, warmup_batches: int
) -> tuple[dict[str, float], str]:
    """Throughput of the per-image torchvision pipeline in DataLoader workers (steady state)."""
    make_dataset, collate, name = _per_image_pipeline()
    dataset = make_dataset(images)
    # One endless epoch of random indices: no epoch boundary drains the worker pipeline.
    sampler = RandomSampler(dataset, replacement=True, num_samples=10**9, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=True,
        persistent_workers=False,
    )
    batches = iter(loader)
    for _ in range(warmup_batches):  # workers start and reach their steady state
        next(batches)
    cpu_clock = CpuClock()
    count, cpu_start, start = 0, cpu_clock(), time.perf_counter()
    while True:
        x1, x2, _ = next(batches)
        count += x1.shape[0]
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    cpu = cpu_clock() - cpu_start
    del batches  # shuts the workers down
    return _measurement(count, elapsed, cpu), name


# ---------------------------------------------------------------------------- (b) batched
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_batched(
    images: torch.Tensor, batch_size: int, device: torch.device, seconds: float, warmup_batches: int, chunk: int = 10
) -> dict[str, float]:
    """Throughput of BatchTwoViewAugment on `device`, the uint8 images already resident there."""
    augment = BatchTwoViewAugment().to(device)
    resident = images.to(device)  # (N, 32, 32, 3) uint8 on the device
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        index = torch.randint(0, resident.shape[0], (batch_size,), device=device, generator=generator)
        augment(resident[index], generator=generator)  # two (B, 3, 32, 32) views

    cpu_clock = CpuClock()
    with torch.no_grad():
        for _ in range(warmup_batches):
            step()
        _synchronize(device)
        count, cpu_start, start = 0, cpu_clock(), time.perf_counter()
        while True:  # whole chunks between synchronisations: no per-batch host-device sync
            for _ in range(chunk):
                step()
            _synchronize(device)
            count += chunk * batch_size
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return _measurement(count, elapsed, cpu_clock() - cpu_start)


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="DataLoader worker processes for the per-image pipeline (default: CPU count)",
    )
    parser.add_argument("--batch-size", type=int, help="images per batch (default 512; smoke 32)")
    parser.add_argument("--seconds", type=float, help="timed seconds per measurement (default 20; smoke 0.3)")
    parser.add_argument(
        "--source",
        help="real CIFAR-10 (folder or .tar.gz, via helpers.data.load_cifar10); "
        "default: random uint8 images of CIFAR-10 shape",
    )
    parser.add_argument("--num-images", type=int, help="images to draw batches from (default 10000; smoke 256)")
    parser.add_argument("--device", help="device of (b) (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, help="torch CPU threads during (b) (default: torch's, one per core)")
    parser.add_argument(
        "--results-dir",
        help=f"where the JSON record goes (default {DEFAULT_RESULTS_DIR.relative_to(PROJECT_ROOT)}; "
        "with --smoke no record unless given)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny and fast, for CI: checks that it runs")
    return parser.parse_args(argv)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def main(argv: list[str] | None = None) -> dict:
    """Run both measurements, print them, write the JSON record and return it."""
    command_args = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    smoke = args.smoke
    cpus = available_cpus()
    workers = args.workers if args.workers is not None else (min(1, cpus) if smoke else cpus)
    batch_size = args.batch_size or (32 if smoke else 512)
    seconds = args.seconds if args.seconds is not None else (0.3 if smoke else 20.0)
    num_images = args.num_images or (256 if smoke else 10_000)
    if workers < 0 or batch_size < 1 or seconds <= 0 or num_images < batch_size:
        raise SystemExit("need --workers >= 0, --batch-size >= 1, --seconds > 0 and --num-images >= --batch-size")
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device_name, device_slug = describe_device(device)
    threads = args.threads or torch.get_num_threads()

    images, source = load_images(args.source, num_images)
    load_before = _load_average()
    print(
        f"augment throughput on {device_name}: {len(images)} {source}, batch {batch_size}, "
        f"{seconds:g} s per measurement, torch {torch.__version__}, load average {load_before}"
    )

    per_image, pipeline = measure_per_image(images, batch_size, workers, seconds, warmup_batches=max(2, 2 * workers))
    print(
        f"(a) per-image torchvision ({pipeline}), {workers} DataLoader workers: "
        f"{per_image['images_per_s']:,.0f} images/s ({per_image['images_per_cpu_s']:,.0f} per CPU-second)"
    )
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batched = measure_batched(images, batch_size, device, seconds, warmup_batches=1 if smoke else 3)
    finally:
        torch.set_num_threads(threads_before)
    print(
        f"(b) BatchTwoViewAugment on {device.type} ({device_name}, {threads} CPU threads): "
        f"{batched['images_per_s']:,.0f} images/s ({batched['images_per_cpu_s']:,.0f} per CPU-second)"
    )
    ratio = batched["images_per_s"] / per_image["images_per_s"]
    print(f"ratio (b) / (a): {ratio:.2f}x   [{UNIT}]")
    load_after = _load_average()
    if max(load_before or 0, load_after or 0) > cpus:
        print(
            f"note: the load average ({load_before} -> {load_after}) exceeded the {cpus} CPUs: other processes "
            f"shared them, so images/s are low; images per CPU-second are the steadier comparison"
        )

    import torchvision

    record = {
        "benchmark": "augment_throughput",
        "unit": UNIT,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/augment_throughput.py", *command_args]),
        "device": device.type,
        "device_name": device_name,
        "device_slug": device_slug,
        "cpu_model": cpu_model(),
        "cpu_count": cpus,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "python_version": platform.python_version(),
        "source": source,
        "num_images": len(images),
        "batch_size": batch_size,
        "seconds_per_measurement": seconds,
        "workers": workers,
        "batched_cpu_threads": threads,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "per_image_pipeline": pipeline,
        "per_image_images_per_s": round(per_image["images_per_s"], 1),
        "batched_images_per_s": round(batched["images_per_s"], 1),
        "ratio": round(ratio, 3),
        "per_image_images_per_cpu_s": round(per_image["images_per_cpu_s"], 1),
        "batched_images_per_cpu_s": round(batched["images_per_cpu_s"], 1),
        "per_image_measurement": {k: round(v, 3) for k, v in per_image.items()},
        "batched_measurement": {k: round(v, 3) for k, v in batched.items()},
        "smoke": smoke,
    }
    results_dir = args.results_dir or (None if smoke else DEFAULT_RESULTS_DIR)
    if results_dir is not None:
        path = Path(results_dir) / f"augment_throughput-{device_slug}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"record written to {path}")
        record["path"] = str(path)
    return record


if __name__ == "__main__":
    main()
