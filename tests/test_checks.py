"""Tests of helpers.checks, the students' public self-checks, on the corpus of answers (tests/answers).

Every correct answer must pass its check; every wrong answer with a ``hint`` must fail it with
that actionable hint; the wrong answers only the hidden grader can catch (``hint=None``) must
pass (documenting the checks' limits); a TODO stub must give "not implemented yet". Each
answer's cell runs in the solution notebook's namespace (`answers.notebook`), so the checks
see what a student's notebook holds.
"""

from __future__ import annotations

import answers
import pytest
import torch
from answers.notebook import assignment_of, define, reference, run_public_check, stubs

from autograder.contract import TASKS
from helpers import checks
from helpers.checks import CheckFailure, NotImplementedYet

CORRECT = answers.answers(correct=True)
CAUGHT = [a for a in answers.answers(correct=False) if a.hint]
HIDDEN_ONLY = [a for a in answers.answers(correct=False) if not a.hint]


def _ids(found):
    return [a.id for a in found]


@pytest.mark.parametrize("answer", CORRECT, ids=_ids(CORRECT))
def test_correct_answer_passes(answer, capsys):
    """Is every correct answer (each accepted style) accepted, with a line per check passed?"""
    run_public_check(answer.task, define(answer))
    out = capsys.readouterr().out
    assert f"All {answer.task} checks passed." in out
    assert out.count("✓ ") >= 3


@pytest.mark.parametrize("answer", CAUGHT, ids=_ids(CAUGHT))
def test_wrong_answer_fails_with_hint(answer):
    """Does the public check reject a wrong answer, saying expected/got and the likely mistake?"""
    with pytest.raises(CheckFailure) as failure:
        run_public_check(answer.task, define(answer))
    message = str(failure.value)
    assert not isinstance(failure.value, NotImplementedYet)
    assert answer.hint in message, message
    assert "check failed" in message


def test_every_task_has_correct_and_wrong_answers():
    """Does every task have at least one correct and two wrong answers, each name once?"""
    for task in TASKS:
        assert answers.answers(task, correct=True), task
        assert len(answers.answers(task, correct=False)) >= 2, task
        names = [a.name for a in answers.answers(task)]
        assert len(names) == len(set(names)), task


def test_every_answer_defines_its_tasks_names():
    """Does every answer's cell define the names of its task (so its check sees the answer, not the reference)?"""
    for answer in answers.answers():
        before, after = reference(assignment_of(answer.task)), define(answer)
        assert all(after[name] is not before[name] for name in TASKS[answer.task]), answer.id


@pytest.mark.parametrize("answer", HIDDEN_ONLY, ids=_ids(HIDDEN_ONLY))
def test_hidden_only_answer_passes_public_check(answer, capsys):
    """The documented limits: these mistakes need the reference solution (hidden tests) to be found."""
    run_public_check(answer.task, define(answer))
    assert "checks passed." in capsys.readouterr().out


#: (task, one name its cell defines): the two probes are stubbed one at a time.
STUBS = [(task, name) for task, names in TASKS.items() for name in names]


@pytest.mark.parametrize("task, name", STUBS, ids=[name for _, name in STUBS])
def test_stub_says_not_implemented(task, name, capsys):
    """Does an unfilled TODO cell (the student notebook's stub, everything else correct) give "not implemented yet"?"""
    assignment = assignment_of(task)
    namespace = reference(assignment)
    namespace[name] = stubs(assignment)[name]
    with pytest.raises(NotImplementedYet, match="not implemented yet — fill in the TODO cell"):
        run_public_check(task, namespace)
    assert "not implemented yet" in capsys.readouterr().out


def _defined(task: str, name: str):
    """The object the corpus's answer `name` to `task` defines (its task's only name)."""
    (defined,) = TASKS[task]
    return define(answers.answer(task, name))[defined]


def test_not_implemented_is_both_assertion_and_not_implemented_error():
    assert issubclass(NotImplementedYet, AssertionError)
    assert issubclass(NotImplementedYet, NotImplementedError)
    assert issubclass(CheckFailure, AssertionError)


def test_unimplemented_dependency_is_named():
    """A step whose loss cell is still a stub points at the function that raised."""
    namespace = define(answers.answer("simclr_step", "separate_views"))
    namespace["nt_xent"] = stubs("ssl_methods")["nt_xent"]  # the step's global: the loss cell's stub
    with pytest.raises(NotImplementedYet, match="raised in `nt_xent`"):
        checks.check_simclr_step(namespace["simclr_train_step"], namespace["SimCLRModel"], device="cpu")


def test_crash_in_student_code_is_reported():
    """A crash becomes a CheckFailure naming the call and the error, chained to the original."""

    def broken(z1, z2, tau=0.5):
        return z1 @ z2  # (N, d) @ (N, d): shapes do not match

    with pytest.raises(CheckFailure, match=r"calling broken\(tensor of shape \(6, 8\).*raised RuntimeError") as failure:
        checks.check_nt_xent(broken)
    assert isinstance(failure.value.__cause__, RuntimeError)


def test_failure_message_has_expected_got_and_hint():
    with pytest.raises(CheckFailure) as failure:
        checks.check_nt_xent(_defined("nt_xent", "no_self_mask"))
    lines = str(failure.value).splitlines()
    assert lines[0].startswith("nt_xent check failed: closed form for perfectly aligned orthonormal pairs")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["expected", "got", "hint"]
    expected = float(lines[1].split(":")[1].split("=")[0])
    torch.testing.assert_close(expected, 0.23954, rtol=1e-4, atol=0)  # log(1 + 2 e^-2), N=2, tau=0.5


def test_checks_leave_the_random_state_alone():
    """A check must not change the notebook's random stream."""
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_nt_xent(_defined("nt_xent", "seed"))
    checks.check_ema(_defined("ema", "seed"))
    assert torch.equal(torch.get_rng_state(), state)


def test_step_check_finds_or_takes_the_loss(capsys):
    """The loss-value checks use the notebook's nt_xent when found, or the one passed in, else are skipped."""
    nt_xent = _defined("nt_xent", "seed")
    model = reference("ssl_methods")["SimCLRModel"]
    namespace = {"F": torch.nn.functional, "my_loss": nt_xent}
    exec(  # a notebook whose loss has another name: the check cannot find `nt_xent`
        "def step(model, x1, x2, optimizer, tau=0.5):\n"
        "    loss = my_loss(model(x1)[1], model(x2)[1], tau)\n"
        "    optimizer.zero_grad(); loss.backward(); optimizer.step()\n"
        "    return loss.item()\n",
        namespace,
    )
    checks.check_simclr_step(namespace["step"], model, device="cpu")
    out = capsys.readouterr().out
    assert "skipped the loss-value checks" in out and "All simclr_step checks passed." in out
    checks.check_simclr_step(namespace["step"], model, nt_xent=nt_xent, device="cpu")
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
    checks.check_barlow_loss(_defined("barlow_loss", "float32_under_autocast"))
    out = capsys.readouterr().out
    assert "✓ stays in float32 under fit's mixed precision" in out and "note:" not in out
    checks.check_barlow_loss(
        _defined("barlow_loss", "seed_unbiased")
    )  # correct, but its `@` runs in bfloat16 under autocast
    out = capsys.readouterr().out
    assert "note: under fit's mixed precision" in out and "enabled=False" in out
    assert "All barlow_loss checks passed." in out
