"""Tests of helpers.train: the generic fit loop, its schedule, its training state (resume), its
history and mixed precision (helpers.training_state, helpers.history, helpers.precision).

Everything runs on the CPU with tiny models and 8x8 images; per-epoch seeding makes resumed
runs bit-identical to uninterrupted ones here, so those comparisons use zero tolerance.
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from helpers.train import (
    DynamicLossScaler,
    History,
    TrainingCheckpointError,
    fit,
    lr_multiplier,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXACT = {"rtol": 0.0, "atol": 0.0}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: faster on a shared 2-core machine, and the same reduction order in
    the test process and in the subprocess of the SIGKILL test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# The model, step and data of the resume tests. Written to a file so that the SIGKILL test
# runs exactly this code in a separate process; the other tests import the same file.
JOB_SOURCE = '''
import sys, time
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, {root!r})
from helpers.train import fit

STEPS_PER_EPOCH = 4  # 64 images, batch 16


class NoisyViews:
    """A cheap batched two-view augmentation: each view adds its own Gaussian noise."""

    batched = True

    def __call__(self, images, generator=None):
        x = images.permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W)
        noise = torch.randn((2,) + tuple(x.shape), generator=generator, device=x.device)
        return x + 0.1 * noise[0], x + 0.1 * noise[1]


def data(n=64):
    g = torch.Generator().manual_seed(123)
    labels = torch.arange(n) % 3
    images = torch.randint(0, 80, (n, 8, 8, 3), generator=g)
    images[torch.arange(n), :, :, labels] += 150  # the dominant colour channel is the class
    return images.to(torch.uint8), labels


def build():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )
    target = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )
    target.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-4)

    def step(x1, x2):
        """A BYOL-shaped step: online vs. EMA target, then the EMA update."""
        z1 = F.normalize(model(x1), dim=1)
        with torch.no_grad():
            z2 = F.normalize(target(x2), dim=1)
        loss = (2 - 2 * (z1 * z2).sum(dim=1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for p_target, p_online in zip(target.parameters(), model.parameters()):
                p_target.mul_(0.9).add_(0.1 * p_online)
        return loss.detach()

    return model, target, optimizer, step


def run(checkpoint=None, epochs=4, sleep_from_epoch=None, interrupt_at_epoch=None, resume=True, **kwargs):
    model, target, optimizer, step = build()
    images, labels = data()
    calls = [0]

    def wrapped(x1, x2):
        epoch = calls[0] // STEPS_PER_EPOCH + 1
        calls[0] += 1
        if sleep_from_epoch is not None and epoch >= sleep_from_epoch:
            time.sleep(60)  # the test kills the process meanwhile
        if interrupt_at_epoch is not None and epoch >= interrupt_at_epoch:
            raise KeyboardInterrupt
        return step(x1, x2)

    options = dict(epochs=epochs, batch_size=16, augment=NoisyViews(), warmup_epochs=1, checkpoint=checkpoint,
                   resume=resume, extra_state={{"target": target}}, progress=False, smoke=False)
    options.update(kwargs)
    history = fit(wrapped, model, optimizer, images, labels, **options)
    return model, target, optimizer, history, calls[0]


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(sys.argv[1], epochs=int(sys.argv[2]), sleep_from_epoch=2)
'''


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The module built from JOB_SOURCE, and the path of its file."""
    path = tmp_path_factory.mktemp("job") / "fit_job.py"
    path.write_text(JOB_SOURCE.format(root=str(PROJECT_ROOT)))
    spec = importlib.util.spec_from_file_location("fit_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.path = path
    return module


@pytest.fixture(scope="module")
def uninterrupted(job):
    """Model, target, optimizer and history of a 4-epoch run without interruption."""
    model, target, optimizer, history, _ = job.run(None, epochs=4)
    return model, target, optimizer, history


def assert_same_state(a_model, a_target, a_optimizer, b_model, b_target, b_optimizer):
    assert_close(a_model.state_dict(), b_model.state_dict(), **EXACT)
    assert_close(a_target.state_dict(), b_target.state_dict(), **EXACT)
    a_state, b_state = a_optimizer.state_dict(), b_optimizer.state_dict()
    assert_close(a_state["state"], b_state["state"], **EXACT)
    assert [g["lr"] for g in a_state["param_groups"]] == [g["lr"] for g in b_state["param_groups"]]


# --------------------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------------------


def test_lr_multiplier_key_points():
    """Linear warmup to 1, then a half cosine from 1 to min_lr_ratio, exact at the key steps."""
    total, warmup = 110, 10
    assert lr_multiplier(0, total, warmup) == pytest.approx(0.1)
    assert lr_multiplier(4, total, warmup) == pytest.approx(0.5)
    assert lr_multiplier(9, total, warmup) == pytest.approx(1.0)
    assert lr_multiplier(10, total, warmup) == pytest.approx(1.0)  # start of the cosine
    assert lr_multiplier(60, total, warmup) == pytest.approx(0.5)  # half-way: (1 + cos(pi/2)) / 2
    assert lr_multiplier(35, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(110, total, warmup) == pytest.approx(0.0, abs=1e-12)
    assert lr_multiplier(60, total, warmup, min_lr_ratio=0.2) == pytest.approx(0.6)
    assert lr_multiplier(110, total, warmup, min_lr_ratio=0.2) == pytest.approx(0.2)
    assert lr_multiplier(50, 100, 0) == pytest.approx(0.5)
    assert lr_multiplier(0, 100, 0) == 1.0
    values = [lr_multiplier(s, total, warmup) for s in range(warmup, total)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_lr_multiplier_constant():
    """'constant' keeps 1 after the warmup."""
    assert lr_multiplier(2, 50, 4, schedule="constant") == pytest.approx(0.75)
    assert [lr_multiplier(s, 50, 4, schedule="constant") for s in (4, 20, 49)] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="schedule"):
        lr_multiplier(5, 50, 0, schedule="linear")


@pytest.mark.parametrize("schedule", ["cosine", "constant", "none"])
def test_fit_sets_every_group_lr_at_every_step(job, schedule):
    """fit sets each param group's lr = base_lr * multiplier(global step) before every step."""
    images, labels = job.data(32)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 4), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(
        [{"params": model[1].parameters(), "lr": 0.4}, {"params": model[2].parameters(), "lr": 0.1}]
    )
    seen = []

    def step(x1, x2):
        seen.append([group["lr"] for group in optimizer.param_groups])
        return 0.0

    history = fit(
        step,
        model,
        optimizer,
        images,
        epochs=3,
        batch_size=8,
        augment=job.NoisyViews(),
        warmup_epochs=1,
        schedule=schedule,
        min_lr_ratio=0.1,
        progress=False,
        smoke=False,
    )
    assert len(seen) == 12
    for i, lrs in enumerate(seen):
        factor = 1.0 if schedule == "none" else lr_multiplier(i, 12, 4, schedule, 0.1)
        assert lrs == pytest.approx([0.4 * factor, 0.1 * factor])
    assert history.lr == pytest.approx([seen[3][0], seen[7][0], seen[11][0]])
    assert [group["initial_lr"] for group in optimizer.param_groups] == [0.4, 0.1]


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


def test_fit_supervised_learns_and_records_accuracy(job):
    """views=1: step(x, y) -> (loss, n_correct); the loss falls, train accuracy is recorded."""
    images, labels = job.data(64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = []

    def step(x, y):
        batches.append((x.shape, x.dtype, float(x.min()), float(x.max()), y.dtype))
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), int((logits.argmax(1) == y).sum())

    history = fit(
        step,
        model,
        optimizer,
        images,
        labels,
        views=1,
        augment=None,
        epochs=8,
        batch_size=20,
        progress=False,
        smoke=False,
    )
    assert len(batches) == 8 * 4  # drop_last is off for views=1: 20 + 20 + 20 + 4
    assert batches[3][0] == (4, 3, 8, 8)
    assert all(b[1] == torch.float32 and 0.0 <= b[2] and b[3] <= 1.0 and b[4] == torch.int64 for b in batches)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.train_accuracy[-1] == 1.0 and history.train_accuracy[0] < 1.0
    assert all(0.0 <= a <= 1.0 for a in history.train_accuracy)


def test_supervised_auto_augment_is_crop_and_flip(job):
    """views=1 with augment='auto' pads, crops and flips each image (BatchCropFlip)."""
    images = torch.full((16, 8, 8, 3), 255, dtype=torch.uint8)
    labels = torch.zeros(16, dtype=torch.long)
    model = nn.Linear(1, 1)
    batches = []
    fit(
        lambda x, y: batches.append(x) or 0.0,
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        images,
        labels,
        views=1,
        epochs=1,
        batch_size=16,
        progress=False,
        smoke=False,
    )
    x = batches[0]
    assert x.shape == (16, 3, 8, 8) and x.max() == 1.0
    shifted = (x == 0).flatten(1).any(1)  # zero padding entered the crop
    assert int(shifted.sum()) >= 12  # an unshifted crop has probability 1/81 per image


def test_train_accuracy_is_correct_over_seen(job):
    """train_accuracy = sum(n_correct) / images seen, with int and tensor counts."""
    images, labels = job.data(30)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    counts = iter([7, torch.tensor(3), 0, torch.tensor(6)])
    history = fit(
        lambda x, y: (torch.tensor(1.0), next(counts)),
        model,
        optimizer,
        images,
        labels,
        views=1,
        augment=None,
        epochs=1,
        batch_size=8,
        progress=False,
        smoke=False,
    )
    assert history.train_accuracy == [pytest.approx(16 / 30)]
    assert history.loss == [1.0]


def test_float_and_tensor_losses_give_the_same_run(job):
    """A step may return a Python float or a 0-d tensor (accumulated on the device)."""
    results = []
    for as_tensor in (False, True):
        model, target, optimizer, step = job.build()
        images, _ = job.data()

        def wrapped(x1, x2, step=step, as_tensor=as_tensor):
            loss = step(x1, x2)
            return loss if as_tensor else loss.item()

        history = fit(
            wrapped,
            model,
            optimizer,
            images,
            epochs=2,
            batch_size=16,
            augment=job.NoisyViews(),
            progress=False,
            smoke=False,
        )
        results.append((model.state_dict(), history.loss))
    assert_close(results[0][0], results[1][0], **EXACT)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-6)


