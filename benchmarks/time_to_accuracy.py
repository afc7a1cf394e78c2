"""Time to accuracy of SimCLR, BYOL and Barlow Twins, trained the bundle's way, on one device.

Trains one method with `helpers.train.fit` (on CUDA: the uint8 split resident on the GPU,
batched augmentation, bf16 autocast, channels_last; fused SGD wherever torch has it) and the method's recipe from
`helpers.recipes`, tracks the weighted k-NN monitor (`helpers.probes.KNNMonitor`, k = 200)
every ``recipe.knn_every`` epochs, fits a linear probe on the frozen features at the end
(`benchmarks.linear_probe`), and writes one JSON record to ``benchmarks/results/``.

The models and steps are the solution notebook's own code: the top-level definitions of
``solutions/ssl_methods.ipynb`` (``SimCLRModel``, ``simclr_train_step``, ``BYOLModel``, ``EMA``,
``byol_train_step``, ``BarlowTwinsModel``, ``barlow_train_step``, ...), extracted by the
autograder's `autograder.extract` -- the same extraction that builds the grader's reference
-- so the benchmark measures exactly what the notebook trains. See `load_reference_code`.

Usage (from the project root)::

    python benchmarks/time_to_accuracy.py --method simclr --source .cifar --max-minutes 9
    python benchmarks/time_to_accuracy.py --method byol --epochs 200 --recipe knn_every=10
    python benchmarks/time_to_accuracy.py --method simclr --seed-pipeline --source .cifar
    python benchmarks/time_to_accuracy.py --method barlow --smoke --results-dir /tmp/results

**Resuming.** `fit`'s checkpoint goes to ``--run-dir`` (default
``checkpoints/time_to_accuracy/<method>[-<recipe variant>]/``, git-ignored) after the first
epoch that ends ``--checkpoint-minutes`` (default 1; 0: every epoch) after the last write,
after the last epoch, and whenever the time budget stops a run: on a GPU an epoch lasts
seconds and writing the state after each would cost a noticeable share of it. With
``--max-minutes M`` a run stops cleanly after the epoch whose successor would not finish
(including the final k-NN and linear probe when that successor is the last epoch) within M
minutes of the process start -- at least one epoch per run -- writes that epoch's checkpoint
and says so; running the same command again continues from the checkpoint. A run killed
from outside loses the epochs since the last write (at most about ``--checkpoint-minutes``).
Only the run that finishes the last epoch writes
the record. Its ``total_seconds`` is the sum over the runs of the wall-clock time each spent
up to its last checkpoint (start-up, data loading and model building included), plus the
final evaluation of the last run: time lost in a run killed mid-epoch is not counted, time
spent on a finished run's evaluation that a later, longer run superseded is not either.
A larger ``--epochs`` than a finished run continues it (``fit`` recomputes the learning-rate
schedule of the remaining epochs; the record notes it); ``--fresh`` starts over.

**The record** (``time_to_accuracy-<method>-<epochs>ep-<device>[-<variant>].json``): device
name, torch/CUDA versions, the command (and every run's command in ``sessions``), the recipe,
``epochs``, ``seconds_per_epoch`` (and ``epoch_seconds`` per epoch; each is training plus the
k-NN monitor when it ran, split into ``training_seconds`` and ``knn_monitor_seconds``),
``total_seconds`` / ``minutes``, the loss per epoch, every k-NN accuracy measured (``knn.per_epoch``
with the elapsed epoch seconds, ``knn.final``, ``knn.milestones``: the first epoch reaching
50 %, 60 %, ...), the linear probe (``linear_probe``: accuracy, chosen L2 strength, its own
seconds), and a SHA-256 of the solution notebook the code came from. What is timed is what
the notebook runs: its steps return ``loss.item()`` (the task contract), i.e. one host-device
synchronisation per step.

**Seed pipeline.** ``--seed-pipeline`` times, in one run on one device, ``--epochs`` epochs
(default 3) of the fast path (``fit``, k-NN monitor after every epoch, no checkpoint) and of
the seeds' original pipeline (`benchmarks.seed_pipeline`: per-image torchvision augmentation
in DataLoader workers, AdamW, scikit-learn k-NN after every epoch), and writes
``seed_pipeline-<method>-<device>.json`` with both and their ratio.

**Smoke mode.** ``--smoke`` is a tiny CPU run for the tests: 32 training and 20 test images
(class-balanced; the synthetic stand-in unless ``--source`` or ``$SSL_LAB_CIFAR10`` is given)
downscaled to 8x8 pixels, batch 16, k-NN every epoch, 1 epoch unless ``--epochs`` says
otherwise. Its record says ``"smoke": true`` (the results page ignores those) and goes to
``--results-dir``, else to the run directory, never to ``benchmarks/results/``.
"""

from __future__ import annotations

import time

_PROCESS_STARTED = time.perf_counter()  # before the heavy imports: a run's clock includes them

