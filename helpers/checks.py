"""Public self-checks: run one after each TODO cell to catch mistakes before you submit.

Each `check_*` function takes your function or class, runs a few small, seeded experiments
on it and prints one line per property that holds::

    >>> check_nt_xent(nt_xent)
    ✓ returns a 0-d float tensor and leaves its inputs unchanged
    ✓ closed form for aligned orthonormal pairs: log(1 + (2N-2)·exp(-1/tau)) for several N and tau
    ...
    All nt_xent checks passed.

When a property fails it raises `CheckFailure` (an `AssertionError`) whose message says what
was expected, what came back, and the most likely mistake. A function that still raises
`NotImplementedError` (the TODO stub) gives "not implemented yet".

What these checks are, and are not:
    - They contain no reference solution. They test what follows from each task's
      definition alone: shapes, dtypes, closed forms (e.g. NT-Xent of perfectly aligned
      orthonormal pairs is log(1 + (2N-2)·e^(-1/tau))), invariances (Barlow Twins is
      invariant to per-feature affine maps), exact values stated by the task (the EMA
      update, proj = normalize(projector(repr))), and the bookkeeping of a training step
      (one optimiser step, no accumulated gradients). Where a step's loss value is checked,
      it is computed with *your* loss function.
    - Passing them does not guarantee full marks: the autograder also compares your
      results with the reference on more inputs.
    - Models are small stand-ins or your own class with a tiny encoder swapped in for
      ResNet-18, so every check runs in about a second on a laptop CPU.
    - They run under a forked random state (your notebook's random stream is unchanged) and
      on one CPU thread; the thread setting is restored afterwards.

The task semantics are those of the notebooks' "Graded tasks" (SimCLR: Chen et al. 2020,
https://arxiv.org/abs/2002.05709; BYOL: Grill et al. 2020, https://arxiv.org/abs/2006.07733;
Barlow Twins: Zbontar et al. 2021, https://arxiv.org/abs/2103.03230).
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.runtime import get_device

__all__ = [
    "CheckFailure",
    "NotImplementedYet",
    "check_barlow_loss",
    "check_barlow_step",
    "check_byol_forward",
    "check_byol_step",
    "check_ema",
    "check_evaluate",
    "check_extract_features",
    "check_finetune_step",
    "check_nt_xent",
    "check_probes",
    "check_simclr_forward",
    "check_simclr_step",
]

#: Output width of the stand-in encoder: that of ResNet-18, the projectors' input.
_FEATURE_DIM = 512
#: Projection width used in the model checks (small, and different from 512 and 128 so
#: swapped outputs show up as a shape error).
_PROJ_DIM = 24
#: Hidden width of the projection/prediction MLPs in the checks (2048 in the notebooks).
_HIDDEN_DIM = 64


# ======================================================================================
# Reporting
# ======================================================================================
class CheckFailure(AssertionError):
    """A self-check failed; the message says what was expected, what came back and why."""


class NotImplementedYet(CheckFailure, NotImplementedError):
    """The checked function still raises NotImplementedError (the TODO stub)."""


def _describe(value: Any) -> str:
    """A short description of an argument or result for messages: shapes, not contents."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return f"tensor({value.item():.6g}, dtype={value.dtype})"
        return f"tensor of shape {tuple(value.shape)}, dtype={value.dtype}, device={value.device.type}"
    if isinstance(value, np.ndarray):
        return f"ndarray of shape {value.shape}, dtype={value.dtype}"
    if isinstance(value, nn.Module):
        return f"{type(value).__name__} model"
    if isinstance(value, torch.optim.Optimizer):
        return f"{type(value).__name__} optimizer"
    if isinstance(value, DataLoader):
        return f"DataLoader ({len(value.dataset)} samples, batch_size={value.batch_size})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__} of {len(value)}: ({inner})"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _num(value: float) -> str:
    return f"{value:.6g}"


class _Checker:
    """Context of one public check: forked RNG, "✓" lines, uniform failure messages."""

    def __init__(self, task: str, defines: str) -> None:
        self.task = task
        self.defines = defines
        self._rng = None
        self._threads = 1

    def __enter__(self) -> _Checker:
        self._rng = torch.random.fork_rng(devices=[])
        self._rng.__enter__()
        torch.manual_seed(0)
        # The checks' tensors are tiny: one CPU thread is much faster than several
        # (thread start-up and synchronisation dominate), especially on a busy machine.
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        torch.set_num_threads(self._threads)
        self._rng.__exit__(exc_type, exc, tb)
        if exc_type is None:
            print(f"All {self.task} checks passed.")
        elif isinstance(exc, NotImplementedYet):
            print(f"✗ {exc}")
        return False

    # -- reporting -----------------------------------------------------------------------
    def ok(self, what: str) -> None:
        print(f"✓ {what}", flush=True)

    def fail(self, what: str, expected: str, got: str, hint: str | None = None) -> NoReturn:
        lines = [f"{self.task} check failed: {what}", f"  expected: {expected}", f"  got:      {got}"]
        if hint:
            lines.append(f"  hint:     {hint}")
        raise CheckFailure("\n".join(lines))

    # -- calling the student's code -------------------------------------------------------
    def call(self, fn: Callable, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
        """Call the student's `fn`; turn NotImplementedError and crashes into clear messages."""
        if name is None:
            qualified = getattr(fn, "__qualname__", None) or type(fn).__name__
            name = getattr(fn, "__name__", qualified) if "<locals>" in qualified else qualified
        try:
            return fn(*args, **kwargs)
        except CheckFailure:
            raise
        except NotImplementedError as err:
            frames = traceback.extract_tb(err.__traceback__)
            where = f" (raised in `{frames[-1].name}`)" if frames else ""
            raise NotImplementedYet(
                f"{self.task}: not implemented yet — fill in the TODO cell that defines "
                f"`{self.defines}`, run it, then run this check again{where}."
            ) from err
        except Exception as err:
            described = ", ".join([_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()])
            raise CheckFailure(
                f"{self.task} check failed: calling {name}({described}) raised "
                f"{type(err).__name__}: {err}\n"
                "  hint:     the traceback above ends in the line of your code that failed; "
                "check the shapes and devices of the tensors it combines."
            ) from err


# ======================================================================================
# Small utilities
# ======================================================================================
def _resolve_device(device: str | torch.device | None) -> torch.device:
    return torch.device(device) if device is not None else get_device()


def _global(fn: Callable, name: str) -> Any:
    """A name from the module (notebook) namespace the function was defined in, or None."""
    return getattr(inspect.unwrap(fn), "__globals__", {}).get(name)


def _unpack(chk: _Checker, output: Any, count: int, names: str) -> tuple:
    if not isinstance(output, (tuple, list)) or len(output) != count:
        chk.fail(
            "the number of outputs",
            f"a tuple of {count}: {names}",
            _describe(output),
            f"return all {count} values, e.g. `return {names.strip('()')}`.",
        )
    return tuple(output)


def _python_float(chk: _Checker, value: Any, what: str, hint_tensor: str) -> float:
    """Accept a Python float (or NumPy floating scalar); explain tensors and other types."""
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        hint = hint_tensor if isinstance(value, torch.Tensor) else f"return a float, not a {type(value).__name__}."
        chk.fail(what, "a Python float", _describe(value), hint)
    value = float(value)
    if not math.isfinite(value):
        chk.fail(what, "a finite number", _num(value), "NaN/inf: look for a division by zero or log(0).")
    return value


def _scalar_tensor(chk: _Checker, value: Any, what: str) -> torch.Tensor:
    """The loss must be a 0-d floating tensor (so that loss.backward() works)."""
    if not isinstance(value, torch.Tensor):
        chk.fail(what, "a 0-d float tensor (the loss, still attached to the graph)", _describe(value),
                 "return the tensor itself, not loss.item() or a Python number: training calls loss.backward().")
    if value.ndim != 0:
        chk.fail(what, "a 0-d float tensor", _describe(value),
                 "reduce to a single number (the mean over anchors / the sum of the two terms), "
                 "not a per-sample vector or shape (1,).")
    if not value.is_floating_point():
        chk.fail(what, "a floating-point tensor", _describe(value), None)
    if not torch.isfinite(value):
        chk.fail(what, "a finite value", _describe(value), "NaN/inf: look for a division by zero or log(0).")
    return value


def _close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


def _tensors_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: nn.Module, before: Sequence[torch.Tensor]) -> bool:
    return any(not torch.equal(p.detach(), b) for p, b in zip(module.parameters(), before))


def _part_changed(model: nn.Module, part: str, before: Sequence[torch.Tensor]) -> bool:
    """Whether any parameter of `model.<part>` differs from its entry in `before` (a `_snapshot(model)`)."""
    members = {id(p) for p in getattr(model, part).parameters()}
    return any(id(p) in members and not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


def _grads(module: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in module.parameters()]


def _unit_rows(t: torch.Tensor, atol: float = 1e-4) -> bool:
    return bool(torch.allclose(t.detach().double().norm(dim=1), torch.ones(t.shape[0], dtype=torch.float64), atol=atol))


def _unit_columns(t: torch.Tensor, atol: float = 1e-4) -> bool:
    return bool(torch.allclose(t.detach().double().norm(dim=0), torch.ones(t.shape[1], dtype=torch.float64), atol=atol))


class _TinyEncoder(nn.Module):
    """A fast stand-in for the ResNet-18 encoder f(.): images (B, 3, H, W) -> features (B, 512)."""

    def __init__(self, out_dim: int = _FEATURE_DIM) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, out_dim)
        self.training_modes: list[bool] = []  # train/eval mode of every forward pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.training_modes.append(self.training)
        h = self.pool(torch.tanh(self.conv(x)))  # (B, 8, 2, 2); tanh keeps features of different images apart
        return self.fc(torch.flatten(h, 1))  # (B, 512)


