"""Tests of helpers.checks, the students' public self-checks.

Every correct variant in `student_variants` must pass its check; every wrong variant marked
`caught_publicly` must fail it with the actionable hint listed in `EXPECTED_HINTS`; the
variants only the hidden grader can catch must pass (documenting the checks' limits); a
TODO stub must give "not implemented yet".
"""

from __future__ import annotations

import pytest
import torch

import student_variants as V
from helpers import checks
from helpers.checks import CheckFailure, NotImplementedYet

#: The check task name each variant task reports ("All <name> checks passed.").
CHECK_NAME = {"knn_probe": "probes", "linear_probe": "probes"}

#: Wrong variant -> a fragment of the hint its check must give.
EXPECTED_HINTS = {
    # extract_features
    "extract_features_no_unwrap": "take its first element",
    "extract_features_normalize_dim0": "normalise each feature vector (row)",
    "extract_features_always_normalized": "L2-normalised although normalize=False",
    "extract_features_grad_enabled": "with torch.no_grad():",
    "extract_features_float_labels": "int64",
    "extract_features_last_batch_only": "concatenate the features of all batches",
    # probes
    "run_knn_probe_percent": "return the accuracy as a fraction",
    "run_knn_probe_train_accuracy": "that is the training accuracy",
    "run_knn_probe_k1": "KNeighborsClassifier(n_neighbors=5)",
    "run_knn_probe_error_rate": "error rate (1 - accuracy)",
    "run_knn_probe_tensor": "return a Python float",
    "run_linear_probe_knn": "must fit a linear classifier (LogisticRegression)",
    "run_linear_probe_percent": "return the accuracy as a fraction",
    "run_linear_probe_train_accuracy": "that is the training accuracy",
    # simclr_forward
    "SimCLRModelUnnormalized": "L2-normalise proj",
    "SimCLRModelNormalizedDim0": "normalised along the batch (dim=0)",
    "SimCLRModelNormalizedRepr": "repr is L2-normalised",
    "SimCLRModelSwappedOutputs": "returns (repr, proj), in this order",
    "SimCLRModelProjOnly": "return all 2 values",
    "SimCLRModelFrozenEncoder": "non-zero gradients in self.encoder",
    # byol_forward
    "BYOLModelPredUnnormalized": "L2-normalise pred",
    "BYOLModelPredFromNormalizedProj": "the predictor was applied to the normalised projection",
    "BYOLModelTwoOutputs": "return all 3 values",
    "BYOLModelProjUnnormalized": "L2-normalise proj",
    # nt_xent
    "nt_xent_no_self_mask": "did you exclude k = i (self-similarity)?",
    "nt_xent_mean_over_n": "mean over all 2N anchors (1/(2N), not 1/N)",
    "nt_xent_sum": "this is the sum over the 2N anchors",
    "nt_xent_temperature_multiplied": "the similarities were multiplied by tau",
    "nt_xent_one_direction": "use every one of the 2N views as an anchor",
    "nt_xent_cross_view_negatives": "including the other images of the same view",
    "nt_xent_positive_excluded": "the positive is missing from the denominator",
    "nt_xent_per_anchor": "reduce to a single number",
    "nt_xent_item": "return the tensor itself",
    "nt_xent_detached": "don't detach",
    # barlow_loss
    "barlow_loss_not_centred": "subtract each feature's batch mean",
    "barlow_loss_rows_standardized": "standardised per feature along the batch (dim=0)",
    "barlow_loss_diagonal_in_redundancy": "must skip the diagonal",
    "barlow_loss_alpha_ignored": "multiply the off-diagonal sum by alpha",
    "barlow_loss_not_divided_by_n": "divide z1n.T @ z2n by the batch size N",
    "barlow_loss_means": "sum the squared entries (don't average them)",
    "barlow_loss_only_z1_standardized": "standardised per feature along the batch (dim=0)",
    # simclr_step
    "simclr_train_step_no_zero_grad": "call optimizer.zero_grad() before loss.backward()",
    "simclr_train_step_returns_tensor": "return loss.item()",
    "simclr_train_step_ignores_tau": "pass tau to nt_xent",
    "simclr_train_step_uses_repr": "computed from the model's projections (its second output)",
    "simclr_train_step_zero_grad_after_backward": "zero_grad between backward and step erases the gradients",
    "simclr_train_step_loss_after_update": "this is the loss after the update",
    "simclr_train_step_double_step": "call optimizer.step() once",
    "simclr_train_step_eval_mode": "don't call .eval()",
    # barlow_step
    "barlow_train_step_ignores_alpha": "pass alpha to barlow_loss",
    "barlow_train_step_no_zero_grad": "call optimizer.zero_grad() before loss.backward()",
    "barlow_train_step_returns_tensor": "return loss.item()",
    "barlow_train_step_uses_repr": "computed from the model's projections (its second output)",
    # ema
    "EMASwappedWeights": "beta weights the target",
    "EMAUpdatesOnline": "writes only into the second argument",
    "EMAWithAutogradHistory": "under `with torch.no_grad():`",
    "EMAHardcodedBeta": "self.beta",
    "EMARebindsLoopVariable": "rebinding the loop variable",
    "EMANewParameters": "instead of replacing them",
    # byol_step
    "byol_train_step_one_view_order": "use both view orders",
    "byol_train_step_ema_before_step": "call ema.update after optimizer.step()",
    "byol_train_step_ema_wrong_network": "ema.update(online, target) — online first",
    "byol_train_step_no_ema": "the target did not change",
    "byol_train_step_no_stop_gradient": "sg(.) in the paper",
    "byol_train_step_no_zero_grad": "call optimizer.zero_grad() before loss.backward()",
    "byol_train_step_returns_tensor": "return loss.item()",
    "byol_train_step_without_predictor": "predictions (third output)",
    # finetune_step
    "finetune_train_step_no_zero_grad": "call optimizer.zero_grad() before loss.backward()",
    "finetune_train_step_accuracy": "that is the accuracy",
    "finetune_train_step_tensors": "return loss.item()",
    "finetune_train_step_eval_mode": "don't call classifier.eval()",
    "finetune_train_step_summed_loss": "this is the sum over the batch",
    # evaluate
    "evaluate_percent": "not percent",
    "evaluate_train_mode": "call classifier.eval()",
    "evaluate_grad_enabled": "with torch.no_grad():",
    "evaluate_count": "number of correct predictions: divide",
    "evaluate_mean_of_batch_accuracies": "mean of the per-batch accuracies",
    "evaluate_summed_loss": "this is the summed loss",
}


