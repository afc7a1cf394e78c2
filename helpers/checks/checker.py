"""The machinery every public check shares: running the student's code safely, messages, tolerances.

`_Checker` is the context of one check: it forks the random state, runs on one CPU thread,
prints a "✓" line per property that holds and raises `CheckFailure` with a uniform
"expected / got / hint" message when one does not. `_Checker.call` runs the student's
function and turns `NotImplementedError` (the TODO stub) and crashes into clear messages.
The small functions below it describe values for those messages, validate returned types and
compare numbers within a tolerance.
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from helpers.runtime import get_device


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


# --------------------------------------------------------------------------------------
# Values, types and tolerances
# --------------------------------------------------------------------------------------
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
        chk.fail(
            what,
            "a 0-d float tensor (the loss, still attached to the graph)",
            _describe(value),
            "return the tensor itself, not loss.item() or a Python number: training calls loss.backward().",
        )
    if value.ndim != 0:
        chk.fail(
            what,
            "a 0-d float tensor",
            _describe(value),
            "reduce to a single number (the mean over anchors / the sum of the two terms), "
            "not a per-sample vector or shape (1,).",
        )
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


def _unit_rows(t: torch.Tensor, atol: float = 1e-4) -> bool:
    return bool(torch.allclose(t.detach().double().norm(dim=1), torch.ones(t.shape[0], dtype=torch.float64), atol=atol))


def _unit_columns(t: torch.Tensor, atol: float = 1e-4) -> bool:
    return bool(torch.allclose(t.detach().double().norm(dim=0), torch.ones(t.shape[1], dtype=torch.float64), atol=atol))