def _image_pair(batch_size: int = 8, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Two "views" of a batch of smooth random images, different enough between images that
    the tiny encoder's features (and a loss) depend on the inputs and on the temperature.

    Shape: (B, 3, 16, 16) float each, values around [-2, 2] (the checks need no real images).
    """
    fields = F.interpolate(torch.randn(batch_size, 3, 2, 2), size=16, mode="bilinear", align_corners=False)
    x1 = 2.0 * fields  # (B, 3, 16, 16)
    x2 = x1 + 0.2 * torch.randn(x1.shape)
    return x1.to(device), x2.to(device)


def _strip_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer by the identity (in place).

    With batch statistics gone, a network gives the same outputs whether the two views are
    forwarded separately or concatenated, so the step checks can accept both styles.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _strip_batch_norm(child)
    return module


def _materialize_on_cpu(model: nn.Module) -> bool:
    """Give every meta-device layer real, freshly initialised weights; False if one cannot be."""
    for module in model.modules():
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        if any(t.is_meta for t in tensors):
            if not hasattr(module, "reset_parameters"):
                return False
            module.to_empty(device="cpu", recurse=False)
            module.reset_parameters()
    return not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def _instantiate(chk: _Checker, cls: type, class_name: str, proj_dim: int = _PROJ_DIM) -> nn.Module:
    """The student's model class (its given __init__) with the tiny encoder in place of ResNet-18.

    The class is built on PyTorch's "meta" device (shapes only, no memory, no initialisation
    of the 11M ResNet-18 weights), the encoder is replaced by `_TinyEncoder`, and the heads get
    real weights by their own `reset_parameters`. If the class cannot be built that way, it
    is built normally. Heads are narrow (`_HIDDEN_DIM`): the checks test forward and step
    logic, not capacity.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        chk.fail("the argument", f"the class {class_name} (an nn.Module subclass)", _describe(cls),
                 f"pass the class itself, e.g. check(..., {class_name}), not an instance.")
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        parameters = {}
    kwargs = {name: value for name, value in (("proj_dim", proj_dim), ("hidden_dim", _HIDDEN_DIM),
                                               ("hidden", _HIDDEN_DIM)) if name in parameters}
    model = None
    try:
        with torch.device("meta"):
            candidate = cls(**kwargs)
        if isinstance(getattr(candidate, "encoder", None), nn.Module):
            candidate.encoder = _TinyEncoder()
            model = candidate if _materialize_on_cpu(candidate) else None
    except Exception:  # the given __init__ does something the meta device cannot: build it for real
        model = None
    if model is None:
        model = chk.call(cls, name=class_name, **kwargs)
        if isinstance(getattr(model, "encoder", None), nn.Module):
            model.encoder = _TinyEncoder()
    for part in ("encoder", "projector"):
        if not isinstance(getattr(model, part, None), nn.Module):
            chk.fail(f"{class_name} structure", f"a `self.{part}` sub-module (from the given __init__)",
                     f"no module attribute `{part}`", "keep the given __init__ unchanged.")
    return model


# ======================================================================================
# extract_features
# ======================================================================================
class _LinearFeatureModel(nn.Module):
    """A stand-in encoder whose features are a fixed linear map of the flattened image.

    It works on whatever device the input is on and records whether gradients were enabled
    during each forward. `output` selects the return type: "tensor", "tuple" or "list"
    (features first, then a second output, as the SSL models return (repr, proj)).
    """

    def __init__(self, in_dim: int, out_dim: int, output: str = "tensor") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / math.sqrt(in_dim))
        self.output = output
        self.grad_enabled: list[bool] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1) @ self.weight.to(x.device).T  # (B, out_dim)

    def forward(self, x: torch.Tensor):
        self.grad_enabled.append(torch.is_grad_enabled())
        f = self.features(x)
        if self.output == "tensor":
            return f
        second = f[:, :3] * 2.0 + 1.0  # (B, 3), a "projection" that must not be returned
        return (f, second) if self.output == "tuple" else [f, second]


def check_extract_features(extract_features_and_labels: Callable, device: str | torch.device | None = None) -> None:
    """Check `extract_features_and_labels(model, dataloader, normalize=False)`.

    Expected: `(features (N, D) float on the CPU, labels (N,) int64 on the CPU)`, all batches
    in loader order, the first element when the model returns a tuple/list, L2-normalised
    rows when `normalize=True`, and no autograd graph (forward under torch.no_grad()).

    Args:
        extract_features_and_labels: your function.
        device: where the stand-in model lives (default: `helpers.get_device()`).
    """
    chk = _Checker("extract_features", "extract_features_and_labels")
    with chk:
        device = _resolve_device(device)
        fn = extract_features_and_labels
        images = torch.rand(10, 3, 4, 4)
        labels = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
        loader = DataLoader(TensorDataset(images, labels), batch_size=4, shuffle=False)  # batches 4, 4, 2
        model = _LinearFeatureModel(48, 6).to(device)
        with torch.no_grad():
            expected = model.features(images.to(device)).cpu()  # (10, 6)

        output = chk.call(fn, model, loader, normalize=False, name="extract_features_and_labels")
        features, got_labels = _unpack(chk, output, 2, "(features, labels)")
        for name, value in (("features", features), ("labels", got_labels)):
            if not isinstance(value, torch.Tensor):
                chk.fail(f"the type of {name}", "a torch.Tensor", _describe(value),
                         "collect the batches in a list and torch.cat(list, dim=0) them.")
        if features.shape != expected.shape:
            if features.shape[0] in (4, 2):
                hint = "only one batch came back: concatenate the features of all batches with torch.cat(..., dim=0)."
            else:
                hint = "features are (N, D): one row per image, all batches concatenated."
            chk.fail("features shape", f"{tuple(expected.shape)} (N=10 images, D=6 features)",
                     _describe(features), hint)
        if not features.is_floating_point():
            chk.fail("features dtype", "a floating-point tensor", _describe(features), None)
        if features.device.type != "cpu":
            chk.fail("features device", "on the CPU", _describe(features),
                     "move each batch's features to the CPU (`feat.cpu()`) before collecting them.")
        if got_labels.shape != labels.shape or got_labels.dtype != torch.int64 or got_labels.device.type != "cpu":
            chk.fail("labels", "an int64 CPU tensor of shape (10,)", _describe(got_labels),
                     "collect the loader's labels `y` per batch and torch.cat them (they are already int64).")
        chk.ok("returns (features (N, D) float CPU, labels (N,) int64 CPU)")

        if not torch.equal(got_labels, labels):
            chk.fail("label values", f"the loader's labels in order: {labels.tolist()}", str(got_labels.tolist()),
                     "keep the loader's order; don't shuffle or sort.")
        if not _tensors_close(features, expected):
            if _tensors_close(features, F.normalize(expected, dim=1)):
                hint = "these are L2-normalised although normalize=False."
            else:
                hint = "features[i] must be model(x)[i] for the i-th image, in loader order."
            chk.fail("feature values (normalize=False)", "the model's outputs, batch after batch",
                     f"max abs difference {_max_diff(features, expected):.3g}", hint)
        chk.ok("features and labels are the model's outputs in loader order")

        if features.requires_grad or features.grad_fn is not None or any(model.grad_enabled):
            chk.fail("gradients", "no autograd graph: the forward pass runs under torch.no_grad()",
                     f"gradients enabled during the forward pass={any(model.grad_enabled)}, "
                     f"features.requires_grad={features.requires_grad}",
                     "wrap the loop (or the model call) in `with torch.no_grad():` — detaching afterwards "
                     "still builds the graph and wastes memory.")
        chk.ok("no gradients are tracked")

        unwrap = ("if the output is a tuple or list, take its first element: "
                  "`if isinstance(out, (tuple, list)): out = out[0]`.")
        for kind in ("tuple", "list"):
            wrapped = _LinearFeatureModel(48, 6, output=kind).to(device)
            wrapped.load_state_dict(model.state_dict())
            what = f"a model that returns a {kind} (features, projection)"
            try:
                out = chk.call(fn, wrapped, loader, normalize=False, name="extract_features_and_labels")
            except NotImplementedYet:
                raise
            except CheckFailure as err:
                cause = err.__cause__
                chk.fail(what, "the features, i.e. the first element of the model's output",
                         f"{type(cause).__name__}: {cause}" if cause else str(err), unwrap)
            got = _unpack(chk, out, 2, "(features, labels)")[0]
            if not isinstance(got, torch.Tensor) or not _tensors_close(got.cpu(), expected):
                chk.fail(what, "the features, i.e. the first element of the model's output", _describe(got), unwrap)
        chk.ok("uses the first element when the model returns a tuple or list")

        out = chk.call(fn, model, loader, normalize=True, name="extract_features_and_labels")
        normalized = _unpack(chk, out, 2, "(features, labels)")[0]
        if not isinstance(normalized, torch.Tensor) or normalized.shape != expected.shape:
            chk.fail("normalize=True output", f"shape {tuple(expected.shape)}", _describe(normalized), None)
        if not _unit_rows(normalized):
            hint = ("the columns have unit norm: normalise each feature vector (row), `F.normalize(features, dim=1)`."
                    if _unit_columns(normalized) else "with normalize=True divide each row by its L2 norm.")
            chk.fail("normalize=True", "every row with L2 norm 1",
                     f"row norms {normalized.norm(dim=1)[:4].tolist()}...", hint)
        if not _tensors_close(normalized.cpu(), F.normalize(expected, dim=1)):
            chk.fail("normalize=True values", "the model's features divided by their row norms",
                     f"max abs difference {_max_diff(normalized.cpu(), F.normalize(expected, dim=1)):.3g}", None)
        chk.ok("normalize=True gives unit-norm rows of the same features")


# ======================================================================================
# probes
# ======================================================================================
def _clusters(num_classes: int, per_class: int, dim: int, gen: torch.Generator, spread: float = 0.5):
    centres = 10.0 * torch.eye(num_classes, dim)  # (C, dim), far apart
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (C * per_class,)
    points = centres[labels] + spread * torch.randn(len(labels), dim, generator=gen)
    return points.numpy().astype(np.float32), labels.numpy()


def _knn_k5_data() -> tuple[np.ndarray, ...]:
    """2-D points where only k = 5 (of k = 1, 3, 5, 7) predicts the test point's label.

    Around the test point at the origin: two class-0 points at distance 0.50, then three
    class-1 points at 0.55-0.57, then two more class-0 points at 0.60-0.61; everything else is
    far away. 1-NN and 3-NN vote class 0, 5-NN votes 3:2 for class 1 (also when weighted by
    1 / distance), 7-NN votes 4:3 for class 0.
    """
    near = [(0.50, 0, 0.0), (0.50, 0, 3.1), (0.55, 1, 1.2), (0.56, 1, 2.0), (0.57, 1, 4.4),
            (0.60, 0, 5.3), (0.61, 0, 0.6)]
    points = [(r * math.cos(a), r * math.sin(a)) for r, _, a in near]
    classes = [c for _, c, _ in near]
    for i in range(10):  # far padding so both classes have plenty of training points
        points += [(8.0 + 0.1 * i, 8.0), (-8.0 - 0.1 * i, -8.0)]
        classes += [0, 1]
    train_x = np.array(points, dtype=np.float32)
    train_y = np.array(classes, dtype=np.int64)
    return train_x, train_y, np.zeros((1, 2), dtype=np.float32), np.array([1], dtype=np.int64)