import argparse  # noqa: E402
import copy  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # run as a script: make `helpers` and `benchmarks` importable
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.linear_probe import linear_probe  # noqa: E402
from benchmarks.machine import describe_device, describe_environment  # noqa: E402
from benchmarks.seed_pipeline import run_seed_pipeline, steady_mean  # noqa: E402
from helpers.data import describe_cifar10_source, load_cifar10  # noqa: E402
from helpers.files import write_atomically  # noqa: E402
from helpers.probes import KNNMonitor, encode_images  # noqa: E402
from helpers.recipes import RECIPES  # noqa: E402
from helpers.runtime import get_device, set_seed  # noqa: E402
from helpers.train import TrainingCheckpointError, fit  # noqa: E402

__all__ = ["main", "load_reference_code", "parse_recipe_overrides", "describe_device", "RECORD_SCHEMA_VERSION"]

METHODS = ("simclr", "byol", "barlow")
METHOD_NAMES = {"simclr": "SimCLR", "byol": "BYOL", "barlow": "Barlow Twins"}
REFERENCE_NOTEBOOK = PROJECT_ROOT / "solutions" / "ssl_methods.ipynb"
#: The solution notebook's definitions the benchmark runs (DESIGN.md's task contract).
REFERENCE_NAMES = (
    "SimCLRModel",
    "simclr_train_step",
    "BYOLModel",
    "EMA",
    "byol_train_step",
    "BarlowTwinsModel",
    "barlow_train_step",
    "extract_features_and_labels",
    "run_knn_probe",
)
DEFAULT_RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
DEFAULT_RUNS_DIR = PROJECT_ROOT / "checkpoints" / "time_to_accuracy"
DEFAULT_DATA_ROOT = PROJECT_ROOT / "data"
RECORD_SCHEMA_VERSION = 1
#: Smoke mode: images per split, their side length, largest batch size.
SMOKE_TRAIN_IMAGES, SMOKE_TEST_IMAGES, SMOKE_IMAGE_SIZE, SMOKE_BATCH_SIZE = 32, 20, 8, 16
#: k-NN accuracies whose first crossing (epoch, elapsed epoch seconds) the record lists.
KNN_MILESTONES = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


# ======================================================================================
# The reference code: the solution notebook's definitions
# ======================================================================================
_REFERENCE_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def load_reference_code(notebook: str | os.PathLike = REFERENCE_NOTEBOOK) -> dict[str, Any]:
    """The solution notebook's top-level imports, functions and classes, as a namespace dict.

    Uses the autograder's extraction (`autograder.extract.extract` + `load_trusted`): IPython
    magics stripped, every code cell parsed with `ast`, only imports, ``def``/``class`` and
    cheap bindings (``device = get_device()``) kept and executed in notebook order -- the
    notebook's training loops, plots and checks never run. Cached per file version within a
    process.

    Raises:
        FileNotFoundError: the notebook is missing.
        RuntimeError: a definition the benchmark needs is not in it.
    """
    path = Path(notebook).resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the benchmark runs the solution notebook's own models and steps. "
            "Run it from a full checkout of the course repository (solutions/ is not in the student zip)."
        )
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _REFERENCE_CACHE:
        from autograder.extract import extract, load_trusted

        namespace = load_trusted(extract(path), module_name="ssl_lab_benchmark_reference")
        missing = [name for name in REFERENCE_NAMES if name not in namespace]
        if missing:
            raise RuntimeError(
                f"{path.name} defines none of {missing} at the top level of a code cell; the benchmark "
                "needs the solution notebook's graded definitions (see DESIGN.md, 'Graded tasks')."
            )
        _REFERENCE_CACHE.clear()
        _REFERENCE_CACHE[key] = namespace
    return _REFERENCE_CACHE[key]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ======================================================================================
