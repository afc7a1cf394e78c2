"""Comparisons for the graded tests, with messages a student can act on.

Every failure raises `GradingFailure` whose message says what was asked, what was expected
and what came back: shapes, values, the first differing element and the largest
difference, never the reference's code. Values come from `autograder.in_sandbox.protocol` (plain
tensors, Python numbers, `Unsupported` / `NumpyTensor` stand-ins for other objects).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.in_sandbox.protocol import NumpyTensor, Unsupported

RTOL = 1e-4
ATOL = 1e-5


class GradingFailure(AssertionError):
    """A graded test failed; the message is shown to the student as is."""


def fail(message: str) -> None:
    raise GradingFailure(message)


def describe(value: Any) -> str:
    """A short description of a value that came back from the worker."""
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return f"a 0-d tensor ({_number(value.item())}, {_dtype(value)})"
        return f"a tensor of shape {shape_text(value)} ({_dtype(value)})"
    if isinstance(value, NumpyTensor):
        return f"a NumPy array of shape {shape_text(value.tensor)}"
    if isinstance(value, Unsupported):
        return f"an object of type {value.type_name}"
    for kind, name, text in _PLAIN_VALUES:  # bool before int: a bool is an int too
        if isinstance(value, kind):
            return f"the {name} {text(value)}"
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:5]}"
    return f"a {type(value).__name__}"


#: Plain values a message names with their type: (type, its name, how a value is written).
_PLAIN_VALUES = (
    (bool, "bool", str),
    (int, "int", str),
    (float, "float", lambda value: _number(value)),
    (str, "string", lambda value: repr(value[:60])),
)


def shape_text(tensor: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in tensor.shape) + ("," if tensor.ndim == 1 else "") + ")"


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).replace("torch.", "")


def _number(value: float) -> str:
    return f"{value:.6g}"


def _ratio_hint(actual: float, expected: float) -> str:
    if expected == 0 or actual == 0 or not math.isfinite(actual):
        return ""
    ratio = actual / expected
    for target, text in ((2.0, "twice"), (0.5, "half"), (100.0, "100 times"), (-1.0, "minus")):
        if abs(ratio - target) < 1e-3 * abs(target):
            return f" (exactly {text} the expected value)"
    return ""


# ======================================================================================
# Unpacking what came back
# ======================================================================================
def as_tensor(value: Any, what: str, ndim: int | None = None) -> torch.Tensor:
    """`value` as a tensor, or fail saying what came back instead."""
    if isinstance(value, torch.Tensor):
        if ndim is not None and value.ndim != ndim:
            fail(f"{what} should be a {ndim}-d tensor; got {describe(value)}.")
        return value
    hint = ""
    if isinstance(value, NumpyTensor):
        hint = " (convert it with torch.from_numpy / torch.as_tensor)"
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        hint = " (concatenate the batches with torch.cat)"
    fail(f"{what} should be a tensor; got {describe(value)}{hint}.")
    raise AssertionError  # unreachable


def as_number(value: Any, what: str) -> float:
    """A scalar result: a Python/NumPy number or a tensor with one element."""
    if isinstance(value, bool):
        fail(f"{what} should be a number; got {describe(value)}.")
    if isinstance(value, (int, float)):
        return float(value)
    if (
        isinstance(value, torch.Tensor)
        and value.numel() == 1
        and (value.is_floating_point() or not value.dtype.is_complex)
    ):
        return float(value.reshape(()).item())
    if isinstance(value, NumpyTensor) and value.tensor.numel() == 1:
        return float(value.tensor.reshape(()).item())
    fail(f"{what} should be a single number; got {describe(value)}.")
    raise AssertionError  # unreachable


def as_sequence(value: Any, length: int, what: str, names: str) -> tuple:
    """A tuple/list of `length` items (e.g. `(repr, proj)`)."""
    if not isinstance(value, (tuple, list)) or len(value) != length:
        fail(f"{what} should return {length} values {names}; got {describe(value)}.")
    return tuple(value)


# ======================================================================================
# Comparisons
# ======================================================================================
def first_difference(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> str:
    """ "at [2, 5]: got 0.1234, expected 0.5678; largest difference 0.9 over N elements" """
    a, e = actual.double(), expected.double()
    bad = ~torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=False)
    count = int(bad.sum())
    index = [int(i) for i in torch.nonzero(bad)[0]] if count else []
    where = "[" + ", ".join(str(i) for i in index) + "]"
    got, want = a[tuple(index)].item(), e[tuple(index)].item()
    finite = torch.isfinite(a) & torch.isfinite(e)
    largest = float((a - e).abs()[finite].max()) if finite.any() else float("nan")
    return (
        f"{count} of {a.numel()} elements differ; the first at {where}: got {_number(got)}, "
        f"expected {_number(want)}; largest difference {_number(largest)}"
    )


def expect_tensor(
    actual: Any,
    expected: torch.Tensor,
    what: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    dtype_kind: str | None = None,
) -> torch.Tensor:
    """`actual` must be a tensor of `expected`'s shape and values (within tolerance).

    dtype_kind: "float" (any floating dtype) or "int64" to check the dtype too.
    """
    tensor = as_tensor(actual, what)
    if tuple(tensor.shape) != tuple(expected.shape):
        fail(f"{what} should have shape {shape_text(expected)}; got shape {shape_text(tensor)}.")
    if dtype_kind == "float" and not tensor.is_floating_point():
        fail(f"{what} should be a floating-point tensor; got dtype {_dtype(tensor)}.")
    if dtype_kind == "int64" and tensor.dtype != torch.int64:
        fail(f"{what} should have dtype int64 (torch.long); got {_dtype(tensor)}.")
    if not torch.isfinite(tensor.double()).all() and torch.isfinite(expected.double()).all():
        fail(f"{what} contains NaN or infinite values (expected finite values).")
    if not torch.allclose(tensor.double(), expected.double(), rtol=rtol, atol=atol):
        fail(f"{what} differs from the expected values: {first_difference(tensor, expected, rtol, atol)}.")
    return tensor


def expect_number(actual: Any, expected: float, what: str, rtol: float = RTOL, atol: float = ATOL) -> float:
    value = as_number(actual, what)
    if not math.isfinite(value):
        fail(f"{what}: expected {_number(expected)}, got {value}.")
    if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
        fail(
            f"{what}: expected {_number(expected)}, got {_number(value)} "
            f"(off by {_number(value - expected)}){_ratio_hint(value, expected)}."
        )
    return value


def expect_python_float(value: Any, what: str) -> None:
    """The contract's "returns the loss as a Python float"."""
    if isinstance(value, torch.Tensor):
        fail(
            f"{what} should be a Python float; got {describe(value)}. Return `loss.item()`, so the "
            "training loop does not keep the autograd graph (and the GPU memory) of every batch alive."
        )
    if isinstance(value, bool) or not isinstance(value, float):
        fail(f"{what} should be a Python float; got {describe(value)}.")