def check_probes(run_knn_probe: Callable, run_linear_probe: Callable) -> None:
    """Check `run_knn_probe(...)` and `run_linear_probe(...)`.

    Both take `(train_features, train_labels, test_features, test_labels)` (NumPy arrays, as
    the notebook passes them) and return the test accuracy as a float in [0, 1]: k-NN with
    k = 5, and a logistic-regression (linear) classifier.
    """
    chk = _Checker("probes", "run_knn_probe / run_linear_probe")
    with chk:
        gen = torch.Generator().manual_seed(0)
        train_x, train_y = _clusters(4, 20, 8, gen)
        test_x, test_y = _clusters(4, 10, 8, gen)
        probes = (("run_knn_probe", run_knn_probe), ("run_linear_probe", run_linear_probe))

        for name, probe in probes:
            acc = chk.call(probe, train_x, train_y, test_x, test_y, name=name)
            acc = _python_float(chk, acc, f"{name} return type",
                                "return a Python float, e.g. `float(accuracy_score(...))` or `.item()`.")
            if _close(acc, 100.0):
                chk.fail(f"{name} on perfectly separable clusters", "1.0 (a fraction in [0, 1])", _num(acc),
                         "return the accuracy as a fraction; the notebook multiplies by 100 when printing.")
            if not _close(acc, 1.0):
                hint = ("0 on perfectly separable clusters: is this the error rate (1 - accuracy)?"
                        if _close(acc, 0.0) else
                        "fit on the training features/labels and score on the test features/labels.")
                chk.fail(f"{name} on perfectly separable clusters", "1.0", _num(acc), hint)
        chk.ok("both return a float, 1.0 on perfectly separable clusters (a fraction, not percent)")

        # Test points at the cluster centres: 7 of 10 carry their cluster's label, 3 another one.
        centres = (10.0 * torch.eye(4, 8)).numpy().astype(np.float32)
        cluster = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
        known_x = centres[cluster]
        known_y = cluster.copy()
        known_y[[2, 5, 9]] = [0, 3, 2]  # three wrong labels -> accuracy exactly 0.7
        for name, probe in probes:
            acc = _python_float(chk, chk.call(probe, train_x, train_y, known_x, known_y, name=name),
                                f"{name} return type", "return a Python float.")
            if not _close(acc, 0.7):
                if _close(acc, 0.3):
                    hint = "that is the error rate (1 - accuracy)."
                elif _close(acc, 1.0):
                    hint = "that is the training accuracy: score the predictions on test_features against test_labels."
                elif _close(acc, 70.0):
                    hint = "return a fraction in [0, 1], not percent."
                else:
                    hint = "accuracy = mean(predictions on test_features == test_labels)."
                chk.fail(f"{name} with known test accuracy (7 of 10 test labels match their cluster)",
                         "0.7", _num(acc), hint)
        chk.ok("both return the test accuracy (0.7 where 7 of 10 test labels are right)")

        knn_x, knn_y, query_x, query_y = _knn_k5_data()
        acc = _python_float(chk, chk.call(run_knn_probe, knn_x, knn_y, query_x, query_y, name="run_knn_probe"),
                            "run_knn_probe return type", "return a Python float.")
        if not _close(acc, 1.0):
            chk.fail("k-NN uses k = 5 neighbours",
                     "1.0 (the 5 nearest neighbours vote 3:2 for the right class)", _num(acc),
                     "use KNeighborsClassifier(n_neighbors=5) with the default Euclidean distance "
                     "(k = 1, 3 or 7 vote for the wrong class here).")
        chk.ok("the k-NN probe votes over k = 5 neighbours")

        # XOR: four clusters, opposite corners share a class. No linear classifier gets more
        # than 3 of the 4 clusters right; a non-linear one (e.g. k-NN) gets all of them.
        corners = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]) * 4
        xor_labels = torch.tensor([0, 0, 1, 1])
        which = torch.arange(4).repeat_interleave(15)
        xor_x = (corners[which] + 0.3 * torch.randn(len(which), 2, generator=gen)).numpy().astype(np.float32)
        xor_y = xor_labels[which].numpy()
        acc = _python_float(chk, chk.call(run_linear_probe, xor_x, xor_y, xor_x, xor_y, name="run_linear_probe"),
                            "run_linear_probe return type", "return a Python float.")
        if acc > 0.75 + 0.05:
            chk.fail("the linear probe is linear (XOR data, which no linear classifier separates)",
                     "at most about 0.75", _num(acc),
                     "run_linear_probe must fit a linear classifier (LogisticRegression), not k-NN or an MLP.")
        chk.ok("the linear probe is a linear classifier (it cannot solve XOR)")


# ======================================================================================
# SimCLR / BYOL forward
# ======================================================================================
def _check_encoder_output(chk: _Checker, model: nn.Module, x: torch.Tensor, repr_: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        expected = model.encoder(x)  # (B, 512)
    if not _tensors_close(repr_, expected):
        if _tensors_close(repr_, F.normalize(expected, dim=1)):
            hint = "repr is L2-normalised: return the raw encoder output; only the projections are normalised."
        else:
            hint = "repr must be exactly self.encoder(x), the representation before the projector."
        chk.fail("repr", "self.encoder(x)", f"max abs difference {_max_diff(repr_, expected):.3g}", hint)
    return expected


def _check_normalized_output(chk: _Checker, name: str, value: torch.Tensor, direction: torch.Tensor,
                             formula: str, wrong: dict[str, torch.Tensor] | None = None) -> None:
    """`value` must be the row-normalised `direction` (the un-normalised head output)."""
    if not _unit_rows(value):
        if _unit_columns(value):
            hint = f"{name} is normalised along the batch (dim=0): normalise each row, F.normalize({name}, dim=1)."
        else:
            hint = f"L2-normalise {name}: F.normalize(x, dim=1) or x / x.norm(dim=1, keepdim=True)."
        chk.fail(f"{name} rows have unit L2 norm", "all row norms 1",
                 f"row norms {[round(v, 4) for v in value.detach().norm(dim=1)[:4].tolist()]}...", hint)
    expected = F.normalize(direction, dim=1)
    if not _tensors_close(value, expected, rtol=1e-3, atol=1e-4):
        hint = f"{name} = {formula}."
        for description, candidate in (wrong or {}).items():
            if _tensors_close(value, F.normalize(candidate, dim=1), rtol=1e-3, atol=1e-4):
                hint = f"{description}; {name} = {formula}."
        chk.fail(name, formula, f"max abs difference {_max_diff(value, expected):.3g}", hint)


def _check_gradients_reach(chk: _Checker, model: nn.Module, output: torch.Tensor, name: str,
                           parts: Sequence[str]) -> None:
    model.zero_grad(set_to_none=True)
    if not output.requires_grad:
        chk.fail(f"gradients through {name}", f"{name} attached to the autograd graph",
                 f"{name}.requires_grad=False",
                 "don't use torch.no_grad(), .detach() or .data inside forward; training needs the gradients.")
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(1)).to(output.device)
    (output * weights).sum().backward()
    for part in parts:
        grads = [p.grad for p in getattr(model, part).parameters()]
        if not grads or all(g is None or not bool(g.abs().sum() > 0) for g in grads):
            chk.fail(f"gradients through {name}", f"non-zero gradients in self.{part}", "none",
                     f"{name} must be computed from self.{part} without detaching anything in between.")
    model.zero_grad(set_to_none=True)


def check_simclr_forward(SimCLRModel: type) -> None:
    """Check `SimCLRModel.forward(x) -> (repr (B, 512), proj (B, proj_dim))`.

    Expected: `repr = self.encoder(x)`, `proj = normalize(self.projector(repr))` with unit
    L2-norm rows, gradients flowing into encoder and projector. Your class is built with its
    given __init__ and a tiny stand-in for the ResNet-18 encoder (also 512 features), so the
    check runs in a second on a CPU.
    """
    chk = _Checker("simclr_forward", "SimCLRModel.forward")
    with chk:
        model = _instantiate(chk, SimCLRModel, "SimCLRModel").eval()
        x = _image_pair(6)[0]
        with torch.no_grad():
            out = chk.call(model, x, name="SimCLRModel.forward")
        repr_, proj = _unpack(chk, out, 2, "(repr, proj)")
        for name, value, shape in (("repr", repr_, (6, _FEATURE_DIM)), ("proj", proj, (6, _PROJ_DIM))):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                chk.fail(f"{name} shape (batch of 6 images, proj_dim={_PROJ_DIM})",
                         f"{shape}", _describe(value), "forward returns (repr, proj), in this order.")
        chk.ok("returns (repr (B, 512), proj (B, proj_dim))")

        expected_repr = _check_encoder_output(chk, model, x, repr_)
        chk.ok("repr = self.encoder(x)")
        with torch.no_grad():
            head = model.projector(expected_repr)  # (B, proj_dim)
            wrong = {"the projector was applied to normalize(repr)": model.projector(F.normalize(expected_repr, dim=1))}
        _check_normalized_output(chk, "proj", proj, head, "normalize(self.projector(repr))", wrong)
        chk.ok("proj = normalize(self.projector(repr)), every row with unit L2 norm")

        model.train()
        repr_, proj = _unpack(chk, chk.call(model, x, name="SimCLRModel.forward"), 2, "(repr, proj)")
        _check_gradients_reach(chk, model, proj, "proj", ("encoder", "projector"))
        chk.ok("gradients flow from proj into the projector and the encoder")