# Machine description
# ======================================================================================
def _environment(device: torch.device) -> dict[str, Any]:
    env = {**describe_environment(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    return env


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ======================================================================================
# Recipe
# ======================================================================================
def _parse_value(text: str, current: Any, name: str) -> Any:
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--recipe {name}={text}: expected true or false")
    try:
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        raise ValueError(f"--recipe {name}={text}: expected a {type(current).__name__}") from None
    return text


def parse_recipe_overrides(recipe, items: list[str]) -> dict[str, Any]:
    """``["epochs=50", "base_lr=0.1"]`` -> ``{"epochs": 50, "base_lr": 0.1}``, typed like the recipe's fields.

    Raises:
        ValueError: not ``key=value``, an unknown field (the message lists the known ones),
            the method itself, or a value of the wrong type.
    """
    known = {f.name for f in dataclasses.fields(recipe)}
    overrides: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--recipe takes key=value pairs, got {item!r}")
        if name == "method":
            raise ValueError("--recipe cannot change the method; use --method")
        if name not in known:
            raise ValueError(
                f"--recipe {name}: {type(recipe).__name__} has no such field; known: {sorted(known - {'method'})}"
            )
        overrides[name] = _parse_value(text, getattr(recipe, name), name)
    return overrides


def _variant_suffix(overrides: Mapping[str, Any]) -> str:
    """A short stable tag for a recipe changed by --recipe (epochs excluded: runs extend)."""
    changed = {k: v for k, v in sorted(overrides.items()) if k != "epochs"}
    if not changed:
        return ""
    text = json.dumps(changed, sort_keys=True)
    return "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


# ======================================================================================
# Data
# ======================================================================================
def _shrink(images: torch.Tensor, size: int) -> torch.Tensor:
    """Downscale uint8 (N, H, W, 3) images to (N, size, size, 3) (antialiased), for smoke runs."""
    x = images.permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # (N, size, size, 3)


def load_data(source: str | None, data_root: Path, smoke: bool, synthetic: bool) -> dict[str, Any]:
    """Both splits as uint8 tensors (smoke: small class-balanced subsets at 8x8) and their description."""
    if smoke and source is None and not os.environ.get("SSL_LAB_CIFAR10"):
        synthetic = True
    kwargs = {"source": source, "root": data_root, "synthetic": synthetic}
    import warnings

    with warnings.catch_warnings():
        if synthetic:  # announced once below instead of twice as a warning
            warnings.simplefilter("ignore", UserWarning)
        train_images, train_labels = load_cifar10("train", limit=SMOKE_TRAIN_IMAGES if smoke else None, **kwargs)
        test_images, test_labels = load_cifar10("test", limit=SMOKE_TEST_IMAGES if smoke else None, **kwargs)
    description = describe_cifar10_source(source, data_root, synthetic=synthetic)
    if synthetic:
        print("NOTE: training on the SYNTHETIC stand-in dataset, not CIFAR-10: the accuracies mean nothing.")
    if smoke:
        train_images = _shrink(train_images, SMOKE_IMAGE_SIZE)
        test_images = _shrink(test_images, SMOKE_IMAGE_SIZE)
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
        "info": {
            "source": description,
            "synthetic": bool(synthetic),
            "train_images": int(train_images.shape[0]),
            "test_images": int(test_images.shape[0]),
            "image_size": int(train_images.shape[1]),
        },
    }


# ======================================================================================
# Methods
# ======================================================================================
@dataclasses.dataclass
class MethodRun:
    """What fit needs for one method: the model trained and probed (BYOL: the online network),
    its optimiser, the step, what else goes into the checkpoint, and per-epoch hooks."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step: Callable
    extra_state: dict[str, Any]
    epoch_hooks: list[Callable]
    optimizer_description: str


def _sgd(parameters, recipe) -> tuple[torch.optim.Optimizer, str]:
    """The recipe's optimiser (`recipe.optimizer`), fused (one kernel per parameter group)
    wherever torch has it: CUDA, and the CPU in recent versions (`benchmarks/train_overheads.py`
    measured the step about 3x faster than the default ``foreach`` one on a 2-core CPU)."""
    parameters = list(parameters)
    try:
        optimizer, options = recipe.optimizer(parameters, fused=True), "fused=True, "
    except (TypeError, RuntimeError, ValueError):  # an older torch, a device or dtype without the kernel
        optimizer, options = recipe.optimizer(parameters), ""
    settings = {name: optimizer.defaults[name] for name in ("lr", "momentum", "weight_decay")}
    return optimizer, f"{type(optimizer).__name__}({options}{settings})"


#: The methods that train one network with one step: the notebook's model and step, and the
#: step's own keyword with the recipe field that sets it (SimCLR's tau, Barlow Twins' alpha).
SINGLE_NETWORK_METHODS = {
    "simclr": ("SimCLRModel", "simclr_train_step", "tau", "temperature"),
    "barlow": ("BarlowTwinsModel", "barlow_train_step", "alpha", "alpha"),
}


def build_method(reference: Mapping[str, Any], recipe, device: torch.device) -> MethodRun:
    """Models, optimiser and step of `recipe.method`, from the solution notebook's definitions."""
    method = recipe.method
    if method in SINGLE_NETWORK_METHODS:
        model_name, step_name, keyword, field = SINGLE_NETWORK_METHODS[method]
        model = reference[model_name](proj_dim=recipe.proj_dim, hidden_dim=recipe.proj_hidden_dim).to(device)
        optimizer, described = _sgd(model.parameters(), recipe)
        train_step = reference[step_name]
        options = {keyword: getattr(recipe, field)}  # the recipe is frozen: read once

        def step(x1, x2):
            return train_step(model, x1, x2, optimizer, **options)

        return MethodRun(model, optimizer, step, {}, [], described)
    if method == "byol":
        online = reference["BYOLModel"](proj_dim=recipe.proj_dim, hidden_dim=recipe.proj_hidden_dim).to(device)
        target = copy.deepcopy(online)  # same initial weights
        target.requires_grad_(False)  # moved only by the EMA
        ema = reference["EMA"](beta=recipe.ema_beta)
        schedule = recipe.ema_schedule(ema)
        optimizer, described = _sgd(online.parameters(), recipe)
        train_step = reference["byol_train_step"]

        def step(x1, x2):
            return train_step(online, target, ema, optimizer, x1, x2)

        return MethodRun(online, optimizer, step, {"target": target, "ema_beta": schedule}, [schedule], described)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def fit_run(run: MethodRun, data: Mapping[str, Any], recipe, **settings: Any):
    """`helpers.train.fit` of `run`'s step, model and optimiser on the training split of `data`, with
    the recipe's loop (`recipe.fit_kwargs`) and `settings`, fit's other keywords. Returns fit's history."""
    return fit(
        run.step, run.model, run.optimizer, data["train_images"], data["train_labels"], **recipe.fit_kwargs(**settings)
    )


# ======================================================================================
# Timing: the monitor, the run's clock and the stop between epochs
# ======================================================================================
class _TimedMonitor:
    """Wraps a KNNMonitor: same value, plus the seconds of every call (device synchronised)."""

    def __init__(self, monitor: KNNMonitor, device: torch.device) -> None:
        self.monitor, self.device = monitor, device
        self.label = getattr(monitor, "label", "k-NN")
        self.calls: list[float] = []

    def __call__(self, model) -> float:
        _synchronize(self.device)
        started = time.perf_counter()
        value = self.monitor(model, device=self.device)
        _synchronize(self.device)
        self.calls.append(time.perf_counter() - started)
        return value


class _RunClock:
    """Wall-clock bookkeeping of one run (one process) and of the runs before it.

    Lives in fit's checkpoint as ``extra_state["benchmark"]``: its state is the list of
    earlier runs plus this one so far, so the accounting is saved atomically with the epoch
    it belongs to. As fit's ``on_epoch_end`` it decides whether another epoch still fits in
    the time budget; if not, its ``stop_after_epoch`` ends fit there (fit then writes the
    checkpoint of that epoch, whatever ``checkpoint_minutes`` says).
    """

    def __init__(
        self,
        started: float,
        command: str,
        device_name: str,
        epochs: int,
        knn_every: int,
        budget_seconds: float | None,
        monitor: _TimedMonitor,
        hooks: list[Callable],
        say=print,
    ) -> None:
        self.started, self.command, self.device_name = started, command, device_name
        self.epochs, self.knn_every, self.budget = epochs, knn_every, budget_seconds
        self.monitor, self.hooks, self.say = monitor, hooks, say
        self.date = _now_iso()
        self.recipe: dict[str, Any] = {}  # set by the caller: the run's recipe, checked on resuming
        self.mismatch: str | None = None
        self.previous: list[dict[str, Any]] = []
        self.first_epoch: int | None = None
        self.last_epoch: int | None = None
        self.last_mark: float | None = None
        self.fit_start: float | None = None
        self.monitor_calls_seen = 0
        self.train_seconds: list[float] = []
        self.stop_requested = False

    # ------------------------------------------------------------ checkpointed state
    def current(self) -> dict[str, Any]:
        startup = None if self.fit_start is None else round(self.fit_start - self.started, 3)
        return {
            "seconds": time.perf_counter() - self.started,
            "startup_seconds": startup,
            "first_epoch": self.first_epoch,
            "last_epoch": self.last_epoch,
            "epochs_target": self.epochs,
            "command": self.command,
            "device_name": self.device_name,
            "date": self.date,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"sessions": [*self.previous, self.current()], "recipe": dict(self.recipe)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.previous = [dict(s) for s in state.get("sessions", [])]
        saved = {k: v for k, v in dict(state.get("recipe", {})).items() if k != "epochs"}
        current = {k: v for k, v in self.recipe.items() if k != "epochs"}
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            differences = ", ".join(f"{k}: {saved.get(k)!r} there, {current.get(k)!r} now" for k in changed)
            self.mismatch = (
                f"the checkpoint was trained with another recipe ({differences}). "
                "Pass --fresh to start over, or another --run-dir."
            )
            raise ValueError(self.mismatch)

    # ------------------------------------------------------------ fit's hooks
    def stop_after_epoch(self, epoch: int, history) -> bool:
        """fit's ``stop_after_epoch``: True when the next epoch would not fit the time budget."""
        return self.stop_requested

    def fit_started(self) -> None:
        """Called just before fit: what came before (imports, notebook extraction, data) is start-up."""
        self.fit_start = self.last_mark = time.perf_counter()

    def on_epoch_end(self, epoch: int, history) -> dict[str, float] | None:
        extra: dict[str, float] = {}
        for hook in self.hooks:
            extra.update(hook(epoch, history) or {})
        now = time.perf_counter()
        duration = now - (self.last_mark if self.last_mark is not None else self.started)
        self.last_mark = now
        new_calls = self.monitor.calls[self.monitor_calls_seen :]
        self.monitor_calls_seen = len(self.monitor.calls)
        self.train_seconds.append(max(0.0, duration - sum(new_calls)))
        extra["knn_seconds"] = sum(new_calls)  # kept in the history, so in the checkpoint too
        self.first_epoch = epoch if self.first_epoch is None else self.first_epoch
        self.last_epoch = epoch
        if self.budget is not None and epoch < self.epochs:
            self.stop_requested = not self._next_epoch_fits(epoch, now)
        return extra

    def _next_epoch_fits(self, epoch: int, now: float) -> bool:
        # A run's first epoch carries its warm-up (CUDA context, cuDNN plans, the split copied
        # to the device): once there are others, the slowest of those is the estimate.
        train_estimate = max(self.train_seconds[1:] or self.train_seconds)
        monitor_estimate = max(self.monitor.calls) if self.monitor.calls else 0.5 * train_estimate
        following = epoch + 1
        needed = train_estimate
        if following % self.knn_every == 0 or following == self.epochs:
            needed += monitor_estimate
        if following == self.epochs:  # the final k-NN, feature encoding and linear probe follow
            needed += 2 * monitor_estimate + 10.0
        needed = 1.05 * needed + 2.0  # checkpoint writing and slack
        elapsed = now - self.started
        if elapsed + needed <= self.budget:
            return True
        self.say(
            f"Time budget: {elapsed / 60:.1f} of {self.budget / 60:.1f} min used; epoch {following} needs about "
            f"{needed:.0f} s more, so this run stops after epoch {epoch} (checkpoint written). "
            "Run the same command again to continue."
        )
        return False


# ======================================================================================
# The record
# ======================================================================================
def _knn_entries(history) -> list[dict[str, Any]]:
    entries, elapsed = [], 0.0
    for epoch, value, seconds in zip(history.epoch, history.monitor, history.seconds):
        elapsed += seconds
        if value is not None:
            entries.append({"epoch": int(epoch), "accuracy": float(value), "elapsed_seconds": round(elapsed, 3)})
    return entries


def _milestones(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    reached = {}
    for threshold in KNN_MILESTONES:
        for entry in entries:
            if entry["accuracy"] >= threshold:
                reached[f"{threshold:g}"] = {"epoch": entry["epoch"], "elapsed_seconds": entry["elapsed_seconds"]}
                break
    return reached


def _record_header(benchmark: str, method: str, smoke: bool, command: str, env: Mapping[str, Any]) -> dict[str, Any]:
    """The first fields of both of this script's records: what and how it measured, then the machine."""
    return {
        "benchmark": benchmark,
        "schema_version": RECORD_SCHEMA_VERSION,
        "method": method,
        "method_name": METHOD_NAMES[method],
        "smoke": bool(smoke),
        "date": _now_iso(),
        "command": command,
        **env,
    }


def _record_path(results_dir: Path, method: str, epochs: int, slug: str, variant: str, smoke: bool) -> Path:
    return results_dir / f"time_to_accuracy-{method}-{epochs}ep-{slug}{variant}{'-smoke' if smoke else ''}.json"


def _write_json(path: Path, record: Mapping[str, Any]) -> Path:
    return write_atomically(path, lambda file: file.write((json.dumps(record, indent=2) + "\n").encode()), fsync=False)


# ======================================================================================
# The two modes
# ======================================================================================
def _knn_monitor(data: Mapping[str, Any]) -> KNNMonitor:
    return KNNMonitor(data["train_images"], data["train_labels"], data["test_images"], data["test_labels"])


def _augment_for(smoke: bool, device: torch.device):
    """fit's default augmentation, at the smoke run's image size when smoke."""
    if not smoke:
        return "auto"
    if device.type == "cuda":
        from helpers.augment import BatchTwoViewAugment

        return BatchTwoViewAugment(size=SMOKE_IMAGE_SIZE)
    from helpers.data import TwoViewTransform

    return TwoViewTransform(size=SMOKE_IMAGE_SIZE)


def _command_fit_settings(args, device: torch.device) -> dict[str, Any]:
    """fit's settings that this command line decides, the same in both modes: the augmentation,
    the device, compile, the seed and the progress bars. fit's own smoke mode stays off whatever
    the environment says: a --smoke run has its small data and recipe already."""
    return {
        "augment": _augment_for(args.smoke, device),
        "device": device,
        "compile": args.compile,
        "smoke": False,
        "seed": args.seed,
        "progress": args.progress,
    }


def run_time_to_accuracy(
    args, recipe, overrides, data, reference, device, env, command, started, say
) -> dict[str, Any]:
    """Train (or continue) until `recipe.epochs`, then evaluate and write the record."""
    variant = _variant_suffix(overrides)
    run_dir = (
        Path(args.run_dir)
        if args.run_dir
        else DEFAULT_RUNS_DIR / f"{recipe.method}{variant}{'-smoke' if args.smoke else ''}"
    )
    if args.fresh and run_dir.exists():
        for name in ("fit.pt", "record.json"):
            (run_dir / name).unlink(missing_ok=True)
        say(f"--fresh: removed the checkpoint and record in {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "fit.pt"

    set_seed(args.seed)
    run = build_method(reference, recipe, device)
    monitor = _TimedMonitor(_knn_monitor(data), device)
    budget = None if args.max_minutes is None else 60.0 * args.max_minutes
    clock = _RunClock(
        started, command, env["device_name"], recipe.epochs, recipe.knn_every, budget, monitor, run.epoch_hooks, say=say
    )
    clock.recipe = recipe.to_dict()
    extra_state = {**run.extra_state, "benchmark": clock}

    previous_record = None
    if (run_dir / "record.json").is_file():
        previous_record = json.loads((run_dir / "record.json").read_text())

    clock.fit_started()
    try:
        history = fit_run(
            run,
            data,
            recipe,
            **_command_fit_settings(args, device),
            monitor=monitor,
            checkpoint=checkpoint,
            checkpoint_minutes=args.checkpoint_minutes,
            extra_state=extra_state,
            on_epoch_end=clock.on_epoch_end,
            stop_after_epoch=clock.stop_after_epoch,
        )
    except TrainingCheckpointError as error:
        raise SystemExit(f"{checkpoint}: {clock.mismatch or error}") from None
    if len(history) < recipe.epochs:  # stopped by the time budget, its last epoch checkpointed
        done = len(history)
        say(f"STATUS: unfinished -- {done} of {recipe.epochs} epochs in {checkpoint}; run the same command again.")
        return {"finished": False, "epochs_done": done, "epochs": recipe.epochs, "checkpoint": str(checkpoint)}

    if len(history) > recipe.epochs:
        raise SystemExit(
            f"{checkpoint} already holds {len(history)} epochs, more than --epochs {recipe.epochs}. "
            "Pass --fresh to start over, or another --run-dir."
        )
    trained_now = clock.first_epoch is not None
    if (
        not trained_now
        and previous_record is not None
        and previous_record.get("epochs") == recipe.epochs
        and previous_record.get("smoke") == bool(args.smoke)
    ):
        # Finished earlier and evaluated: write the same record again, measure nothing new.
        path = _record_path(
            Path(args.results_dir) if args.results_dir else _default_results_dir(args, run_dir),
            recipe.method,
            recipe.epochs,
            env["device_slug"],
            variant,
            args.smoke,
        )
        _write_json(path, previous_record)
        say(f"STATUS: finished earlier; record written again to {path}")
        return {"finished": True, "record": previous_record, "path": str(path)}

    # ------------------------------------------------------------ final evaluation
    eval_started = time.perf_counter()
    final_knn = history.monitor[-1]
    if final_knn is None:
        final_knn = monitor(run.model)
    train_features = encode_images(run.model, data["train_images"], device=device)  # (N_train, 512)
    test_features = encode_images(run.model, data["test_images"], device=device)  # (N_test, 512)
    probe_options = {"weight_decays": (1e-2,), "max_iter": 50} if args.smoke else {}
    probe = linear_probe(
        train_features,
        data["train_labels"],
        test_features,
        data["test_labels"],
        device=device,
        seed=args.seed,
        **probe_options,
    )
    _synchronize(device)
    final_eval_seconds = time.perf_counter() - eval_started
    say(
        f"{METHOD_NAMES[recipe.method]}: weighted k-NN {100 * final_knn:.2f} %, linear probe {100 * probe.accuracy:.2f} % "
        f"(weight decay {probe.weight_decay:g}, {probe.seconds:.1f} s)"
    )

    sessions = [*clock.previous, clock.current()]
    total_seconds = sum(float(s["seconds"]) for s in sessions)
    knn_entries = _knn_entries(history)
    epoch_seconds = [float(s) for s in history.seconds]  # training + k-NN monitor, per epoch
    knn_seconds = [float(v or 0.0) for v in history.extra.get("knn_seconds", [0.0] * len(epoch_seconds))]
    knn_calls = [v for v, entry in zip(knn_seconds, history.monitor) if entry is not None]
    notes = []
    targets = {s.get("epochs_target") for s in sessions if s.get("first_epoch") is not None}
    if len(targets) > 1:
        notes.append(
            f"trained in runs with different --epochs ({sorted(targets)}): fit recomputed the learning-rate "
            "schedule of the remaining epochs, so this is not one uninterrupted schedule"
        )
    devices = {s.get("device_name") for s in sessions}
    if len(devices) > 1:
        notes.append(f"runs on different devices: {sorted(devices)}")
    if data["info"]["synthetic"]:
        notes.append("synthetic stand-in data, not CIFAR-10")
    record = {
        **_record_header("time_to_accuracy", recipe.method, args.smoke, command, env),
        "amp": _amp_name(device),
        "channels_last": device.type == "cuda",
        "compile": bool(args.compile),
        "optimizer": run.optimizer_description,
        "data": data["info"],
        "reference_code": {
            "notebook": _relative(REFERENCE_NOTEBOOK),
            "sha256": _file_sha256(REFERENCE_NOTEBOOK),
            "loader": "autograder.extract.extract + load_trusted (top-level definitions only)",
        },
        "recipe": recipe.to_dict(),
        "recipe_overrides": dict(sorted(overrides.items())),
        "seed": args.seed,
        "epochs": len(history),
        "steps_per_epoch": data["info"]["train_images"] // recipe.batch_size,
        "seconds_per_epoch": sum(epoch_seconds) / len(epoch_seconds),
        "seconds_per_epoch_steady": steady_mean(epoch_seconds),
        "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        "training_seconds": sum(epoch_seconds) - sum(knn_seconds),
        "knn_monitor_seconds": sum(knn_seconds),
        "knn_monitor_seconds_per_call": sum(knn_calls) / len(knn_calls) if knn_calls else None,
        "final_eval_seconds": final_eval_seconds,
        "total_seconds": total_seconds,
        "minutes": total_seconds / 60.0,
        "sessions": sessions,
        "loss_per_epoch": [float(v) for v in history.loss],
        "knn": {
            "classifier": "weighted k-NN (InstDisc; helpers.probes.KNNMonitor)",
            "k": monitor.monitor.k,
            "temperature": monitor.monitor.temperature,
            "train_images": int(monitor.monitor.train_images.shape[0]),
            "test_images": int(monitor.monitor.test_images.shape[0]),
            "every": recipe.knn_every,
            "per_epoch": knn_entries,
            "final": float(final_knn),
            "best": max((e["accuracy"] for e in knn_entries), default=float(final_knn)),
            "milestones": _milestones(knn_entries),
        },
        "linear_probe": probe.to_dict(),
        "accuracies": {"knn_final": float(final_knn), "linear_probe": probe.accuracy},
        "extra_per_epoch": {name: list(values) for name, values in history.extra.items()},
        "notes": notes,
    }
    results_dir = Path(args.results_dir) if args.results_dir else _default_results_dir(args, run_dir)
    path = _write_json(
        _record_path(results_dir, recipe.method, record["epochs"], env["device_slug"], variant, args.smoke), record
    )
    _write_json(run_dir / "record.json", record)
    say(
        f"STATUS: finished -- {record['epochs']} epochs in {record['minutes']:.1f} min over {len(sessions)} run(s); "
        f"record written to {path}"
    )
    return {"finished": True, "record": record, "path": str(path)}


def run_seed_comparison(args, recipe, data, reference, device, env, command, started, say) -> dict[str, Any]:
    """Time a few epochs of the fast path and of the seeds' pipeline in this one run."""
    epochs = recipe.epochs
    budget = None if args.max_minutes is None else 60.0 * args.max_minutes

    # ------------------------------------------------------------ (a) the fast path
    say(f"(a) fast path: helpers.train.fit, {epochs} epoch(s), k-NN monitor after every epoch, no checkpoint")
    set_seed(args.seed)
    run = build_method(reference, recipe, device)
    monitor = _TimedMonitor(_knn_monitor(data), device)
    history = fit_run(
        run,
        data,
        recipe,
        **_command_fit_settings(args, device),
        monitor=monitor,
        monitor_every=1,
        checkpoint=None,
        extra_state=run.extra_state,
        on_epoch_end=(run.epoch_hooks[0] if run.epoch_hooks else None),
    )
    fast_rows = []
    for epoch, seconds, knn_seconds, value, loss in zip(
        history.epoch, history.seconds, monitor.calls, history.monitor, history.loss
    ):
        fast_rows.append(
            {
                "epoch": int(epoch),
                "loss": float(loss),
                "knn_accuracy": value,
                "seconds": seconds,
                "knn_seconds": knn_seconds,
                "train_seconds": max(0.0, seconds - knn_seconds),
            }
        )
    optimizer_description = run.optimizer_description
    del run, monitor
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # ------------------------------------------------------------ (b) the seeds' pipeline
    say("(b) the seeds' pipeline: per-image augmentation in DataLoader workers, AdamW, scikit-learn k-NN per epoch")
    remaining = None if budget is None else budget - (time.perf_counter() - started) - 5.0
    overrides = {}
    if args.smoke:
        overrides = {"num_workers": 0, "eval_num_workers": 0, "batch_size": SMOKE_BATCH_SIZE}
    if args.seed_workers is not None:
        overrides.update(num_workers=args.seed_workers, eval_num_workers=args.seed_workers)
    seed = run_seed_pipeline(
        reference,
        recipe.method,
        data["train_images"],
        data["train_labels"],
        data["test_images"],
        data["test_labels"],
        epochs=epochs,
        device=device,
        overrides=overrides,
        budget_seconds=remaining,
        seed=args.seed,
        progress=args.progress,
        say=say,
    )

    fast = {
        "pipeline": "helpers.train.fit (uint8 split on the device, batched augmentation, mixed precision on CUDA)",
        "recipe": recipe.to_dict(),
        "optimizer": optimizer_description,
        "amp": _amp_name(device),
        "channels_last": device.type == "cuda",
        "compile": bool(args.compile),
        "evaluation": "weighted k-NN monitor (k=200) on the device after every epoch",
        "epochs": fast_rows,
        "seconds_per_epoch": steady_mean([r["seconds"] for r in fast_rows]),
        "train_seconds_per_epoch": steady_mean([r["train_seconds"] for r in fast_rows]),
        "eval_seconds_per_epoch": steady_mean([r["knn_seconds"] for r in fast_rows]),
    }
    seed["evaluation"] = "scikit-learn k-NN (k=5) on the CPU after every epoch, features via DataLoader workers"

    def ratio(a, b):
        return a / b if a and b else None

    record = {
        **_record_header("seed_pipeline", recipe.method, args.smoke, command, env),
        "data": data["info"],
        "reference_code": {"notebook": _relative(REFERENCE_NOTEBOOK), "sha256": _file_sha256(REFERENCE_NOTEBOOK)},
        "epochs_requested": epochs,
        "steady_state": "mean over the timed epochs after the first (the only one when a single epoch was timed)",
        "fast_path": fast,
        "seed_pipeline": seed,
        "speedup": ratio(seed["seconds_per_epoch"], fast["seconds_per_epoch"]),
        "speedup_train_only": ratio(seed["train_seconds_per_epoch"], fast["train_seconds_per_epoch"]),
        "total_seconds": time.perf_counter() - started,
    }
    results_dir = (
        Path(args.results_dir)
        if args.results_dir
        else (
            DEFAULT_RESULTS_DIR
            if not args.smoke
            else (Path(args.run_dir) if args.run_dir else DEFAULT_RUNS_DIR / "seed-smoke")
        )
    )
    path = _write_json(
        results_dir / f"seed_pipeline-{recipe.method}-{env['device_slug']}{'-smoke' if args.smoke else ''}.json", record
    )
    speedup = record["speedup"]
    say(
        f"seconds per epoch (with a k-NN evaluation): seed pipeline {seed['seconds_per_epoch']:.2f} s, "
        f"fast path {fast['seconds_per_epoch']:.2f} s" + (f", speed-up {speedup:.1f}x" if speedup else "")
    )
    say(f"STATUS: finished -- record written to {path}")
    return {"finished": True, "record": record, "path": str(path)}


def _amp_name(device: torch.device) -> str | None:
    if device.type != "cuda":
        return None
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16 + dynamic loss scaling"


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _default_results_dir(args, run_dir: Path) -> Path:
    """Real runs: benchmarks/results/. Smoke runs: the run directory (never the committed results)."""
    return run_dir if args.smoke else DEFAULT_RESULTS_DIR


# ======================================================================================
# Command line
# ======================================================================================
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument(
        "--epochs",
        type=int,
        help="pre-training epochs (default: the recipe's; --seed-pipeline: 3; --smoke: 1)",
    )
    parser.add_argument(
        "--recipe",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override recipe fields, e.g. --recipe base_lr=0.1 knn_every=10",
    )
    parser.add_argument(
        "--source",
        help="CIFAR-10 copy (folder or .tar.gz, see data/README.md); default $SSL_LAB_CIFAR10, "
        "else torchvision's download into data/",
    )
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic stand-in data (tests only)")
    parser.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="download and cache folder (default data/)")
    parser.add_argument(
        "--run-dir",
        help="checkpoint folder of this run (default checkpoints/time_to_accuracy/<method>[-variant])",
    )
    parser.add_argument(
        "--results-dir",
        help="where the JSON record goes (default benchmarks/results/; smoke: the run dir)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="stop cleanly after the last epoch that fits in this many minutes (at least one); run again to continue",
    )
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=1.0,
        help="write the training checkpoint after the first epoch that ends this many minutes after "
        "the last write (0: after every epoch); always after the last epoch and when the time "
        "budget stops the run (default 1)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete this run's checkpoint and start over")
    parser.add_argument(
        "--seed-pipeline",
        action="store_true",
        help="time the seeds' original pipeline against the fast path for --epochs epochs (default 3)",
    )
    parser.add_argument(
        "--seed-workers",
        type=int,
        help="DataLoader workers of the seed pipeline (default: the seed's 10; smoke: 0)",
    )
    parser.add_argument("--device", help="cuda, cpu, ... (default: CUDA if available; smoke: cpu)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (model initialisation, shuffling, augmentation)"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny CPU run for the tests (see the module docstring)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None, help="tqdm progress bars")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.max_minutes is not None and args.max_minutes < 0:
        parser.error("--max-minutes must be >= 0")
    if args.checkpoint_minutes < 0:
        parser.error("--checkpoint-minutes must be >= 0")
    return args


def main(argv: list[str] | None = None, started: float | None = None) -> dict[str, Any]:
    """Run the benchmark; returns ``{"finished": bool, "record": dict, "path": str, ...}``.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).
        started: `time.perf_counter()` at the start of this run (default: now); the script
            passes the moment before its imports.
    """
    started = time.perf_counter() if started is None else started
    command_args = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(command_args)
    command = shlex.join(["python", "benchmarks/time_to_accuracy.py", *command_args])
    say = print

    base = RECIPES[args.method]
    try:
        overrides = parse_recipe_overrides(base, args.recipe)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    if args.epochs is not None:
        if "epochs" in overrides and overrides["epochs"] != args.epochs:
            raise SystemExit(f"--epochs {args.epochs} and --recipe epochs={overrides['epochs']} disagree; give one")
        overrides["epochs"] = args.epochs
    elif args.seed_pipeline or args.smoke:
        overrides.setdefault("epochs", 3 if args.seed_pipeline and not args.smoke else 1)
    smoke_defaults = {"batch_size": min(base.batch_size, SMOKE_BATCH_SIZE), "knn_every": 1} if args.smoke else {}
    recipe = dataclasses.replace(base, **{**smoke_defaults, **overrides})

    device = torch.device(args.device) if args.device else (torch.device("cpu") if args.smoke else get_device())
    env = _environment(device)
    say(
        f"{'seed-pipeline comparison' if args.seed_pipeline else 'time to accuracy'}: {METHOD_NAMES[args.method]} "
        f"on {env['device_name']}, torch {env['torch_version']}, {recipe.epochs} epoch(s)"
        + (", SMOKE run" if args.smoke else "")
    )
    reference = load_reference_code()
    data = load_data(args.source, Path(args.data_root), args.smoke, args.synthetic)
    if args.seed_pipeline:
        return run_seed_comparison(args, recipe, data, reference, device, env, command, started, say)
    return run_time_to_accuracy(args, recipe, overrides, data, reference, device, env, command, started, say)


if __name__ == "__main__":
    main(started=_PROCESS_STARTED)
