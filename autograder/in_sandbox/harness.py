"""Grading operations: trusted code that calls a module's graded objects on given inputs.

The same operation runs on the reference (in the grader's process, on the module extracted
from ``solutions/``) and on the submission (in the sandboxed worker), with the same inputs,
and the grader compares the two results. An operation builds everything around the call
(small stand-in networks with the weights the grader sent, optimisers, data loaders), calls
the graded object through `Context.call`, and returns plain data: tensors, numbers, and
what the graded code returned (the grader describes unusable return values to the student).

What this module must never contain is an answer to a task: when a step needs the loss or
the EMA of another task (``nt_xent``, ``barlow_loss``, ``EMA.update``), the submission's
step is given a proxy that asks the grader, which answers with the *reference* result for
these inputs (`Context.callback`). So a wrong ``nt_xent`` does not cost ``simclr_step``,
and no reference code ever enters the sandbox. The stand-in networks have no batch norm,
so forwarding the two views together or separately gives the same result.

This module is copied into the worker's sandbox; it imports only torch and the standard
library.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .standins import build, grads_of, make_optimizer, params_of, state_of


class StudentFault(Exception):
    """The graded code did something the operation cannot use (message for the student)."""


class StudentRaised(Exception):
    """The graded code raised; carries the original exception and a student-only traceback."""

    def __init__(self, error: BaseException, summary: str) -> None:
        super().__init__(summary)
        self.error = error
        self.summary = summary


class Missing(StudentFault):
    """A name the operation needs is not defined by the module."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# ======================================================================================
# Context: how an operation reaches the graded module
# ======================================================================================
class Context:
    """The graded module's namespace plus how to call into it.

    Args:
        namespace: the module's globals (reference or submission).
        student: True in the worker: exceptions from graded code become `StudentRaised`,
            and steps get proxies that ask the grader (`callback`).
        callback: `callback(name, payload) -> reply`, a request to the grader (worker only).
    """

    def __init__(self, namespace: dict, student: bool, callback: Callable[[str, dict], Any] | None = None) -> None:
        self.ns = namespace
        self.student = student
        self.callback = callback

    def get(self, name: str) -> Any:
        if name not in self.ns:
            raise Missing(name)
        return self.ns[name]

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.student:
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - sys.exit and KeyboardInterrupt included
            raise StudentRaised(error, student_traceback(error)) from None

    def replaced(self, name: str, value: Any) -> _Replaced:
        return _Replaced(self.ns, name, value)


class _Replaced:
    """Temporarily bind a global of the graded module (restored afterwards)."""

    def __init__(self, ns: dict, name: str, value: Any) -> None:
        self.ns, self.name, self.value = ns, name, value
        self.old = ns.get(name, _Replaced)

    def __enter__(self) -> None:
        self.ns[self.name] = self.value

    def __exit__(self, *exc: Any) -> None:
        if self.old is _Replaced:
            self.ns.pop(self.name, None)
        else:
            self.ns[self.name] = self.old


def student_traceback(error: BaseException, limit: int = 12) -> str:
    """The exception with only the frames of the submission's cells (and library frames
    called from them), never the harness's own frames."""
    try:
        frames = traceback.extract_tb(error.__traceback__)
        start = next((i for i, f in enumerate(frames) if f.filename.startswith("<cell ")), len(frames))
        # The grader's own frames (a proxy the cell called) are not the student's business.
        frames = [
            f
            for f in frames[start:]
            if os.sep + "sslgrader_worker" + os.sep not in f.filename
            and not f.filename.endswith(("harness.py", "standins.py", "worker.py", "protocol.py"))
        ]
        lines = traceback.format_list(frames[-limit:])
        try:
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
        except BaseException:  # noqa: BLE001 - a hostile __str__
            message = type(error).__name__
        return ("".join(lines) + message)[-4000:]
    except BaseException:  # noqa: BLE001
        return type(error).__name__