def check_byol_forward(BYOLModel: type) -> None:
    """Check `BYOLModel.forward(x) -> (repr, proj, pred)`.

    Expected: `repr = self.encoder(x)` (B, 512); `proj = normalize(g(repr))`;
    `pred = normalize(q(g(repr)))` — the predictor q takes the *un-normalised* projection
    (BYOL paper, section 3.1; the seed's code) — both with unit L2-norm rows. Built like
    `check_simclr_forward`, with a tiny stand-in encoder.
    """
    chk = _Checker("byol_forward", "BYOLModel.forward")
    with chk:
        model = _instantiate(chk, BYOLModel, "BYOLModel").eval()
        if not isinstance(getattr(model, "predictor", None), nn.Module):
            chk.fail("BYOLModel structure", "a `self.predictor` sub-module (from the given __init__)",
                     "no module attribute `predictor`", "keep the given __init__ unchanged.")
        x = _image_pair(6)[0]
        with torch.no_grad():
            out = chk.call(model, x, name="BYOLModel.forward")
        repr_, proj, pred = _unpack(chk, out, 3, "(repr, proj, pred)")
        for name, value, shape in (("repr", repr_, (6, _FEATURE_DIM)), ("proj", proj, (6, _PROJ_DIM)),
                                   ("pred", pred, (6, _PROJ_DIM))):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                chk.fail(f"{name} shape (batch of 6 images, proj_dim={_PROJ_DIM})",
                         f"{shape}", _describe(value), "forward returns (repr, proj, pred), in this order.")
        chk.ok("returns (repr (B, 512), proj (B, proj_dim), pred (B, proj_dim))")

        expected_repr = _check_encoder_output(chk, model, x, repr_)
        chk.ok("repr = self.encoder(x)")
        with torch.no_grad():
            head = model.projector(expected_repr)  # (B, proj_dim), un-normalised z
            predicted = model.predictor(head)  # (B, proj_dim), q(z)
            wrong_pred = {"the predictor was applied to the normalised projection":
                          model.predictor(F.normalize(head, dim=1))}
        _check_normalized_output(chk, "proj", proj, head, "normalize(self.projector(repr))")
        chk.ok("proj = normalize(self.projector(repr)), unit-norm rows")
        _check_normalized_output(chk, "pred", pred, predicted,
                                 "normalize(self.predictor(self.projector(repr))) "
                                 "(q takes the un-normalised projection)",
                                 wrong_pred)
        chk.ok("pred = normalize(self.predictor(self.projector(repr))), unit-norm rows")

        model.train()
        out = _unpack(chk, chk.call(model, x, name="BYOLModel.forward"), 3, "(repr, proj, pred)")
        _check_gradients_reach(chk, model, out[2], "pred", ("encoder", "projector", "predictor"))
        out = _unpack(chk, chk.call(model, x, name="BYOLModel.forward"), 3, "(repr, proj, pred)")
        _check_gradients_reach(chk, model, out[1], "proj", ("encoder", "projector"))
        chk.ok("gradients flow from pred and proj back into the heads and the encoder")


# ======================================================================================
# NT-Xent
# ======================================================================================
def _orthonormal_views(n: int, cosine: float, gen: torch.Generator, dim: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views whose only non-zero similarities are the positives' `cosine` and self-similarity 1.

    With orthonormal rows e_1..e_2n of a random rotation: z1_i = e_i and
    z2_i = cos(theta) e_i + sin(theta) e_{n+i}. Every pair of different views except (z1_i, z2_i)
    is orthogonal. Shape: (n, dim) float32 each.
    """
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    rows = basis.T  # (dim, dim) orthonormal rows
    sine = math.sqrt(max(0.0, 1.0 - cosine**2))
    z1 = rows[:n]
    z2 = cosine * rows[:n] + sine * rows[n:2 * n]
    return z1.float().contiguous(), z2.float().contiguous()


def _nt_xent_closed_form(n: int, tau: float, c: float) -> float:
    """NT-Xent of `_orthonormal_views`: each anchor sees exp(c/tau) once and exp(0) = 1 (2N-2) times."""
    return math.log1p((2 * n - 2) * math.exp(-c / tau))


def _nt_xent_diagnosis(value: float, n: int, tau: float, c: float) -> str:
    correct = _nt_xent_closed_form(n, tau, c)
    candidates = [
        (math.log1p((math.exp(1 / tau) + 2 * n - 2) * math.exp(-c / tau)),
         "this is the value without masking the diagonal: did you exclude k = i (self-similarity)? "
         "Set sim[i, i] to -inf (or a large negative number) before the softmax."),
        (2 * correct, "this is twice the loss: take the mean over all 2N anchors (1/(2N), not 1/N)."),
        (correct / 2, "this is half the loss: take the mean over all 2N anchors, each anchor's loss counted once."),
        (2 * n * correct, "this is the sum over the 2N anchors: take the mean."),
        (n * correct, "this is N times the loss: take the mean over the 2N anchors."),
        (math.log1p((2 * n - 2) * math.exp(-c * tau)),
         "the similarities were multiplied by tau: divide them by tau (sim / tau)."),
        (math.log1p((2 * n - 2) * math.exp(-c)), "the temperature is missing: divide the similarities by tau."),
        (math.log1p((n - 1) * math.exp(-c / tau)),
         "the denominator only has the other view's N-1 negatives: it runs over all 2N-1 other "
         "views, including the other images of the same view (z1 against z1, z2 against z2)."),
        (math.log(2 * n - 2) - c / tau if n > 1 else math.nan,
         "the positive is missing from the denominator: sum over all k != i, positive included."),
    ]
    for candidate, hint in candidates:
        if math.isfinite(candidate) and _close(value, candidate, rtol=1e-4, atol=1e-5):
            return hint
    return ("loss = mean over the 2N anchors i of -log(exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau)), "
            "with s the dot products of the 2N rows of cat([z1, z2]) and p the index of i's other view.")


def check_nt_xent(nt_xent: Callable) -> None:
    """Check `nt_xent(z1, z2, tau=0.5)`, the NT-Xent loss of SimCLR.

    Closed form used: for perfectly aligned orthonormal pairs (z1_i = z2_i = e_i) every anchor
    has one positive with similarity 1 and 2N-2 negatives with similarity 0, so
    `loss = log(1 + (2N-2) * exp(-1/tau))`; with positives at cosine c, `exp(-c/tau)`.
    Also: a 0-d tensor, symmetric in (z1, z2), invariant to permuting the batch, gradients
    reach both inputs, inputs not modified.
    """
    chk = _Checker("nt_xent", "nt_xent")
    with chk:
        gen = torch.Generator().manual_seed(0)
        z1 = F.normalize(torch.randn(6, 8, generator=gen), dim=1)
        z2 = F.normalize(torch.randn(6, 8, generator=gen), dim=1)
        z1_copy, z2_copy = z1.clone(), z2.clone()
        loss = _scalar_tensor(chk, chk.call(nt_xent, z1, z2, tau=0.5), "the return value")
        if not (torch.equal(z1, z1_copy) and torch.equal(z2, z2_copy)):
            chk.fail("inputs", "z1 and z2 unchanged", "modified in place",
                     "don't write into the inputs (e.g. z.div_() or masked_fill_ on a view of them); "
                     "use out-of-place operations.")
        chk.ok("returns a 0-d float tensor and leaves its inputs unchanged")

        for n, tau in ((2, 0.5), (4, 0.1), (8, 1.0), (5, 0.2)):
            a, b = _orthonormal_views(n, 1.0, gen)
            value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b, tau=tau), "the return value"))
            expected = _nt_xent_closed_form(n, tau, 1.0)
            if not _close(value, expected, rtol=1e-4, atol=1e-5):
                chk.fail(f"closed form for perfectly aligned orthonormal pairs (N={n}, tau={tau})",
                         f"{_num(expected)} = log(1 + (2N-2)·exp(-1/tau))", _num(value),
                         _nt_xent_diagnosis(value, n, tau, 1.0))
        chk.ok("closed form for aligned orthonormal pairs: log(1 + (2N-2)·exp(-1/tau)) for several N and tau")

        a, b = _orthonormal_views(4, 1.0, gen)
        value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b), "the return value"))
        if not _close(value, _nt_xent_closed_form(4, 0.5, 1.0), rtol=1e-4, atol=1e-5):
            chk.fail("the default temperature", f"{_num(_nt_xent_closed_form(4, 0.5, 1.0))} (tau=0.5)", _num(value),
                     "keep the signature nt_xent(z1, z2, tau=0.5).")
        chk.ok("default tau = 0.5")

        previous = -math.inf
        for cosine in (1.0, 0.5, 0.0, -0.5):
            a, b = _orthonormal_views(5, cosine, gen)
            value = float(_scalar_tensor(chk, chk.call(nt_xent, a, b, tau=0.5), "the return value"))
            expected = _nt_xent_closed_form(5, 0.5, cosine)
            if not _close(value, expected, rtol=1e-4, atol=1e-5):
                chk.fail(f"closed form for positives at cosine similarity {cosine} (N=5, tau=0.5)",
                         f"{_num(expected)} = log(1 + (2N-2)·exp(-cos/tau))", _num(value),
                         _nt_xent_diagnosis(value, 5, 0.5, cosine))
            if value <= previous:
                chk.fail("the loss grows as the positives move apart", f"more than {_num(previous)}", _num(value), None)
            previous = value
        chk.ok("closed form for partially aligned pairs; the loss grows as the positives move apart")

        swapped = float(_scalar_tensor(chk, chk.call(nt_xent, z2, z1, tau=0.5), "the return value"))
        if not _close(swapped, float(loss), rtol=1e-5, atol=1e-6):
            chk.fail("symmetry nt_xent(z1, z2) == nt_xent(z2, z1) (random unit vectors)", _num(float(loss)),
                     _num(swapped),
                     "use every one of the 2N views as an anchor (the views of z1 and of z2), "
                     "not only the rows of z1.")
        chk.ok("symmetric in (z1, z2)")

        perm = torch.randperm(6, generator=gen)
        permuted = float(_scalar_tensor(chk, chk.call(nt_xent, z1[perm], z2[perm], tau=0.5), "the return value"))
        if not _close(permuted, float(loss), rtol=1e-5, atol=1e-6):
            chk.fail("invariance to reordering the batch (same permutation for z1 and z2)", _num(float(loss)),
                     _num(permuted), "the positive of row i of z1 is row i of z2, wherever it sits in the batch.")
        chk.ok("invariant to permuting the batch")

        leaf1, leaf2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        out = _scalar_tensor(chk, chk.call(nt_xent, leaf1, leaf2, tau=0.5), "the return value")
        if not out.requires_grad:
            chk.fail("gradients", "a loss attached to z1 and z2", "a loss without grad_fn",
                     "don't detach, use .data/.item() or torch.no_grad() inside the loss.")
        out.backward()
        for name, leaf in (("z1", leaf1), ("z2", leaf2)):
            if leaf.grad is None or not torch.isfinite(leaf.grad).all() or not bool(leaf.grad.abs().sum() > 0):
                chk.fail(f"gradient with respect to {name}", "finite, non-zero", _describe(leaf.grad),
                         "both views must enter the loss without being detached.")
        chk.ok("gradients reach both z1 and z2")


# ======================================================================================
# Barlow Twins loss
# ======================================================================================
def _decorrelated(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, d) float64 features that are centred, pairwise orthogonal, with biased variance 1 each."""
    a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(dim=0, keepdim=True))  # orthonormal, still zero-mean columns
    return q * math.sqrt(n)


