"""What a submission's worker may use: time per call and in all, memory, disk, processes,
and the modules its zygote imports up front."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: Modules the zygote imports once so that every worker (re)start is fast.
PRELOAD = (
    "numpy",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.utils.data",
    "torchvision",
    "sklearn.neighbors",
    "sklearn.linear_model",
    "sklearn.metrics",
    "matplotlib",
    "matplotlib.pyplot",
    "tqdm",
    "tqdm.auto",
    "IPython.display",
    "kornia",
    "helpers",
    "helpers.data",
    "helpers.augment",
    "helpers.models",
    "helpers.checkpoint",
    "helpers.probes",
    "helpers.train",
    "helpers.recipes",
    "helpers.plots",
    "helpers.checks",
)
#: Caps on one answer of the worker: the grader's memory stays bounded whatever a submission returns.
MAX_RESPONSE_HEADER = 2 * 2**20
MAX_RESPONSE_PAYLOAD = 32 * 2**20
DISK_INODES = 20_000  # files a worker may create outside a tmpfs of its own (uid, process modes)


def _available_memory_mb() -> int:
    available = psutil.virtual_memory().available
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            available = min(available, int(limit) - usage)
    return max(0, available // 2**20)


def preload_for(imported: set[str]) -> tuple[str, ...]:
    """The allow-listed PRELOAD modules a submission imports (plus torch): what its zygote
    should import once. Nothing outside the allow-list is ever imported in the zygote."""
    return tuple(
        m
        for m in PRELOAD
        if m == "torch" or any(i == m or i.startswith(m + ".") or m.startswith(i + ".") for i in imported)
    )


def default_memory_mb() -> int:
    """Memory a worker may use above its start-up size: half of what is free, 256-1536 MB."""
    return int(min(1536, max(256, _available_memory_mb() // 2)))


@dataclass
class Limits:
    """Per-worker limits.

    Attributes:
        call_timeout: seconds one call of the submission's code may take.
        load_timeout: seconds one top-level statement may take while the submission is loaded
            (an import of a library the sandbox did not preload can be slow on a busy machine).
        start_timeout: seconds the worker may take to start (imports torch & co.).
        memory_mb: memory above the worker's start-up size (address space and RSS).
        file_mb: largest file the worker may write.
        tmp_mb: size of its private /tmp and /dev/shm (namespace mode).
        processes: RLIMIT_NPROC of the sandbox user (threads count too; not in process mode).
        budget_s: wall time of the submission's code in all (loading, calls and the grader's
            answers to its requests); when it is used up, the remaining tests fail at once.
        load_total: seconds all statements together may take to load (each has `load_timeout`).
    """

    call_timeout: float = 10.0
    load_timeout: float = 30.0
    start_timeout: float = 240.0
    memory_mb: int = field(default_factory=default_memory_mb)
    file_mb: int = 64
    tmp_mb: int = 256
    processes: int = 512
    budget_s: float = 60.0
    load_total: float = 60.0


@dataclass
class Budget:
    """Wall time a submission's code may take in all: loading, every call, and the grader's
    answers to its requests during a call (`Limits.budget_s`)."""

    seconds: float
    used: float = 0.0

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.used)
