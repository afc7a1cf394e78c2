"""What the graded tests of several tasks share: seeded inputs, trusted stand-in networks,
tolerances, and the comparisons of forwards, losses and training steps.

- Inputs are drawn from explicit seeds (`seeded`), so the reference and the submission get the
  same tensors. Steps run on small stand-in networks without batch norm (`standin`: views
  forwarded together or apart give the same result) and with the *reference* loss / EMA
  answering the step's calls to ``nt_xent`` / ``barlow_loss`` / ``ema.update``, so a wrong loss,
  forward or EMA costs only its own task.
- `loss_value` / `loss_grads` accept listed alternatives (another accepted convention, each with
  its own gradients); `ForwardTests` compares the outputs of a model's forward and the
  gradients reaching its parts; `StepTests` compares the loss and parameters after each step.
- `explain_precision` turns a failing step that matches a reference step run under bfloat16
  autocast into the message that says so (`AUTOCAST_MESSAGE`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from autograder.compare import (
    GradingFailure,
    as_number,
    as_sequence,
    describe,
    expect_number,
    expect_python_float,
    expect_tensor,
    fail,
)
from autograder.in_sandbox import harness


def seeded(seed: int) -> torch.Generator:
    """A CPU random generator started at `seed` (every input of a graded test is drawn from one)."""
    return torch.Generator().manual_seed(seed)


def positive_pairs(n: int, d: int, seed: int, noise: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, d) batches of unit rows; row k of the second is a noisy copy of row k of the first."""
    g = seeded(seed)
    z1 = F.normalize(torch.randn(n, d, generator=g), dim=1)
    z2 = F.normalize(z1 + noise * torch.randn(n, d, generator=g), dim=1)
    return z1, z2


def correlated_embeddings(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, d) un-normalised embeddings, feature-wise correlated, with offsets and scales."""
    g = seeded(seed)
    z1 = torch.randn(n, d, generator=g) * (0.5 + torch.rand(d, generator=g) * 2) + torch.randn(d, generator=g)
    z2 = 0.8 * z1 + 0.6 * torch.randn(n, d, generator=g) * z1.std(0) + 3.0
    return z1, z2


def images(n: int, seed: int, size: int = 8) -> torch.Tensor:
    """(n, 3, size, size) float images in [0, 1]."""
    return torch.rand(n, 3, size, size, generator=seeded(seed))


def standin(kind: str, seed: int) -> dict:
    return harness.state_of(harness.build(kind, seed=seed))


def perturbed(state: dict, seed: int, scale: float = 0.3) -> dict:
    g = seeded(seed)
    return {k: v + scale * torch.randn(v.shape, generator=g) for k, v in state.items()}


def tangential(grad: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The component of `grad` orthogonal to each unit row of `z` (what reaches the model)."""
    return grad - (grad * z).sum(dim=1, keepdim=True) * z


#: Steps are compared more loosely than single calls: float32 sums in another order (views
#: forwarded together or apart) drift by ~1e-5 over two momentum steps; wrong steps are off by
#: orders of magnitude more.
STEP_RTOL, STEP_ATOL = 2e-3, 2e-5


def returned(result: dict) -> Any:
    return result["returned"]