def _barlow_candidates(n: int, correct: Callable[[float], float]) -> list[float]:
    """The loss for C's entries c = 1 (biased std) and c = (N-1)/N (unbiased std); both accepted."""
    return [correct(1.0), correct((n - 1) / n)]


def _barlow_diagnosis(value: float, d: int, alpha: float, n: int, case: str) -> str:
    """The likely mistake behind a wrong closed-form value.

    Each candidate is the value a known mistake gives, as a function of the entry value c of
    C (1 with the biased std, (N-1)/N with the unbiased one); both c are tried.
    """
    general = ("loss = sum_i (1 - C_ii)^2 + alpha * sum_{i != j} C_ij^2 with C = z1n.T @ z2n / N, "
               "z1n, z2n standardised per feature along the batch (dim=0).")
    skip_diagonal = "the redundancy term must skip the diagonal: sum over i != j only."
    divide = "divide z1n.T @ z2n by the batch size N."
    if case == "identity":  # C = c I
        candidates = [
            (lambda c: d * (1 - n * c) ** 2, divide),
            (lambda c: d * (1 + c) ** 2, "the invariance term is (1 - C_ii)^2."),
            (lambda c: d * (1 - c) ** 2 + alpha * d * c**2, skip_diagonal),
        ]
    elif case == "rank1":  # every C_ij = c
        candidates = [
            (lambda c: d * (1 - c) ** 2 + alpha * d * d * c**2, skip_diagonal),
            (lambda c: d * (1 - c) ** 2 + d * (d - 1) * c**2, "multiply the off-diagonal sum by alpha."),
            (lambda c: d * (1 - n * c) ** 2 + alpha * d * (d - 1) * (n * c) ** 2, divide),
            (lambda c: (1 - c) ** 2 + alpha * c**2, "sum the squared entries (don't average them)."),
        ]
    else:  # C = c P, a permutation without fixed points
        candidates = [(lambda c: d + d * c**2, "multiply the off-diagonal sum by alpha.")]
    for formula, hint in candidates:
        if any(_close(value, formula(c), rtol=1e-3, atol=1e-5) for c in (1.0, (n - 1) / n)):
            return hint
    return general


def check_barlow_loss(barlow_loss: Callable) -> None:
    """Check `barlow_loss(z1, z2, alpha, eps=1e-5)`, the Barlow Twins loss.

    Closed forms (C = z1n.T @ z2n / N of the standardised features):
      - z1 = z2 with centred, decorrelated, unit-variance features: C = I, loss ~ 0;
      - z1 = z2 whose d features are all the same: every C_ij = 1, loss = alpha·d(d-1);
      - z2 = z1 with its features cyclically shifted: C is a permutation matrix without
        diagonal, loss = d + alpha·d.
    Biased and unbiased standard deviations are both accepted (they make C_ij = 1 or (N-1)/N).
    Invariances: swapping z1 and z2, per-feature shifts and positive scalings (up to eps),
    reordering the batch. Gradients reach both inputs.
    """
    chk = _Checker("barlow_loss", "barlow_loss")
    with chk:
        gen = torch.Generator().manual_seed(0)
        n, d = 256, 8
        z1 = torch.randn(64, d, generator=gen) * 2.0 + 1.0
        z2 = z1 + 0.8 * torch.randn(64, d, generator=gen)
        alpha = 0.3
        z1_copy = z1.clone()
        base = _scalar_tensor(chk, chk.call(barlow_loss, z1, z2, alpha), "the return value")
        if not torch.equal(z1, z1_copy):
            chk.fail("inputs", "z1 unchanged", "modified in place",
                     "standardise out of place: z1n = (z1 - mean) / std.")
        if float(base) < 0:
            chk.fail("sign", "a loss >= 0 (a sum of squares)", _num(float(base)), None)
        base = float(base)
        chk.ok("returns a non-negative 0-d float tensor")

        identity = _decorrelated(n, d, gen).float()
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, identity, identity.clone(), 0.5), "the return value"))
        if abs(value) > 5e-4:
            chk.fail("z1 = z2 with centred, decorrelated, unit-variance features (C = I)",
                     f"~0 (exactly 0 with the biased std, d/N^2 = {_num(d / n**2)} with the unbiased one)",
                     _num(value), _barlow_diagnosis(value, d, 0.5, n, "identity"))
        chk.ok("C = I (identical decorrelated views) gives loss ~0")

        column = _decorrelated(n, 1, gen)
        rank1 = column.repeat(1, d).float()  # (n, d): all features identical
        for alpha_ in (0.005, 0.5):
            value = float(_scalar_tensor(chk, chk.call(barlow_loss, rank1, rank1.clone(), alpha_), "the return value"))
            candidates = _barlow_candidates(n, lambda c: d * (1 - c) ** 2 + alpha_ * d * (d - 1) * c**2)
            if not any(_close(value, c, rtol=2e-4, atol=1e-5) for c in candidates):
                chk.fail(f"z1 = z2 with all {d} features identical (every C_ij = 1), alpha={alpha_}",
                         f"{_num(candidates[0])} = alpha·d(d-1) (or {_num(candidates[1])} with the unbiased std)",
                         _num(value), _barlow_diagnosis(value, d, alpha_, n, "rank1"))
        chk.ok("all-identical features give the closed form alpha·d(d-1)")

        shifted = identity.roll(1, dims=1)  # feature j of z2 = feature j-1 of z1
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, identity, shifted, 0.5), "the return value"))
        candidates = _barlow_candidates(n, lambda c: d * 1.0 + 0.5 * d * c**2)
        if not any(_close(value, c, rtol=2e-4, atol=1e-5) for c in candidates):
            chk.fail("z2 = z1 with its features cyclically shifted (C is an off-diagonal permutation), alpha=0.5",
                     f"{_num(candidates[0])} = d + alpha·d (or {_num(candidates[1])} with the unbiased std)",
                     _num(value), _barlow_diagnosis(value, d, 0.5, n, "permutation"))
        chk.ok("permuted features give the closed form d + alpha·d")

        swapped = float(_scalar_tensor(chk, chk.call(barlow_loss, z2, z1, alpha), "the return value"))
        if not _close(swapped, base, rtol=1e-4, atol=1e-6):
            chk.fail("symmetry barlow_loss(z1, z2) == barlow_loss(z2, z1)", _num(base), _num(swapped),
                     "standardise both inputs the same way.")
        chk.ok("symmetric in (z1, z2)")

        shift = 5.0 * torch.randn(1, d, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1 + shift, z2, alpha), "the return value"))
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail("invariance to adding a constant to each feature of z1", _num(base), _num(value),
                     "subtract each feature's batch mean (mean over dim=0) before dividing by its std.")
        scale = 0.5 + 2.5 * torch.rand(1, d, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1, z2 * scale, alpha), "the return value"))
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail("invariance to scaling each feature of z2 by a positive factor", _num(base), _num(value),
                     "divide each centred feature by its standard deviation over the batch (dim=0).")
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1 * scale + shift, z2 - shift, alpha),
                                     "the return value"))
        if not _close(value, base, rtol=1e-3, atol=1e-5):
            chk.fail("invariance to per-feature affine maps of both inputs", _num(base), _num(value),
                     "standardise each feature along the batch: (z - z.mean(0)) / z.std(0).")
        chk.ok("invariant to per-feature shifts and positive scalings (up to eps)")

        perm = torch.randperm(64, generator=gen)
        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1[perm], z2[perm], alpha), "the return value"))
        if not _close(value, base, rtol=1e-4, atol=1e-6):
            chk.fail("invariance to reordering the batch (same permutation for z1 and z2)", _num(base), _num(value),
                     "statistics are over the batch dimension (dim=0), pairs are rows with the same index.")
        chk.ok("invariant to permuting the batch")

        value = float(_scalar_tensor(chk, chk.call(barlow_loss, z1, z2, alpha, eps=1e-5), "the return value"))
        if not _close(value, base, rtol=1e-6, atol=1e-7):
            chk.fail("the default eps (a call without eps must equal eps=1e-5)", _num(value), _num(base),
                     "keep the signature barlow_loss(z1, z2, alpha, eps=1e-5).")

        leaf1, leaf2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        out = _scalar_tensor(chk, chk.call(barlow_loss, leaf1, leaf2, alpha), "the return value")
        if not out.requires_grad:
            chk.fail("gradients", "a loss attached to z1 and z2", "a loss without grad_fn",
                     "don't detach or use .data/.item() inside the loss.")
        out.backward()
        for name, leaf in (("z1", leaf1), ("z2", leaf2)):
            if leaf.grad is None or not torch.isfinite(leaf.grad).all() or not bool(leaf.grad.abs().sum() > 0):
                chk.fail(f"gradient with respect to {name}", "finite, non-zero", _describe(leaf.grad),
                         "both inputs must enter the loss without being detached.")
        chk.ok("gradients reach both z1 and z2")
        _note_barlow_precision(chk, barlow_loss, z1, z2, alpha)


#: The note `check_barlow_loss` prints when the loss does not stay in float32 under autocast.
BARLOW_PRECISION_NOTE = (
    "note: under fit's mixed precision (torch.autocast, on a GPU) your barlow_loss runs its matrix "
    "products in {dtype}{error}. `.float()` alone is not enough: autocast casts the operands of `@` "
    "back to {dtype}. To compute the loss in float32, put its body inside "
    "`with torch.autocast(device_type=z1.device.type, enabled=False):` and call `.float()` on z1 and z2 "
    "there. (Not an error: the grader accepts both; the float32 loss is the one the notebook asks for.)"
)


