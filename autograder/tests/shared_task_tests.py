"""The graded tests of every task of DESIGN.md's contract, shared by both assignments.

One class per task; ``test_ssl_methods.py`` and ``test_simclr_homework.py`` import the
classes of the tasks their notebook has. Every test runs the same harness operation on the
reference (``reference.run``, in the grader) and on the submission (``student.run``, in the
sandboxed worker) with the same seeded inputs, and compares. Points and visibility sit on
each test; its docstring's first line is what the student sees as the test's name.

How variants are handled:
- Steps run on small stand-in networks without batch norm (views forwarded together or
  apart give the same result) and with the *reference* loss / EMA answering the step's
  calls to ``nt_xent`` / ``barlow_loss`` / ``ema.update``, so a wrong loss, forward or EMA
  costs only its own task.
- NT-Xent gradients are compared on the tangent space of the unit sphere (the component
  that reaches the model through the normalisation), so re-normalising inside the loss is
  accepted.
- Barlow Twins: biased or unbiased standard deviation (computed here from the task's
  formula) are both accepted, each with its own gradient.
- BYOL: the mean over the 2N terms or the paper's sum ``L + L~`` (twice that) are both
  accepted, each with its own parameter trajectory.
- Evaluate: the mean loss per sample or the mean of the per-batch means.

What the submission cannot forge: it runs in the same process as the harness operations and
can rewrite them, so every result is first held against the reference's form
(`autograder.sandbox.conform`: every record, key, shape and dtype), and every test passes only when
values that a correct answer computes from the grader's inputs match. Properties with no
effect on any value (eval mode, gradients recorded, a target left with gradients) can only
add a failure; the oracles answer a step's requests only for the step's own inputs
(`autograder.grading.StepOracle`).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from autograder.in_sandbox import harness
from autograder.compare import (GradingFailure, as_number, as_sequence, describe, expect_number,
                                expect_python_float, expect_tensor, fail)

# ======================================================================================
# Seeded inputs
# ======================================================================================
def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def positive_pairs(n: int, d: int, seed: int, noise: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, d) batches of unit rows; row k of the second is a noisy copy of row k of the first."""
    g = _generator(seed)
    z1 = F.normalize(torch.randn(n, d, generator=g), dim=1)
    z2 = F.normalize(z1 + noise * torch.randn(n, d, generator=g), dim=1)
    return z1, z2


def correlated_embeddings(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, d) un-normalised embeddings, feature-wise correlated, with offsets and scales."""
    g = _generator(seed)
    z1 = torch.randn(n, d, generator=g) * (0.5 + torch.rand(d, generator=g) * 2) + torch.randn(d, generator=g)
    z2 = 0.8 * z1 + 0.6 * torch.randn(n, d, generator=g) * z1.std(0) + 3.0
    return z1, z2


def images(n: int, seed: int, size: int = 8) -> torch.Tensor:
    """(n, 3, size, size) float images in [0, 1]."""
    return torch.rand(n, 3, size, size, generator=_generator(seed))


def standin(kind: str, seed: int) -> dict:
    return harness.state_of(harness.build(kind, seed=seed))


def perturbed(state: dict, seed: int, scale: float = 0.3) -> dict:
    g = _generator(seed)
    return {k: v + scale * torch.randn(v.shape, generator=g) for k, v in state.items()}


def tangential(grad: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The component of `grad` orthogonal to each unit row of `z` (what reaches the model)."""
    return grad - (grad * z).sum(dim=1, keepdim=True) * z


#: Steps are compared more loosely than single calls: float32 sums in another order (views
#: forwarded together or apart) drift by ~1e-5 over two momentum steps; wrong steps are off by
#: orders of magnitude more.
STEP_RTOL, STEP_ATOL = 2e-3, 2e-5


def _returned(result: dict) -> Any:
    return result["returned"]