class ForwardTests:
    CLASS = ""
    PARTS: tuple[str, ...] = ()
    NAMES = ""

    def _compare(self, expected: dict, actual: dict, what: str, inputs: list) -> None:
        for x, ref, got in zip(inputs, expected["outputs"], actual["outputs"]):
            where = f"{self.CLASS}.forward(x) for x of shape {tuple(x.shape)} ({what})"
            got = as_sequence(got, len(ref), where, self.NAMES)
            for name, r, g in zip(self.NAMES.strip("()").split(", "), ref, got):
                expect_tensor(g, r, f"`{name}` of {where}", dtype_kind="float")

    def _standin_case(self, student: Any, reference: Any, seed: int) -> None:
        swap = {part: (part, standin(part, seed + i)) for i, part in enumerate(self.PARTS)}
        inputs = [images(5, seed), images(3, seed + 1)]
        kwargs = dict(cls=self.CLASS, inputs=inputs, swap=swap, mode="train", gradients=True)
        expected = reference.run("model_forward", **kwargs)
        actual = student.run("model_forward", like=expected, **kwargs)
        what = "with small stand-in networks in place of " + ", ".join(self.PARTS)
        self._compare(expected, actual, what, inputs)
        for name, want in (expected["grads"] or {}).items():
            got = (actual["grads"] or {}).get(name)
            label = (
                f"the gradient reaching `{name}` through {self.CLASS}.forward ({what}); every part must be "
                "trained, so no torch.no_grad() or .detach() in forward"
            )
            if got is None:
                fail(f"{label}: no gradient arrived.")
            expect_tensor(got, want, label)

    def _real_case(self, student: Any, reference: Any, seed: int) -> None:
        state = reference.run("model_state", cls=self.CLASS, seed=seed)["state"]
        inputs = [images(3, seed, size=16)]  # any size works (global pooling); 16 keeps it fast
        kwargs = dict(cls=self.CLASS, inputs=inputs, state=state, mode="eval")
        expected = reference.run("model_forward", cache_key=(self.CLASS, seed), **kwargs)
        self._compare(
            expected,
            student.run("model_forward", like=expected, **kwargs),
            "the given ResNet-18 architecture in eval mode",
            inputs,
        )


def loss_value(
    student: Any, reference: Any, fn: str, args: list, kwargs: dict, what: str, alternatives: dict | None = None
) -> None:
    reference_result = reference.run("call", fn=fn, args=args, kwargs=kwargs)
    expected = as_number(returned(reference_result), what)
    actual = as_number(returned(student.run("call", like=reference_result, fn=fn, args=args, kwargs=kwargs)), what)
    for value in (alternatives or {}).values():
        if math.isclose(actual, value, rel_tol=1e-4, abs_tol=1e-5):
            return
    expect_number(actual, expected, what)


def loss_grads(
    student: Any,
    reference: Any,
    fn: str,
    args: list,
    kwargs: dict,
    what: str,
    project: bool = False,
    alternatives: dict | None = None,
) -> None:
    expected = reference.run("loss_and_grads", fn=fn, args=args, kwargs=kwargs)
    actual = student.run("loss_and_grads", like=expected, fn=fn, args=args, kwargs=kwargs)
    loss = actual["returned"]
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        fail(
            f"{what} should return the loss as a tensor with one element that can be backpropagated; "
            f"got {describe(loss)}."
        )
    if actual["grads"] is None:
        fail(
            f"{what} returned a tensor that does not require gradients: the loss must be computed from z1 "
            "and z2 with differentiable torch operations (no .item(), .numpy() or .detach() on the way)."
        )
    candidates = {"reference": (expected["returned"], expected["grads"]), **(alternatives or {})}
    errors = []
    for ref_loss, ref_grads in candidates.values():
        try:
            expect_number(loss, as_number(ref_loss, what), what)
            for index, (got, want) in enumerate(zip(actual["grads"], ref_grads)):
                label = f"the gradient of {what} with respect to z{index + 1}"
                if got is None:
                    fail(f"{label} is missing: the loss does not depend on z{index + 1}.")
                if project:
                    got, want = tangential(got, args[index]), tangential(want, args[index])
                    label += " (its component tangent to the unit sphere)"
                expect_tensor(got, want, label)
            return
        except GradingFailure as failure:
            errors.append(str(failure))
    fail(errors[0])


def expect_training_mode(actual: dict, fn: str) -> None:
    if actual["steps"][-1].get("eval_forwards"):
        fail(
            f"{fn} ran the model in eval mode; a training step keeps it in training mode "
            "(batch norm must use and update the batch statistics)."
        )


AUTOCAST_MESSAGE = (
    "{fn} gives what a correct step gives under torch.autocast (bfloat16), not in full precision: "
    "remove the autocast from the step. Precision belongs to fit, which applies it on the GPU (and "
    "scales the loss for float16); the step itself must compute in the model's own precision."
)