def _note_barlow_precision(chk: _Checker, barlow_loss: Callable, z1: torch.Tensor, z2: torch.Tensor,
                           alpha: float) -> None:
    """Say whether `barlow_loss` stays in float32 when `fit` runs the step under autocast.

    `fit` runs every training step under ``torch.autocast`` (bfloat16 on recent GPUs), where a
    matrix product of two float32 tensors is computed in bfloat16. CPU autocast has the same
    rule, so the check can see it here: the loss is called on float32 inputs under a CPU
    bfloat16 autocast and compared with its own float32 value. A loss that runs in bfloat16
    is correct for the grader (which compares in float32), so this is a note, not a failure.
    """
    exact = chk.call(barlow_loss, z1, z2, alpha)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = chk.call(barlow_loss, z1, z2, alpha)
    if not isinstance(mixed, torch.Tensor) or not isinstance(exact, torch.Tensor):
        return
    error = abs(float(mixed) - float(exact)) / max(abs(float(exact)), 1e-12)
    if mixed.dtype == torch.float32 and error <= 1e-5:
        chk.ok("stays in float32 under fit's mixed precision (torch.autocast)")
        return
    detail = f" (relative error {error:.1e} on this batch; result dtype {mixed.dtype})"
    print(BARLOW_PRECISION_NOTE.format(dtype="bfloat16", error=detail), flush=True)


# ======================================================================================
# EMA
# ======================================================================================
def _ema_networks(gen: torch.Generator) -> tuple[nn.Module, nn.Module]:
    """An online network and a different, frozen target with the same architecture (BatchNorm included)."""
    online = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    target.requires_grad_(False)
    return online, target


def check_ema(EMA: type) -> None:
    """Check `EMA(beta).update(online, target)`.

    Expected, for every parameter: `w_target = beta * w_target + (1 - beta) * w_online`, in
    place (the target keeps its Parameter objects), the online network untouched, and no
    autograd history on the target (no grad_fn, requires_grad unchanged). Checked for
    beta in 0.9, 0.5, 0 (target := online) and 1 (target unchanged), and for two updates.
    """
    chk = _Checker("ema", "EMA.update")
    with chk:
        gen = torch.Generator().manual_seed(0)
        for beta in (0.9, 0.5, 0.0, 1.0):
            online, target = _ema_networks(gen)
            ema = chk.call(EMA, beta, name="EMA")
            online_before, target_before = _snapshot(online), _snapshot(target)
            online_flags = [p.requires_grad for p in online.parameters()]
            target_flags = [p.requires_grad for p in target.parameters()]
            target_ids = [id(p) for p in target.parameters()]
            chk.call(ema.update, online, target, name="EMA.update")

            if _changed(online, online_before) or [p.requires_grad for p in online.parameters()] != online_flags:
                chk.fail(f"the online network (beta={beta})", "unchanged", "its parameters changed",
                         "update(online, target) writes only into the second argument, the target; "
                         "check the order of the arguments and of the zip.")
            if [id(p) for p in target.parameters()] != target_ids:
                chk.fail(f"in-place update (beta={beta})", "the target's own Parameter objects updated",
                         "new Parameter objects", "write into the existing parameters (p.data.copy_, p.mul_().add_() "
                         "or p.lerp_() under torch.no_grad()) instead of replacing them.")
            got = [p.detach() for p in target.parameters()]
            expected = [beta * t + (1 - beta) * o for t, o in zip(target_before, online_before)]
            if not all(_tensors_close(g, e, rtol=1e-5, atol=1e-6) for g, e in zip(got, expected)):
                error = max(_max_diff(g, e) for g, e in zip(got, expected))
                if beta != 1.0 and not _changed(target, target_before):
                    hint = ("the target did not change: assign in place (p_t.data = ..., p_t.copy_(...)); "
                            "rebinding the loop variable `p_t = ...` changes nothing.")
                elif all(_tensors_close(g, (1 - beta) * t + beta * o, rtol=1e-5, atol=1e-6)
                         for g, t, o in zip(got, target_before, online_before)):
                    hint = "beta weights the target: w_t = beta * w_t + (1 - beta) * w_o."
                elif all(_tensors_close(g, 0.99 * t + 0.01 * o, rtol=1e-5, atol=1e-6)
                         for g, t, o in zip(got, target_before, online_before)):
                    hint = "use the beta given to EMA(beta) (self.beta), not a hard-coded 0.99."
                else:
                    hint = "w_t = beta * w_t + (1 - beta) * w_o for every pair of parameters."
                chk.fail(f"target parameters after update (beta={beta})", "beta * w_target + (1 - beta) * w_online",
                         f"max abs difference {error:.3g}", hint)
            for p, flag in zip(target.parameters(), target_flags):
                if p.grad_fn is not None or p.requires_grad != flag:
                    chk.fail(f"autograd history on the target (beta={beta})",
                             f"leaf parameters without grad_fn, requires_grad={flag} as before",
                             f"grad_fn={p.grad_fn}, requires_grad={p.requires_grad}",
                             "do the update under `with torch.no_grad():` (or on .data), so the target "
                             "does not become part of the online network's graph.")
        chk.ok("target = beta·target + (1 - beta)·online for beta in (0.9, 0.5, 0, 1), in place")
        chk.ok("the online network is unchanged and the target gets no autograd history")

        online, target = _ema_networks(gen)
        ema = chk.call(EMA, 0.5, name="EMA")
        target_before, online_before = _snapshot(target), _snapshot(online)
        chk.call(ema.update, online, target, name="EMA.update")
        chk.call(ema.update, online, target, name="EMA.update")
        expected = [0.25 * t + 0.75 * o for t, o in zip(target_before, online_before)]
        if not all(_tensors_close(p.detach(), e, rtol=1e-5, atol=1e-6) for p, e in zip(target.parameters(), expected)):
            error = max(_max_diff(p.detach(), e) for p, e in zip(target.parameters(), expected))
            chk.fail("two updates with beta=0.5", "0.25·w_target + 0.75·w_online", f"max abs difference {error:.3g}",
                     "each update starts from the target's current weights (keep no copies between calls).")
        chk.ok("two updates compose (beta^2 of the old target remains)")


# ======================================================================================
# Training steps
# ======================================================================================
_LR = 0.1


