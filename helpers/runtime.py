"""Reproducibility and device selection, the first cell of every notebook, and the CPUs there are."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def set_seed(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU).

    Args:
        seed: the seed.
        deterministic: also ask cuDNN for deterministic kernels (slower; only needed when
            two GPU runs must agree to the last bit).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA if present, then Apple's MPS, else the CPU.

    `prefer` (or the environment variable SSL_LAB_DEVICE) forces one, e.g. "cpu".
    """
    prefer = prefer or os.environ.get("SSL_LAB_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def smoke_mode() -> bool:
    """True when SSL_LAB_SMOKE is set to a true value: tiny data, one short epoch.

    CI executes every notebook this way on a CPU; students never need it.
    """
    return os.environ.get("SSL_LAB_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}


def available_cpus() -> int:
    """The number of CPU cores this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
