"""Tests of helpers.recipes: what a recipe produces for the training loop (fit's configuration,
the optimiser) and BYOL's target decay schedule, the one copy the notebooks and the benchmarks
share."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from helpers.recipes import BARLOW_TWINS, BYOL, LINEAR_EVAL, RECIPES, SIMCLR, EMABetaSchedule
from helpers.train import fit, lr_multiplier


@pytest.mark.parametrize("recipe", [SIMCLR, BYOL, BARLOW_TWINS], ids=lambda r: r.method)
def test_pretraining_fit_kwargs_are_the_recipe(recipe):
    """Does a pre-training recipe give fit its epochs, batch, two views, warmup, cosine and k-NN interval?"""
    recipe = dataclasses.replace(recipe, epochs=7, batch_size=64, warmup_epochs=2, knn_every=3)
    assert recipe.fit_kwargs() == {
        "epochs": 7,
        "batch_size": 64,
        "views": 2,
        "warmup_epochs": 2,
        "schedule": "cosine",
        "monitor_every": 3,
    }


def test_finetune_fit_kwargs_are_supervised_without_warmup():
    """Fine-tuning trains on labelled single views with a cosine and no warmup."""
    recipe = dataclasses.replace(LINEAR_EVAL, epochs=4, batch_size=128)
    assert recipe.fit_kwargs() == {"epochs": 4, "batch_size": 128, "views": 1, "warmup_epochs": 0, "schedule": "cosine"}


def test_fit_kwargs_adds_and_overrides_settings_and_refuses_unknown_names():
    """The cell's own settings are added, win over the recipe's, and a typo is an error."""
    kwargs = SIMCLR.fit_kwargs(monitor_every=1, checkpoint="c.pt", device="cpu")
    assert kwargs["monitor_every"] == 1 and kwargs["checkpoint"] == "c.pt" and kwargs["device"] == "cpu"
    assert kwargs["epochs"] == SIMCLR.epochs
    with pytest.raises(TypeError, match="'checkpiont'"):
        SIMCLR.fit_kwargs(checkpiont="c.pt")
    with pytest.raises(TypeError, match="'model'"):  # positional arguments of fit are not settings
        SIMCLR.fit_kwargs(model=nn.Linear(2, 2))


@pytest.mark.parametrize("recipe", [*RECIPES.values(), LINEAR_EVAL], ids=lambda r: type(r).__name__)
def test_optimizer_is_sgd_with_the_scaled_learning_rate(recipe):
    """lr = base_lr x batch_size / 256, the recipe's momentum and weight decay."""
    recipe = dataclasses.replace(recipe, batch_size=128)
    optimizer = recipe.optimizer(nn.Linear(3, 2).parameters())
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(recipe.base_lr / 2)
    assert (group["momentum"], group["weight_decay"]) == (recipe.momentum, recipe.weight_decay)


def test_optimizer_keeps_a_group_learning_rate_and_passes_options():
    """A parameter group's own lr wins (full fine-tuning); other options reach torch.optim.SGD."""
    encoder, head = nn.Linear(3, 3), nn.Linear(3, 2)
    recipe = dataclasses.replace(LINEAR_EVAL, mode="full")
    optimizer = recipe.optimizer(
        [{"params": encoder.parameters(), "lr": recipe.lr * recipe.encoder_lr_ratio}, {"params": head.parameters()}],
        foreach=False,
    )
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([recipe.lr * recipe.encoder_lr_ratio, recipe.lr])
    assert optimizer.defaults["foreach"] is False


class _EMA:
    def __init__(self, beta):
        self.beta = beta


def test_ema_schedule_sets_the_recipe_beta_and_records_the_one_used():
    """Before epoch k (0-based) beta is recipe.ema_beta_at(k); the history gets the beta the epoch used."""
    recipe = dataclasses.replace(BYOL, epochs=4)
    ema = _EMA(0.5)
    schedule = recipe.ema_schedule(ema)
    assert isinstance(schedule, EMABetaSchedule)
    assert ema.beta == pytest.approx(recipe.ema_beta) == pytest.approx(recipe.ema_beta_at(0))
    recorded = [schedule(epoch, None)["ema_beta"] for epoch in (1, 2, 3, 4)]
    assert recorded == pytest.approx([recipe.ema_beta_at(k) for k in range(4)])
    assert ema.beta == 1.0  # after the last epoch: the end of the cosine
    # The cosine of the BYOL paper: 1 - (1 - beta0)(cos(pi k / K) + 1) / 2.
    assert recipe.ema_beta_at(2) == pytest.approx(1 - (1 - 0.99) * (math.cos(math.pi / 2) + 1) / 2)
    constant = dataclasses.replace(recipe, ema_cosine=False)
    assert [constant.ema_beta_at(k) for k in range(4)] == [0.99] * 4


def test_ema_schedule_state_resumes_at_the_finished_epoch_of_a_longer_run():
    """The state is the number of finished epochs: a resumed run gets its own recipe's beta there."""
    short = dataclasses.replace(BYOL, epochs=4)
    schedule = short.ema_schedule(_EMA(0.0))
    schedule(1, None)
    schedule(2, None)
    state = schedule.state_dict()
    assert state == {"finished_epochs": 2}
    longer = dataclasses.replace(BYOL, epochs=10)
    ema = _EMA(0.0)
    resumed = longer.ema_schedule(ema)
    resumed.load_state_dict(state)
    assert ema.beta == pytest.approx(longer.ema_beta_at(2)) and ema.beta != pytest.approx(short.ema_beta_at(2))
    assert resumed(3, None)["ema_beta"] == pytest.approx(longer.ema_beta_at(2))


def test_fit_runs_with_a_recipe_configuration():
    """fit accepts what fit_kwargs gives, and trains for the recipe's epochs."""
    torch.manual_seed(0)
    images = torch.randint(0, 256, (32, 8, 8, 3), dtype=torch.uint8)
    labels = torch.arange(32) % 4
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    recipe = dataclasses.replace(LINEAR_EVAL, epochs=2, batch_size=16)
    optimizer = recipe.optimizer(model.parameters())

    def step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    history = fit(
        step,
        model,
        optimizer,
        images,
        labels,
        **recipe.fit_kwargs(augment=None, device="cpu", smoke=False, progress=False, verbose=False),
    )
    assert history.epoch == [1, 2]
    # The cosine over the recipe's 2 epochs of 2 steps, at the last step, from the recipe's lr:
    assert history.lr == pytest.approx([recipe.lr * lr_multiplier(1, 4), recipe.lr * lr_multiplier(3, 4)])