def test_loss_decreases_self_supervised(job):
    """On a learnable two-view problem the epoch loss falls."""
    images, _ = job.data(64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

    def step(x1, x2):  # predict the mean colour of the other view
        loss = F.mse_loss(model(x1), x2.mean(dim=(2, 3)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    history = fit(
        step,
        model,
        optimizer,
        images,
        epochs=6,
        batch_size=16,
        augment=job.NoisyViews(),
        schedule="constant",
        progress=False,
        smoke=False,
    )
    assert history.loss[-1] < 0.3 * history.loss[0]


def test_history_lengths_monitor_every_and_callback(job, capsys):
    """Monitor every k epochs and after the last; on_epoch_end's numbers land in history.extra."""
    images, _ = job.data(32)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor_calls, callback_calls = [], []

    def monitor(m):
        assert m is model
        monitor_calls.append(len(callback_calls) + 1)
        return 0.25

    def on_epoch_end(epoch, history):
        callback_calls.append(epoch)
        assert history.epoch[-1] == epoch  # this epoch is already recorded
        return {"test_accuracy": epoch / 10, "maybe": None if epoch == 2 else torch.tensor(1.5)}

    history = fit(
        lambda x1, x2: 1.0,
        model,
        optimizer,
        images,
        epochs=5,
        batch_size=8,
        monitor=monitor,
        monitor_every=2,
        augment=job.NoisyViews(),
        on_epoch_end=on_epoch_end,
        progress=False,
        smoke=False,
    )
    assert monitor_calls == [2, 4, 5]
    assert history.monitor == [None, 0.25, None, 0.25, 0.25]
    assert callback_calls == [1, 2, 3, 4, 5]
    assert history.epoch == [1, 2, 3, 4, 5]
    columns = [history.loss, history.monitor, history.lr, history.seconds, history.train_accuracy]
    assert all(len(column) == 5 for column in columns)
    assert history.extra == {"test_accuracy": [0.1, 0.2, 0.3, 0.4, 0.5], "maybe": [1.5, None, 1.5, 1.5, 1.5]}
    assert all(s > 0 for s in history.seconds)
    printed = capsys.readouterr().out
    assert (
        "epoch 5/5" in printed and "monitor 25.0 %" in printed and "test_accuracy 50.0 %" in printed
    )  # accuracies print in percent, like the rest of the line


def test_history_dict_round_trip_best_last():
    """to_dict/from_dict are inverse; best/last pick the right epoch."""
    history = History()
    for epoch, (loss, monitor) in enumerate([(3.0, None), (2.0, 0.4), (2.5, 0.6), (1.0, 0.5)], 1):
        history.append(epoch=epoch, loss=loss, monitor=monitor, lr=0.1 / epoch, seconds=1.0)
        history.add_extra({"test_accuracy": 0.1 * epoch})
    again = History.from_dict(history.to_dict())
    assert again == history
    assert history.best()["epoch"] == 3
    assert history.best("loss", mode="min")["epoch"] == 4
    assert history.best("test_accuracy")["epoch"] == 4
    assert history.best("train_accuracy") is None
    assert history.last()["loss"] == 1.0 and history.last()["test_accuracy"] == pytest.approx(0.4)
    assert History().last() == {}
    with pytest.raises(KeyError, match="known"):
        history.best("accuracy")
    with pytest.raises(ValueError, match="loss"):
        history.add_extra({"loss": 1.0})


def test_step_returning_none_is_an_error(job):
    """A step that forgets to return the loss gets a clear TypeError."""
    images, _ = job.data(16)
    model = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="return the loss"):
        fit(
            lambda x1, x2: None,
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            images,
            epochs=1,
            batch_size=8,
            augment=job.NoisyViews(),
            progress=False,
            smoke=False,
        )


def test_bad_arguments_are_explained(job):
    """views=1 without labels, too few images for a batch, non-uint8 images."""
    images, labels = job.data(16)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="needs labels"):
        fit(lambda x, y: 0.0, model, optimizer, images, views=1, epochs=1, smoke=False)
    with pytest.raises(ValueError, match="no full batch"):
        fit(
            lambda x1, x2: 0.0, model, optimizer, images, epochs=1, batch_size=32, augment=job.NoisyViews(), smoke=False
        )
    with pytest.raises(ValueError, match="uint8"):
        fit(lambda x1, x2: 0.0, model, optimizer, images.float(), epochs=1, smoke=False)


def test_same_seed_same_run_other_seed_other_run(job):
    """Per-epoch seeding: a run is a function of `seed` (shuffle, augmentation, dropout)."""
    states = []
    for seed, global_seed in ((0, 10), (0, 20), (1, 10)):
        model, target, optimizer, step = job.build()
        torch.manual_seed(global_seed)  # the caller's RNG state must not matter (dropout included)
        fit(
            step,
            model,
            optimizer,
            job.data()[0],
            epochs=2,
            batch_size=16,
            augment=job.NoisyViews(),
            seed=seed,
            progress=False,
            smoke=False,
        )
        states.append(model.state_dict())
    assert_close(states[0], states[1], **EXACT)
    assert not torch.equal(states[0]["6.weight"], states[2]["6.weight"])


@pytest.mark.parametrize("augment_kind", ["two_view_transform", "batch_two_view_augment"])
def test_real_augmentations_are_reproducible(job, augment_kind):
    """The per-image DataLoader path (TwoViewTransform) and the batched path
    (BatchTwoViewAugment) both give identical runs for the same seed."""
    if augment_kind == "two_view_transform":
        from helpers.data import TwoViewTransform

        make = lambda: TwoViewTransform(size=8)  # noqa: E731
    else:
        from helpers.augment import BatchTwoViewAugment

        make = lambda: BatchTwoViewAugment(size=8)  # noqa: E731
    runs = []
    for _ in range(2):
        model, target, optimizer, step = job.build()
        shapes = []

        def wrapped(x1, x2, step=step, shapes=shapes):
            shapes.append((tuple(x1.shape), tuple(x2.shape), x1.dtype))
            assert not torch.equal(x1, x2)
            return step(x1, x2)

        history = fit(
            wrapped,
            model,
            optimizer,
            job.data(32)[0],
            epochs=2,
            batch_size=16,
            augment=make(),
            num_workers=0,
            progress=False,
            smoke=False,
        )
        runs.append((model.state_dict(), history.loss))
        assert shapes == [((16, 3, 8, 8), (16, 3, 8, 8), torch.float32)] * 4
    assert_close(runs[0][0], runs[1][0], **EXACT)
    assert runs[0][1] == runs[1][1]


def test_auto_augment_on_cpu_is_the_per_image_transform(job, monkeypatch):
    """augment='auto' on the CPU builds helpers.data.TwoViewTransform."""
    import helpers.data

    made = []

    class Spy(helpers.data.TwoViewTransform):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(helpers.data, "TwoViewTransform", Spy)
    images, _ = job.data(16)
    model = nn.Linear(1, 1)
    seen = []
    fit(
        lambda x1, x2: seen.append(x1.shape) or 0.0,
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        images,
        epochs=1,
        batch_size=8,
        progress=False,
        smoke=False,
    )
    assert len(made) == 1 and seen == [(8, 3, 32, 32)] * 2  # TwoViewTransform() crops to 32


# --------------------------------------------------------------------------------------
# Checkpoints and resuming
# --------------------------------------------------------------------------------------


def test_resume_after_keyboard_interrupt(job, uninterrupted, tmp_path):
    """Interrupted in epoch 3 and resumed: the same final state as an uninterrupted run."""
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        job.run(path, epochs=4, interrupt_at_epoch=3)
    assert torch.load(path, weights_only=True)["finished_epochs"] == 2
    model, target, optimizer, history, calls = job.run(path, epochs=4)
    assert calls == 2 * job.STEPS_PER_EPOCH  # only epochs 3 and 4 were trained
    ref_model, ref_target, ref_optimizer, ref_history = uninterrupted
    assert_same_state(model, target, optimizer, ref_model, ref_target, ref_optimizer)
    assert history.loss == ref_history.loss and history.lr == ref_history.lr
    assert not list(tmp_path.glob(".*tmp*"))


def test_resume_after_sigkill(job, uninterrupted, tmp_path):
    """A training process killed with SIGKILL after its first checkpoint resumes in-process to
    the same final state as an uninterrupted run."""
    path = tmp_path / "killed.pt"
    log = (tmp_path / "job.log").open("w")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
    process = subprocess.Popen(
        [sys.executable, str(job.path), str(path), "4"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert process.poll() is None, (tmp_path / "job.log").read_text()
            assert time.monotonic() < deadline, "the training subprocess wrote no checkpoint in 120 s"
            time.sleep(0.05)
        time.sleep(0.2)  # it is now asleep inside epoch 2's first step
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    assert torch.load(path, weights_only=True)["finished_epochs"] == 1
    model, target, optimizer, history, calls = job.run(path, epochs=4)
    assert calls == 3 * job.STEPS_PER_EPOCH
    ref_model, ref_target, ref_optimizer, ref_history = uninterrupted
    assert_same_state(model, target, optimizer, ref_model, ref_target, ref_optimizer)
    assert history.loss == ref_history.loss


def test_checkpoint_contents_load_with_weights_only(job, tmp_path):
    """The checkpoint is plain data: weights_only loading works and holds everything listed."""
    path = tmp_path / "run.pt"
    model, target, optimizer, history, _ = job.run(path, epochs=2)
    state = torch.load(path, weights_only=True)
    assert state["format"] == "ssl-lab-training-state" and state["finished_epochs"] == 2
    assert {"model", "optimizer", "extra_state", "loss_scaler", "base_lrs", "history", "config", "rng"} <= set(state)
    assert state["config"]["epochs"] == 2 and state["config"]["batch_size"] == 16 and state["config"]["seed"] == 0
    assert state["base_lrs"] == [0.2]
    assert_close(state["model"], model.state_dict(), **EXACT)
    assert_close(state["extra_state"]["target"], target.state_dict(), **EXACT)
    assert History.from_dict(state["history"]) == history


def test_extra_state_is_restored(job, tmp_path):
    """extra_state objects (BYOL's target network) are loaded back from the checkpoint."""
    path = tmp_path / "run.pt"
    _, target, _, _, _ = job.run(path, epochs=2)
    model, fresh_target, optimizer, _ = job.build()
    with torch.no_grad():
        for p in fresh_target.parameters():
            p.zero_()

    def never(x1, x2):
        raise AssertionError("training should not run")

    fit(
        never,
        model,
        optimizer,
        job.data()[0],
        epochs=2,
        batch_size=16,
        augment=job.NoisyViews(),
        checkpoint=path,
        extra_state={"target": fresh_target},
        warmup_epochs=1,
        progress=False,
        smoke=False,
    )
    assert_close(fresh_target.state_dict(), target.state_dict(), **EXACT)


def test_finished_checkpoint_is_loaded_without_training(job, tmp_path, capsys):
    """Load if it exists, else train: a finished checkpoint is loaded and its history returned."""
    path = tmp_path / "run.pt"
    trained_model, _, trained_optimizer, trained_history, _ = job.run(path, epochs=2)
    after_training = torch.rand(3)
    capsys.readouterr()
    model, target, optimizer, history, calls = job.run(path, epochs=2, interrupt_at_epoch=1)
    assert calls == 0
    # The global RNGs continue as after the training itself, so later cells behave the same.
    assert_close(torch.rand(3), after_training, **EXACT)
    assert history == trained_history
    assert_close(model.state_dict(), trained_model.state_dict(), **EXACT)
    assert_close(optimizer.state_dict()["state"], trained_optimizer.state_dict()["state"], **EXACT)
    assert "already finished" in capsys.readouterr().out
    # Asking for fewer epochs than the checkpoint holds loads it as well.
    _, _, _, history, calls = job.run(path, epochs=1, interrupt_at_epoch=1)
    assert calls == 0 and len(history) == 2


def test_more_epochs_extend_training(job, tmp_path, capsys):
    """A second call with more epochs continues after the last finished one; with a constant
    schedule the result equals a single run of that length."""
    path = tmp_path / "run.pt"
    job.run(path, epochs=2, schedule="constant")
    capsys.readouterr()
    model, target, optimizer, history, calls = job.run(path, epochs=4, schedule="constant")
    assert calls == 2 * job.STEPS_PER_EPOCH and len(history) == 4
    assert "epochs was 2, is now 4" in capsys.readouterr().out
    ref_model, ref_target, ref_optimizer, ref_history, _ = job.run(None, epochs=4, schedule="constant")
    assert_same_state(model, target, optimizer, ref_model, ref_target, ref_optimizer)
    assert history.loss == ref_history.loss


@pytest.mark.parametrize("change", [{"batch_size": 8}, {"seed": 1}, {"views": 1}])
def test_checkpoint_from_another_run_is_refused(job, tmp_path, change):
    """Resuming with a different batch size/seed/views raises an error that says what to do."""
    path = tmp_path / "run.pt"
    job.run(path, epochs=1)
    options = dict(change)
    if options.get("views") == 1:
        options["augment"] = None
    with pytest.raises(TrainingCheckpointError, match="resume=False") as error:
        job.run(path, epochs=2, **options)
    assert next(iter(change)) in str(error.value)


def test_resume_false_starts_over(job, uninterrupted, tmp_path):
    """resume=False ignores (and then overwrites) an existing checkpoint."""
    path = tmp_path / "run.pt"
    job.run(path, epochs=1, seed=5)
    model, target, optimizer, history, calls = job.run(path, epochs=4, resume=False)
    assert calls == 4 * job.STEPS_PER_EPOCH
    assert_same_state(model, target, optimizer, *uninterrupted[:3])
    assert torch.load(path, weights_only=True)["config"]["seed"] == 0


def test_unreadable_checkpoint_is_explained(job, tmp_path):
    """A truncated or foreign file is a TrainingCheckpointError naming the way out."""
    path = tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingCheckpointError, match="resume=False"):
        job.run(path, epochs=1)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(TrainingCheckpointError, match="not a training checkpoint"):
        job.run(path, epochs=1)


# --------------------------------------------------------------------------------------
# Smoke mode
# --------------------------------------------------------------------------------------


def test_smoke_mode_caps_data_epochs_batch_and_monitor(job, tmp_path, monkeypatch, capsys):
    """SSL_LAB_SMOKE=1: 256 class-balanced images, 1 epoch, batch <= 64, monitor subsets,
    a separate .smoke checkpoint, and one line saying so."""
    from helpers.probes import KNNMonitor

    monkeypatch.setenv("SSL_LAB_SMOKE", "1")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1000, 8, 8, 3), generator=g, dtype=torch.uint8)
    labels = torch.arange(1000) % 10
    monitor = KNNMonitor(images, labels, images[:500], labels[:500], k=5)
    subsets = []
    original_subset = KNNMonitor.subset
    monkeypatch.setattr(KNNMonitor, "subset", lambda self, **kw: subsets.append(kw) or original_subset(self, **kw))
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 4))
    batches = []

    def step(x1, x2):
        batches.append(x1.shape[0])
        return 1.0

    history = fit(
        step,
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        images,
        labels,
        epochs=50,
        batch_size=512,
        monitor=monitor,
        augment=job.NoisyViews(),
        checkpoint=tmp_path / "simclr.pt",
        progress=False,
    )
    assert batches == [64] * 4 and len(history) == 1 and history.monitor[0] is not None
    assert subsets and subsets[0]["max_train"] <= 256 and subsets[0]["max_test"] <= 256
    assert (tmp_path / "simclr.smoke.pt").exists() and not (tmp_path / "simclr.pt").exists()
    assert "Smoke mode is on" in capsys.readouterr().out


