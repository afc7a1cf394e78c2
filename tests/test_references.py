"""The reference solutions against the papers, and the two notebooks' references against each other.

Three kinds of test of the losses (CONVENTIONS.md 8; lightly's and solo-learn's loss tests):

(a) against a slow loop written straight from the paper's equation (NT-Xent as an explicit
    double loop over anchors and candidates, eq. (1) of Chen et al. 2020; the Barlow Twins
    standardisation and cross-correlation as sums, eq. (1)-(2) of Zbontar et al. 2021),
(b) closed forms and invariances (perfectly aligned orthonormal pairs, a collapsed batch,
    identical views with decorrelated features, symmetry in the two views, affine invariance,
    the exact EMA value),
(c) behaviour: the loss falls under a few optimiser steps of the reference training step on a
    tiny model.

The references are the solution notebooks' cells, loaded with `autograder.extract` as the
grader loads them. The tasks both notebooks grade (nt_xent, barlow_loss, simclr_forward,
simclr_step) have a reference in each: they must agree on the same inputs. The slow loops also
run on every correct answer of the corpus (tests/answers), and they reject the corpus's wrong
answers whose value is wrong, so they are not vacuous.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from answers import answers
from answers.notebook import define, reference
from torch import nn

from autograder.contract import ASSIGNMENTS, TASKS

SHARED = sorted(set(ASSIGNMENTS["ssl_methods"].cell_tasks) & set(ASSIGNMENTS["simclr_homework"].cell_tasks))


def _graded_in(task: str) -> list[str]:
    return [a.name for a in ASSIGNMENTS.values() if task in a.cell_tasks]


def _references(task: str) -> list[tuple[str, object]]:
    """(id, the object) of `task`'s reference in every notebook that grades it."""
    (name,) = TASKS[task]
    return [(f"solutions/{assignment}", reference(assignment)[name]) for assignment in _graded_in(task)]


def _answers(task: str, correct: bool) -> list[tuple[str, object]]:
    (name,) = TASKS[task]
    return [(found.id, define(found)[name]) for found in answers(task, correct=correct)]


