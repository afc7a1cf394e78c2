"""Public checks of the graded network classes: the SimCLR and BYOL forwards and the EMA update.

The forward checks build the student's class with its given __init__ and a tiny stand-in
encoder, then test the exact outputs the task states (repr = encoder(x), normalised
projections and predictions) and that gradients reach every head. The EMA check tests the
update rule `target = beta·target + (1 - beta)·online` parameter by parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.checker import _Checker, _describe, _max_diff, _tensors_close, _unit_columns, _unit_rows, _unpack
from helpers.checks.stand_ins import _FEATURE_DIM, _PROJ_DIM, _changed, _image_pair, _instantiate, _snapshot

#: The checks of this family, re-exported by `helpers.checks` (a new check is listed here only).
__all__ = ["check_simclr_forward", "check_byol_forward", "check_ema"]


def _forward_outputs(chk: _Checker, model: nn.Module, x: torch.Tensor, class_name: str, names: Sequence[str]) -> tuple:
    """`model(x)` without gradients, checked to be `names`: repr (B, 512), then heads (B, proj_dim)."""
    with torch.no_grad():
        out = chk.call(model, x, name=f"{class_name}.forward")
    listed = f"({', '.join(names)})"
    outputs = _unpack(chk, out, len(names), listed)
    for name, value in zip(names, outputs):
        shape = (x.shape[0], _FEATURE_DIM if name == "repr" else _PROJ_DIM)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            chk.fail(
                f"{name} shape (batch of {x.shape[0]} images, proj_dim={_PROJ_DIM})",
                f"{shape}",
                _describe(value),
                f"forward returns {listed}, in this order.",
            )
    return outputs


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


def _check_normalized_output(
    chk: _Checker,
    name: str,
    value: torch.Tensor,
    direction: torch.Tensor,
    formula: str,
    wrong: dict[str, torch.Tensor] | None = None,
) -> None:
    """`value` must be the row-normalised `direction` (the un-normalised head output)."""
    if not _unit_rows(value):
        if _unit_columns(value):
            hint = f"{name} is normalised along the batch (dim=0): normalise each row, F.normalize({name}, dim=1)."
        else:
            hint = f"L2-normalise {name}: F.normalize(x, dim=1) or x / x.norm(dim=1, keepdim=True)."
        chk.fail(
            f"{name} rows have unit L2 norm",
            "all row norms 1",
            f"row norms {[round(v, 4) for v in value.detach().norm(dim=1)[:4].tolist()]}...",
            hint,
        )
    expected = F.normalize(direction, dim=1)
    if not _tensors_close(value, expected, rtol=1e-3, atol=1e-4):
        hint = f"{name} = {formula}."
        for description, candidate in (wrong or {}).items():
            if _tensors_close(value, F.normalize(candidate, dim=1), rtol=1e-3, atol=1e-4):
                hint = f"{description}; {name} = {formula}."
        chk.fail(name, formula, f"max abs difference {_max_diff(value, expected):.3g}", hint)


def _check_gradients_reach(
    chk: _Checker, model: nn.Module, output: torch.Tensor, name: str, parts: Sequence[str]
) -> None:
    model.zero_grad(set_to_none=True)
    if not output.requires_grad:
        chk.fail(
            f"gradients through {name}",
            f"{name} attached to the autograd graph",
            f"{name}.requires_grad=False",
            "don't use torch.no_grad(), .detach() or .data inside forward; training needs the gradients.",
        )
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(1)).to(output.device)
    (output * weights).sum().backward()
    for part in parts:
        grads = [p.grad for p in getattr(model, part).parameters()]
        if not grads or all(g is None or not bool(g.abs().sum() > 0) for g in grads):
            chk.fail(
                f"gradients through {name}",
                f"non-zero gradients in self.{part}",
                "none",
                f"{name} must be computed from self.{part} without detaching anything in between.",
            )
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
        repr_, proj = _forward_outputs(chk, model, x, "SimCLRModel", ("repr", "proj"))
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
            chk.fail(
                "BYOLModel structure",
                "a `self.predictor` sub-module (from the given __init__)",
                "no module attribute `predictor`",
                "keep the given __init__ unchanged.",
            )
        x = _image_pair(6)[0]
        repr_, proj, pred = _forward_outputs(chk, model, x, "BYOLModel", ("repr", "proj", "pred"))
        chk.ok("returns (repr (B, 512), proj (B, proj_dim), pred (B, proj_dim))")

        expected_repr = _check_encoder_output(chk, model, x, repr_)
        chk.ok("repr = self.encoder(x)")
        with torch.no_grad():
            head = model.projector(expected_repr)  # (B, proj_dim), un-normalised z
            predicted = model.predictor(head)  # (B, proj_dim), q(z)
            wrong_pred = {
                "the predictor was applied to the normalised projection": model.predictor(F.normalize(head, dim=1))
            }
        _check_normalized_output(chk, "proj", proj, head, "normalize(self.projector(repr))")
        chk.ok("proj = normalize(self.projector(repr)), unit-norm rows")
        _check_normalized_output(
            chk,
            "pred",
            pred,
            predicted,
            "normalize(self.predictor(self.projector(repr))) (q takes the un-normalised projection)",
            wrong_pred,
        )
        chk.ok("pred = normalize(self.predictor(self.projector(repr))), unit-norm rows")

        model.train()
        out = _unpack(chk, chk.call(model, x, name="BYOLModel.forward"), 3, "(repr, proj, pred)")
        _check_gradients_reach(chk, model, out[2], "pred", ("encoder", "projector", "predictor"))
        out = _unpack(chk, chk.call(model, x, name="BYOLModel.forward"), 3, "(repr, proj, pred)")
        _check_gradients_reach(chk, model, out[1], "proj", ("encoder", "projector"))
        chk.ok("gradients flow from pred and proj back into the heads and the encoder")


# --------------------------------------------------------------------------------------
# EMA
# --------------------------------------------------------------------------------------
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
                chk.fail(
                    f"the online network (beta={beta})",
                    "unchanged",
                    "its parameters changed",
                    "update(online, target) writes only into the second argument, the target; "
                    "check the order of the arguments and of the zip.",
                )
            if [id(p) for p in target.parameters()] != target_ids:
                chk.fail(
                    f"in-place update (beta={beta})",
                    "the target's own Parameter objects updated",
                    "new Parameter objects",
                    "write into the existing parameters (p.data.copy_, p.mul_().add_() "
                    "or p.lerp_() under torch.no_grad()) instead of replacing them.",
                )
            got = [p.detach() for p in target.parameters()]
            expected = [beta * t + (1 - beta) * o for t, o in zip(target_before, online_before)]
            if not all(_tensors_close(g, e, rtol=1e-5, atol=1e-6) for g, e in zip(got, expected)):
                error = max(_max_diff(g, e) for g, e in zip(got, expected))
                if beta != 1.0 and not _changed(target, target_before):
                    hint = (
                        "the target did not change: assign in place (p_t.data = ..., p_t.copy_(...)); "
                        "rebinding the loop variable `p_t = ...` changes nothing."
                    )
                elif all(
                    _tensors_close(g, (1 - beta) * t + beta * o, rtol=1e-5, atol=1e-6)
                    for g, t, o in zip(got, target_before, online_before)
                ):
                    hint = "beta weights the target: w_t = beta * w_t + (1 - beta) * w_o."
                elif all(
                    _tensors_close(g, 0.99 * t + 0.01 * o, rtol=1e-5, atol=1e-6)
                    for g, t, o in zip(got, target_before, online_before)
                ):
                    hint = "use the beta given to EMA(beta) (self.beta), not a hard-coded 0.99."
                else:
                    hint = "w_t = beta * w_t + (1 - beta) * w_o for every pair of parameters."
                chk.fail(
                    f"target parameters after update (beta={beta})",
                    "beta * w_target + (1 - beta) * w_online",
                    f"max abs difference {error:.3g}",
                    hint,
                )
            for p, flag in zip(target.parameters(), target_flags):
                if p.grad_fn is not None or p.requires_grad != flag:
                    chk.fail(
                        f"autograd history on the target (beta={beta})",
                        f"leaf parameters without grad_fn, requires_grad={flag} as before",
                        f"grad_fn={p.grad_fn}, requires_grad={p.requires_grad}",
                        "do the update under `with torch.no_grad():` (or on .data), so the target "
                        "does not become part of the online network's graph.",
                    )
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
            chk.fail(
                "two updates with beta=0.5",
                "0.25·w_target + 0.75·w_online",
                f"max abs difference {error:.3g}",
                "each update starts from the target's current weights (keep no copies between calls).",
            )
        chk.ok("two updates compose (beta^2 of the old target remains)")