def test_smoke_subset_is_class_balanced(job):
    """The smoke subset has every class equally often."""
    images = torch.zeros(1000, 4, 4, 3, dtype=torch.uint8)
    labels = torch.arange(1000) % 10
    images[:, 0, 0, 0] = labels.to(torch.uint8)  # the label is readable from the pixel
    seen = []
    model = nn.Linear(1, 1)
    fit(
        lambda x, y: seen.append(y) or 0.0,
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        images,
        labels,
        views=1,
        augment=None,
        epochs=3,
        batch_size=128,
        smoke=True,
        progress=False,
    )
    counts = torch.bincount(torch.cat(seen), minlength=10)
    assert counts.sum() == 256 and counts.max() - counts.min() <= 1


# --------------------------------------------------------------------------------------
# fp16 dynamic loss scaling (tested in fp32 on the CPU)
# --------------------------------------------------------------------------------------


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def train_steps(model, optimizer, inputs, scaler=None):
    def step(x):
        # Two outputs of the model, a loss outside it: the hook must scale both paths.
        out = model(x)
        loss = (out**2).mean() + out.sum() * 0.01
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    context = scaler.attached(model, optimizer) if scaler is not None else None
    if context is not None:
        with context:
            for x in inputs:
                step(x)
    else:
        for x in inputs:
            step(x)