def explain_precision(reference: Any, kwargs: dict, actual: dict, fn: str, failure: GradingFailure) -> None:
    """Re-raise `failure`, or the autocast message when every update of the step (parameters,
    and a BYOL target's, less their initial values) is within 15 % of a reference step run
    under bfloat16 autocast and some update is off the full-precision one by more than float32
    arithmetic explains (a student's own `torch.autocast` in the step). The wrong answers of
    the corpus are all further off (tests/test_precision_feedback.py)."""
    full = reference.run("train_steps", **kwargs)
    reduced = reference.run("train_steps", **{**kwargs, "autocast": "bfloat16"})
    closer = False  # some update is off the full-precision step by more than float32 rounding
    try:
        for part, initial in (("params", kwargs["state"]), ("target", kwargs.get("target_state"))):
            if initial is None:
                continue
            for ref16, ref32, got in zip(reduced["steps"], full["steps"], actual["steps"]):
                for name, value in ref16[part].items():
                    start = initial[name].double()
                    want16, want32 = value.double() - start, ref32[part][name].double() - start
                    have = got[part][name].double() - start
                    near16, near32 = float((have - want16).norm()), float((have - want32).norm())
                    if near16 > 0.15 * float(want16.norm()) + 1e-7:
                        raise failure
                    closer = closer or near32 > 1e-3 * float(want32.norm()) + 1e-7
        if not closer:
            raise failure
    except GradingFailure:
        raise
    except Exception:  # noqa: BLE001 - a result the comparison could not use: the original failure
        raise failure from None
    fail(AUTOCAST_MESSAGE.format(fn=fn))


def check_returned_floats(student: Any, reference: Any, kwargs: dict, what: str, loss_scales: tuple = (1.0,)) -> None:
    """The step returns a Python float, and it is this step's loss (any float would not do)."""
    expected = reference.run("train_steps", **kwargs)
    actual = student.run("train_steps", like=expected, **kwargs)
    for record, ref in zip(actual["steps"], expected["steps"]):
        expect_python_float(record["returned"], what)
        want = as_number(ref["returned"], what)
        if not any(
            math.isclose(record["returned"], scale * want, rel_tol=STEP_RTOL, abs_tol=STEP_ATOL)
            for scale in loss_scales
        ):
            expect_number(record["returned"], want, f"{what} (the loss of this step)", rtol=STEP_RTOL, atol=STEP_ATOL)


class StepTests:
    METHOD = ""
    FN = ""
    LOSS = ""
    KWARGS: dict = {}

    def _kwargs(self, steps: int, seed: int, **extra: Any) -> dict:
        batches = [(images(6, seed + 10 * i), images(6, seed + 10 * i + 5)) for i in range(steps)]
        return dict(
            method=self.METHOD,
            fn=self.FN,
            state=standin(self.METHOD, seed),
            batches=batches,
            optimizer={"lr": 0.2, "momentum": 0.9},
            step_kwargs=dict(self.KWARGS),
            loss_name=self.LOSS,
            **extra,
        )

    def _compare_steps(self, expected: dict, actual: dict, what: str, loss_scale: float = 1.0) -> None:
        for step, (ref, got) in enumerate(zip(expected["steps"], actual["steps"])):
            label = f"{what}, step {step + 1}"
            expect_number(
                as_number(got["returned"], f"the loss returned by {label}"),
                loss_scale * as_number(ref["returned"], label),
                f"the loss returned by {label}",
                rtol=STEP_RTOL,
                atol=STEP_ATOL,
            )
            for name, value in ref["params"].items():
                expect_tensor(
                    got["params"][name], value, f"parameter `{name}` after {label}", rtol=STEP_RTOL, atol=STEP_ATOL
                )

    def _steps(self, student: Any, reference: Any, steps: int, seed: int) -> None:
        kwargs = self._kwargs(steps, seed)
        call = f"{self.FN}(model, x1, x2, optimizer" + "".join(f", {k}={v}" for k, v in self.KWARGS.items()) + ")"
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        try:
            self._compare_steps(expected, actual, f"{call} on a small stand-in model with SGD (momentum 0.9)")
        except GradingFailure as failure:
            explain_precision(reference, kwargs, actual, self.FN, failure)
        if steps > 1:
            expect_training_mode(actual, self.FN)