def run_check(task: str, answer) -> None:
    """Run the public check of `task` on `answer`, with correct partners where it needs them."""
    runners = {
        "extract_features": lambda: checks.check_extract_features(answer, device="cpu"),
        "knn_probe": lambda: checks.check_probes(answer, V.CORRECT_LINEAR_PROBE),
        "linear_probe": lambda: checks.check_probes(V.CORRECT_KNN_PROBE, answer),
        "simclr_forward": lambda: checks.check_simclr_forward(answer),
        "byol_forward": lambda: checks.check_byol_forward(answer),
        "nt_xent": lambda: checks.check_nt_xent(answer),
        "barlow_loss": lambda: checks.check_barlow_loss(answer),
        "ema": lambda: checks.check_ema(answer),
        "simclr_step": lambda: checks.check_simclr_step(answer, V.CORRECT_SIMCLR_MODEL, device="cpu"),
        "barlow_step": lambda: checks.check_barlow_step(answer, V.CORRECT_BARLOW_MODEL, device="cpu"),
        "byol_step": lambda: checks.check_byol_step(answer, V.CORRECT_BYOL_MODEL, V.CORRECT_EMA, device="cpu"),
        "finetune_step": lambda: checks.check_finetune_step(answer, device="cpu"),
        "evaluate": lambda: checks.check_evaluate(answer, device="cpu"),
    }
    runners[task]()


def _ids(variants):
    return [v.name for v in variants]


CORRECT = V.variants(is_correct=True)
CAUGHT = [v for v in V.variants(is_correct=False) if v.caught_publicly]
HIDDEN_ONLY = [v for v in V.variants(is_correct=False) if not v.caught_publicly]
TASKS = sorted({v.task for v in V.VARIANTS})


@pytest.mark.parametrize("variant", CORRECT, ids=_ids(CORRECT))
def test_correct_variant_passes(variant, capsys):
    """Is every correct answer (each accepted style) accepted, with a line per check passed?"""
    run_check(variant.task, variant.obj)
    out = capsys.readouterr().out
    assert f"All {CHECK_NAME.get(variant.task, variant.task)} checks passed." in out
    assert out.count("✓ ") >= 3


@pytest.mark.parametrize("variant", CAUGHT, ids=_ids(CAUGHT))
def test_wrong_variant_fails_with_hint(variant):
    """Does the public check reject a wrong answer, saying expected/got and the likely mistake?"""
    with pytest.raises(CheckFailure) as failure:
        run_check(variant.task, variant.obj)
    message = str(failure.value)
    assert not isinstance(failure.value, NotImplementedYet)
    assert EXPECTED_HINTS[variant.name] in message, message
    assert "check failed" in message


def test_every_publicly_caught_variant_has_an_expected_hint():
    """Is each wrong variant's expected message pinned down (so no variant is caught for a wrong reason)?"""
    assert sorted(v.name for v in CAUGHT) == sorted(EXPECTED_HINTS)


def test_every_task_has_correct_and_wrong_variants():
    """Does every task have at least one correct and two wrong variants?"""
    for task in TASKS:
        assert V.variants(task, is_correct=True), task
        assert len(V.variants(task, is_correct=False)) >= 2, task


@pytest.mark.parametrize("variant", HIDDEN_ONLY, ids=_ids(HIDDEN_ONLY))
def test_hidden_only_variant_passes_public_check(variant, capsys):
    """The documented limits: these mistakes need the reference solution (hidden tests) to be found."""
    run_check(variant.task, variant.obj)
    assert "checks passed." in capsys.readouterr().out