@pytest.mark.parametrize("init_scale", [2.0**10, 2.0**16])
def test_scaled_training_equals_unscaled(init_scale):
    """With finite gradients, scaling by S and unscaling before the step changes nothing
    (powers of two are exact in floating point)."""
    inputs = [torch.randn(5, 4, generator=torch.Generator().manual_seed(i)) for i in range(6)]
    reference, scaled = mlp(), mlp()
    train_steps(reference, torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9), inputs)
    scaler = DynamicLossScaler(init_scale=init_scale)
    optimizer = torch.optim.SGD(scaled.parameters(), lr=0.1, momentum=0.9)
    train_steps(scaled, optimizer, inputs, scaler)
    assert_close(scaled.state_dict(), reference.state_dict())
    assert scaler.scale == init_scale and scaler.growth_tracker == 6 and scaler.skipped_steps == 0


def test_gradients_are_scaled_inside_the_backward_pass():
    """Between backward() and optimizer.step() the model's gradients are S times the true ones."""
    model, reference = mlp(), mlp()
    x = torch.randn(3, 4)
    reference(x).pow(2).mean().backward()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = DynamicLossScaler(init_scale=8.0)
    with scaler.attached(model, optimizer):
        model(x).pow(2).mean().backward()
        for p, q in zip(model.parameters(), reference.parameters()):
            assert_close(p.grad, 8.0 * q.grad)
        optimizer.step()
        for p, q in zip(model.parameters(), reference.parameters()):
            assert_close(p.grad, q.grad)  # unscaled in place before the real step


