"""What machine a benchmark ran on, in the same words and file-name slugs for every record."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

import torch

from helpers.runtime import available_cpus


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def describe_device(device: torch.device) -> tuple[str, str]:
    """(device name, file-name slug), e.g. ("NVIDIA H100 80GB HBM3", "nvidia-h100-80gb-hbm3")
    or ("AMD EPYC (2 CPUs)", "cpu-amd-epyc-2cpu")."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return name, slug(name)
    cpus = available_cpus()
    model = cpu_model()
    return f"{model} ({cpus} CPUs)", f"cpu-{slug(model)}-{cpus}cpu"


def describe_environment(device: torch.device) -> dict[str, Any]:
    """The device and the software a record was measured with, under the same keys in every record
    that carries them: device, device_name, device_slug, the torch, torchvision, CUDA, cuDNN and
    Python versions, cpu_model and cpu_count."""
    import torchvision

    device_name, device_slug = describe_device(device)
    return {
        "device": device.type,
        "device_name": device_name,
        "device_slug": device_slug,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python_version": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": available_cpus(),
    }


def machine_summary() -> dict[str, Any]:
    """The machine of a grading benchmark's record: CPU model, logical CPUs, platform, memory in GiB."""
    import psutil

    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
