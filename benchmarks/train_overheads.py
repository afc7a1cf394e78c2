"""Two costs around the training step that `fit` and the benchmarks choose: the optimiser step
and writing the resumable training state.

1. **SGD step** (momentum 0.9, weight decay 5e-4, the recipes' optimiser) over the parameters
   of the solution notebook's ``SimCLRModel`` (ResNet-18 + 512-2048-128 head), with random
   gradients: torch's three implementations, ``foreach=False`` (a loop over the tensors),
   ``foreach=True`` (grouped kernels) and ``fused=True`` (one kernel per group), median seconds
   per step. `time_to_accuracy.py` uses the fused one where torch has it for the device.
2. **Training checkpoint**: the payload `helpers.train.fit` writes (model, optimiser state,
   history, RNG states), written with fit's own atomic writer (``torch.save`` to a temporary
   file, fsync, rename), median seconds and size. On a GPU this includes copying the state to
   the host. It is what ``checkpoint_minutes`` saves per epoch that is not checkpointed.

Usage (from the project root)::

    python benchmarks/train_overheads.py                 # this machine's default device
    python benchmarks/train_overheads.py --device cuda --results-dir "$OUT"
    python benchmarks/train_overheads.py --smoke         # tiny model, for the tests

Writes ``train_overheads-<device>.json`` to ``--results-dir`` (default ``benchmarks/results/``;
smoke runs only where ``--results-dir`` says).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.machine import available_cpus, cpu_model, describe_device  # noqa: E402
from helpers.recipes import SIMCLR  # noqa: E402

DEFAULT_RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
IMPLEMENTATIONS = ("for-loop", "foreach", "fused")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(device: torch.device, smoke: bool) -> torch.nn.Module:
    """The solution notebook's SimCLRModel at the recipe's sizes (smoke: a small MLP)."""
    torch.manual_seed(0)
    if smoke:
        return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32)).to(device)
    from benchmarks.time_to_accuracy import load_reference_code

    reference = load_reference_code()
    return reference["SimCLRModel"](proj_dim=SIMCLR.proj_dim, hidden_dim=SIMCLR.proj_hidden_dim).to(device)


def time_optimizer_step(model: torch.nn.Module, implementation: str, device: torch.device, repeats: int) -> dict:
    """Median seconds of one SGD step with the recipe's settings, after two warm-up steps."""
    options = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[implementation]
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = SIMCLR.optimizer(params, **options)
    except (RuntimeError, TypeError, ValueError) as error:
        return {"implementation": implementation, "error": f"{type(error).__name__}: {error}"[:300]}
    generator = torch.Generator(device=device).manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator, device=device, dtype=p.dtype) * 1e-3
    times = []
    try:
        for i in range(repeats + 2):
            _sync(device)
            started = time.perf_counter()
            optimizer.step()
            _sync(device)
            if i >= 2:
                times.append(time.perf_counter() - started)
    except RuntimeError as error:  # e.g. no fused kernel for this device in this torch
        return {"implementation": implementation, "error": f"{type(error).__name__}: {error}"[:300]}
    return {
        "implementation": implementation,
        "median_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "repeats": len(times),
    }


def time_checkpoint(model: torch.nn.Module, device: torch.device, repeats: int) -> dict:
    """Median seconds of fit's checkpoint write (its payload, its writer) and the file's size."""
    from helpers.history import History
    from helpers.training_state import save_training_state

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():  # one step, so the optimiser holds its momentum buffers
        p.grad = torch.zeros_like(p)
    optimizer.step()
    history = History()
    for epoch in range(100):
        history.append(epoch=epoch + 1, loss=1.0, lr=0.1, seconds=4.0)
    times, size = [], 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fit.pt"
        for _ in range(repeats):
            _sync(device)
            started = time.perf_counter()
            save_training_state(
                path,
                config={},
                finished_epochs=100,
                model=model,
                optimizer=optimizer,
                extra_state={},
                scaler=None,
                base_lrs=[0.1],
                history=history,
            )
            times.append(time.perf_counter() - started)
            size = path.stat().st_size
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
        "size_mb": size / 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", help="cuda or cpu (default: CUDA if available)")
    parser.add_argument("--repeats", type=int, default=20, help="timed optimiser steps per implementation")
    parser.add_argument("--checkpoint-repeats", type=int, default=5, help="timed checkpoint writes")
    parser.add_argument("--results-dir", help="where the record goes (default benchmarks/results/)")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, for the tests")
    args = parser.parse_args(argv)
    if args.smoke and args.results_dir is None:
        parser.error("--smoke needs --results-dir (smoke records never go to benchmarks/results/)")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name, device_slug = describe_device(device)
    model = build_model(device, args.smoke)
    repeats = 3 if args.smoke else args.repeats
    steps = [time_optimizer_step(model, implementation, device, repeats) for implementation in IMPLEMENTATIONS]
    checkpoint = time_checkpoint(model, device, 2 if args.smoke else args.checkpoint_repeats)
    record = {
        "benchmark": "train_overheads",
        "smoke": bool(args.smoke),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/train_overheads.py" + (" " + " ".join(argv) if argv else ""),
        "device": device.type,
        "device_name": name,
        "device_slug": device_slug,
        "torch_version": torch.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": available_cpus(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "model": "tiny MLP (smoke)" if args.smoke else "solutions' SimCLRModel (ResNet-18, 512-2048-128 head)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "sgd_step": steps,
        "checkpoint_write": checkpoint,
    }
    folder = Path(args.results_dir) if args.results_dir else DEFAULT_RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"train_overheads-{device_slug}{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    for row in steps:
        shown = f"{row['median_ms']:.2f} ms" if "median_ms" in row else row["error"]
        print(f"SGD step, {row['implementation']}: {shown}")
    print(f"checkpoint write: {checkpoint['median_s']:.3f} s median, {checkpoint['size_mb']:.1f} MB; record {path}")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
