"""Public checks of the training steps: SimCLR, Barlow Twins, BYOL and the fine-tuning step.

A step is run on the student's model class (tiny encoder, BatchNorm removed where the two
views may be forwarded separately or together) with plain SGD, and checked for its
bookkeeping: the returned loss is the student's own loss of the projections before the
update, exactly one optimiser step on that loss's gradient, train mode, no gradient
accumulated across steps, and for BYOL the stop-gradient and one EMA update of the target.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.checker import (
    _Checker,
    _close,
    _describe,
    _global,
    _max_diff,
    _num,
    _python_float,
    _resolve_device,
    _unpack,
)
from helpers.checks.stand_ins import (
    _changed,
    _ControlledClassifier,
    _cross_entropies,
    _grads,
    _image_pair,
    _instantiate,
    _part_changed,
    _snapshot,
    _strip_batch_norm,
)

#: The checks of this family, re-exported by `helpers.checks` (a new check is listed here only).
__all__ = ["check_simclr_step", "check_barlow_step", "check_byol_step", "check_finetune_step"]

#: Learning rate of the SGD optimiser the steps are run with.
_LR = 0.1


def _check_no_accumulation(
    chk: _Checker, run_step: Callable[[nn.Module, torch.optim.Optimizer], Any], model: nn.Module
) -> None:
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
            chk.fail(
                "gradients across steps (two identical steps, lr=0)",
                "the second step's gradient equal to the first's",
                "twice the first's (accumulated)",
                "call optimizer.zero_grad() before loss.backward() in every step.",
            )
        if abs(ratio - 1.0) > 0.05:
            chk.fail(
                "gradients across steps (two identical steps, lr=0)",
                "the same gradient in both steps",
                f"the second gradient is {ratio:.3g} times the first",
                "each step computes one loss on its own batch, zero_grad(), backward(), step().",
            )
    chk.ok("gradients do not accumulate across steps (zero_grad before backward)")


def _check_train_mode(chk: _Checker, model: nn.Module, name: str) -> None:
    """The step must run the (train-mode) network in train mode: BatchNorm needs batch statistics."""
    modes = getattr(model.encoder, "training_modes", [])
    if not modes or not all(modes) or not model.training:
        chk.fail(
            f"train mode of the {name}",
            "every forward pass of the step in train mode",
            f"forward modes {['train' if m else 'eval' for m in modes]}, left in "
            f"{'train' if model.training else 'eval'} mode",
            "don't call .eval() (or .train(False)) in a training step; the training loop sets the mode.",
        )
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
    loss = _python_float(
        chk,
        run_step(model, optimizer),
        "the returned loss",
        "return loss.item(), a Python float (a tensor would keep the graph alive).",
    )
    chk.ok("returns the loss as a Python float")
    _check_train_mode(chk, model, "model")

    if not _changed(model, before):
        chk.fail(
            "parameters after one step (SGD, lr=0.1)",
            "changed",
            "unchanged",
            "compute the loss, then optimizer.zero_grad(); loss.backward(); optimizer.step() — "
            "zero_grad between backward and step erases the gradients.",
        )
    for part in parts:
        if not _part_changed(model, part, before):
            chk.fail(
                f"self.{part} after one step",
                "changed",
                "unchanged",
                f"the loss must be computed from the model's projections (its second output) so that "
                f"gradients reach self.{part}; don't detach anything.",
            )
    chk.ok(f"one step changes the {' and the '.join(parts)}")

    if loss_of is None:
        print(
            f"  (skipped the loss-value checks: `{loss_name}` was not found next to {name}; pass it as {loss_name}=...)"
        )
    else:
        reference = copy.deepcopy(base)
        with torch.no_grad():
            expected = float(loss_of(reference))
        if not _close(loss, expected, rtol=1e-3, atol=1e-5):
            hint = f"return the {loss_name} of the two views' projections, computed before optimizer.step()."
            candidates = [(description, wrong, base) for description, wrong in wrong_losses.items()]
            candidates.append(
                (
                    "this is the loss after the update: return the value computed before optimizer.step().",
                    loss_of,
                    model,
                )
            )
            for description, wrong, weights in candidates:
                try:
                    with torch.no_grad():
                        value = float(wrong(copy.deepcopy(weights)))
                except Exception:  # a diagnosis that does not apply to this implementation
                    continue
                if _close(loss, value, rtol=1e-3, atol=1e-5):
                    hint = description
                    break
            chk.fail(
                "the returned loss",
                f"{_num(expected)} (your {loss_name} of the projections before the step)",
                _num(loss),
                hint,
            )
        chk.ok(f"the returned loss is {loss_name} of the two views' projections")

        reference.zero_grad(set_to_none=True)
        loss_of(reference).backward()
        deltas = [p.detach() - b for p, b in zip(model.parameters(), before)]
        steps = [
            torch.zeros_like(b) if p.grad is None else -_LR * p.grad for p, b in zip(reference.parameters(), before)
        ]
        scale = max(float(s.abs().max()) for s in steps)
        error = max(_max_diff(dl, s) for dl, s in zip(deltas, steps))
        if scale == 0 or error > 1e-2 * scale + 1e-7:
            double = max(_max_diff(dl, 2 * s) for dl, s in zip(deltas, steps))
            hint = (
                "the update is two SGD steps (or the gradient of twice the loss): call optimizer.step() once."
                if double <= 1e-2 * scale + 1e-7
                else f"one step = zero_grad(), backward() of exactly this {loss_name}, optimizer.step()."
            )
            chk.fail(
                "the parameter update (plain SGD, lr=0.1)",
                "-lr · gradient of the returned loss",
                f"max abs difference {error:.3g} (update size {scale:.3g})",
                hint,
            )
        chk.ok("the update is one optimizer step on the gradient of that loss")

    _check_no_accumulation(chk, run_step, copy.deepcopy(base))


def _check_two_view_step(
    chk: _Checker,
    step: Callable,
    step_name: str,
    model_class: type,
    class_name: str,
    device: str | torch.device | None,
    setting: tuple[str, float],
    loss_at: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    loss_name: str,
    wrong_of: Callable[[Callable, torch.Tensor, torch.Tensor], dict],
) -> None:
    """The SimCLR and Barlow Twins step checks: `step(model, x1, x2, optimizer, **{setting})`.

    The student's model class is built without BatchNorm and run on two views of 8 images.
    `loss_at(p1, p2)` is the student's loss of two projections at the step's `setting` (None
    when the loss was not found); `wrong_of(projections, x1, x2)` gives the usual mistakes as
    {diagnosis: the loss of a model under that mistake}, where `projections(model, x, index=1)`
    is output `index` of the model's forward (1: the projections, 0: the representations).
    """
    device = _resolve_device(device)
    base = _strip_batch_norm(_instantiate(chk, model_class, class_name)).to(device).train()
    x1, x2 = _image_pair(8, device)
    setting_name, value = setting

    def run_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
        return chk.call(step, model, x1, x2, optimizer, name=step_name, **{setting_name: value})

    def projections(model: nn.Module, a: torch.Tensor, index: int = 1) -> torch.Tensor:
        return chk.call(model, a, name=f"{class_name}.forward")[index]

    loss_of = None if loss_at is None else (lambda model: loss_at(projections(model, x1), projections(model, x2)))
    wrong = {} if loss_at is None else wrong_of(projections, x1, x2)
    _check_single_network_step(chk, step_name, run_step, base, ("encoder", "projector"), loss_of, loss_name, wrong)


def check_simclr_step(
    simclr_train_step: Callable,
    SimCLRModel: type,
    nt_xent: Callable | None = None,
    device: str | torch.device | None = None,
) -> None:
    """Check `simclr_train_step(model, x1, x2, optimizer, tau=0.5) -> float`.

    Runs your step on your `SimCLRModel` with a tiny encoder (and BatchNorm layers removed, so
    forwarding the views separately or concatenated gives the same result). Expected: a
    Python float equal to `nt_xent(proj1, proj2, tau)` before the update (using your own
    `nt_xent`, found in the notebook or passed as `nt_xent=`), exactly one optimizer step on
    that loss's gradient, the passed `tau` used, and no gradient accumulated across steps.
    """
    chk = _Checker("simclr_step", "simclr_train_step")
    with chk:
        loss_fn = nt_xent or _global(simclr_train_step, "nt_xent")
        tau = 0.2

        def loss_at(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
            return chk.call(loss_fn, p1, p2, tau=tau, name="nt_xent")

        def wrong_of(projections: Callable, x1: torch.Tensor, x2: torch.Tensor) -> dict:
            return {
                "pass tau to nt_xent: this is the loss at the default tau = 0.5.": lambda model: loss_fn(
                    projections(model, x1), projections(model, x2), tau=0.5
                ),
                "use the projections (second output), not the representations.": lambda model: loss_fn(
                    F.normalize(projections(model, x1, 0), dim=1),
                    F.normalize(projections(model, x2, 0), dim=1),
                    tau=tau,
                ),
            }

        _check_two_view_step(
            chk,
            simclr_train_step,
            "simclr_train_step",
            SimCLRModel,
            "SimCLRModel",
            device,
            ("tau", tau),
            None if loss_fn is None else loss_at,
            "nt_xent",
            wrong_of,
        )


def check_barlow_step(
    barlow_train_step: Callable,
    BarlowTwinsModel: type,
    barlow_loss: Callable | None = None,
    device: str | torch.device | None = None,
) -> None:
    """Check `barlow_train_step(model, x1, x2, optimizer, alpha=5e-3) -> float`.

    As `check_simclr_step`, with your `barlow_loss` (found in the notebook or passed as
    `barlow_loss=`) and a non-default `alpha` that must reach the loss.
    """
    chk = _Checker("barlow_step", "barlow_train_step")
    with chk:
        loss_fn = barlow_loss or _global(barlow_train_step, "barlow_loss")
        alpha = 0.3

        def loss_at(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
            return chk.call(loss_fn, p1, p2, alpha, name="barlow_loss")

        def wrong_of(projections: Callable, x1: torch.Tensor, x2: torch.Tensor) -> dict:
            return {
                "pass alpha to barlow_loss: this is the loss at alpha = 5e-3.": lambda model: loss_fn(
                    projections(model, x1), projections(model, x2), 5e-3
                ),
                "use the projections (second output), not the representations.": lambda model: loss_fn(
                    projections(model, x1, 0), projections(model, x2, 0), alpha
                ),
            }

        _check_two_view_step(
            chk,
            barlow_train_step,
            "barlow_train_step",
            BarlowTwinsModel,
            "BarlowTwinsModel",
            device,
            ("alpha", alpha),
            None if loss_fn is None else loss_at,
            "barlow_loss",
            wrong_of,
        )


class _CountingEMA:
    """A stand-in EMA that only counts `update(online, target)` calls (it changes nothing)."""

    def __init__(self) -> None:
        self.beta = 1.0
        self.calls = 0

    def update(self, online: nn.Module, target: nn.Module) -> None:
        self.calls += 1


def check_byol_step(
    byol_train_step: Callable, BYOLModel: type, EMA: type, device: str | torch.device | None = None
) -> None:
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
        loss = _python_float(
            chk,
            run(online, target, chk.call(EMA, beta, name="EMA"), optimizer),
            "the returned loss",
            "return loss.item(), a Python float.",
        )
        if not -1e-6 <= loss <= 8 + 1e-6:
            chk.fail(
                "the returned loss",
                "a value in [0, 4] (mean of 2 - 2·cos; [0, 8] for the sum of both orders)",
                _num(loss),
                "loss = 2 - 2 · (pred_online · proj_target) per pair, on normalised vectors.",
            )
        chk.ok("returns the loss as a Python float in the range of 2 - 2·cos")
        _check_train_mode(chk, online, "online network")

        for part in ("encoder", "projector", "predictor"):
            if not _part_changed(online, part, online_before):
                hint = (
                    "the loss must compare the online network's predictions (third output) with the "
                    "target's projections (second output)."
                    if part == "predictor"
                    else "compute the loss from the online network's outputs without detaching them, then "
                    "zero_grad(), backward(), optimizer.step()."
                )
                chk.fail(f"the online {part} after one step", "changed", "unchanged", hint)
        chk.ok("one step changes the online encoder, projector and predictor")

        got = [p.detach() for p in target.parameters()]
        online_after = [p.detach() for p in online.parameters()]

        def distance(weights_target: float, online_weights: Sequence[torch.Tensor]) -> float:
            return max(
                _max_diff(g, weights_target * t + (1 - weights_target) * o)
                for g, t, o in zip(got, target_before, online_weights)
            )

        error = distance(beta, online_after)
        scale = max(_max_diff(a, b) for a, b in zip(online_after, online_before)) * (1 - beta)
        if error > 1e-3 * scale + 1e-6:
            if not _changed(target, target_before):
                hint = (
                    "the target did not change: call ema.update(online, target) — online first — "
                    "once per step, after optimizer.step()."
                )
            elif distance(beta, online_before) <= 1e-3 * scale + 1e-6:
                hint = "the EMA used the online weights from before the update: call ema.update after optimizer.step()."
            elif distance(beta**2, online_after) <= 1e-3 * scale + 1e-6:
                hint = "the EMA was applied twice: call ema.update once per step."
            else:
                hint = (
                    "after optimizer.step() call the `ema` passed to the step once: ema.update(online, target) "
                    "(run check_ema first if you have not)."
                )
            chk.fail(
                f"the target after one step (EMA with beta={beta})",
                "beta·target_before + (1 - beta)·online_after_the_step",
                f"max abs difference {error:.3g}",
                hint,
            )
        chk.ok("the target moves by exactly one EMA update towards the updated online network")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        swapped = _python_float(
            chk,
            run(online, target, chk.call(EMA, beta, name="EMA"), torch.optim.SGD(online.parameters(), lr=_LR), x2, x1),
            "the returned loss",
            "return loss.item().",
        )
        if not _close(swapped, loss, rtol=1e-4, atol=1e-6):
            chk.fail(
                "symmetry: the same step with x1 and x2 swapped",
                _num(loss),
                _num(swapped),
                "use both view orders: pred_online(x1) against proj_target(x2) AND pred_online(x2) "
                "against proj_target(x1).",
            )
        chk.ok("the loss is symmetric in the two views (both view orders are used)")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        target.requires_grad_(True)  # a target someone forgot to freeze: the step must still not backprop into it
        counting = _CountingEMA()
        run(online, target, counting, torch.optim.SGD(online.parameters(), lr=_LR))
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in target.parameters()):
            chk.fail(
                "stop-gradient on the target",
                "no gradients in the target network",
                "the target's parameters received gradients",
                "compute the target's projections under torch.no_grad() (or .detach() them): sg(.) in the paper.",
            )
        chk.ok("no gradient reaches the target network (stop-gradient)")
        if counting.calls != 1:
            chk.fail(
                "calls of ema.update per step",
                "1",
                str(counting.calls),
                "call ema.update(online, target) once, after optimizer.step(), using the `ema` argument.",
            )
        chk.ok("ema.update is called once per step")

        online, target = copy.deepcopy(online0), copy.deepcopy(target0)
        no_op = _CountingEMA()  # the target stays fixed, so both steps see the same networks

        def run_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
            return run(model, target, no_op, optimizer)

        _check_no_accumulation(chk, run_step, online)


# --------------------------------------------------------------------------------------
# Fine-tuning step
# --------------------------------------------------------------------------------------
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
            chk.fail(
                "the type of n_correct", "a Python int (the number of correct predictions)", _describe(n_correct), hint
            )
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
            hint = (
                "this is the sum over the batch: return the mean cross-entropy (F.cross_entropy's default)."
                if _close(loss, expected_loss * len(labels), rtol=1e-4)
                else "loss = F.cross_entropy(classifier(x), y), the mean over the batch, before the update."
            )
            chk.fail("the returned loss", f"{_num(expected_loss)} (mean cross-entropy of the batch)", _num(loss), hint)
        chk.ok("the loss is the mean cross-entropy of the batch")

        if not model.training_modes or not all(model.training_modes) or not model.training:
            chk.fail(
                "training mode",
                "the forward pass in train mode and the model left in train mode",
                f"forward modes {['train' if m else 'eval' for m in model.training_modes]}, "
                f"left in {'train' if model.training else 'eval'} mode",
                "don't call classifier.eval() in the training step.",
            )
        if not _changed(model, before):
            chk.fail(
                "parameters after one step",
                "changed",
                "unchanged",
                "optimizer.zero_grad(); loss.backward(); optimizer.step().",
            )
        chk.ok("runs in train mode and updates the parameters")

        def run_step(model_: nn.Module, optimizer_: torch.optim.Optimizer) -> Any:
            return chk.call(finetune_train_step, model_, x, y, optimizer_, name="finetune_train_step")

        _check_no_accumulation(chk, run_step, _ControlledClassifier(num_classes, scale).to(device).train())
