"""Mixed precision for `helpers.train.fit`: which autocast dtype to train in, and fp16 loss
scaling that works although the students' steps call ``loss.backward()`` themselves.

Numerical precision belongs to `fit`, not to the steps (DESIGN.md): fit runs every step under
`autocast` with the dtype `resolve_amp` picks -- bf16 on GPUs that support it natively, else
fp16 with a `DynamicLossScaler` attached to the model and the optimiser; fp32 on the CPU. bf16
needs no scaling. The scaler reads whether the gradients overflowed once per step to skip
that step, as `torch.amp.GradScaler` does with optimisers that cannot skip on the device.
(The fused optimisers' on-device skip leaves the momentum buffers uninitialised when the very
first step overflows -- torch 2.14's ``_fused_sgd`` allocates them with ``empty_like`` -- so it
is not used.)
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

__all__ = ["DynamicLossScaler", "autocast", "resolve_amp"]


def resolve_amp(amp: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of fit's ``amp=`` on `device` (None: fp32, no autocast).

    Args:
        amp: "auto"/True (bf16 on CUDA where native, else fp16; off on the CPU), "bf16" or
            "fp16" (forced), False/None/"off"/"fp32" (fp32).
        device: the training device.
    """
    if amp in (False, None, "off", "fp32", "float32"):
        return None
    if amp in (True, "auto"):
        if device.type != "cuda":
            return None
        # Native bf16 only (Ampere and newer): T4/V100 emulate it slowly, fp16 + scaling is faster.
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if amp in ("bf16", "bfloat16", torch.bfloat16):
        return torch.bfloat16
    if amp in ("fp16", "float16", torch.float16):
        return torch.float16
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in `dtype` on `device`'s type, or nothing when `dtype` is None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class _ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by the loss scale S."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scaler: DynamicLossScaler) -> torch.Tensor:
        ctx.scaler = scaler
        return x.clone()  # a new tensor, so the caller may modify it in place

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.scaler._backward_was_scaled = True
        return grad * ctx.scaler.scale, None