# ======================================================================================
# extract_features
# ======================================================================================
@pytest.mark.task("extract_features")
class TestExtractFeatures:
    N, BATCH = 10, 4

    def _case(self, student: Any, reference: Any, net: str, normalize: bool | None, seed: int) -> tuple:
        state = standin(net, seed)
        x, y = images(self.N, seed), torch.randint(0, 10, (self.N,), generator=_generator(seed + 1))
        kwargs = dict(fn="extract_features_and_labels", net_kind=net, state=state, images=x, labels=y,
                      batch_size=self.BATCH, normalize=normalize)
        expected = reference.run("extract_features", **kwargs)
        actual = student.run("extract_features", like=expected, **kwargs)
        call = "extract_features_and_labels(model, loader" + ("" if normalize is None else f", normalize={normalize}") + ")"
        features, labels = as_sequence(_returned(actual), 2, call, "(features, labels)")
        ref_features, ref_labels = _returned(expected)
        what = f"{call} with {self.N} images in batches of {self.BATCH}"
        expect_tensor(features, ref_features, f"the features of {what}", dtype_kind="float")
        expect_tensor(labels, ref_labels, f"the labels of {what}", dtype_kind="int64", rtol=0, atol=0)
        return actual

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_tensor_output(self, student: Any, reference: Any) -> None:
        """Features and labels of a model that returns a tensor, in the loader's order."""
        self._case(student, reference, "features-tensor", None, seed=11)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_tuple_and_list_output(self, student: Any, reference: Any) -> None:
        """The features are the first element when the model returns a tuple or a list."""
        self._case(student, reference, "features-tuple", False, seed=12)
        self._case(student, reference, "features-list", False, seed=13)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_normalize_without_gradients(self, student: Any, reference: Any) -> None:
        """normalize=True gives unit rows, and the features carry no autograd graph."""
        actual = self._case(student, reference, "features-list", True, seed=14)
        if actual.get("features_require_grad"):
            fail("the features still require gradients: extract them inside `with torch.no_grad():` (or "
                 "detach them), so no autograd graph is kept for the whole dataset.")


# ======================================================================================
# probes
# ======================================================================================
def _probe_data(seed: int, d: int, per_class: int, test_per_class: int, spread: float, noise: float) -> tuple:
    """3 Gaussian clusters; a fraction `noise` of the training labels is wrong."""
    g = _generator(seed)
    centres = torch.randn(3, d, generator=g) * 1.5

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(3).repeat_interleave(count)
        return centres[labels] + spread * torch.randn(len(labels), d, generator=g), labels

    train_x, train_y = draw(per_class)
    test_x, test_y = draw(test_per_class)
    flip = torch.rand(len(train_y), generator=g) < noise
    train_y = torch.where(flip, (train_y + 1 + torch.randint(0, 2, train_y.shape, generator=g)) % 3, train_y)
    order = torch.randperm(len(train_y), generator=g)
    return train_x[order], train_y[order], test_x, test_y


def _xor_data(seed: int) -> tuple:
    """Two classes in XOR layout (plus noise dimensions): no linear classifier beats chance by
    much, a nearest-neighbour classifier gets nearly everything right."""
    g = _generator(seed)

    def draw(per_cluster: int) -> tuple[torch.Tensor, torch.Tensor]:
        signs = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]).repeat_interleave(per_cluster, 0)
        labels = torch.tensor([0, 0, 1, 1]).repeat_interleave(per_cluster)
        x = torch.cat([signs * 2 + 0.4 * torch.randn(signs.shape, generator=g),
                       0.3 * torch.randn(len(signs), 3, generator=g)], dim=1)
        return x, labels

    train_x, train_y = draw(20)
    test_x, test_y = draw(10)
    order = torch.randperm(len(train_y), generator=g)
    return train_x[order], train_y[order], test_x, test_y


@pytest.mark.task("probes")
class TestProbes:
    def _accuracy(self, student: Any, reference: Any, fn: str, data: tuple, numpy: bool, tolerance: float,
                  python_float: bool = False) -> None:
        call = dict(fn=fn, args=list(data), kwargs={}, numpy_args=numpy)
        reference_result = reference.run("call", **call)
        expected = as_number(_returned(reference_result), fn)
        actual = _returned(student.run("call", like=reference_result, **call))
        kind = "NumPy arrays" if numpy else "CPU tensors"
        what = f"{fn} on {len(data[0])} training and {len(data[2])} test samples ({kind})"
        if python_float and (isinstance(actual, bool) or not isinstance(actual, float)):
            fail(f"{what} should return a Python float (e.g. `float(accuracy)`); got {describe(actual)}.")
        value = as_number(actual, what)
        if not 0.0 <= value <= 1.0:
            fail(f"{what} should return the test accuracy as a fraction in [0, 1]; got {value:g}"
                 + (" (a percentage?)" if 1 < value <= 100 else "") + ".")
        expect_number(value, expected, what, rtol=0, atol=tolerance + 1e-9)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_knn_accuracy(self, student: Any, reference: Any) -> None:
        """run_knn_probe: test accuracy of a k-NN (k = 5) classifier, as a fraction."""
        data = _probe_data(21, d=6, per_class=30, test_per_class=15, spread=1.3, noise=0.3)
        self._accuracy(student, reference, "run_knn_probe", data, numpy=False, tolerance=1 / 45)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_linear_accuracy(self, student: Any, reference: Any) -> None:
        """run_linear_probe: test accuracy of a logistic regression, as a fraction."""
        data = _probe_data(22, d=40, per_class=12, test_per_class=20, spread=5.0, noise=0.0)
        self._accuracy(student, reference, "run_linear_probe", data, numpy=False, tolerance=0.05)
        self._accuracy(student, reference, "run_linear_probe", _xor_data(25), numpy=False, tolerance=0.05)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_numpy_inputs(self, student: Any, reference: Any) -> None:
        """Both probes also accept NumPy arrays and return Python floats."""
        data = _probe_data(23, d=6, per_class=30, test_per_class=15, spread=1.3, noise=0.3)
        self._accuracy(student, reference, "run_knn_probe", data, numpy=True, tolerance=1 / 45, python_float=True)
        data = _probe_data(24, d=40, per_class=12, test_per_class=20, spread=5.0, noise=0.0)
        self._accuracy(student, reference, "run_linear_probe", data, numpy=True, tolerance=0.05, python_float=True)


