"""The prepared measurement run for a machine with a CUDA GPU: one command, run once or twice.

Time on a GPU is scarce (a lent machine for minutes, one command at most ~10 minutes), so this
script does everything that needs one, in order of value, within a time budget per call, and
continues where it stopped when the same command runs again on the same (still warm) machine:

1. **environment**: GPU, driver (``nvidia-smi``), torch / CUDA / cuDNN versions, and the
   accelerator's dense matrix-product throughput (bf16, fp16, fp32 TF32-off; 8192^3).
2. **cuda_tests**: every test of ``tests/`` that is skipped without CUDA (found by reading the
   test files: a ``skipif(not torch.cuda.is_available(), ...)`` on the test, its class or the
   module), run with pytest; outcome per test.
3. **paths_bf16**: each method's training step (the solution notebook's SimCLR, BYOL and
   Barlow Twins steps, the recipes' batch size and fused SGD) through `helpers.train.fit` on
   the full training split for ``--path-epochs`` epochs (default 2) with bf16 autocast;
   seconds per epoch (the first, with the warm-up, and the last), images per second, peak
   GPU memory, the losses, and any error -- a failing configuration never stops the others.
4. **time_to_accuracy**: `time_to_accuracy.py --method simclr` to the end of the recipe
   (100 epochs), k-NN monitor and the final linear probe, with ``--max-minutes`` set to what
   is left of this call; unfinished, it continues from its checkpoint in the next call.
5. **paths_fp16**: as 3 with fp16 autocast and `helpers.train.DynamicLossScaler` (the path of
   GPUs without bf16, e.g. Colab's T4).
6. **seed_pipeline**: `time_to_accuracy.py --seed-pipeline`: a few epochs of the seeds'
   original pipeline and of the fast path, one after the other, for the speed-up ratio.
7. **paths_compile**: as 3 and 5 with ``fit(compile=True)`` (its compilation in the first epoch).
8. **train_overheads**: `train_overheads.py` (optimiser step implementations, checkpoint writes).

Each step runs in its own process with a deadline (a crash, a hang or a poisoned CUDA context
costs that step only); a step that does not fit what is left of ``--minutes`` is left for the
next call. Everything goes to ``--out`` (default ``$OUT``): ``gpu_session-<device>.json`` (the
session record: every step's result, error and timing, and every call), the records of
`time_to_accuracy.py` (``time_to_accuracy-simclr-100ep-<device>.json``,
``seed_pipeline-simclr-<device>.json``) and `train_overheads.py`, and the whole log
(``gpu_session-<device>.log``): at most 5 files, each far below 16 MiB. The state that lets a
second call continue lives in ``--state-dir`` (default ``checkpoints/gpu_session/``,
git-ignored), so a second call must run on the same machine.

Usage (from the project root; DEVELOPERS.md has the device tool's command lines)::

    python3 benchmarks/gpu_session.py --source .cifar --out "$OUT" --minutes 8.5
    python3 benchmarks/gpu_session.py --source .cifar --out "$OUT" --minutes 3      # the second call
    python benchmarks/gpu_session.py --dry-run --out /tmp/gpu-dry                   # CPU, tiny, 1-2 min

``--dry-run`` runs every step on the CPU with tiny data (the synthetic stand-in unless
``--source`` is given; 8x8 images, a handful of steps, one configuration per method) through
the same code, for CI; its records say ``"smoke": true`` and never claim a GPU figure.
The data: ``--source`` (a CIFAR-10 folder or archive, see data/README.md), else
``../shared/data/cifar10-jpeg`` beside the project, else ``.cifar`` in it.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import gc
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

SCHEMA_VERSION = 1
DEFAULT_STATE_DIR = PROJECT_ROOT / "checkpoints" / "gpu_session"
DATA_CANDIDATES = (PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg", PROJECT_ROOT / ".cifar")
METHODS = ("simclr", "byol", "barlow")
#: The steps, in the order they run. (name, what it is, least seconds worth starting it with)
STEPS = (
    ("environment", "device, driver, versions, matrix-product throughput", 20),
    ("cuda_tests", "every CUDA-only test", 30),
    ("paths_bf16", "each method's step through fit, bf16", 40),
    ("time_to_accuracy", "SimCLR recipe to the end with the linear probe", 60),
    ("paths_fp16", "each method's step through fit, fp16 + loss scaler", 40),
    ("seed_pipeline", "the seeds' pipeline against the fast path", 60),
    ("paths_compile", "each method's step through fit, torch.compile", 60),
    ("train_overheads", "optimiser step implementations, checkpoint writes", 20),
)
PATH_STEPS = {
    "paths_bf16": [(m, "bf16", False) for m in METHODS],
    "paths_fp16": [(m, "fp16", False) for m in METHODS],
    "paths_compile": [(m, "bf16", True) for m in METHODS] + [(m, "fp16", True) for m in METHODS],
}
#: Dry run: one configuration per method, every precision path and compile covered once.
DRY_PATHS = {
    "paths_bf16": [("simclr", "bf16", False)],
    "paths_fp16": [("byol", "fp16", False)],
    "paths_compile": [("barlow", "bf16", True)],
}
RESERVE_SECONDS = 15.0  # kept back at the end of a call: the records must be written in time
MAX_LOG_BYTES = 4 * 2**20


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> None:
    from helpers.files import write_atomically  # here: importing helpers imports torch

    write_atomically(path, lambda file: file.write((json.dumps(data, indent=2) + "\n").encode()), fsync=False)


def _error_text(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "".join(lines)[-3000:]


# ======================================================================================
# Step 1: environment and matrix-product throughput (in a child process)
# ======================================================================================
def _nvidia_smi() -> dict[str, Any]:
    query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-500:]}
    values = [v.strip() for v in done.stdout.strip().splitlines()[0].split(",")]
    return dict(zip(query.split(","), values))


def matmul_throughput(device, dtype, n: int, repeats: int = 10, warmup: int = 3) -> dict[str, Any]:
    """TFLOP/s of an n x n x n product on random data: median of `repeats` timed products."""
    import statistics

    import torch

    name = str(dtype).replace("torch.", "")
    try:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        times = []
        for i in range(warmup + repeats):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.mm(a, b)
                end.record()
                end.synchronize()
                seconds = start.elapsed_time(end) / 1e3
            else:
                started = time.perf_counter()
                torch.mm(a, b)
                seconds = time.perf_counter() - started
            if i >= warmup:
                times.append(seconds)
        median = statistics.median(times)
        return {
            "dtype": name,
            "n": n,
            "repeats": repeats,
            "median_ms": 1e3 * median,
            "tflops": 2 * n**3 / median / 1e12,
        }
    except Exception as error:  # noqa: BLE001 -- recorded, never fatal
        return {"dtype": name, "n": n, "error": f"{type(error).__name__}: {error}"[:500]}


def step_environment(args) -> dict[str, Any]:
    import torch

    from benchmarks.machine import describe_environment

    device = _device(args)
    env: dict[str, Any] = {**describe_environment(device), "hostname_kernel": platform.release()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            capability=f"{props.major}.{props.minor}",
            bf16_native=torch.cuda.is_bf16_supported(including_emulation=False),
            nvidia_smi=_nvidia_smi(),
        )
        torch.backends.cuda.matmul.allow_tf32 = False
        n = 8192
        dtypes = (torch.bfloat16, torch.float16, torch.float32)
    else:
        n = 256
        dtypes = (torch.float32, torch.bfloat16)
    env["matmul"] = [matmul_throughput(device, dtype, n) for dtype in dtypes]
    for row in env["matmul"]:
        shown = f"{row['tflops']:.1f} TFLOP/s" if "tflops" in row else row["error"]
        print(f"matrix product {row['dtype']} {n}^3: {shown}")
    print(
        f"device: {env['device_name']}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
        f"driver {env.get('nvidia_smi', {}).get('driver_version', '-')}"
    )
    return {"status": "done", "environment": env}


def _device(args):
    import torch

    if args.dry_run:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("gpu_session.py needs a CUDA GPU (or --dry-run for the CPU rehearsal)")
    return torch.device("cuda")


# ======================================================================================
# Step 2: the CUDA-only tests
# ======================================================================================
_NEEDS_CUDA = re.compile(r"^not\s+\(?\s*torch\.cuda\.is_available\(\)\s*\)?$")


def _skips_without_cuda(decorators: list[ast.expr]) -> bool:
    for decorator in decorators:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.skipif") and decorator.args:
            if _NEEDS_CUDA.match(ast.unparse(decorator.args[0]).strip()):
                return True
    return False


def cuda_only_tests(tests_dir: Path = PROJECT_ROOT / "tests") -> list[str]:
    """Node ids (``tests/test_x.py::test_y``) of the tests that are skipped without CUDA."""
    found = []
    for path in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        relative = path.relative_to(tests_dir.parent).as_posix()
        module_marked = any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
            and _skips_without_cuda(node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value])
            for node in tree.body
        )
        if module_marked:
            found.append(relative)
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                if _skips_without_cuda(node.decorator_list):
                    found.append(f"{relative}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                if _skips_without_cuda(node.decorator_list):
                    found.append(f"{relative}::{node.name}")
                else:
                    found.extend(
                        f"{relative}::{node.name}::{item.name}"
                        for item in node.body
                        if isinstance(item, ast.FunctionDef)
                        and item.name.startswith("test")
                        and _skips_without_cuda(item.decorator_list)
                    )
    return found


def step_cuda_tests(args, deadline: float) -> dict[str, Any]:
    import xml.etree.ElementTree as ElementTree

    tests = cuda_only_tests()
    if not tests:
        return {"status": "done", "tests": [], "note": "no CUDA-only test found"}
    junit = Path(args.state_dir) / "cuda_tests.xml"
    junit.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", f"--junitxml={junit}", *tests]
    print("$ " + shlex.join(command[1:]), flush=True)
    rc, output, timed_out = _run_child(command, deadline, args)
    outcomes = []
    if junit.is_file():
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                    message = (child.get("message") or child.text or "")[:1500]
            outcomes.append(
                {
                    "test": f"{case.get('classname')}::{case.get('name')}",
                    "outcome": outcome,
                    "seconds": float(case.get("time") or 0.0),
                    "message": message,
                }
            )
    counts = {k: sum(o["outcome"] == k for o in outcomes) for k in ("passed", "failed", "error", "skipped")}
    status = "timed out" if timed_out else "done"
    return {
        "status": status,
        "returncode": rc,
        "selected": tests,
        "counts": counts,
        "tests": outcomes,
        "output_tail": output[-3000:],
    }


# ======================================================================================
# Steps 3, 5, 7: each method's step through fit, per precision path (in a child process)
# ======================================================================================
def _path_key(method: str, amp: str, compiled: bool) -> str:
    return f"{method}-{amp}{'-compile' if compiled else ''}"


def run_one_path(reference, data, method: str, amp: str, compiled: bool, epochs: int, device, dry_run: bool) -> dict:
    """`fit` on the whole training split for `epochs` epochs in one precision path; never raises."""
    import dataclasses

    import torch

    from benchmarks import time_to_accuracy as tta
    from helpers.augment import BatchTwoViewAugment
    from helpers.recipes import RECIPES

    recipe = RECIPES[method]
    if dry_run:
        recipe = dataclasses.replace(recipe, batch_size=tta.SMOKE_BATCH_SIZE)
    row: dict[str, Any] = {
        "key": _path_key(method, amp, compiled),
        "method": method,
        "amp": amp,
        "compile": compiled,
        "epochs": epochs,
        "batch_size": recipe.batch_size,
        "train_images": int(data["train_images"].shape[0]),
    }
    if compiled and device.type != "cuda":
        row["note"] = "compile needs CUDA: fit trained without it (the dry run's code path only)"
    if amp == "fp16" and device.type != "cuda":
        # fp16 convolutions on a CPU run on slow reference kernels: 2 steps of SimCLR at 8x8 took
        # 63 s on the 2-core CI machine. tests/test_train.py covers fit's fp16 path and loss scaler.
        row["note"] = "fp16 on the CPU is far too slow for CI: the dry run trains this configuration in bf16"
        amp = "bf16"
    run = None
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        torch.manual_seed(0)
        run = tta.build_method(reference, recipe, device)
        row["optimizer"] = run.optimizer_description
        size = int(data["train_images"].shape[1])
        started = time.perf_counter()
        history = fit_for_path(run, data, recipe, epochs, amp, compiled, device, BatchTwoViewAugment(size=size))
        row["wall_seconds"] = time.perf_counter() - started
        seconds = [float(s) for s in history.seconds]
        steps = int(data["train_images"].shape[0]) // recipe.batch_size
        row.update(
            epoch_seconds=seconds,
            first_epoch_seconds=seconds[0],
            steady_epoch_seconds=seconds[-1],
            images_per_second=steps * recipe.batch_size / seconds[-1],
            steps_per_epoch=steps,
            loss_per_epoch=[float(v) for v in history.loss],
            finite_loss=all(v == v and abs(v) != float("inf") for v in history.loss),
        )
        if device.type == "cuda":
            row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            row["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
        row["status"] = "done"
        print(
            f"  {row['key']}: {seconds[0]:.2f} s first epoch, {seconds[-1]:.2f} s last, "
            f"{row['images_per_second']:.0f} images/s"
            + (f", peak {row['peak_memory_gib']:.2f} GiB" if "peak_memory_gib" in row else ""),
            flush=True,
        )
    except Exception as error:  # noqa: BLE001 -- recorded; the next configuration still runs
        row["status"] = "error"
        row["error"] = _error_text(error)
        print(f"  {row['key']}: ERROR {type(error).__name__}: {str(error)[:300]}", flush=True)
    finally:
        del run
        gc.collect()
        if compiled:
            try:
                torch._dynamo.reset()
            except Exception:  # noqa: BLE001
                pass
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def fit_for_path(run, data, recipe, epochs: int, amp: str, compiled: bool, device, augment):
    """The fit call of one path: the recipe's batch size and learning rate with a linear warmup
    over the timed epochs (as the recipe's first epochs have), no monitor and no checkpoint:
    only the step, the data path and the precision are timed."""
    from benchmarks.time_to_accuracy import fit_run

    return fit_run(
        run,
        data,
        recipe,
        epochs=epochs,
        warmup_epochs=min(recipe.warmup_epochs, epochs),
        augment=augment,
        amp=amp,
        compile=compiled,
        device=device,
        checkpoint=None,
        extra_state=run.extra_state,
        on_epoch_end=(run.epoch_hooks[0] if run.epoch_hooks else None),
        smoke=False,
        seed=0,
        progress=False,
        verbose=False,
    )


def paths_worker(args) -> int:
    """Child process of a paths_* step: runs the configurations not yet in the results file."""

    from benchmarks import time_to_accuracy as tta

    results = Path(args.state_dir) / "paths.jsonl"
    done = _path_rows(args)
    configs = (DRY_PATHS if args.dry_run else PATH_STEPS)[args.worker_step]
    todo = [c for c in configs if _path_key(*c) not in done]
    if not todo:
        return 0
    device = _device(args)  # cuDNN left at torch's defaults, as in the notebooks and time_to_accuracy.py
    reference = tta.load_reference_code()
    data = tta.load_data(
        args.source, Path(args.data_root), smoke=args.dry_run, synthetic=args.dry_run and not args.source
    )
    epochs = args.path_epochs
    estimate = None
    for method, amp, compiled in todo:
        key = _path_key(method, amp, compiled)
        needed = (estimate or 20.0) * (epochs + 1) + (90.0 if compiled and device.type == "cuda" else 0.0)
        if time.time() + needed > args.deadline:
            print(
                f"  {key}: left for the next call (about {needed:.0f} s needed, "
                f"{max(0.0, args.deadline - time.time()):.0f} s left)",
                flush=True,
            )
            continue
        current = Path(args.state_dir) / "paths.current"
        current.write_text(key)
        row = run_one_path(reference, data, method, amp, compiled, epochs, device, args.dry_run)
        if row.get("status") == "done" and not compiled:
            estimate = max(estimate or 0.0, row["first_epoch_seconds"], row["steady_epoch_seconds"])
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        current.unlink()
    return 0


def _path_rows(args) -> dict[str, dict]:
    results, rows = Path(args.state_dir) / "paths.jsonl", {}
    if results.is_file():
        for line in results.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["key"]] = row
    return rows


def step_paths(args, name: str, deadline: float) -> dict[str, Any]:
    """Run the worker; when it dies inside a configuration (a crash, not an exception), record
    that configuration as an error and start a new worker for the rest while time is left."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--deadline",
        f"{deadline:.1f}",
        *_common_args(args),
    ]
    configs = (DRY_PATHS if args.dry_run else PATH_STEPS)[name]
    current = Path(args.state_dir) / "paths.current"
    for _ in range(len(configs)):
        current.unlink(missing_ok=True)
        rc, output, timed_out = _run_child(command, deadline + 5.0, args)
        if rc in (0, None) or not current.is_file():
            break
        key = current.read_text().strip()
        method, amp, compiled = next(c for c in configs if _path_key(*c) == key)
        row = {
            "key": key,
            "method": method,
            "amp": amp,
            "compile": compiled,
            "status": "error",
            "error": f"the worker process died (exit status {rc}) in this configuration:\n{output[-2500:]}",
        }
        with (Path(args.state_dir) / "paths.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        if deadline - time.time() < 30:
            break
    rows = _path_rows(args)
    mine = [rows[_path_key(*c)] for c in configs if _path_key(*c) in rows]
    missing = [_path_key(*c) for c in configs if _path_key(*c) not in rows]
    status = "done" if not missing else ("timed out" if timed_out else "partial")
    out = {"status": status, "returncode": rc, "paths": mine, "not_run": missing}
    if rc not in (0, None) and not timed_out:
        out["output_tail"] = output[-3000:]
        if missing:
            status = out["status"] = "error"
    return out


# ======================================================================================
# Steps 4, 6, 8: the benchmark scripts, as their own commands
# ======================================================================================
def _script_step(args, script: str, extra: list[str], deadline: float) -> dict[str, Any]:
    records = Path(args.state_dir) / "records"
    command = [sys.executable, f"benchmarks/{script}", *extra, "--results-dir", str(records)]
    rc, output, timed_out = _run_child(command, deadline, args)
    finished = "STATUS: finished" in output or (script == "train_overheads.py" and rc == 0)
    status = (
        "done"
        if finished and rc == 0
        else ("timed out" if timed_out else ("partial" if "STATUS: unfinished" in output else "error"))
    )
    result = {"status": status, "returncode": rc, "command": shlex.join(["python", *command[1:]])}
    unfinished = re.findall(r"STATUS: unfinished -- (\d+) of (\d+) epochs", output)
    if unfinished:
        result["epochs_done"], result["epochs"] = (int(v) for v in unfinished[-1])
    record = re.findall(r"record (?:written (?:again )?to )?(\S+\.json)", output)
    if record:
        result["record"] = Path(record[-1]).name
    if status != "done":
        result["output_tail"] = output[-3000:]
    return result


_EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  loss (\S+)(?:.*?  k-NN ([\d.]+) %)?.*?  ([\d.]+) s$", re.MULTILINE)


def epoch_lines(output: str) -> list[dict[str, Any]]:
    """fit's per-epoch summary lines in `output` (epoch, loss, k-NN % when measured, seconds)."""
    return [
        {
            "epoch": int(m[1]),
            "epochs": int(m[2]),
            "loss": float(m[3]),
            "knn_percent": float(m[4]) if m[4] else None,
            "seconds": float(m[5]),
        }
        for m in _EPOCH_LINE.finditer(output)
    ]


def step_time_to_accuracy(args, deadline: float) -> dict[str, Any]:
    """`time_to_accuracy.py --method simclr` within what is left of the call. Its per-epoch lines
    are kept in the session record too, so a run that never finishes (the machine went back
    before the last epoch) still tells how far it got, how fast and at what k-NN accuracy."""
    minutes = max(0.5, (deadline - time.time() - 10.0) / 60.0)
    extra = [
        "--method",
        "simclr",
        "--max-minutes",
        f"{minutes:.2f}",
        "--no-progress",
        "--run-dir",
        str(Path(args.state_dir) / "time_to_accuracy-simclr"),
    ]
    extra += ["--smoke", "--epochs", "2"] if args.dry_run else ["--checkpoint-minutes", "1"]
    extra += ["--source", args.source] if args.source else []
    result = _script_step(args, "time_to_accuracy.py", extra, deadline)
    result["epoch_lines"] = epoch_lines(Path(args.state_dir, "child.log").read_text(errors="replace"))
    return result


def step_seed_pipeline(args, deadline: float) -> dict[str, Any]:
    minutes = max(0.5, (deadline - time.time() - 10.0) / 60.0)
    extra = [
        "--method",
        "simclr",
        "--seed-pipeline",
        "--epochs",
        str(1 if args.dry_run else 2),
        "--max-minutes",
        f"{minutes:.2f}",
        "--no-progress",
        "--run-dir",
        str(Path(args.state_dir) / "seed_pipeline-simclr"),
    ]
    extra += ["--smoke"] if args.dry_run else []
    extra += ["--source", args.source] if args.source else []
    return _script_step(args, "time_to_accuracy.py", extra, deadline)


def step_train_overheads(args, deadline: float) -> dict[str, Any]:
    extra = ["--smoke"] if args.dry_run else ["--device", "cuda"]
    return _script_step(args, "train_overheads.py", extra, deadline)


# ======================================================================================
# Children, budget, state, records
# ======================================================================================
def _common_args(args) -> list[str]:
    out = [
        "--state-dir",
        str(args.state_dir),
        "--data-root",
        str(args.data_root),
        "--path-epochs",
        str(args.path_epochs),
    ]
    if args.source:
        out += ["--source", args.source]
    if args.dry_run:
        out.append("--dry-run")
    return out


def _run_child(command: list[str], deadline: float, args) -> tuple[int | None, str, bool]:
    """Run `command` from the project root in its own process group, its output into the log,
    killed at `deadline`. Returns (exit status or None when killed, its output, timed out)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT))
    if args.dry_run:
        env.setdefault("OMP_NUM_THREADS", "1")
    capture = Path(args.state_dir) / "child.log"
    with capture.open("w") as out:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        timed_out = False
        try:
            process.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    output = capture.read_text(errors="replace")
    _log(output.rstrip("\n") + ("\n[killed at the call's deadline]" if timed_out else ""), args, echo=True)
    return (None if timed_out else process.returncode), output, timed_out


def _log(text: str, args, echo: bool = True) -> None:
    if echo:
        print(text, flush=True)
    with (Path(args.state_dir) / "session.log").open("a") as f:
        f.write(text + "\n")


def _load_state(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    return {"steps": {}, "calls": []}


def _session_record(state: dict[str, Any], args) -> dict[str, Any]:
    env = state["steps"].get("environment", {}).get("environment", {})
    steps = {name: state["steps"].get(name, {"status": "not run yet"}) for name, _, _ in STEPS}
    paths = [row for name in PATH_STEPS for row in steps[name].get("paths", [])]
    return {
        "benchmark": "gpu_session",
        "schema_version": SCHEMA_VERSION,
        "smoke": bool(args.dry_run),
        "date": _now_iso(),
        "command": state["calls"][-1]["command"] if state["calls"] else None,
        "device": env.get("device"),
        "device_name": env.get("device_name"),
        "device_slug": env.get("device_slug"),
        "torch_version": env.get("torch_version"),
        "finished": all(s.get("status") == "done" for s in steps.values()),
        "calls": state["calls"],
        "environment": env,
        "training_paths": paths,
        "steps": {name: {k: v for k, v in result.items() if k != "environment"} for name, result in steps.items()},
    }


def _publish(state: dict[str, Any], args) -> list[Path]:
    """Write the session record, the benchmark records and the log to --out."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = _session_record(state, args)
    tag = (record["device_slug"] or "unknown-device") + ("-dry-run" if args.dry_run else "")
    written = [out / f"gpu_session-{tag}.json"]
    _write_json(written[0], record)
    for path in sorted((Path(args.state_dir) / "records").glob("*.json")):
        target = out / path.name
        target.write_bytes(path.read_bytes())
        written.append(target)
    log = (Path(args.state_dir) / "session.log").read_bytes()
    if len(log) > MAX_LOG_BYTES:
        log = b"[... the log's start is cut; the whole of it is in the state folder]\n" + log[-MAX_LOG_BYTES:]
    written.append(out / f"gpu_session-{tag}.log")
    written[-1].write_bytes(log)
    return written


def _resolve_source(args) -> None:
    if args.source or args.dry_run:  # the dry run: the synthetic stand-in unless --source is given
        return
    for candidate in DATA_CANDIDATES:
        if (candidate / "train.tar.gz").is_file() or (candidate / "train").is_dir():
            args.source = str(candidate)
            return
    if not args.dry_run:
        raise SystemExit(
            "no CIFAR-10 copy found: pass --source, or copy ../shared/data/cifar10-jpeg to .cifar (see DEVELOPERS.md)"
        )


def run_session(args) -> dict[str, Any]:
    started = time.time()
    deadline = started + 60.0 * args.minutes - RESERVE_SECONDS
    state_dir = Path(args.state_dir)
    if args.fresh and state_dir.exists():
        import shutil

        shutil.rmtree(state_dir)
    (state_dir / "records").mkdir(parents=True, exist_ok=True)
    state_path = state_dir / "state.json"
    state = _load_state(state_path)
    command = shlex.join(["python3", "benchmarks/gpu_session.py", *args.argv])
    call = {"started": _now_iso(), "command": command, "minutes": args.minutes, "steps": []}
    state["calls"].append(call)
    _log(f"=== gpu_session call {len(state['calls'])} at {call['started']}: {command}", args)
    _log(f"data: {args.source or 'synthetic stand-in (dry run)'}", args)
    wanted = [name for name, _, _ in STEPS if not args.steps or name in args.steps]
    for name, what, least in STEPS:
        previous = state["steps"].get(name, {})
        if name not in wanted or previous.get("status") == "done":
            continue
        left = deadline - time.time()
        if left < (least if not args.dry_run else 1.0):
            _log(f"--- {name}: left for the next call ({left:.0f} s left, {least} s needed at least)", args)
            continue
        _log(f"--- {name}: {what} ({left:.0f} s left in this call)", args)
        step_started = time.time()
        try:
            if name == "environment":
                rc, output, timed_out = _run_child(
                    [sys.executable, str(Path(__file__).resolve()), "--worker", "environment", *_common_args(args)],
                    deadline,
                    args,
                )
                env_file = state_dir / "environment.json"
                if rc == 0 and env_file.is_file():
                    result = json.loads(env_file.read_text())
                else:
                    result = {
                        "status": "timed out" if timed_out else "error",
                        "returncode": rc,
                        "output_tail": output[-3000:],
                    }
            elif name == "cuda_tests":
                result = step_cuda_tests(args, deadline)
            elif name.startswith("paths_"):
                result = step_paths(args, name, deadline)
            elif name == "time_to_accuracy":
                result = step_time_to_accuracy(args, deadline)
            elif name == "seed_pipeline":
                result = step_seed_pipeline(args, deadline)
            else:
                result = step_train_overheads(args, deadline)
        except Exception as error:  # noqa: BLE001 -- one step's failure never stops the session
            result = {"status": "error", "error": _error_text(error)}
        seconds = time.time() - step_started
        result["seconds"] = round(previous.get("seconds", 0.0) + seconds, 2)
        result["attempts"] = previous.get("attempts", 0) + 1
        if "epoch_lines" in result:  # accumulated over the calls (a resumed run prints only its own epochs)
            result["epoch_lines"] = previous.get("epoch_lines", []) + result["epoch_lines"]
        if result["status"] == "error" and not args.dry_run:
            result["status_note"] = "an error is final: the next call does not retry this step (--fresh does)"
        state["steps"][name] = result
        call["steps"].append({"step": name, "status": result["status"], "seconds": round(seconds, 2)})
        _write_json(state_path, state)
        _log(f"--- {name}: {result['status']} in {seconds:.0f} s", args)
    call["seconds"] = round(time.time() - started, 1)
    _write_json(state_path, state)
    record = _session_record(state, args)
    pending = [
        name
        for name, _, _ in STEPS
        if name in wanted and state["steps"].get(name, {}).get("status") not in ("done", "error")
    ]
    summary = (
        "GPU SESSION: finished" if not pending else f"GPU SESSION: unfinished -- still to run: {', '.join(pending)}"
    )
    errors = [name for name in wanted if state["steps"].get(name, {}).get("status") == "error"]
    if errors:
        summary += f" (errors in: {', '.join(errors)})"
    _log(summary + f"; this call took {call['seconds'] / 60:.1f} min", args)
    written = _publish(state, args)
    print("records in " + str(args.out) + ": " + ", ".join(p.name for p in written), flush=True)
    record["pending"] = pending
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT"),
        help="where every record goes (default $OUT, the folder the device tool brings back)",
    )
    parser.add_argument("--minutes", type=float, default=8.5, help="this call's budget in minutes (default 8.5)")
    parser.add_argument("--source", help="CIFAR-10 copy (default ../shared/data/cifar10-jpeg, else .cifar)")
    parser.add_argument(
        "--data-root", default=str(PROJECT_ROOT / "data"), help="decoded-data cache folder (default data/)"
    )
    parser.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help="what lets a second call continue (default checkpoints/gpu_session/)",
    )
    parser.add_argument(
        "--steps",
        nargs="*",
        choices=[name for name, _, _ in STEPS],
        help="run only these steps (default: all)",
    )
    parser.add_argument("--path-epochs", type=int, help="epochs per precision path (default 2; dry run 1)")
    parser.add_argument("--fresh", action="store_true", help="forget earlier calls (the state folder) and start over")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU with tiny data, for CI")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.worker_step = args.worker
    if args.path_epochs is None:
        args.path_epochs = 1 if args.dry_run else 2
    if args.path_epochs < 1:
        parser.error("--path-epochs must be at least 1")
    if args.out is None and args.worker is None:
        parser.error("--out is required when $OUT is not set")
    if args.dry_run and args.state_dir == str(DEFAULT_STATE_DIR):
        args.state_dir = str(DEFAULT_STATE_DIR.with_name("gpu_session-dry-run"))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    if args.worker == "environment":
        result = step_environment(args)
        _write_json(Path(args.state_dir) / "environment.json", result)
        return 0
    if args.worker is not None:
        return paths_worker(args)
    _resolve_source(args)
    run_session(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