def test_overflow_skips_the_step_and_halves_the_scale():
    """An inf gradient (here: S x a huge gradient overflows float32) skips the step, drops the
    gradients and halves S; the next finite step trains normally."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = DynamicLossScaler(init_scale=2.0**16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    huge = torch.full((2, 4), 1e35)
    with scaler.attached(model, optimizer):
        model(huge).sum().backward()  # the true weight gradient 2e35 is finite, x 2**16 it is inf
        assert torch.isinf(model.weight.grad).all()
        optimizer.step()
        assert_close(model.state_dict(), before, **EXACT)
        assert all(p.grad is None for p in model.parameters())
        assert scaler.scale == 2.0**15 and scaler.skipped_steps == 1 and scaler.growth_tracker == 0
        model(torch.randn(2, 4)).pow(2).mean().backward()
        optimizer.step()
    assert not torch.equal(model.weight, before["weight"])
    assert scaler.scale == 2.0**15 and scaler.growth_tracker == 1


def test_scale_grows_after_growth_interval():
    """After growth_interval finite steps in a row, S doubles."""
    inputs = [torch.randn(2, 4) for _ in range(5)]
    model = mlp()
    scaler = DynamicLossScaler(init_scale=4.0, growth_interval=2)
    train_steps(model, torch.optim.SGD(model.parameters(), lr=0.01), inputs, scaler)
    assert scaler.scale == 16.0 and scaler.growth_tracker == 1


def test_scaler_detaches_cleanly():
    """After the context: no hook on the model, optimizer.step is the class method again
    (or the instance wrapper it had before, e.g. an LR scheduler's)."""
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with DynamicLossScaler().attached(model, optimizer):
        assert "step" in vars(optimizer)
        assert model(torch.randn(1, 4)).grad_fn.name().startswith("_ScaleGradient")
    assert "step" not in vars(optimizer)
    assert not model(torch.randn(1, 4)).grad_fn.name().startswith("_ScaleGradient")
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    wrapped = vars(optimizer).get("step")
    with pytest.raises(RuntimeError):
        with DynamicLossScaler().attached(model, optimizer):
            raise RuntimeError("inside")
    assert vars(optimizer).get("step") is wrapped
    del scheduler


def test_hook_is_bypassed_without_scaling_when_model_is_not_called():
    """If the step never calls model(...) (e.g. model.encoder directly), no scaled backward
    happened, so the gradients are used as they are."""
    model, reference = mlp(), mlp()
    x = torch.randn(3, 4)
    scaler = DynamicLossScaler(init_scale=2.0**8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with scaler.attached(model, optimizer):
        model[2](model[1](model[0](x))).pow(2).mean().backward()
        optimizer.step()
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    reference(x).pow(2).mean().backward()
    ref_optimizer.step()
    assert_close(model.state_dict(), reference.state_dict())


def test_fit_fp16_runs_with_a_loss_scaler_and_checkpoints_it(job, tmp_path):
    """amp='fp16' (CPU autocast here) trains through the scaler and saves its state."""
    images, labels = job.data(32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 3, 16), nn.ReLU(), nn.Linear(16, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    dtypes = []

    def step(x, y):
        logits = model(x)
        dtypes.append(logits.dtype)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    history = fit(
        step,
        model,
        optimizer,
        images,
        labels,
        views=1,
        augment=None,
        epochs=6,
        batch_size=8,
        amp="fp16",
        checkpoint=tmp_path / "fp16.pt",
        schedule="constant",
        progress=False,
        smoke=False,
    )
    assert dtypes[0] == torch.float16
    assert history.loss[-1] < history.loss[0]
    scaler_state = torch.load(tmp_path / "fp16.pt", weights_only=True)["loss_scaler"]
    assert scaler_state["scale"] > 0 and scaler_state["growth_tracker"] + scaler_state["skipped_steps"] > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert "step" not in vars(optimizer)


# --------------------------------------------------------------------------------------
# Checkpoints every N minutes, stopping after an epoch
# --------------------------------------------------------------------------------------


def recorded_writes(monkeypatch):
    """The finished_epochs of every checkpoint fit writes (the files are still written)."""
    import helpers.training_state as training_state

    writes, real_save = [], training_state._save_atomically

    def save(payload, path):
        writes.append(payload["finished_epochs"])
        real_save(payload, path)

    monkeypatch.setattr(training_state, "_save_atomically", save)
    return writes


def test_checkpoint_minutes_writes_after_the_interval_and_at_the_end(job, tmp_path, monkeypatch):
    """checkpoint_minutes=1/60 (1 s): epoch 1 lasts over 1 s (a slow step), epochs 2 and 3 a few
    milliseconds: the checkpoint is written after epochs 1 and 4 (the last) only."""
    writes = recorded_writes(monkeypatch)
    slow = [True]

    def sleepy_epoch(epoch, history):
        slow[0] = False  # only epoch 1 sleeps (below)

    model, target, optimizer, step = job.build()
    images, labels = job.data()

    def wrapped(x1, x2):
        if slow[0]:
            time.sleep(0.3)  # 4 steps: 1.2 s
        return step(x1, x2)

    history = fit(
        wrapped,
        model,
        optimizer,
        images,
        labels,
        epochs=4,
        batch_size=16,
        augment=job.NoisyViews(),
        checkpoint=tmp_path / "run.pt",
        checkpoint_minutes=1 / 60,
        extra_state={"target": target},
        on_epoch_end=sleepy_epoch,
        progress=False,
        smoke=False,
    )
    assert len(history) == 4
    assert writes == [1, 4]
    assert torch.load(tmp_path / "run.pt", weights_only=True)["finished_epochs"] == 4


def test_checkpoint_minutes_zero_writes_after_every_epoch(job, tmp_path, monkeypatch):
    writes = recorded_writes(monkeypatch)
    job.run(tmp_path / "run.pt", epochs=3, checkpoint_minutes=0)
    assert writes == [1, 2, 3]


def test_interrupted_run_with_a_long_interval_resumes_from_the_last_write(job, uninterrupted, tmp_path, capsys):
    """A long interval: nothing is written before the interruption in epoch 3, so the rerun
    trains all 4 epochs -- and still ends in the uninterrupted run's state."""
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        job.run(path, epochs=4, interrupt_at_epoch=3, checkpoint_minutes=60)
    assert not path.exists()
    assert "holds 0 finished epochs" in capsys.readouterr().out
    model, target, optimizer, history, calls = job.run(path, epochs=4, checkpoint_minutes=60)
    assert calls == 4 * job.STEPS_PER_EPOCH
    assert_same_state(model, target, optimizer, *uninterrupted[:3])


def test_stop_after_epoch_writes_that_epoch_and_a_rerun_continues(job, uninterrupted, tmp_path, monkeypatch, capsys):
    """stop_after_epoch returns True after epoch 2: fit writes epoch 2's checkpoint (although the
    interval is an hour) and returns 2 epochs; the same call again trains epochs 3-4 and ends
    bit for bit where an uninterrupted run ends."""
    writes = recorded_writes(monkeypatch)
    path = tmp_path / "run.pt"
    asked = []

    def stop(epoch, history):
        asked.append((epoch, len(history)))
        return epoch == 2

    *_, history, calls = job.run(path, epochs=4, checkpoint_minutes=60, stop_after_epoch=stop)
    assert len(history) == 2 and calls == 2 * job.STEPS_PER_EPOCH
    assert asked == [(1, 1), (2, 2)]
    assert writes == [2]
    assert "Stopped after epoch 2 of 4" in capsys.readouterr().out
    model, target, optimizer, history, calls = job.run(path, epochs=4, checkpoint_minutes=60)
    assert calls == 2 * job.STEPS_PER_EPOCH and writes == [2, 4]
    assert_same_state(model, target, optimizer, *uninterrupted[:3])
    assert history.loss == uninterrupted[3].loss


def test_stop_after_the_last_epoch_is_a_finished_run(job, tmp_path):
    *_, history, _ = job.run(tmp_path / "run.pt", epochs=2, stop_after_epoch=lambda epoch, history: True)
    assert len(history) == 1  # stopped after epoch 1 of 2
    *_, history, calls = job.run(tmp_path / "run.pt", epochs=2, stop_after_epoch=lambda epoch, history: True)
    assert len(history) == 2 and calls == job.STEPS_PER_EPOCH


def test_negative_checkpoint_minutes_is_refused(job):
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        job.run(None, epochs=1, checkpoint_minutes=-1)


def test_progress_bar_mean_needs_no_device_read():
    """_Mean.latest off CUDA is the current (sum, count); total() adds floats and tensors."""
    from helpers.train import _Mean

    mean = _Mean()
    mean.add(1.0)
    mean.add(torch.tensor(2.0))
    mean.add(torch.tensor([3.0]))
    assert mean.latest() == (6.0, 3)
    assert mean.total() == 6.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "off"])
def test_fit_never_synchronises_between_steps_on_cuda(amp):
    """On CUDA, with a step that returns its loss as a tensor: nothing fit does between two steps
    of an epoch (learning rate, loss sum, progress bar, batch gather, batched augmentation,
    channels_last copy) waits for the GPU -- checked with torch's sync debug mode set to
    "error" from the end of each step to the start of the next, the epoch's last step excepted."""
    from helpers.augment import BatchTwoViewAugment

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 16),
    ).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    images = torch.randint(0, 256, (256, 32, 32, 3), dtype=torch.uint8)
    steps_per_epoch, counter = 256 // 32, [0]

    def step(x1, x2):
        torch.cuda.set_sync_debug_mode("default")
        z1, z2 = F.normalize(model(x1), dim=1), F.normalize(model(x2), dim=1)
        loss = (2 - 2 * (z1 * z2).sum(dim=1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        counter[0] += 1
        if counter[0] % steps_per_epoch:  # not the epoch's last step: fit's own code runs next
            torch.cuda.set_sync_debug_mode("error")
        return loss.detach()

    try:
        history = fit(
            step,
            model,
            optimizer,
            images,
            epochs=2,
            batch_size=32,
            augment=BatchTwoViewAugment(),
            amp=amp,
            progress=True,
            smoke=False,
            verbose=False,
        )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(history) == 2 and counter[0] == 2 * steps_per_epoch
    assert all(math.isfinite(v) for v in history.loss)