# ======================================================================================
# simclr_forward / byol_forward
# ======================================================================================
class _ForwardTests:
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
            label = (f"the gradient reaching `{name}` through {self.CLASS}.forward ({what}); every part must be "
                     "trained, so no torch.no_grad() or .detach() in forward")
            if got is None:
                fail(f"{label}: no gradient arrived.")
            expect_tensor(got, want, label)

    def _real_case(self, student: Any, reference: Any, seed: int) -> None:
        state = reference.run("model_state", cls=self.CLASS, seed=seed)["state"]
        inputs = [images(3, seed, size=16)]  # any size works (global pooling); 16 keeps it fast
        kwargs = dict(cls=self.CLASS, inputs=inputs, state=state, mode="eval")
        expected = reference.run("model_forward", cache_key=(self.CLASS, seed), **kwargs)
        self._compare(expected, student.run("model_forward", like=expected, **kwargs),
                      "the given ResNet-18 architecture in eval mode", inputs)


@pytest.mark.task("simclr_forward")
class TestSimCLRForward(_ForwardTests):
    CLASS, PARTS, NAMES = "SimCLRModel", ("encoder", "projector"), "(repr, proj)"

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_forward_standins(self, student: Any, reference: Any) -> None:
        """repr = encoder(x) and proj = the L2-normalised projector(repr); gradients reach both."""
        self._standin_case(student, reference, seed=31)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_forward_resnet(self, student: Any, reference: Any) -> None:
        """The same on the given ResNet-18 encoder and projection head (eval mode)."""
        self._real_case(student, reference, seed=32)


@pytest.mark.task("byol_forward")
class TestBYOLForward(_ForwardTests):
    CLASS, PARTS, NAMES = "BYOLModel", ("encoder", "projector", "predictor"), "(repr, proj, pred)"

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_forward_standins(self, student: Any, reference: Any) -> None:
        """repr = f(x), proj = unit(g(repr)), pred = unit(q(g(repr))); gradients reach all three."""
        self._standin_case(student, reference, seed=61)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_forward_resnet(self, student: Any, reference: Any) -> None:
        """The same on the given ResNet-18 encoder, projector and predictor (eval mode)."""
        self._real_case(student, reference, seed=62)


# ======================================================================================
# Losses: nt_xent, barlow_loss
# ======================================================================================
def _loss_value(student: Any, reference: Any, fn: str, args: list, kwargs: dict, what: str,
                alternatives: dict | None = None) -> None:
    reference_result = reference.run("call", fn=fn, args=args, kwargs=kwargs)
    expected = as_number(_returned(reference_result), what)
    actual = as_number(_returned(student.run("call", like=reference_result, fn=fn, args=args, kwargs=kwargs)), what)
    for value in (alternatives or {}).values():
        if math.isclose(actual, value, rel_tol=1e-4, abs_tol=1e-5):
            return
    expect_number(actual, expected, what)


def _loss_grads(student: Any, reference: Any, fn: str, args: list, kwargs: dict, what: str,
                project: bool = False, alternatives: dict | None = None) -> None:
    expected = reference.run("loss_and_grads", fn=fn, args=args, kwargs=kwargs)
    actual = student.run("loss_and_grads", like=expected, fn=fn, args=args, kwargs=kwargs)
    loss = actual["returned"]
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        fail(f"{what} should return the loss as a tensor with one element that can be backpropagated; "
             f"got {describe(loss)}.")
    if actual["grads"] is None:
        fail(f"{what} returned a tensor that does not require gradients: the loss must be computed from z1 "
             "and z2 with differentiable torch operations (no .item(), .numpy() or .detach() on the way).")
    candidates = {"reference": (expected["returned"], expected["grads"]), **(alternatives or {})}
    errors = []
    for name, (ref_loss, ref_grads) in candidates.items():
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