def describe(value: Any) -> str:
    """A short, safe description of a returned value ("float", "tensor of shape (4,)", ...)."""
    kind = type(value)
    if issubclass(kind, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            shape = tuple(torch.Tensor.size(value))
            dtype = torch.Tensor.__getattribute__(value, "dtype")
        name = "tensor" if kind in (torch.Tensor, nn.Parameter) else f"tensor subclass {kind.__name__}"
        return f"{name} of shape {shape} and dtype {str(dtype).replace('torch.', '')}"
    if kind in (tuple, list):
        return f"{kind.__name__} of {len(value)} values"
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


# ======================================================================================
# Proxies handed to a submission's steps (worker side)
# ======================================================================================
def _loss_oracle(ctx: Context, name: str) -> Callable:
    """A stand-in for the loss `name` whose value and gradients come from the grader."""

    class RemoteLoss(torch.autograd.Function):
        @staticmethod
        def forward(fctx: Any, z1: torch.Tensor, z2: torch.Tensor, extra: Any) -> torch.Tensor:
            args, kwargs = extra
            reply = ctx.callback(
                "loss", {"fn": name, "z1": z1.detach(), "z2": z2.detach(), "args": list(args), "kwargs": dict(kwargs)}
            )
            fctx.save_for_backward(reply["grad_z1"].to(z1.dtype), reply["grad_z2"].to(z2.dtype))
            return reply["loss"].to(z1.dtype)

        @staticmethod
        def backward(fctx: Any, grad: torch.Tensor) -> Any:
            g1, g2 = fctx.saved_tensors
            return grad * g1, grad * g2, None

    def loss(z1: Any, z2: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        for value in (z1, z2):
            if not isinstance(value, torch.Tensor) or value.ndim != 2:
                raise StudentFault(f"{name} was called with {describe(value)}; it takes two (N, D) tensors")
        for value in [*args, *kwargs.values()]:
            if type(value) not in (int, float, bool):
                raise StudentFault(
                    f"{name} was called with an argument of type {describe(value)}; "
                    "pass numbers for its other arguments"
                )
        return RemoteLoss.apply(z1, z2, (tuple(args), dict(kwargs)))

    loss.__name__ = name
    return loss


class RemoteEMA:
    """Stand-in for `EMA(beta)` in the BYOL step: `update(online, target)` asks the grader for
    the reference update of these weights and writes it into `target`'s parameters in place."""

    def __init__(self, ctx: Context, beta: float) -> None:
        self._ctx = ctx
        self.beta = beta

    def update(self, online: Any, target: Any) -> None:
        if not isinstance(online, nn.Module) or not isinstance(target, nn.Module):
            raise StudentFault(
                f"ema.update was called with ({describe(online)}, {describe(target)}); "
                "it takes the online and the target network (nn.Module)"
            )
        sources = [torch.Tensor.detach(p).clone() for p in online.parameters()]
        targets = list(target.parameters())
        reply = self._ctx.callback(
            "ema", {"online": sources, "target": [torch.Tensor.detach(p).clone() for p in targets]}
        )
        with torch.no_grad():
            for param, value in zip(targets, reply["target"]):
                param.copy_(value)


# ======================================================================================
# Operations
# ======================================================================================
def op_call(ctx: Context, fn: str, args: list, kwargs: dict, numpy_args: bool = False) -> dict:
    """Call `fn(*args, **kwargs)`; tensors in `args` become NumPy arrays if `numpy_args`."""
    if numpy_args:
        args = [a.numpy() if isinstance(a, torch.Tensor) else a for a in args]
    torch.manual_seed(0)
    return {"returned": ctx.call(ctx.get(fn), *args, **kwargs)}


def op_loss_and_grads(ctx: Context, fn: str, args: list, kwargs: dict) -> dict:
    """Loss value and its gradients with respect to every tensor argument."""
    leaves = [a.detach().clone().requires_grad_(True) if isinstance(a, torch.Tensor) else a for a in args]
    loss = ctx.call(ctx.get(fn), *leaves, **kwargs)
    result: dict[str, Any] = {"returned": loss, "grads": None}
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
        return result  # the grader reports what came back
    ctx.call(torch.Tensor.backward, loss.reshape(()) if loss.ndim else loss)
    result["grads"] = [
        a.grad.detach().clone() if isinstance(a, torch.Tensor) and a.grad is not None else None for a in leaves
    ]
    return result


def _construct(ctx: Context, cls: str, init_kwargs: dict, weights_given: bool) -> nn.Module:
    """`cls(**init_kwargs)`; on the meta device when every weight will be replaced anyway
    (building a ResNet-18 for real only to overwrite it costs most of a forward test)."""
    factory = ctx.get(cls)
    model = None
    if weights_given:
        try:
            with torch.device("meta"):
                model = ctx.call(factory, **init_kwargs)
        except (StudentRaised, RuntimeError, NotImplementedError, TypeError):
            model = None  # fall back to a normal construction (and report its errors)
    if model is None:
        model = ctx.call(factory, **init_kwargs)
    if not isinstance(model, nn.Module):
        raise StudentFault(f"{cls}(...) gave {describe(model)}, not an nn.Module")
    return model


def _materialise(model: nn.Module) -> None:
    """Give every tensor still on the meta device real (zero) storage."""
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        for module in model.modules():
            for name, tensor in [*module._parameters.items(), *module._buffers.items()]:
                if tensor is not None and tensor.is_meta:
                    real = torch.zeros(tensor.shape, dtype=tensor.dtype)
                    if name in module._parameters:
                        module._parameters[name] = nn.Parameter(real, requires_grad=tensor.requires_grad)
                    else:
                        module._buffers[name] = real


def op_model_forward(
    ctx: Context,
    cls: str,
    inputs: list,
    init_kwargs: dict | None = None,
    swap: dict | None = None,
    state: dict | None = None,
    mode: str = "train",
    seed: int = 0,
    gradients: bool = False,
) -> dict:
    """Build `cls(**init_kwargs)`, replace its parts (`swap`: attribute -> (part, state)) or
    load `state`, then return `model(x)` for each x of `inputs` (in `mode`).

    With `gradients`, also backpropagate a fixed random linear function of the outputs for the
    first input and return the gradients of the swapped parts' parameters (a forward that
    detaches, or runs a part under no_grad, starves that part of gradients)."""
    torch.manual_seed(seed)
    model = _construct(ctx, cls, init_kwargs or {}, weights_given=bool(swap) or state is not None)
    for attribute, (part, part_state) in (swap or {}).items():
        if not isinstance(getattr(model, attribute, None), nn.Module):
            raise StudentFault(f"{cls} has no sub-module `{attribute}`: did you edit the given __init__?")
        setattr(model, attribute, build(part, part_state))
    if state is not None:
        own = model.state_dict()
        missing = [k for k in own if k not in state or tuple(own[k].shape) != tuple(state[k].shape)]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise StudentFault(
                f"{cls}'s layers differ from the given architecture (missing or reshaped: "
                f"{missing[:3]}, unexpected: {unexpected[:3]}): did you edit the given __init__ "
                "or add layers?"
            )
        _materialise(model)
        model.load_state_dict(state, strict=True)
    _materialise(model)
    model.train(mode == "train")
    outputs = []
    with torch.no_grad():
        for x in inputs:
            outputs.append(ctx.call(model, x))
    result: dict[str, Any] = {"outputs": outputs, "grads": None}
    if gradients:
        result["grads"] = _part_gradients(ctx, model, inputs[0], list(swap or {}), seed)
    return result


def _part_gradients(ctx: Context, model: nn.Module, x: torch.Tensor, parts: list[str], seed: int) -> Any:
    """Gradients of sum_i <w_i, output_i> (fixed random w_i) for the parameters of `parts`."""
    out = ctx.call(model, x)
    if type(out) not in (tuple, list) or not all(type(o) is torch.Tensor and o.is_floating_point() for o in out):
        return None  # the output comparison reports what came back
    generator = torch.Generator().manual_seed(seed + 1)
    total = sum((o * torch.randn(o.shape, generator=generator)).sum() for o in out if o.requires_grad)
    if not isinstance(total, torch.Tensor):
        return {f"{part}.{name}": None for part in parts for name, _ in getattr(model, part).named_parameters()}
    ctx.call(torch.Tensor.backward, total)
    return {
        f"{part}.{name}": (None if p.grad is None else p.grad.detach().clone())
        for part in parts
        for name, p in getattr(model, part).named_parameters()
    }


def op_model_state(ctx: Context, cls: str, init_kwargs: dict | None = None, seed: int = 0) -> dict:
    """The state_dict of `cls(**init_kwargs)` built under `seed` (reference side only)."""
    torch.manual_seed(seed)
    return {"state": state_of(ctx.call(ctx.get(cls), **(init_kwargs or {})))}


def op_extract_features(
    ctx: Context,
    fn: str,
    net_kind: str,
    state: dict,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    normalize: bool | None,
) -> dict:
    """`fn(model, loader[, normalize=...])` on a stand-in model and an in-order DataLoader."""
    model = build(net_kind, state)
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)
    function = ctx.get(fn)
    if normalize is None:
        returned = ctx.call(function, model, loader)
    else:
        returned = ctx.call(function, model, loader, normalize=normalize)
    features = returned[0] if type(returned) in (tuple, list) and returned else None
    requires_grad = False
    if issubclass(type(features), torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            requires_grad = bool(torch.Tensor.requires_grad.__get__(features))
    return {"returned": returned, "features_require_grad": requires_grad}


def op_ema(
    ctx: Context,
    cls: str,
    beta: float,
    online_state: dict,
    target_state: dict,
    updates: int,
    target_requires_grad: bool,
) -> dict:
    """`cls(beta).update(online, target)` `updates` times on two stand-in networks."""
    online, target = build("byol", online_state), build("byol", target_state)
    target.requires_grad_(target_requires_grad)
    for p in online.parameters():  # a gradient the update must leave alone
        p.grad = torch.ones_like(p)
    ids = [id(p) for p in target.parameters()]
    ema = ctx.call(ctx.get(cls), beta)
    history = []
    for _ in range(updates):
        ctx.call(getattr(ema, "update", _missing_method("update")), online, target)
        history.append(params_of(target))
    params = list(target.parameters())
    return {
        "targets": history,
        "online": params_of(online),
        "online_grads_kept": all(p.grad is not None and bool((p.grad == 1).all()) for p in online.parameters()),
        "same_objects": [id(p) for p in params] == ids,
        "leaves": all(p.is_leaf and p.grad_fn is None for p in params),
        "requires_grad": [bool(p.requires_grad) for p in params],
    }


def _missing_method(name: str) -> Callable:
    def missing(*args: Any, **kwargs: Any) -> None:
        raise StudentFault(f"the EMA object has no `{name}` method")

    return missing


def op_train_steps(
    ctx: Context,
    method: str,
    fn: str,
    state: dict,
    batches: list,
    optimizer: dict,
    step_kwargs: dict | None = None,
    target_state: dict | None = None,
    beta: float = 0.9,
    target_requires_grad: bool = False,
    loss_name: str | None = None,
    autocast: str | None = None,
) -> dict:
    """Consecutive calls of a training step on a stand-in network with one optimiser.

    method: "simclr" / "barlow" (`fn(model, x1, x2, optimizer, **step_kwargs)`), "byol"
    (`fn(online, target, ema, optimizer, x1, x2)`) or "finetune" (`fn(model, x, y, optimizer)`).
    In the worker, `loss_name` (nt_xent / barlow_loss) and the EMA are proxies answered by the
    grader with the reference's results. `autocast` ("bfloat16", reference side only) runs the
    steps under CPU autocast, to recognise a submitted step that runs its own.
    """
    step = ctx.get(fn)
    model = build({"finetune": "classifier"}.get(method, method), state)
    model.train()
    target = None
    if method == "byol":
        target = build("byol", target_state)
        target.train()
        target.requires_grad_(target_requires_grad)
        ema = RemoteEMA(ctx, beta) if ctx.student else ctx.get("EMA")(beta)
    opt = make_optimizer(model.parameters(), optimizer)
    records = []
    oracle = ctx.replaced(loss_name, _loss_oracle(ctx, loss_name)) if (ctx.student and loss_name) else nullcontext()
    with oracle:
        precision = (
            torch.autocast("cpu", dtype=getattr(torch, autocast)) if autocast and not ctx.student else nullcontext()
        )
        for batch in batches:
            torch.manual_seed(0)
            with precision:
                if method == "byol":
                    returned = ctx.call(step, model, target, ema, opt, *batch)
                else:
                    returned = ctx.call(step, model, *batch, opt, **(step_kwargs or {}))
            record = {"returned": returned, "params": params_of(model), "eval_forwards": model.eval_forwards}
            if target is not None:
                record["target"] = params_of(target)
                record["target_grads"] = [
                    k for k, g in grads_of(target).items() if g is not None and bool(g.abs().sum() > 0)
                ]
            records.append(record)
    return {"steps": records}


def op_evaluate(
    ctx: Context, fn: str, state: dict, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> dict:
    """`fn(classifier, loader)` on a batch-norm + dropout classifier left in training mode."""
    model = build("bn-classifier", state)
    model.train()
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)
    torch.manual_seed(0)
    returned = ctx.call(ctx.get(fn), model, loader)
    return {
        "returned": returned,
        "forward_calls": len(model.calls),
        "grad_enabled_calls": sum(1 for grad, _ in model.calls if grad),
        "training_calls": sum(1 for _, training in model.calls if training),
        "grads": sum(1 for p in model.parameters() if p.grad is not None),
    }


OPS: dict[str, Callable[..., dict]] = {
    "call": op_call,
    "loss_and_grads": op_loss_and_grads,
    "model_forward": op_model_forward,
    "model_state": op_model_state,
    "extract_features": op_extract_features,
    "ema": op_ema,
    "train_steps": op_train_steps,
    "evaluate": op_evaluate,
}


def run(ctx: Context, op: str, kwargs: dict) -> dict:
    """Run operation `op` (raises KeyError for an unknown one)."""
    return OPS[op](ctx, **kwargs)


__all__ = ["Context", "Missing", "OPS", "StudentFault", "StudentRaised", "build", "run", "state_of"]