STUBS = {
    "extract_features": V.not_implemented,
    "knn_probe": V.not_implemented,
    "linear_probe": V.not_implemented,
    "simclr_forward": V.SimCLRModelGiven,
    "byol_forward": V.BYOLModelGiven,
    "nt_xent": V.not_implemented,
    "barlow_loss": V.not_implemented,
    "ema": V.NotImplementedEMA,
    "simclr_step": V.not_implemented,
    "barlow_step": V.not_implemented,
    "byol_step": V.not_implemented,
    "finetune_step": V.not_implemented,
    "evaluate": V.not_implemented,
}


@pytest.mark.parametrize("task", sorted(STUBS))
def test_stub_says_not_implemented(task, capsys):
    """Does an unfilled TODO cell (raise NotImplementedError()) give "not implemented yet"?"""
    with pytest.raises(NotImplementedYet, match="not implemented yet — fill in the TODO cell"):
        run_check(task, STUBS[task])
    assert "not implemented yet" in capsys.readouterr().out


def test_not_implemented_is_both_assertion_and_not_implemented_error():
    assert issubclass(NotImplementedYet, AssertionError)
    assert issubclass(NotImplementedYet, NotImplementedError)
    assert issubclass(CheckFailure, AssertionError)


def test_unimplemented_dependency_is_named(monkeypatch):
    """A step whose loss cell is still a stub points at the function that raised."""
    monkeypatch.setattr(V, "nt_xent", V.not_implemented)
    with pytest.raises(NotImplementedYet, match="raised in `not_implemented`"):
        checks.check_simclr_step(V.simclr_train_step_separate, V.CORRECT_SIMCLR_MODEL, device="cpu")


def test_crash_in_student_code_is_reported():
    """A crash becomes a CheckFailure naming the call and the error, chained to the original."""

    def broken(z1, z2, tau=0.5):
        return z1 @ z2  # (N, d) @ (N, d): shapes do not match

    with pytest.raises(CheckFailure, match=r"calling broken\(tensor of shape \(6, 8\).*raised RuntimeError") as failure:
        checks.check_nt_xent(broken)
    assert isinstance(failure.value.__cause__, RuntimeError)


def test_failure_message_has_expected_got_and_hint():
    with pytest.raises(CheckFailure) as failure:
        checks.check_nt_xent(V.nt_xent_no_self_mask)
    lines = str(failure.value).splitlines()
    assert lines[0].startswith("nt_xent check failed: closed form for perfectly aligned orthonormal pairs")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["expected", "got", "hint"]
    expected = float(lines[1].split(":")[1].split("=")[0])
    torch.testing.assert_close(expected, 0.23954, rtol=1e-4, atol=0)  # log(1 + 2 e^-2), N=2, tau=0.5


def test_checks_leave_the_random_state_alone():
    """A check must not change the notebook's random stream."""
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_nt_xent(V.nt_xent_seed)
    checks.check_ema(V.EMASeed)
    assert torch.equal(torch.get_rng_state(), state)


def test_step_check_finds_or_takes_the_loss(capsys):
    """The loss-value checks use the notebook's nt_xent when found, or the one passed in, else are skipped."""
    namespace = {"F": torch.nn.functional, "my_loss": V.nt_xent_seed}
    exec(  # a notebook whose loss has another name: the check cannot find `nt_xent`
        "def step(model, x1, x2, optimizer, tau=0.5):\n"
        "    loss = my_loss(model(x1)[1], model(x2)[1], tau)\n"
        "    optimizer.zero_grad(); loss.backward(); optimizer.step()\n"
        "    return loss.item()\n",
        namespace,
    )
    checks.check_simclr_step(namespace["step"], V.CORRECT_SIMCLR_MODEL, device="cpu")
    out = capsys.readouterr().out
    assert "skipped the loss-value checks" in out and "All simclr_step checks passed." in out
    checks.check_simclr_step(namespace["step"], V.CORRECT_SIMCLR_MODEL, nt_xent=V.nt_xent_seed, device="cpu")
    out = capsys.readouterr().out
    assert "skipped" not in out and "the returned loss is nt_xent" in out


def test_checks_never_import_solutions_or_autograder():
    """The public checks ship to students: no reference solutions may be reachable from them."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(checks))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] in {"solutions", "autograder"} for name in imported), imported


def test_barlow_check_says_whether_the_loss_stays_float32_under_autocast(capsys):
    """fit runs steps under autocast: the check tells a loss that drops to bfloat16 there how to stay in float32."""
    checks.check_barlow_loss(V.barlow_loss_float32_under_autocast)
    out = capsys.readouterr().out
    assert "✓ stays in float32 under fit's mixed precision" in out and "note:" not in out
    checks.check_barlow_loss(V.barlow_loss_seed)  # correct, but its `@` runs in bfloat16 under autocast
    out = capsys.readouterr().out
    assert "note: under fit's mixed precision" in out and "enabled=False" in out
    assert "All barlow_loss checks passed." in out