def _barlow_variant(z1: torch.Tensor, z2: torch.Tensor, alpha: float, eps: float, unbiased: bool) -> tuple:
    """The Barlow Twins loss of the task's formula with a biased or unbiased std, and its gradients."""
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    n = a.shape[0]

    def standardise(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=unbiased) + eps)

    c = standardise(a).T @ standardise(b) / n
    on = torch.diagonal(c)
    loss = (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
    loss.backward()
    return loss.detach(), [a.grad, b.grad]


def _barlow_alternatives(z1: torch.Tensor, z2: torch.Tensor, alpha: float, eps: float = 1e-5) -> dict:
    return {f"{'unbiased' if u else 'biased'} std": _barlow_variant(z1, z2, alpha, eps, u) for u in (False, True)}


@pytest.mark.task("nt_xent")
class TestNTXent:
    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_value(self, student: Any, reference: Any) -> None:
        """NT-Xent of 4 normalised positive pairs in 8 dimensions, tau = 0.5."""
        z1, z2 = positive_pairs(4, 8, seed=41)
        _loss_value(student, reference, "nt_xent", [z1, z2], {"tau": 0.5}, "nt_xent(z1, z2, tau=0.5), z1 and z2 of shape (4, 8)")

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_values_shapes_temperatures(self, student: Any, reference: Any) -> None:
        """NT-Xent for other batch sizes, dimensions and temperatures (and the default tau)."""
        for n, d, tau, seed in ((16, 32, 0.1, 42), (1, 5, 0.5, 43), (7, 3, 2.0, 44), (9, 16, None, 45)):
            z1, z2 = positive_pairs(n, d, seed=seed)
            kwargs = {} if tau is None else {"tau": tau}
            call = "nt_xent(z1, z2" + ("" if tau is None else f", tau={tau}") + ")"
            _loss_value(student, reference, "nt_xent", [z1, z2], kwargs, f"{call}, z1 and z2 of shape ({n}, {d})")

    @pytest.mark.points(2)
    @pytest.mark.visibility("after_published")
    def test_gradients(self, student: Any, reference: Any) -> None:
        """The gradients of NT-Xent with respect to z1 and z2."""
        for n, d, tau, seed in ((6, 10, 0.3, 46), (3, 4, 0.7, 47)):
            z1, z2 = positive_pairs(n, d, seed=seed)
            _loss_grads(student, reference, "nt_xent", [z1, z2], {"tau": tau},
                        f"nt_xent(z1, z2, tau={tau}), z1 and z2 of shape ({n}, {d})", project=True)


@pytest.mark.task("barlow_loss")
class TestBarlowLoss:
    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_value(self, student: Any, reference: Any) -> None:
        """Barlow Twins loss of two (32, 8) embeddings, alpha = 0.005."""
        z1, z2 = correlated_embeddings(32, 8, seed=81)
        _loss_value(student, reference, "barlow_loss", [z1, z2], {"alpha": 5e-3},
                    "barlow_loss(z1, z2, alpha=0.005), z1 and z2 of shape (32, 8)",
                    {k: v[0].item() for k, v in _barlow_alternatives(z1, z2, 5e-3).items()})

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_values_shapes_alphas(self, student: Any, reference: Any) -> None:
        """Barlow Twins loss for other batch sizes, dimensions and weights alpha (eps passed explicitly too)."""
        for n, d, alpha, eps, seed in ((64, 16, 0.3, None, 82), (8, 4, 1.0, None, 83), (16, 32, 5e-3, 1e-5, 84)):
            z1, z2 = correlated_embeddings(n, d, seed=seed)
            kwargs = {"alpha": alpha} if eps is None else {"alpha": alpha, "eps": eps}
            call = f"barlow_loss(z1, z2, alpha={alpha}" + ("" if eps is None else f", eps={eps}") + ")"
            alternatives = {k: v[0].item() for k, v in _barlow_alternatives(z1, z2, alpha, eps or 1e-5).items()}
            _loss_value(student, reference, "barlow_loss", [z1, z2], kwargs, f"{call}, z1 and z2 of shape ({n}, {d})",
                        alternatives)

    @pytest.mark.points(2)
    @pytest.mark.visibility("after_published")
    def test_gradients(self, student: Any, reference: Any) -> None:
        """The gradients of the Barlow Twins loss with respect to z1 and z2."""
        for n, d, alpha, seed in ((24, 6, 0.5, 85), (10, 12, 0.05, 86)):
            z1, z2 = correlated_embeddings(n, d, seed=seed)
            _loss_grads(student, reference, "barlow_loss", [z1, z2], {"alpha": alpha},
                        f"barlow_loss(z1, z2, alpha={alpha}), z1 and z2 of shape ({n}, {d})",
                        alternatives=_barlow_alternatives(z1, z2, alpha))


# ======================================================================================
# EMA
# ======================================================================================
@pytest.mark.task("ema")
class TestEMA:
    def _run(self, student: Any, reference: Any, beta: float, updates: int, requires_grad: bool, seed: int) -> tuple:
        online = standin("byol", seed)
        kwargs = dict(cls="EMA", beta=beta, online_state=online, target_state=perturbed(online, seed + 1),
                      updates=updates, target_requires_grad=requires_grad)
        expected = reference.run("ema", **kwargs)
        actual = student.run("ema", like=expected, **kwargs)
        for step, (ref, got) in enumerate(zip(expected["targets"], actual["targets"])):
            for name in ref:
                expect_tensor(got[name], ref[name], f"target parameter `{name}` after {step + 1} "
                              f"update(s) with beta={beta}")
        for name, value in expected["online"].items():
            expect_tensor(actual["online"][name], value, f"online parameter `{name}` (must not change)")
        return expected, actual

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_one_update(self, student: Any, reference: Any) -> None:
        """One EMA update: w_target = beta * w_target + (1 - beta) * w_online, online unchanged."""
        self._run(student, reference, beta=0.9, updates=1, requires_grad=False, seed=71)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_repeated_updates(self, student: Any, reference: Any) -> None:
        """Three updates with beta = 0.75; the online network and its gradients are untouched."""
        _, actual = self._run(student, reference, beta=0.75, updates=3, requires_grad=False, seed=72)
        if not actual["online_grads_kept"]:
            fail("EMA.update changed the online network's gradients; it must only write the target's weights.")

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_in_place_without_autograd(self, student: Any, reference: Any) -> None:
        """In place, without autograd history, also when the target's parameters require grad."""
        _, actual = self._run(student, reference, beta=0.6, updates=2, requires_grad=True, seed=73)
        if not actual["same_objects"]:
            fail("EMA.update replaced the target's parameter objects; update them in place "
                 "(e.g. `target_param.mul_(beta).add_(online_param, alpha=1 - beta)` inside torch.no_grad()), "
                 "so the target keeps the same Parameters.")
        if not actual["leaves"]:
            fail("after EMA.update the target's parameters have autograd history (grad_fn is set): "
                 "do the update inside `with torch.no_grad():`.")
        if actual["requires_grad"] != [True] * len(actual["requires_grad"]):
            fail("EMA.update changed requires_grad of the target's parameters; leave it as it was.")


# ======================================================================================
# Training steps
# ======================================================================================
def _expect_training_mode(actual: dict, fn: str) -> None:
    if actual["steps"][-1].get("eval_forwards"):
        fail(f"{fn} ran the model in eval mode; a training step keeps it in training mode "
             "(batch norm must use and update the batch statistics).")


AUTOCAST_MESSAGE = ("{fn} gives what a correct step gives under torch.autocast (bfloat16), not in full precision: "
                    "remove the autocast from the step. Precision belongs to fit, which applies it on the GPU (and "
                    "scales the loss for float16); the step itself must compute in the model's own precision.")


def _explain_precision(reference: Any, kwargs: dict, actual: dict, fn: str, failure: GradingFailure) -> None:
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


def _check_returned_floats(student: Any, reference: Any, kwargs: dict, what: str, loss_scales: tuple = (1.0,)) -> None:
    """The step returns a Python float, and it is this step's loss (any float would not do)."""
    expected = reference.run("train_steps", **kwargs)
    actual = student.run("train_steps", like=expected, **kwargs)
    for record, ref in zip(actual["steps"], expected["steps"]):
        expect_python_float(record["returned"], what)
        want = as_number(ref["returned"], what)
        if not any(math.isclose(record["returned"], scale * want, rel_tol=STEP_RTOL, abs_tol=STEP_ATOL)
                   for scale in loss_scales):
            expect_number(record["returned"], want, f"{what} (the loss of this step)", rtol=STEP_RTOL, atol=STEP_ATOL)


class _StepTests:
    METHOD = ""
    FN = ""
    LOSS = ""
    KWARGS: dict = {}

    def _kwargs(self, steps: int, seed: int, **extra: Any) -> dict:
        batches = [(images(6, seed + 10 * i), images(6, seed + 10 * i + 5)) for i in range(steps)]
        return dict(method=self.METHOD, fn=self.FN, state=standin(self.METHOD, seed), batches=batches,
                    optimizer={"lr": 0.2, "momentum": 0.9}, step_kwargs=dict(self.KWARGS), loss_name=self.LOSS,
                    **extra)

    def _compare_steps(self, expected: dict, actual: dict, what: str, loss_scale: float = 1.0) -> None:
        for step, (ref, got) in enumerate(zip(expected["steps"], actual["steps"])):
            label = f"{what}, step {step + 1}"
            expect_number(as_number(got["returned"], f"the loss returned by {label}"),
                          loss_scale * as_number(ref["returned"], label), f"the loss returned by {label}",
                          rtol=STEP_RTOL, atol=STEP_ATOL)
            for name, value in ref["params"].items():
                expect_tensor(got["params"][name], value, f"parameter `{name}` after {label}",
                              rtol=STEP_RTOL, atol=STEP_ATOL)

    def _steps(self, student: Any, reference: Any, steps: int, seed: int) -> None:
        kwargs = self._kwargs(steps, seed)
        call = f"{self.FN}(model, x1, x2, optimizer" + "".join(f", {k}={v}" for k, v in self.KWARGS.items()) + ")"
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        try:
            self._compare_steps(expected, actual, f"{call} on a small stand-in model with SGD (momentum 0.9)")
        except GradingFailure as failure:
            _explain_precision(reference, kwargs, actual, self.FN, failure)
        if steps > 1:
            _expect_training_mode(actual, self.FN)


@pytest.mark.task("simclr_step")
class TestSimCLRStep(_StepTests):
    METHOD, FN, LOSS, KWARGS = "simclr", "simclr_train_step", "nt_xent", {"tau": 0.3}

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: the returned loss and the parameters after the update (tau passed on)."""
        self._steps(student, reference, steps=1, seed=51)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._steps(student, reference, steps=2, seed=52)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float(self, student: Any, reference: Any) -> None:
        """The step returns the loss as a Python float."""
        _check_returned_floats(student, reference, self._kwargs(1, 53), f"the value returned by {self.FN}")


@pytest.mark.task("barlow_step")
class TestBarlowStep(_StepTests):
    METHOD, FN, LOSS, KWARGS = "barlow", "barlow_train_step", "barlow_loss", {"alpha": 0.3}

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: the returned loss and the parameters after the update (alpha passed on)."""
        self._steps(student, reference, steps=1, seed=91)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._steps(student, reference, steps=2, seed=92)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float(self, student: Any, reference: Any) -> None:
        """The step returns the loss as a Python float."""
        _check_returned_floats(student, reference, self._kwargs(1, 93), f"the value returned by {self.FN}")


def _byol_mean_loss(kwargs: dict) -> float:
    """The BYOL loss, mean over the 2N terms, of the first batch (from the task's formula)."""
    online, target = harness.build("byol", kwargs["state"]), harness.build("byol", kwargs["target_state"])
    x1, x2 = kwargs["batches"][0]
    with torch.no_grad():
        p1, p2 = online(x1)[2], online(x2)[2]
        t1, t2 = target(x1)[1], target(x2)[1]
        return float(torch.cat([2 - 2 * (p1 * t2).sum(1), 2 - 2 * (p2 * t1).sum(1)]).mean())


@pytest.mark.task("byol_step")
class TestBYOLStep(_StepTests):
    METHOD, FN, LOSS = "byol", "byol_train_step", None
    WHAT = "byol_train_step(online, target, ema, optimizer, x1, x2) on small stand-in networks, SGD (momentum 0.9)"

    @staticmethod
    def _candidates(reference: Any, kwargs: dict) -> tuple[dict, dict, float]:
        """The reference's steps, and the steps of the other accepted loss convention (the
        paper's sum, twice the mean, or the mean, half the sum) with the scale between them."""
        expected = reference.run("train_steps", **kwargs)
        ratio = as_number(expected["steps"][0]["returned"], "reference loss") / _byol_mean_loss(kwargs)
        scale = 2.0 if abs(ratio - 1) < 1e-3 else 0.5
        alternative = reference.run("train_steps", **{**kwargs, "optimizer": {"lr": 0.2 * scale, "momentum": 0.9}})
        return expected, alternative, scale

    def _byol(self, student: Any, reference: Any, steps: int, seed: int, requires_grad: bool) -> dict:
        online = standin("byol", seed)
        kwargs = self._kwargs(steps, seed, target_state=perturbed(online, seed + 3), beta=0.9,
                              target_requires_grad=requires_grad)
        kwargs["state"] = online
        expected, alternative, scale = self._candidates(reference, kwargs)
        actual = student.run("train_steps", like=expected, trajectories=[expected, alternative], **kwargs)
        if steps > 1:
            _expect_training_mode(actual, self.FN)
        errors = []
        for candidate, loss_scale in ((expected, 1.0), (alternative, scale)):
            try:
                self._compare_steps(candidate, actual, self.WHAT, loss_scale)
                for step, (ref, got) in enumerate(zip(candidate["steps"], actual["steps"])):
                    for name, value in ref["target"].items():
                        expect_tensor(got["target"][name], value, f"target parameter `{name}` after step {step + 1} "
                                      "(it should be the EMA of the *updated* online network)",
                                      rtol=STEP_RTOL, atol=STEP_ATOL)
                return actual
            except GradingFailure as failure:
                errors.append(str(failure))
        _explain_precision(reference, kwargs, actual, self.FN, GradingFailure(errors[0]))
        raise AssertionError  # unreachable

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: the loss, the online update, then the target's EMA of the updated online network."""
        self._byol(student, reference, steps=1, seed=101, requires_grad=False)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._byol(student, reference, steps=2, seed=102, requires_grad=False)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_stop_gradient(self, student: Any, reference: Any) -> None:
        """No gradient reaches the target network, even when its parameters require grad."""
        actual = self._byol(student, reference, steps=1, seed=103, requires_grad=True)
        touched = actual["steps"][0]["target_grads"]
        if touched:
            fail(f"the target network received gradients ({', '.join(touched[:3])}...): compute its projections "
                 "under `torch.no_grad()` (or detach them): the target is a fixed regression target (stop-gradient).")

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float(self, student: Any, reference: Any) -> None:
        """The step returns the loss as a Python float."""
        online = standin("byol", 104)
        kwargs = self._kwargs(1, 104, target_state=perturbed(online, 107), beta=0.9)
        kwargs["state"] = online
        _check_returned_floats(student, reference, kwargs, f"the value returned by {self.FN}", loss_scales=(1.0, 2.0, 0.5))


# ======================================================================================
# Fine-tuning and evaluation (simclr_homework)
# ======================================================================================
def _labelled_batches(state: dict, steps: int, seed: int, size: int = 6) -> list:
    """Batches whose labels agree with the classifier's initial prediction for half the images."""
    model = harness.build("classifier", state)
    batches = []
    for i in range(steps):
        x = images(size, seed + i)
        with torch.no_grad():
            predicted = model(x).argmax(1)
        random = torch.randint(0, 10, (size,), generator=_generator(seed + 100 + i))
        y = torch.where(torch.arange(size) % 2 == 0, predicted, random)
        batches.append((x, y))
    return batches


@pytest.mark.task("finetune_step")
class TestFinetuneStep:
    WHAT = "finetune_train_step(classifier, x, y, optimizer) on a small stand-in classifier, SGD (momentum 0.9)"

    def _kwargs(self, steps: int, seed: int) -> dict:
        state = standin("classifier", seed)
        return dict(method="finetune", fn="finetune_train_step", state=state,
                    batches=_labelled_batches(state, steps, seed), optimizer={"lr": 0.2, "momentum": 0.9})

    def _steps(self, student: Any, reference: Any, steps: int, seed: int) -> None:
        kwargs = self._kwargs(steps, seed)
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        if steps > 1:
            _expect_training_mode(actual, "finetune_train_step")
        for step, (ref, got) in enumerate(zip(expected["steps"], actual["steps"])):
            label = f"{self.WHAT}, step {step + 1}"
            ref_loss, ref_correct = ref["returned"]
            loss, correct = as_sequence(got["returned"], 2, label, "(loss, number correct)")
            expect_number(loss, as_number(ref_loss, label), f"the loss returned by {label}",
                          rtol=STEP_RTOL, atol=STEP_ATOL)
            expect_number(correct, as_number(ref_correct, label),
                          f"the number of correct predictions returned by {label} (a count, not a fraction)",
                          rtol=0, atol=1e-9)
            for name, value in ref["params"].items():
                expect_tensor(got["params"][name], value, f"parameter `{name}` after {label}",
                              rtol=STEP_RTOL, atol=STEP_ATOL)

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_one_step(self, student: Any, reference: Any) -> None:
        """One step: cross-entropy loss, number of correct predictions, parameters after the update."""
        self._steps(student, reference, steps=1, seed=111)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_two_steps(self, student: Any, reference: Any) -> None:
        """Two consecutive steps with one optimiser (gradients must not accumulate)."""
        self._steps(student, reference, steps=2, seed=112)

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_float_and_int(self, student: Any, reference: Any) -> None:
        """The step returns (loss as a Python float, number correct as a Python int)."""
        kwargs = self._kwargs(1, 113)
        expected = reference.run("train_steps", **kwargs)
        actual = student.run("train_steps", like=expected, **kwargs)
        loss, correct = as_sequence(actual["steps"][0]["returned"], 2, "finetune_train_step(...)",
                                    "(loss, number correct)")
        expect_python_float(loss, "the loss returned by finetune_train_step")
        if isinstance(correct, bool) or not isinstance(correct, int):
            fail(f"the number of correct predictions should be a Python int (e.g. `(pred == y).sum().item()`); "
                 f"got {describe(correct)}.")
        ref_loss, ref_correct = expected["steps"][0]["returned"]  # and they are this step's values
        expect_number(loss, as_number(ref_loss, "loss"), "the loss returned by finetune_train_step",
                      rtol=STEP_RTOL, atol=STEP_ATOL)
        expect_number(correct, as_number(ref_correct, "count"), "the number of correct predictions returned by "
                      "finetune_train_step", rtol=0, atol=1e-9)


@pytest.mark.task("evaluate")
class TestEvaluate:
    N, BATCH = 10, 4

    def _run(self, student: Any, reference: Any, seed: int) -> tuple[dict, dict, dict]:
        state = standin("bn-classifier", seed)
        x = images(self.N, seed)
        y = torch.randint(0, 10, (self.N,), generator=_generator(seed + 1))
        kwargs = dict(fn="evaluate", state=state, images=x, labels=y, batch_size=self.BATCH)
        expected = reference.run("evaluate", **kwargs)
        return kwargs, expected, student.run("evaluate", like=expected, **kwargs)

    @staticmethod
    def _mean_of_batch_means(kwargs: dict) -> float:
        model = harness.build("bn-classifier", kwargs["state"]).eval()
        with torch.no_grad():
            losses = [F.cross_entropy(model(kwargs["images"][i:i + kwargs["batch_size"]]),
                                      kwargs["labels"][i:i + kwargs["batch_size"]]).item()
                      for i in range(0, len(kwargs["labels"]), kwargs["batch_size"])]
        return sum(losses) / len(losses)

    @pytest.mark.points(2)
    @pytest.mark.visibility("visible")
    def test_loss_and_accuracy(self, student: Any, reference: Any) -> None:
        """Mean loss and accuracy of a classifier with batch norm and dropout (eval mode matters)."""
        self._expect_values(*self._run(student, reference, seed=121))

    def _expect_values(self, kwargs: dict, expected: dict, actual: dict) -> None:
        what = f"evaluate(classifier, loader) over {self.N} images in batches of {self.BATCH}"
        loss, accuracy = as_sequence(actual["returned"], 2, what, "(mean loss, accuracy)")
        ref_loss, ref_accuracy = expected["returned"]
        value = as_number(loss, f"the mean loss of {what}")
        if not math.isclose(value, self._mean_of_batch_means(kwargs), rel_tol=1e-4, abs_tol=1e-5):
            expect_number(value, as_number(ref_loss, what), f"the mean loss of {what}")
        accuracy = as_number(accuracy, f"the accuracy of {what}")
        if 1 < accuracy <= 100:
            fail(f"the accuracy of {what} should be a fraction in [0, 1]; got {accuracy:g} (a percentage?).")
        expect_number(accuracy, as_number(ref_accuracy, what), f"the accuracy of {what}", rtol=0, atol=1e-6)

    @pytest.mark.points(1)
    @pytest.mark.visibility("after_published")
    def test_eval_mode_without_gradients(self, student: Any, reference: Any) -> None:
        """The classifier runs in eval mode and without recording gradients."""
        kwargs, expected, actual = self._run(student, reference, seed=122)
        if actual["forward_calls"] == 0:
            fail("evaluate never called the classifier.")
        if actual["training_calls"]:
            fail("evaluate ran the classifier in training mode: call `classifier.eval()` first (batch norm and "
                 "dropout behave differently at test time).")
        if actual["grad_enabled_calls"]:
            fail("evaluate recorded gradients: wrap the loop in `with torch.no_grad():` (or "
                 "torch.inference_mode()).")
        self._expect_values(kwargs, expected, actual)  # and the values that eval mode gives

    @pytest.mark.points(1)
    @pytest.mark.visibility("visible")
    def test_returns_floats(self, student: Any, reference: Any) -> None:
        """evaluate returns (mean loss, accuracy) as Python floats, the accuracy in [0, 1]."""
        kwargs, expected, actual = self._run(student, reference, seed=123)
        loss, accuracy = as_sequence(actual["returned"], 2, "evaluate(classifier, loader)", "(mean loss, accuracy)")
        expect_python_float(loss, "the mean loss returned by evaluate")
        expect_python_float(accuracy, "the accuracy returned by evaluate")
        if not 0.0 <= accuracy <= 1.0:
            fail(f"the accuracy should be a fraction in [0, 1]; got {accuracy:g}.")
        self._expect_values(kwargs, expected, actual)  # the floats must be the loss and the accuracy


__all__ = ["TestBYOLForward", "TestBYOLStep", "TestBarlowLoss", "TestBarlowStep", "TestEMA", "TestEvaluate",
           "TestExtractFeatures", "TestFinetuneStep", "TestNTXent", "TestProbes", "TestSimCLRForward",
           "TestSimCLRStep"]