class DynamicLossScaler:
    """Dynamic loss scaling for fp16 autocast when the student's step calls ``loss.backward()``.

    fp16 gradients below ~6e-8 flush to zero, so mixed-precision training multiplies the loss
    by a large factor S before the backward pass and divides the gradients by S before the
    optimiser step, lowering S whenever that overflows (Micikevicius et al. 2018, "Mixed
    Precision Training", https://arxiv.org/abs/1710.03740; `torch.amp.GradScaler`'s policy).
    GradScaler needs ``scaler.scale(loss).backward()`` and ``scaler.step(optimizer)`` inside the
    step. Our steps are the students' graded code, written without a scaler, so the scaler is
    attached at the two boundaries fit controls instead:

    1. **model outputs** -- a forward hook on `model` passes every floating-point output that
       requires grad through `_ScaleGradient`, whose backward multiplies the incoming
       gradient by S. Everything below the outputs (the whole network, where fp16 gradients
       live) sees S x the true gradient, exactly as with ``(S * loss).backward()``; the loss
       computed from the outputs is unaffected.
    2. **the optimiser step** -- ``optimizer.step`` is replaced *on that instance* (restored
       on exit) by a wrapper that, if a scaled backward pass happened since the last step,
       divides the gradients of `model`'s parameters by S and checks them. All finite: the
       real step runs, and after `growth_interval` such steps in a row S doubles. Any inf or
       NaN: the gradients are set to None, the real step is skipped (an EMA update that
       follows in the step then only re-averages unchanged weights) and S halves.
       (``Optimizer.register_step_pre_hook`` cannot skip a step, hence the wrapper.)

    Limits: the loss must reach the parameters through `model(...)`'s outputs (a step that
    calls ``model.encoder(x)`` directly bypasses the hook; the scaler then sees no scaled
    backward and leaves the gradients alone, i.e. trains unscaled). Parameters outside `model`
    (e.g. a learnable temperature) are never scaled nor unscaled.

    Args:
        init_scale: first S (GradScaler's default 2**16).
        growth_factor: S multiplier after `growth_interval` finite steps in a row.
        backoff_factor: S multiplier after a step with non-finite gradients.
        growth_interval: see `growth_factor`.

    Example::

        scaler = DynamicLossScaler()
        with scaler.attached(model, optimizer), torch.autocast("cuda", dtype=torch.float16):
            loss = step(x1, x2)          # the step's backward() and optimizer.step() are scaled
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        if init_scale <= 0 or growth_factor <= 1 or not 0 < backoff_factor < 1 or growth_interval < 1:
            raise ValueError("need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1")
        self.scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.growth_tracker = 0  # finite steps since the last change of S
        self.skipped_steps = 0
        self.active = True  # fit switches this off around the monitor and callbacks
        self._backward_was_scaled = False
        self._params: list[torch.nn.Parameter] = []

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, float | int]:
        return {"scale": self.scale, "growth_tracker": self.growth_tracker, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        self.scale = float(state["scale"])
        self.growth_tracker = int(state["growth_tracker"])
        self.skipped_steps = int(state.get("skipped_steps", 0))

    # ---------------------------------------------------------------- the two boundaries
    def _wrap(self, output):
        if isinstance(output, torch.Tensor):
            if output.requires_grad and output.is_floating_point():
                return _ScaleGradient.apply(output, self)
            return output
        if isinstance(output, tuple) and hasattr(output, "_fields"):  # namedtuple
            return type(output)(*(self._wrap(o) for o in output))
        if isinstance(output, (tuple, list)):
            return type(output)(self._wrap(o) for o in output)
        if isinstance(output, dict):
            return {key: self._wrap(value) for key, value in output.items()}
        return output

    def _forward_hook(self, module, args, output):
        if not (self.active and torch.is_grad_enabled()):
            return None  # keep the output as it is
        return self._wrap(output)

    def unscale_(self, grads: list[torch.Tensor]) -> bool:
        """Divide `grads` by S in place; True when all of them are finite afterwards."""
        groups: dict[tuple, list[torch.Tensor]] = defaultdict(list)
        for grad in grads:
            groups[(grad.device, grad.dtype)].append(grad)
        finite = True
        for (device, _), group in groups.items():
            found_inf = torch.zeros(1, device=device)
            inv_scale = torch.full((1,), 1.0 / self.scale, device=device)
            try:  # the fused kernel GradScaler uses (CUDA and CPU)
                torch._amp_foreach_non_finite_check_and_unscale_(group, found_inf, inv_scale)
            except (RuntimeError, AttributeError, NotImplementedError):
                torch._foreach_mul_(group, 1.0 / self.scale)
                found_inf = torch.stack([(~torch.isfinite(g)).any() for g in group]).any().float()
            finite = finite and not bool(found_inf.item())  # one sync per step, as GradScaler
        return finite

    def update(self, found_inf: bool) -> None:
        """GradScaler's policy: back off on overflow, grow after a run of finite steps."""
        if found_inf:
            self.scale *= self.backoff_factor
            self.growth_tracker = 0
            self.skipped_steps += 1
        else:
            self.growth_tracker += 1
            if self.growth_tracker >= self.growth_interval:
                self.scale *= self.growth_factor
                self.growth_tracker = 0

    def _scaled_step(self, optimizer: torch.optim.Optimizer, real_step: Callable, *args, **kwargs):
        if not self._backward_was_scaled:  # nothing was scaled (e.g. the hook was bypassed)
            return real_step(*args, **kwargs)
        self._backward_was_scaled = False
        grads = [p.grad for p in self._params if p.grad is not None]
        if self.unscale_(grads):
            result = real_step(*args, **kwargs)
            self.update(found_inf=False)
            return result
        for group in optimizer.param_groups:  # an overflow: drop this step's gradients
            for param in group["params"]:
                param.grad = None
        self.update(found_inf=True)
        return None

    @contextlib.contextmanager
    def attached(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[DynamicLossScaler]:
        """Scale `model`'s backward passes and unscale/check/skip in `optimizer.step`.

        Both patches are undone on exit, also after an exception.
        """
        handle = model.register_forward_hook(self._forward_hook)
        own = vars(optimizer)  # the instance's attributes (an LR scheduler may have wrapped step)
        had_own_step, previous_step = "step" in own, own.get("step")
        real_step = optimizer.step

        @functools.wraps(real_step)
        def step(*args, **kwargs):
            return self._scaled_step(optimizer, real_step, *args, **kwargs)

        optimizer.step = step
        self._params = list(model.parameters())
        self._backward_was_scaled = False
        try:
            yield self
        finally:
            handle.remove()
            if had_own_step:
                optimizer.step = previous_step
            else:
                own.pop("step", None)
            self._params = []