def _check_no_accumulation(chk: _Checker, run_step: Callable[[nn.Module, torch.optim.Optimizer], Any],
                           model: nn.Module) -> None:
    """Two identical steps with lr=0: the gradient after the second must not be twice the first's."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    run_step(model, optimizer)
    first = _grads(model)
    run_step(model, optimizer)
    second = _grads(model)
    pairs = [(a, b) for a, b in zip(first, second) if a is not None and b is not None and bool(a.abs().sum() > 0)]
    if pairs:
        # Least-squares factor between the two gradients: 1 when zeroed, 2 when accumulated.
        overlap = sum(float((b.double() * a.double()).sum()) for a, b in pairs)
        ratio = overlap / sum(float((a.double() ** 2).sum()) for a, _ in pairs)
        if abs(ratio - 2.0) < 0.05:
            chk.fail("gradients across steps (two identical steps, lr=0)",
                     "the second step's gradient equal to the first's", "twice the first's (accumulated)",
                     "call optimizer.zero_grad() before loss.backward() in every step.")
        if abs(ratio - 1.0) > 0.05:
            chk.fail("gradients across steps (two identical steps, lr=0)",
                     "the same gradient in both steps", f"the second gradient is {ratio:.3g} times the first",
                     "each step computes one loss on its own batch, zero_grad(), backward(), step().")
    chk.ok("gradients do not accumulate across steps (zero_grad before backward)")


def _check_train_mode(chk: _Checker, model: nn.Module, name: str) -> None:
    """The step must run the (train-mode) network in train mode: BatchNorm needs batch statistics."""
    modes = getattr(model.encoder, "training_modes", [])
    if not modes or not all(modes) or not model.training:
        chk.fail(f"train mode of the {name}", "every forward pass of the step in train mode",
                 f"forward modes {['train' if m else 'eval' for m in modes]}, left in "
                 f"{'train' if model.training else 'eval'} mode",
                 "don't call .eval() (or .train(False)) in a training step; the training loop sets the mode.")
    chk.ok(f"the {name} runs in train mode")


def _check_single_network_step(
    chk: _Checker,
    name: str,
    run_step: Callable[[nn.Module, torch.optim.Optimizer], Any],
    base: nn.Module,
    parts: Sequence[str],
    loss_of: Callable[[nn.Module], torch.Tensor] | None,
    loss_name: str,
    wrong_losses: dict[str, Callable[[nn.Module], torch.Tensor]],
) -> None:
    """Shared checks of simclr_train_step and barlow_train_step on a BatchNorm-free stand-in."""
    model = copy.deepcopy(base)
    before = _snapshot(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
    loss = _python_float(chk, run_step(model, optimizer), "the returned loss",
                         "return loss.item(), a Python float (a tensor would keep the graph alive).")
    chk.ok("returns the loss as a Python float")
    _check_train_mode(chk, model, "model")

    if not _changed(model, before):
        chk.fail("parameters after one step (SGD, lr=0.1)", "changed", "unchanged",
                 "compute the loss, then optimizer.zero_grad(); loss.backward(); optimizer.step() — "
                 "zero_grad between backward and step erases the gradients.")
    for part in parts:
        if not _part_changed(model, part, before):
            chk.fail(f"self.{part} after one step", "changed", "unchanged",
                     f"the loss must be computed from the model's projections (its second output) so that "
                     f"gradients reach self.{part}; don't detach anything.")
    chk.ok(f"one step changes the {' and the '.join(parts)}")

    if loss_of is None:
        print(f"  (skipped the loss-value checks: `{loss_name}` was not found next to {name}; "
              f"pass it as {loss_name}=...)")
    else:
        reference = copy.deepcopy(base)
        with torch.no_grad():
            expected = float(loss_of(reference))
        if not _close(loss, expected, rtol=1e-3, atol=1e-5):
            hint = f"return the {loss_name} of the two views' projections, computed before optimizer.step()."
            candidates = [(description, wrong, base) for description, wrong in wrong_losses.items()]
            candidates.append(("this is the loss after the update: return the value computed before "
                               "optimizer.step().", loss_of, model))
            for description, wrong, weights in candidates:
                try:
                    with torch.no_grad():
                        value = float(wrong(copy.deepcopy(weights)))
                except Exception:  # a diagnosis that does not apply to this implementation
                    continue
                if _close(loss, value, rtol=1e-3, atol=1e-5):
                    hint = description
                    break
            chk.fail("the returned loss", f"{_num(expected)} (your {loss_name} of the projections before the step)",
                     _num(loss), hint)
        chk.ok(f"the returned loss is {loss_name} of the two views' projections")

        reference.zero_grad(set_to_none=True)
        loss_of(reference).backward()
        deltas = [p.detach() - b for p, b in zip(model.parameters(), before)]
        steps = [torch.zeros_like(b) if p.grad is None else -_LR * p.grad
                 for p, b in zip(reference.parameters(), before)]
        scale = max(float(s.abs().max()) for s in steps)
        error = max(_max_diff(dl, s) for dl, s in zip(deltas, steps))
        if scale == 0 or error > 1e-2 * scale + 1e-7:
            double = max(_max_diff(dl, 2 * s) for dl, s in zip(deltas, steps))
            hint = ("the update is two SGD steps (or the gradient of twice the loss): call optimizer.step() once."
                    if double <= 1e-2 * scale + 1e-7 else
                    f"one step = zero_grad(), backward() of exactly this {loss_name}, optimizer.step().")
            chk.fail("the parameter update (plain SGD, lr=0.1)", "-lr · gradient of the returned loss",
                     f"max abs difference {error:.3g} (update size {scale:.3g})", hint)
        chk.ok("the update is one optimizer step on the gradient of that loss")

    _check_no_accumulation(chk, run_step, copy.deepcopy(base))


def check_simclr_step(simclr_train_step: Callable, SimCLRModel: type, nt_xent: Callable | None = None,
                      device: str | torch.device | None = None) -> None:
    """Check `simclr_train_step(model, x1, x2, optimizer, tau=0.5) -> float`.

    Runs your step on your `SimCLRModel` with a tiny encoder (and BatchNorm layers removed, so
    forwarding the views separately or concatenated gives the same result). Expected: a
    Python float equal to `nt_xent(proj1, proj2, tau)` before the update (using your own
    `nt_xent`, found in the notebook or passed as `nt_xent=`), exactly one optimizer step on
    that loss's gradient, the passed `tau` used, and no gradient accumulated across steps.
    """
    chk = _Checker("simclr_step", "simclr_train_step")
    with chk:
        device = _resolve_device(device)
        loss_fn = nt_xent or _global(simclr_train_step, "nt_xent")
        base = _strip_batch_norm(_instantiate(chk, SimCLRModel, "SimCLRModel")).to(device).train()
        x1, x2 = _image_pair(8, device)
        tau = 0.2

        def run_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
            return chk.call(simclr_train_step, model, x1, x2, optimizer, tau=tau, name="simclr_train_step")

        def projections(model: nn.Module, a: torch.Tensor, index: int = 1) -> torch.Tensor:
            return chk.call(model, a, name="SimCLRModel.forward")[index]

        loss_of = None if loss_fn is None else (
            lambda model: chk.call(loss_fn, projections(model, x1), projections(model, x2), tau=tau, name="nt_xent"))
        wrong = {} if loss_fn is None else {
            "pass tau to nt_xent: this is the loss at the default tau = 0.5.":
                lambda model: loss_fn(projections(model, x1), projections(model, x2), tau=0.5),
            "use the projections (second output), not the representations.":
                lambda model: loss_fn(F.normalize(projections(model, x1, 0), dim=1),
                                      F.normalize(projections(model, x2, 0), dim=1), tau=tau),
        }
        _check_single_network_step(chk, "simclr_train_step", run_step, base, ("encoder", "projector"),
                                   loss_of, "nt_xent", wrong)


def check_barlow_step(barlow_train_step: Callable, BarlowTwinsModel: type, barlow_loss: Callable | None = None,
                      device: str | torch.device | None = None) -> None:
    """Check `barlow_train_step(model, x1, x2, optimizer, alpha=5e-3) -> float`.

    As `check_simclr_step`, with your `barlow_loss` (found in the notebook or passed as
    `barlow_loss=`) and a non-default `alpha` that must reach the loss.
    """
    chk = _Checker("barlow_step", "barlow_train_step")
    with chk:
        device = _resolve_device(device)
        loss_fn = barlow_loss or _global(barlow_train_step, "barlow_loss")
        base = _strip_batch_norm(_instantiate(chk, BarlowTwinsModel, "BarlowTwinsModel"))
        base = base.to(device).train()
        x1, x2 = _image_pair(8, device)
        alpha = 0.3

        def run_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
            return chk.call(barlow_train_step, model, x1, x2, optimizer, alpha=alpha, name="barlow_train_step")

        def projections(model: nn.Module, a: torch.Tensor, index: int = 1) -> torch.Tensor:
            return chk.call(model, a, name="BarlowTwinsModel.forward")[index]

        loss_of = None if loss_fn is None else (
            lambda model: chk.call(loss_fn, projections(model, x1), projections(model, x2), alpha, name="barlow_loss"))
        wrong = {} if loss_fn is None else {
            "pass alpha to barlow_loss: this is the loss at alpha = 5e-3.":
                lambda model: loss_fn(projections(model, x1), projections(model, x2), 5e-3),
            "use the projections (second output), not the representations.":
                lambda model: loss_fn(projections(model, x1, 0), projections(model, x2, 0), alpha),
        }
        _check_single_network_step(chk, "barlow_train_step", run_step, base, ("encoder", "projector"),
                                   loss_of, "barlow_loss", wrong)


class _CountingEMA:
    """A stand-in EMA that only counts `update(online, target)` calls (it changes nothing)."""

    def __init__(self) -> None:
        self.beta = 1.0
        self.calls = 0

    def update(self, online: nn.Module, target: nn.Module) -> None:
        self.calls += 1


def check_byol_step(byol_train_step: Callable, BYOLModel: type, EMA: type,
                    device: str | torch.device | None = None) -> None:
    """Check `byol_train_step(online, target, ema, optimizer, x1, x2) -> float`.

    Runs your step on two copies of your `BYOLModel` (tiny encoder) with your `EMA`.
    Expected: a Python float in [0, 8] (mean of 2 - 2·cos over both view orders, or their
    sum), a symmetric loss (swapping x1 and x2 gives the same value), gradient steps on the
    online encoder, projector and predictor, no gradient into the target (stop-gradient), and
    then exactly one EMA update: `target = beta·target_before + (1 - beta)·online_after`.
    """
    chk = _Checker("byol_step", "byol_train_step")
    with chk:
        device = _resolve_device(device)
        online0 = _instantiate(chk, BYOLModel, "BYOLModel").to(device).train()
        if not isinstance(getattr(online0, "predictor", None), nn.Module):
            chk.fail("BYOLModel structure", "a `self.predictor` sub-module", "none", "keep the given __init__.")
        target0 = copy.deepcopy(online0)
        with torch.no_grad():
            for p in target0.parameters():  # a target that has drifted from the online network
                p.add_(0.05 * torch.randn(p.shape).to(device))  # CPU RNG: forked, so the notebook's is untouched
        target0.requires_grad_(False)
        x1, x2 = _image_pair(8, device)
        beta = 0.5

        def run(online, target, ema, optimizer, a=x1, b=x2):
            return chk.call(byol_train_step, online, target, ema, optimizer, a, b, name="byol_train_step")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        online_before, target_before = _snapshot(online), _snapshot(target)
        optimizer = torch.optim.SGD(online.parameters(), lr=_LR)
        loss = _python_float(chk, run(online, target, chk.call(EMA, beta, name="EMA"), optimizer),
                             "the returned loss", "return loss.item(), a Python float.")
        if not -1e-6 <= loss <= 8 + 1e-6:
            chk.fail("the returned loss", "a value in [0, 4] (mean of 2 - 2·cos; [0, 8] for the sum of both orders)",
                     _num(loss), "loss = 2 - 2 · (pred_online · proj_target) per pair, on normalised vectors.")
        chk.ok("returns the loss as a Python float in the range of 2 - 2·cos")
        _check_train_mode(chk, online, "online network")

        for part in ("encoder", "projector", "predictor"):
            if not _part_changed(online, part, online_before):
                hint = ("the loss must compare the online network's predictions (third output) with the "
                        "target's projections (second output)." if part == "predictor" else
                        "compute the loss from the online network's outputs without detaching them, then "
                        "zero_grad(), backward(), optimizer.step().")
                chk.fail(f"the online {part} after one step", "changed", "unchanged", hint)
        chk.ok("one step changes the online encoder, projector and predictor")

        got = [p.detach() for p in target.parameters()]
        online_after = [p.detach() for p in online.parameters()]

        def distance(weights_target: float, online_weights: Sequence[torch.Tensor]) -> float:
            return max(_max_diff(g, weights_target * t + (1 - weights_target) * o)
                       for g, t, o in zip(got, target_before, online_weights))

        error = distance(beta, online_after)
        scale = max(_max_diff(a, b) for a, b in zip(online_after, online_before)) * (1 - beta)
        if error > 1e-3 * scale + 1e-6:
            if not _changed(target, target_before):
                hint = ("the target did not change: call ema.update(online, target) — online first — "
                        "once per step, after optimizer.step().")
            elif distance(beta, online_before) <= 1e-3 * scale + 1e-6:
                hint = "the EMA used the online weights from before the update: call ema.update after optimizer.step()."
            elif distance(beta**2, online_after) <= 1e-3 * scale + 1e-6:
                hint = "the EMA was applied twice: call ema.update once per step."
            else:
                hint = ("after optimizer.step() call the `ema` passed to the step once: ema.update(online, target) "
                        "(run check_ema first if you have not).")
            chk.fail(f"the target after one step (EMA with beta={beta})",
                     "beta·target_before + (1 - beta)·online_after_the_step", f"max abs difference {error:.3g}", hint)
        chk.ok("the target moves by exactly one EMA update towards the updated online network")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        swapped = _python_float(chk, run(online, target, chk.call(EMA, beta, name="EMA"),
                                         torch.optim.SGD(online.parameters(), lr=_LR), x2, x1),
                                "the returned loss", "return loss.item().")
        if not _close(swapped, loss, rtol=1e-4, atol=1e-6):
            chk.fail("symmetry: the same step with x1 and x2 swapped", _num(loss), _num(swapped),
                     "use both view orders: pred_online(x1) against proj_target(x2) AND pred_online(x2) "
                     "against proj_target(x1).")
        chk.ok("the loss is symmetric in the two views (both view orders are used)")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        target.requires_grad_(True)  # a target someone forgot to freeze: the step must still not backprop into it
        counting = _CountingEMA()
        run(online, target, counting, torch.optim.SGD(online.parameters(), lr=_LR))
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in target.parameters()):
            chk.fail("stop-gradient on the target", "no gradients in the target network",
                     "the target's parameters received gradients",
                     "compute the target's projections under torch.no_grad() (or .detach() them): sg(.) in the paper.")
        chk.ok("no gradient reaches the target network (stop-gradient)")
        if counting.calls != 1:
            chk.fail("calls of ema.update per step", "1", str(counting.calls),
                     "call ema.update(online, target) once, after optimizer.step(), using the `ema` argument.")
        chk.ok("ema.update is called once per step")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        no_op = _CountingEMA()  # the target stays fixed, so both steps see the same networks

        def run_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
            return run(model, target, no_op, optimizer)

        _check_no_accumulation(chk, run_step, online)


# ======================================================================================
# Fine-tuning step and evaluation
# ======================================================================================
class _ControlledClassifier(nn.Module):
    """logits = scale · x for one-hot inputs x: the input e_k is classified as class k.

    A Linear layer initialised to `scale · I`, so the predictions and the cross-entropy are
    known in closed form. Records the train/eval mode and grad mode of every forward and
    works on whichever device its input is on.
    """

    def __init__(self, num_classes: int = 4, scale: float = 3.0) -> None:
        super().__init__()
        self.fc = nn.Linear(num_classes, num_classes)
        with torch.no_grad():
            self.fc.weight.copy_(scale * torch.eye(num_classes))
            self.fc.bias.zero_()
        self.training_modes: list[bool] = []
        self.grad_modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.training_modes.append(self.training)
        self.grad_modes.append(torch.is_grad_enabled())
        return self.fc(x.to(self.fc.weight.device))  # (B, C)


def _cross_entropies(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int, scale: float) -> torch.Tensor:
    """Per-sample cross-entropy of logits scale·onehot(predicted): log(e^s + C - 1) - s·[y == p]."""
    return math.log(math.exp(scale) + num_classes - 1) - scale * (predicted == labels).double()


def check_finetune_step(finetune_train_step: Callable, device: str | torch.device | None = None) -> None:
    """Check `finetune_train_step(classifier, x, y, optimizer) -> (loss float, n_correct int)`.

    Uses a stand-in classifier whose predictions are known: expected the mean cross-entropy
    of the batch before the update, the number (not fraction) of correct predictions, a
    forward pass in training mode, one optimizer step, and no accumulated gradients.
    """
    chk = _Checker("finetune_step", "finetune_train_step")
    with chk:
        device = _resolve_device(device)
        num_classes, scale = 4, 3.0
        predicted = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
        labels = torch.tensor([0, 1, 2, 0, 0, 2, 2, 1])  # 5 of 8 correct
        x = F.one_hot(predicted, num_classes).float().to(device)
        y = labels.to(device)
        expected_correct = int((predicted == labels).sum())
        expected_loss = float(_cross_entropies(predicted, labels, num_classes, scale).mean())

        model = _ControlledClassifier(num_classes, scale).to(device).train()
        before = _snapshot(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=_LR)
        out = chk.call(finetune_train_step, model, x, y, optimizer, name="finetune_train_step")
        loss, n_correct = _unpack(chk, out, 2, "(loss, n_correct)")
        loss = _python_float(chk, loss, "the returned loss", "return loss.item(), a Python float.")
        if isinstance(n_correct, (torch.Tensor, bool)) or not isinstance(n_correct, numbers.Integral):
            try:
                value = float(n_correct)
            except (TypeError, ValueError, RuntimeError):
                value = math.nan
            fraction = expected_correct / len(labels)
            if _close(value, fraction, rtol=1e-6) or _close(value, 100 * fraction):
                hint = "that is the accuracy: return the number of correct predictions of the batch."
            else:
                hint = "return a Python int: (logits.argmax(dim=1) == y).sum().item()."
            chk.fail("the type of n_correct", "a Python int (the number of correct predictions)",
                     _describe(n_correct), hint)
        n_correct = int(n_correct)
        chk.ok("returns (loss: float, n_correct: int)")

        if n_correct != expected_correct:
            if n_correct == len(labels) - expected_correct:
                hint = "that is the number of wrong predictions."
            else:
                hint = "count predictions equal to y, with prediction = logits.argmax(dim=1) (the class dimension)."
            chk.fail("n_correct (a batch of 8 with 5 correct predictions)", str(expected_correct), str(n_correct), hint)
        chk.ok("n_correct counts the correct predictions of the batch (0 <= n_correct <= B)")

        if not _close(loss, expected_loss, rtol=1e-4, atol=1e-6):
            hint = ("this is the sum over the batch: return the mean cross-entropy (F.cross_entropy's default)."
                    if _close(loss, expected_loss * len(labels), rtol=1e-4) else
                    "loss = F.cross_entropy(classifier(x), y), the mean over the batch, before the update.")
            chk.fail("the returned loss", f"{_num(expected_loss)} (mean cross-entropy of the batch)", _num(loss), hint)
        chk.ok("the loss is the mean cross-entropy of the batch")

        if not model.training_modes or not all(model.training_modes) or not model.training:
            chk.fail("training mode", "the forward pass in train mode and the model left in train mode",
                     f"forward modes {['train' if m else 'eval' for m in model.training_modes]}, "
                     f"left in {'train' if model.training else 'eval'} mode",
                     "don't call classifier.eval() in the training step.")
        if not _changed(model, before):
            chk.fail("parameters after one step", "changed", "unchanged",
                     "optimizer.zero_grad(); loss.backward(); optimizer.step().")
        chk.ok("runs in train mode and updates the parameters")

        def run_step(model_: nn.Module, optimizer_: torch.optim.Optimizer) -> Any:
            return chk.call(finetune_train_step, model_, x, y, optimizer_, name="finetune_train_step")

        _check_no_accumulation(chk, run_step, _ControlledClassifier(num_classes, scale).to(device).train())


def check_evaluate(evaluate: Callable, device: str | torch.device | None = None) -> None:
    """Check `evaluate(classifier, dataloader) -> (mean loss float, accuracy float in [0, 1])`.

    Uses a stand-in classifier whose predictions are known and a loader of 10 samples in
    batches of 4, 4 and 2 (7 correct). Expected: accuracy 0.7 (correct / all samples, a
    fraction), the mean cross-entropy (per sample; the mean of the batch means is accepted
    too), every forward pass in eval mode without gradients. The mode the model is left in is
    not checked: leaving it in eval mode and restoring the mode it came in with are both correct.
    """
    chk = _Checker("evaluate", "evaluate")
    with chk:
        device = _resolve_device(device)
        num_classes, scale = 4, 3.0
        predicted = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
        labels = torch.tensor([0, 1, 2, 3, 0, 2, 2, 0, 1, 1])  # batches of 4, 4, 2 with 4, 2, 1 correct
        inputs = F.one_hot(predicted, num_classes).float()  # (10, 4)
        loader = DataLoader(TensorDataset(inputs, labels), batch_size=4, shuffle=False)
        losses = _cross_entropies(predicted, labels, num_classes, scale)
        per_sample = float(losses.mean())
        per_batch = float(torch.stack([chunk.mean() for chunk in losses.split(4)]).mean())

        model = _ControlledClassifier(num_classes, scale).to(device).train()
        out = chk.call(evaluate, model, loader, name="evaluate")
        loss, accuracy = _unpack(chk, out, 2, "(loss, accuracy)")
        loss = _python_float(chk, loss, "the returned loss", "return a Python float (total_loss / n, with .item()).")
        accuracy = _python_float(chk, accuracy, "the returned accuracy", "return a Python float (.item()).")
        chk.ok("returns (loss: float, accuracy: float)")

        if not _close(accuracy, 0.7, rtol=1e-6, atol=1e-9):
            if _close(accuracy, 70.0):
                hint = "return a fraction in [0, 1], not percent."
            elif _close(accuracy, 7.0):
                hint = "that is the number of correct predictions: divide by the number of samples."
            elif _close(accuracy, (1.0 + 0.5 + 0.5) / 3):
                hint = ("that is the mean of the per-batch accuracies; the last batch is smaller: count correct "
                        "predictions over all samples and divide by the number of samples.")
            else:
                hint = "accuracy = (number of samples with argmax(logits) == y) / (number of samples)."
            chk.fail("accuracy (10 samples, 7 correct)", "0.7", _num(accuracy), hint)
        chk.ok("accuracy is correct / all samples, as a fraction in [0, 1]")

        if not (_close(loss, per_sample, rtol=1e-4, atol=1e-6) or _close(loss, per_batch, rtol=1e-4, atol=1e-6)):
            hint = ("this is the summed loss: divide by the number of samples."
                    if _close(loss, float(losses.sum()), rtol=1e-4) else
                    "loss = the mean cross-entropy over all samples of the loader.")
            chk.fail("the mean loss", f"{_num(per_sample)} (mean cross-entropy over the 10 samples)", _num(loss), hint)
        chk.ok("the loss is the mean cross-entropy")

        # Only the forward passes matter: an evaluate that gives the model back in the mode it came
        # in with (train, here) is as correct as one that leaves it in eval mode, and the grader
        # accepts both.
        if not model.training_modes or any(model.training_modes):
            chk.fail("evaluation mode", "every forward pass in eval mode",
                     f"forward modes {['train' if m else 'eval' for m in model.training_modes]}",
                     "call classifier.eval() before the loop (BatchNorm and dropout behave differently in train mode).")
        chk.ok("every forward pass runs in eval mode")
        if any(model.grad_modes):
            chk.fail("gradients", "forward passes under torch.no_grad()", "gradients were enabled",
                     "wrap the loop in `with torch.no_grad():` (evaluation needs no graph).")
        chk.ok("no gradients are tracked")