def _unit_pairs(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = F.normalize(torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)
    z2 = F.normalize(z1 + 0.5 * torch.randn(n, d, generator=generator, dtype=torch.float64), dim=1)
    return z1, z2


# ======================================================================================
# NT-Xent
# ======================================================================================
def nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """Eq. (1) of SimCLR as loops: l(i, j) = -log(exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)),
    sim the cosine similarity, averaged over all 2N anchors i (j the other view of i's image)."""
    z = [*z1.tolist(), *z2.tolist()]  # 2N vectors: z[n] and z[n + N] are the views of image n
    n2 = len(z)

    def sim(u, v):
        dot = sum(a * b for a, b in zip(u, v))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denominator = sum(math.exp(sim(z[i], z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / tau) / denominator)
    return total / n2


NT_XENT_CASES = [(2, 3, 0.5), (5, 8, 0.1), (4, 16, 1.0), (7, 4, 0.2)]  # (N, D, tau)
NT_XENT_REFERENCES = _references("nt_xent")
NT_XENT_CORRECT = _answers("nt_xent", correct=True)
#: Every wrong nt_xent of the corpus but `detached` (the right value, no gradient: its mistake is not in the value).
NT_XENT_WRONG_VALUES = [(i, f) for i, f in _answers("nt_xent", correct=False) if not i.endswith("-detached")]


@pytest.mark.parametrize("loss", NT_XENT_REFERENCES + NT_XENT_CORRECT, ids=lambda p: p[0])
@pytest.mark.parametrize("n, d, tau", NT_XENT_CASES)
def test_nt_xent_equals_the_papers_loop(loss, n, d, tau):
    z1, z2 = _unit_pairs(n, d, seed=n * 100 + d)
    value = loss[1](z1, z2, tau)
    torch.testing.assert_close(float(value), nt_xent_loop(z1, z2, tau), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("loss", NT_XENT_WRONG_VALUES, ids=lambda p: p[0])
def test_nt_xent_loop_rejects_the_wrong_answers(loss):
    """The loop comparison is not vacuous: each wrong value of the corpus differs from it somewhere."""
    differs = []
    for n, d, tau in NT_XENT_CASES:
        z1, z2 = _unit_pairs(n, d, seed=n * 100 + d)
        value = loss[1](z1, z2, tau)
        differs.append(
            not isinstance(value, torch.Tensor)
            or value.shape != ()
            or not math.isclose(float(value), nt_xent_loop(z1, z2, tau), rel_tol=1e-6)
        )
    assert any(differs)


@pytest.mark.parametrize("loss", NT_XENT_REFERENCES, ids=lambda p: p[0])
@pytest.mark.parametrize("n, tau", [(2, 0.5), (3, 0.1), (4, 1.0)])
def test_nt_xent_closed_forms(loss, n, tau):
    """Aligned orthonormal pairs: log(1 + (2N - 2) e^(-1/tau)); a collapsed batch: log(2N - 1); symmetric in the views."""
    eye = torch.eye(n, 2 * n, dtype=torch.float64)
    torch.testing.assert_close(float(loss[1](eye, eye.clone(), tau)), math.log(1 + (2 * n - 2) * math.exp(-1 / tau)))
    same = F.normalize(torch.ones(n, 5, dtype=torch.float64), dim=1)
    torch.testing.assert_close(float(loss[1](same, same.clone(), tau)), math.log(2 * n - 1))
    z1, z2 = _unit_pairs(n, 6, seed=n)
    torch.testing.assert_close(loss[1](z1, z2, tau), loss[1](z2, z1, tau))
    assert float(loss[1](z1, z2, tau)) == float(loss[1](z1, z2, tau=tau))


# ======================================================================================
# Barlow Twins
# ======================================================================================
def barlow_loop(z1: torch.Tensor, z2: torch.Tensor, alpha: float, eps: float, unbiased: bool = False) -> float:
    """Eq. (1)-(2) of Barlow Twins as sums: each feature standardised along the batch,
    C_ij = sum_b z1n[b, i] z2n[b, j] / N, loss = sum_i (1 - C_ii)^2 + alpha sum_{i != j} C_ij^2."""
    a, b = z1.tolist(), z2.tolist()
    n, d = len(a), len(a[0])

    def standardised(rows):
        columns = []
        for i in range(d):
            mean = sum(rows[k][i] for k in range(n)) / n
            variance = sum((rows[k][i] - mean) ** 2 for k in range(n)) / (n - 1 if unbiased else n)
            columns.append([(rows[k][i] - mean) / math.sqrt(variance + eps) for k in range(n)])
        return columns  # columns[i][k]: feature i of sample k

    a, b = standardised(a), standardised(b)
    c = [[sum(a[i][k] * b[j][k] for k in range(n)) / n for j in range(d)] for i in range(d)]
    return sum((1 - c[i][i]) ** 2 for i in range(d)) + alpha * sum(
        c[i][j] ** 2 for i in range(d) for j in range(d) if i != j
    )


BARLOW_CASES = [(6, 4, 0.005), (16, 8, 0.5), (9, 3, 1.0)]  # (N, D, alpha)
BARLOW_REFERENCES = _references("barlow_loss")
BARLOW_CORRECT = _answers("barlow_loss", correct=True)
BARLOW_WRONG = _answers("barlow_loss", correct=False)


def _embeddings(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, d, generator=generator) * 3 + 1
    return z1, z1 @ torch.randn(d, d, generator=generator) + torch.randn(n, d, generator=generator)


@pytest.mark.parametrize("loss", BARLOW_REFERENCES, ids=lambda p: p[0])
@pytest.mark.parametrize("n, d, alpha", BARLOW_CASES)
def test_barlow_reference_equals_the_papers_sums(loss, n, d, alpha):
    """The references standardise with the biased variance, eps under the square root (as the paper's code)."""
    z1, z2 = _embeddings(n, d, seed=n + d)
    torch.testing.assert_close(
        float(loss[1](z1, z2, alpha, eps=1e-5)), barlow_loop(z1, z2, alpha, 1e-5), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(float(loss[1](z1, z2, alpha)), barlow_loop(z1, z2, alpha, 1e-5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", BARLOW_CORRECT, ids=lambda p: p[0])
def test_barlow_correct_answers_equal_the_papers_sums(loss):
    """Every accepted variant (biased or unbiased variance, eps placement) is the paper's loss."""
    for n, d, alpha in BARLOW_CASES:
        z1, z2 = _embeddings(n, d, seed=n + d)
        value = float(loss[1](z1, z2, alpha))
        assert any(
            math.isclose(value, barlow_loop(z1, z2, alpha, 1e-5, unbiased), rel_tol=1e-4) for unbiased in (False, True)
        ), (n, d, alpha, value)


@pytest.mark.parametrize("loss", BARLOW_WRONG, ids=lambda p: p[0])
def test_barlow_sums_reject_the_wrong_answers(loss):
    differs = []
    for n, d, alpha in BARLOW_CASES:
        z1, z2 = _embeddings(n, d, seed=n + d)
        value = float(loss[1](z1, z2, alpha))
        differs.append(
            all(
                not math.isclose(value, barlow_loop(z1, z2, alpha, 1e-5, unbiased), rel_tol=1e-4)
                for unbiased in (False, True)
            )
        )
    assert any(differs)


@pytest.mark.parametrize("loss", BARLOW_REFERENCES, ids=lambda p: p[0])
def test_barlow_closed_forms_and_invariances(loss):
    """Identical views with decorrelated features: C = I, loss ~ 0; all features identical: alpha d (d - 1);
    symmetric in the views; invariant to a positive affine map of each feature."""
    hadamard = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float32)
    z = hadamard[:, 1:].repeat(2, 1)  # (8, 3): centred, unit variance, pairwise uncorrelated columns
    torch.testing.assert_close(float(loss[1](z, z.clone(), 0.5)), 0.0, atol=1e-8, rtol=0)
    column = torch.tensor([[1.0], [-1.0], [2.0], [-2.0]])
    same = column.repeat(1, 5)  # every C_ij = var / (var + eps) ~ 1
    torch.testing.assert_close(float(loss[1](same, same.clone(), 0.25)), 0.25 * 5 * 4, rtol=1e-4, atol=1e-6)
    z1, z2 = _embeddings(12, 5, seed=3)
    torch.testing.assert_close(loss[1](z1, z2, 0.1), loss[1](z2, z1, 0.1), rtol=1e-5, atol=1e-6)
    scale, shift = torch.tensor([0.5, 2.0, 3.0, 10.0, 1.0]), torch.tensor([1.0, -4.0, 0.0, 7.0, 2.0])
    torch.testing.assert_close(loss[1](z1 * scale + shift, z2, 0.1), loss[1](z1, z2, 0.1), rtol=1e-3, atol=1e-4)


# ======================================================================================
# EMA
# ======================================================================================
def test_ema_reference_exact_value():
    """Three updates towards a fixed online network: w_t = beta^3 w_t + (1 - beta^3) w_o, online untouched."""
    ema = reference("ssl_methods")["EMA"](beta=0.75)
    torch.manual_seed(0)
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    start = [p.detach().clone() for p in target.parameters()]
    online_start = [p.detach().clone() for p in online.parameters()]
    for _ in range(3):
        ema.update(online, target)
    for w, w0, wo in zip(target.parameters(), start, online_start):
        torch.testing.assert_close(w.detach(), 0.75**3 * w0 + (1 - 0.75**3) * wo)
    for w, wo in zip(online.parameters(), online_start):
        assert torch.equal(w.detach(), wo)


# ======================================================================================
# Behaviour: the loss falls under a few steps on a tiny model
# ======================================================================================
class TinyTwoHeads(nn.Module):
    """A stand-in for SimCLRModel / BarlowTwinsModel: (repr, proj), proj L2-normalised or not. No batch
    norm, so a batch forwarded whole or view by view gives the same outputs."""

    def __init__(self, normalize: bool, d_in: int = 12, d_out: int = 6):
        super().__init__()
        self.encoder = nn.Linear(d_in, 10)
        self.projector = nn.Sequential(nn.ReLU(), nn.Linear(10, d_out))
        self.normalize = normalize

    def forward(self, x):
        representation = self.encoder(x.flatten(1))
        projection = self.projector(representation)
        return representation, (F.normalize(projection, dim=1) if self.normalize else projection)


def _views(n: int = 16, d_in: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, d_in, generator=generator)
    return x + 0.3 * torch.randn(n, d_in, generator=generator), x + 0.3 * torch.randn(n, d_in, generator=generator)


def _losses(step, model: nn.Module, steps: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x1, x2 = _views()
    return [step(model, x1, x2, optimizer, **kwargs) for _ in range(steps)]


STEP_CASES = [(task, assignment) for task in ("simclr_step", "barlow_step") for assignment in _graded_in(task)]


@pytest.mark.parametrize("task, assignment", STEP_CASES)
def test_reference_step_lowers_the_loss(task, assignment):
    """Ten reference steps on one batch of view pairs lower the loss they return (a float each time)."""
    (name,) = TASKS[task]
    torch.manual_seed(0)
    model = TinyTwoHeads(normalize=task == "simclr_step")
    kwargs = {"tau": 0.5} if task == "simclr_step" else {"alpha": 5e-3}
    losses = _losses(reference(assignment)[name], model, 10, **kwargs)
    assert all(type(value) is float for value in losses)
    assert losses[-1] < 0.9 * losses[0], losses


def test_finetune_reference_step_lowers_the_loss():
    torch.manual_seed(0)
    classifier = nn.Linear(12, 3)
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.5)
    x, _ = _views()
    y = torch.arange(len(x)) % 3
    step = reference("simclr_homework")["finetune_train_step"]
    losses = [step(classifier, x, y, optimizer)[0] for _ in range(10)]
    assert losses[-1] < 0.9 * losses[0], losses


# ======================================================================================
# The two notebooks' references agree
# ======================================================================================
def test_shared_tasks_are_the_four_compared_here():
    assert SHARED == ["barlow_loss", "nt_xent", "simclr_forward", "simclr_step"]


def _value_and_gradients(loss, inputs: tuple[torch.Tensor, torch.Tensor], *args) -> tuple[torch.Tensor, ...]:
    z1, z2 = (z.clone().requires_grad_() for z in inputs)
    value = loss(z1, z2, *args)
    value.backward()
    return value.detach(), z1.grad, z2.grad


@pytest.mark.parametrize("n, d, tau", NT_XENT_CASES)
def test_nt_xent_references_agree(n, d, tau):
    """Same value and same gradients from both notebooks' nt_xent."""
    (_, first), (_, second) = NT_XENT_REFERENCES
    inputs = _unit_pairs(n, d, seed=d)
    torch.testing.assert_close(_value_and_gradients(first, inputs, tau), _value_and_gradients(second, inputs, tau))


@pytest.mark.parametrize("n, d, alpha", BARLOW_CASES)
def test_barlow_loss_references_agree(n, d, alpha):
    """Same value and same gradients from both notebooks' barlow_loss (float32, as fit feeds them)."""
    (_, first), (_, second) = BARLOW_REFERENCES
    inputs = _embeddings(n, d, seed=d)
    torch.testing.assert_close(
        _value_and_gradients(first, inputs, alpha), _value_and_gradients(second, inputs, alpha), rtol=1e-5, atol=1e-6
    )


def test_simclr_forward_references_agree():
    """Both notebooks' SimCLRModel, with the same weights (the given networks share their layout), give the same outputs."""
    (_, first), (_, second) = _references("simclr_forward")
    torch.manual_seed(0)
    models = [first(proj_dim=16, hidden_dim=32), second(proj_dim=16, hidden_dim=32)]
    models[1].load_state_dict(models[0].state_dict())
    x = torch.rand(4, 3, 32, 32)
    outputs = []
    for model in models:
        model.eval()
        with torch.no_grad():
            outputs.append(model(x))
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(outputs[0][1].norm(dim=1), torch.ones(4))


def test_simclr_step_references_agree():
    """Both notebooks' simclr_train_step return the same loss and leave the same weights, step after step
    (on a model without batch norm: the homework forwards both views in one batch, ssl_methods one by one)."""
    (_, first), (_, second) = _references("simclr_step")
    results = []
    for step in (first, second):
        torch.manual_seed(0)
        model = TinyTwoHeads(normalize=True)
        losses = _losses(step, model, 3, tau=0.3)
        results.append((losses, [p.detach() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1])
