"""Tests of the benchmarks: the linear probe, the time-to-accuracy script (smoke runs, resuming,
the seed-pipeline comparison) and the results page.

The benchmark runs use the script's smoke mode: the solution notebook's real models and steps
on 64 synthetic training images downscaled to 8x8, on the CPU, one intra-op thread. Each run
is done once per module (fixtures) and inspected by several tests.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from benchmarks import gpu_session as gpu_session_module
from benchmarks import make_results_page as page
from benchmarks import time_to_accuracy as tta
from benchmarks.linear_probe import fit_logistic_regression, linear_probe

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NUMBER = {"type": "number"}
ACCURACY = {"type": "number", "minimum": 0.0, "maximum": 1.0}
SECONDS = {"type": "number", "minimum": 0.0}

#: What every time-to-accuracy record must hold (the fields the results page and readers use).
TIME_TO_ACCURACY_SCHEMA = {
    "type": "object",
    "required": [
        "benchmark",
        "schema_version",
        "method",
        "smoke",
        "date",
        "command",
        "device",
        "device_name",
        "device_slug",
        "torch_version",
        "recipe",
        "epochs",
        "seconds_per_epoch",
        "epoch_seconds",
        "training_seconds",
        "knn_monitor_seconds",
        "total_seconds",
        "minutes",
        "sessions",
        "knn",
        "linear_probe",
        "accuracies",
        "reference_code",
        "data",
        "loss_per_epoch",
    ],
    "properties": {
        "benchmark": {"const": "time_to_accuracy"},
        "schema_version": {"const": tta.RECORD_SCHEMA_VERSION},
        "method": {"enum": ["simclr", "byol", "barlow"]},
        "smoke": {"type": "boolean"},
        "command": {"type": "string", "pattern": "^python benchmarks/time_to_accuracy.py --method "},
        "device": {"type": "string"},
        "device_name": {"type": "string"},
        "torch_version": {"type": "string"},
        "epochs": {"type": "integer", "minimum": 1},
        "seconds_per_epoch": SECONDS,
        "training_seconds": SECONDS,
        "total_seconds": SECONDS,
        "minutes": SECONDS,
        "epoch_seconds": {"type": "array", "items": SECONDS, "minItems": 1},
        "loss_per_epoch": {"type": "array", "items": NUMBER, "minItems": 1},
        "recipe": {"type": "object", "required": ["method", "epochs", "batch_size", "lr", "knn_every"]},
        "sessions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["seconds", "first_epoch", "last_epoch", "command", "device_name"],
                "properties": {"seconds": SECONDS},
            },
        },
        "knn": {
            "type": "object",
            "required": ["per_epoch", "final", "best", "k", "milestones"],
            "properties": {
                "final": ACCURACY,
                "best": ACCURACY,
                "per_epoch": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["epoch", "accuracy", "elapsed_seconds"],
                        "properties": {"epoch": {"type": "integer"}, "accuracy": ACCURACY, "elapsed_seconds": SECONDS},
                    },
                },
            },
        },
        "linear_probe": {
            "type": "object",
            "required": ["accuracy", "train_accuracy", "weight_decay", "seconds"],
            "properties": {"accuracy": ACCURACY, "train_accuracy": ACCURACY, "seconds": SECONDS},
        },
        "accuracies": {
            "type": "object",
            "required": ["knn_final", "linear_probe"],
            "properties": {"knn_final": ACCURACY, "linear_probe": ACCURACY},
        },
        "reference_code": {
            "type": "object",
            "required": ["notebook", "sha256"],
            "properties": {"notebook": {"const": "solutions/ssl_methods.ipynb"}},
        },
    },
}

SEED_PIPELINE_SCHEMA = {
    "type": "object",
    "required": [
        "benchmark",
        "method",
        "smoke",
        "command",
        "device_name",
        "torch_version",
        "fast_path",
        "seed_pipeline",
        "speedup",
        "speedup_train_only",
    ],
    "properties": {
        "benchmark": {"const": "seed_pipeline"},
        "speedup": {"type": "number", "exclusiveMinimum": 0},
        "speedup_train_only": {"type": "number", "exclusiveMinimum": 0},
        "fast_path": {
            "type": "object",
            "required": ["epochs", "seconds_per_epoch", "train_seconds_per_epoch"],
            "properties": {"seconds_per_epoch": SECONDS, "epochs": {"type": "array", "minItems": 1}},
        },
        "seed_pipeline": {
            "type": "object",
            "required": [
                "settings",
                "epochs",
                "seconds_per_epoch",
                "train_seconds_per_epoch",
                "eval_seconds_per_epoch",
            ],
            "properties": {
                "seconds_per_epoch": SECONDS,
                "epochs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["train_seconds", "eval_seconds", "knn_accuracy", "loss"],
                        "properties": {"knn_accuracy": ACCURACY},
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: several times faster than two on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ======================================================================================
# The linear probe
# ======================================================================================
def clusters(n, dim, classes, separation, seed):
    """Gaussian blobs: class c around mean_c (norm ~ separation * sqrt(dim)), unit noise."""
    g = torch.Generator().manual_seed(seed)
    means = separation * torch.randn(classes, dim, generator=g)  # (C, D)
    labels = torch.arange(n) % classes  # (N,)
    return means[labels] + torch.randn(n, dim, generator=g), labels


@pytest.mark.parametrize("weight_decay", [1e-3, 1e-1])
@pytest.mark.parametrize("classes", [3, 5])
def test_logistic_regression_matches_scikit_learn(weight_decay, classes):
    """Does fit_logistic_regression minimise scikit-learn's multinomial objective (C = 1 / (wd N))?

    (Two classes are left out: scikit-learn then fits one sigmoid weight vector, whose penalty
    is not the softmax's penalty on two rows.)"""
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(classes)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64).float()
    y = (x @ torch.randn(6, classes, generator=g) + 0.7 * torch.randn(200, classes, generator=g)).argmax(dim=1)
    weight, bias, iterations = fit_logistic_regression(x, y, classes, weight_decay, max_iter=1000, tolerance=1e-9)
    reference = LogisticRegression(C=1.0 / (weight_decay * len(x)), tol=1e-10, max_iter=10_000).fit(
        x.numpy(), y.numpy()
    )
    probabilities = torch.softmax(x @ weight.T + bias, dim=1)  # (N, C)
    expected = torch.as_tensor(reference.predict_proba(x.numpy()), dtype=torch.float32)
    assert iterations > 0
    assert_close(probabilities, expected, atol=2e-3, rtol=0)


@pytest.mark.parametrize("dim,classes", [(16, 3), (64, 10)])
def test_linear_probe_separates_separable_features(dim, classes):
    """Well-separated classes: the probe must classify almost every test point correctly."""
    train_x, train_y = clusters(2000, dim, classes, separation=2.0, seed=1)
    g = torch.Generator().manual_seed(1)
    means = 2.0 * torch.randn(classes, dim, generator=g)  # the same means as clusters(..., seed=1)
    test_y = torch.arange(500) % classes
    test_x = means[test_y] + torch.randn(500, dim, generator=torch.Generator().manual_seed(2))
    result = linear_probe(train_x, train_y, test_x, test_y)
    assert result.accuracy >= 0.97, result
    assert result.train_accuracy >= 0.97
    assert result.num_classes == classes and result.feature_dim == dim
    assert result.weight_decay in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    assert set(result.validation_accuracy) == {"0.1", "0.01", "0.001", "0.0001", "1e-05", "1e-06"}
    json.dumps(result.to_dict())  # plain types only


def test_linear_probe_is_at_chance_on_random_labels():
    """Labels independent of the features: test accuracy ~ 1/C (2000 test points: sd 0.7 %)."""
    g = torch.Generator().manual_seed(3)
    train_x, test_x = torch.randn(4000, 32, generator=g), torch.randn(2000, 32, generator=g)
    train_y, test_y = torch.randint(0, 10, (4000,), generator=g), torch.randint(0, 10, (2000,), generator=g)
    result = linear_probe(train_x, train_y, test_x, test_y)
    assert 0.06 <= result.accuracy <= 0.14, result.accuracy


def test_linear_probe_handles_dead_features_and_rejects_bad_input():
    """A feature that is always zero (a dead ReLU) must not produce NaN; NaN features are refused."""
    x, y = clusters(300, 8, 3, separation=3.0, seed=4)
    x[:, 0] = 0.0
    result = linear_probe(x[:200], y[:200], x[200:], y[200:], weight_decays=[1e-3])
    assert result.accuracy >= 0.9 and result.validation_accuracy == {}
    bad = x.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(bad[:200], y[:200], x[200:], y[200:])
    with pytest.raises(ValueError, match="dimension"):
        linear_probe(x[:200], y[:200], x[200:, :4], y[200:])


# ======================================================================================
# Recipe overrides and the time budget
# ======================================================================================
def test_recipe_overrides_are_typed_and_checked():
    """--recipe key=value pairs take the type of the recipe's field; mistakes say what is known."""
    from helpers.recipes import BYOL

    assert tta.parse_recipe_overrides(BYOL, ["epochs=50", "base_lr=0.1", "ema_cosine=false"]) == {
        "epochs": 50,
        "base_lr": 0.1,
        "ema_cosine": False,
    }
    with pytest.raises(ValueError, match="known"):
        tta.parse_recipe_overrides(BYOL, ["learning_rate=0.1"])
    with pytest.raises(ValueError, match="--method"):
        tta.parse_recipe_overrides(BYOL, ["method=simclr"])
    with pytest.raises(ValueError, match="int"):
        tta.parse_recipe_overrides(BYOL, ["epochs=ten"])


def budget_clock(epochs: int, monitor_calls=()):
    """A run's clock started at 0 s with a 100 s budget and the k-NN monitor every 5 epochs, whose
    calls so far took `monitor_calls` seconds each; it prints nothing."""
    monitor = tta._TimedMonitor(monitor=None, device=torch.device("cpu"))
    monitor.calls = list(monitor_calls)
    return tta._RunClock(
        started=0.0,
        command="",
        device_name="",
        epochs=epochs,
        knn_every=5,
        budget_seconds=100.0,
        monitor=monitor,
        hooks=[],
        say=lambda *a, **k: None,
    )


@pytest.mark.parametrize("elapsed,fits", [(40.0, True), (75.0, True), (80.0, False)])
def test_budget_stops_before_an_epoch_that_would_not_fit(elapsed, fits):
    """With a 100 s budget and 20 s epochs (k-NN 4 s), epoch 3 of 10 (no k-NN) needs 1.05 * 20 + 2 s."""
    clock = budget_clock(epochs=10, monitor_calls=[4.0])
    clock.train_seconds = [20.0]
    assert clock._next_epoch_fits(2, now=elapsed) is fits
    # Epoch 5 runs the k-NN monitor: 1.05 * (20 + 4) + 2 = 27.2 s.
    assert clock._next_epoch_fits(4, now=72.0) is True and clock._next_epoch_fits(4, now=73.5) is False
    # The last epoch also needs the final evaluation: 1.05 * (20 + 4 + 2 * 4 + 10) + 2 = 46.1 s.
    assert clock._next_epoch_fits(9, now=53.0) is True and clock._next_epoch_fits(9, now=54.5) is False


def test_budget_estimate_leaves_out_the_warm_up_epoch():
    """The first epoch of a run (warm-up included) is not the estimate once others exist."""
    clock = budget_clock(epochs=100)
    clock.train_seconds = [30.0, 10.0, 12.0]  # epoch 4 (no k-NN) needs 1.05 * 12 + 2 = 14.6 s
    assert clock._next_epoch_fits(3, now=85.0) is True and clock._next_epoch_fits(3, now=86.0) is False
    clock.train_seconds = [30.0]  # only the first: 1.05 * 30 + 2 = 33.5 s
    assert clock._next_epoch_fits(1, now=66.0) is True and clock._next_epoch_fits(1, now=67.0) is False


# ======================================================================================
# Smoke runs of the benchmark (the solution notebook's models and steps, on the CPU)
# ======================================================================================
def bench(tmp: Path, method: str, *extra: str) -> dict:
    argv = [
        "--method",
        method,
        "--smoke",
        "--run-dir",
        str(tmp / f"run-{method}"),
        "--results-dir",
        str(tmp / "results"),
        "--no-progress",
        *extra,
    ]
    return tta.main(argv)


@pytest.fixture(scope="module")
def simclr_runs(tmp_path_factory):
    """SimCLR, 2 epochs, in two runs each stopped by --max-minutes 0 (so: one epoch per run)."""
    tmp = tmp_path_factory.mktemp("simclr")
    first = bench(tmp, "simclr", "--epochs", "2", "--max-minutes", "0")
    checkpoint = torch.load(tmp / "run-simclr" / "fit.pt", map_location="cpu", weights_only=True)
    results_after_first = sorted(p.name for p in (tmp / "results").glob("*.json")) if (tmp / "results").exists() else []
    second = bench(tmp, "simclr", "--epochs", "2", "--max-minutes", "0")
    return {
        "tmp": tmp,
        "first": first,
        "checkpoint": checkpoint,
        "results_after_first": results_after_first,
        "second": second,
    }


@pytest.fixture(scope="module")
def byol_runs(tmp_path_factory):
    """BYOL, --epochs 1 (finished, record), then --epochs 2 (continues the same run)."""
    tmp = tmp_path_factory.mktemp("byol")
    return {"one": bench(tmp, "byol", "--epochs", "1"), "two": bench(tmp, "byol", "--epochs", "2")}


@pytest.fixture(scope="module")
def barlow_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("barlow")
    return bench(tmp, "barlow")


@pytest.fixture(scope="module")
def final_records(simclr_runs, byol_runs, barlow_run):
    return {"simclr": simclr_runs["second"], "byol": byol_runs["two"], "barlow": barlow_run}


@pytest.mark.parametrize("method", ["simclr", "byol", "barlow"])
def test_smoke_run_writes_a_valid_record(final_records, method):
    """Does each method's smoke run write a complete record with consistent numbers?"""
    result = final_records[method]
    assert result["finished"] is True
    path = Path(result["path"])
    record = json.loads(path.read_text())
    assert record == result["record"]
    jsonschema.validate(record, TIME_TO_ACCURACY_SCHEMA)
    assert record["method"] == method and record["smoke"] is True and record["device"] == "cpu"
    assert record["reference_code"]["sha256"] == tta._file_sha256(PROJECT_ROOT / "solutions" / "ssl_methods.ipynb")
    assert path.name == f"time_to_accuracy-{method}-{record['epochs']}ep-{record['device_slug']}-smoke.json"
    assert len(record["epoch_seconds"]) == len(record["loss_per_epoch"]) == record["epochs"]
    # Every epoch's time = training + k-NN monitor (kept per epoch in the history).
    knn_seconds = record["extra_per_epoch"]["knn_seconds"]
    assert len(knn_seconds) == record["epochs"] and all(s > 0 for s in knn_seconds)
    assert record["training_seconds"] + record["knn_monitor_seconds"] == pytest.approx(
        sum(record["epoch_seconds"]), abs=1e-2
    )
    assert record["training_seconds"] > 0
    assert record["total_seconds"] == pytest.approx(sum(s["seconds"] for s in record["sessions"]))
    assert record["total_seconds"] > sum(record["epoch_seconds"])
    # k-NN every epoch in smoke mode; the final value is the last epoch's.
    assert [e["epoch"] for e in record["knn"]["per_epoch"]] == list(range(1, record["epochs"] + 1))
    assert record["knn"]["final"] == record["knn"]["per_epoch"][-1]["accuracy"] == record["accuracies"]["knn_final"]
    assert record["linear_probe"]["accuracy"] == record["accuracies"]["linear_probe"]
    assert record["data"] == {
        "source": record["data"]["source"],
        "synthetic": True,
        "train_images": tta.SMOKE_TRAIN_IMAGES,
        "test_images": tta.SMOKE_TEST_IMAGES,
        "image_size": tta.SMOKE_IMAGE_SIZE,
    }


def test_byol_follows_the_recipe_ema_schedule(byol_runs):
    """BYOL's EMA beta per epoch is recipe.ema_beta_at(epoch), also across the resumed run."""
    from helpers.recipes import BYOL

    record = byol_runs["two"]["record"]
    betas = record["extra_per_epoch"]["ema_beta"]
    assert betas[0] == pytest.approx(dataclasses_replace(BYOL, epochs=1).ema_beta_at(0))
    assert betas[1] == pytest.approx(dataclasses_replace(BYOL, epochs=2).ema_beta_at(1))


def dataclasses_replace(recipe, **changes):
    import dataclasses

    return dataclasses.replace(recipe, **changes)


def test_resume_after_max_minutes_continues_the_checkpoint(simclr_runs):
    """A run stopped by --max-minutes leaves a checkpoint and no record; the next run continues it."""
    first, second, checkpoint = simclr_runs["first"], simclr_runs["second"], simclr_runs["checkpoint"]
    assert first == {"finished": False, "epochs_done": 1, "epochs": 2, "checkpoint": first["checkpoint"]}
    assert simclr_runs["results_after_first"] == []  # only a finished run writes a record
    assert checkpoint["finished_epochs"] == 1
    record = second["record"]
    assert record["epochs"] == 2
    # Epoch 1 was not trained again: its loss and time come from the first run's checkpoint.
    assert record["loss_per_epoch"][0] == checkpoint["history"]["loss"][0]
    assert record["epoch_seconds"][0] == pytest.approx(checkpoint["history"]["seconds"][0], abs=1e-3)
    sessions = record["sessions"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(1, 1), (2, 2)]
    assert sessions[0] == checkpoint["extra_state"]["benchmark"]["sessions"][0]
    assert record["total_seconds"] == pytest.approx(sessions[0]["seconds"] + sessions[1]["seconds"])
    assert record["notes"] == ["synthetic stand-in data, not CIFAR-10"]  # same --epochs in both runs


def test_larger_epochs_continue_a_finished_run(byol_runs):
    """--epochs 1 then --epochs 2: the second run trains only epoch 2; epochs and seconds add up."""
    one, two = byol_runs["one"]["record"], byol_runs["two"]["record"]
    assert (one["epochs"], two["epochs"]) == (1, 2)
    assert Path(byol_runs["one"]["path"]).exists() and Path(byol_runs["two"]["path"]).exists()
    assert two["loss_per_epoch"][0] == one["loss_per_epoch"][0]
    assert two["epoch_seconds"][0] == one["epoch_seconds"][0]
    assert [(s["first_epoch"], s["last_epoch"], s["epochs_target"]) for s in two["sessions"]] == [(1, 1, 1), (2, 2, 2)]
    # The first run's clock as saved with its epoch-1 checkpoint (before its own final evaluation).
    assert two["sessions"][0]["seconds"] < one["total_seconds"]
    assert two["total_seconds"] == pytest.approx(sum(s["seconds"] for s in two["sessions"]))
    assert any("different --epochs" in note for note in two["notes"])


def test_finished_run_is_not_trained_or_measured_again(simclr_runs):
    """Running the finished command again rewrites the same record without training."""
    tmp = simclr_runs["tmp"]
    again = bench(tmp, "simclr", "--epochs", "2", "--max-minutes", "0")
    assert again["finished"] is True
    assert again["record"] == simclr_runs["second"]["record"]


def test_a_longer_checkpoint_than_asked_is_refused(simclr_runs):
    """--epochs 1 on a 2-epoch run directory: a clear error instead of a mislabelled record."""
    with pytest.raises(SystemExit, match="--fresh"):
        bench(simclr_runs["tmp"], "simclr", "--epochs", "1")


def test_another_recipe_does_not_resume_a_run(simclr_runs):
    """A run directory trained with one recipe refuses to continue with another (epochs aside)."""
    with pytest.raises(SystemExit, match=r"another recipe \(temperature: 0.5 there, 0.2 now\).*--fresh"):
        bench(
            simclr_runs["tmp"],
            "simclr",
            "--epochs",
            "3",
            "--recipe",
            "temperature=0.2",
            "--run-dir",
            str(simclr_runs["tmp"] / "run-simclr"),
        )


def test_benchmark_runs_the_solution_notebooks_code():
    """The models and steps come from solutions/ssl_methods.ipynb's graded cells, not from helpers."""
    import inspect

    reference = tta.load_reference_code()
    for obj, task in [
        (reference["simclr_train_step"], "simclr_step"),
        (reference["nt_xent"], "nt_xent"),
        (reference["byol_train_step"], "byol_step"),
        (reference["barlow_train_step"], "barlow_step"),
        (reference["EMA"].update, "ema"),
        (reference["SimCLRModel"].forward, "simclr_forward"),
        (reference["BYOLModel"].forward, "byol_forward"),
    ]:
        assert inspect.getsource(obj).strip() in graded_cell_source(task), task
    assert not reference["simclr_train_step"].__module__.startswith("helpers")
    assert tta.load_reference_code() is reference  # loaded once per process


def graded_cell_source(task: str) -> str:
    """The source of the solution notebook's cell whose nbgrader grade_id is `task`."""
    cells = json.loads((PROJECT_ROOT / "solutions" / "ssl_methods.ipynb").read_text())["cells"]
    (cell,) = [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == task]
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_seed_pipeline_smoke(tmp_path):
    """`--seed-pipeline --smoke`: both pipelines timed in one run, one record with their ratio."""
    result = tta.main(
        [
            "--method",
            "simclr",
            "--seed-pipeline",
            "--smoke",
            "--results-dir",
            str(tmp_path),
            "--run-dir",
            str(tmp_path / "run"),
            "--no-progress",
        ]
    )
    (path,) = tmp_path.glob("seed_pipeline-simclr-*-smoke.json")
    assert result["path"] == str(path)
    record = json.loads(path.read_text())
    jsonschema.validate(record, SEED_PIPELINE_SCHEMA)
    seed = record["seed_pipeline"]
    assert seed["settings"]["lr"] == 0.6 and seed["settings"]["weight_decay"] == 0.0  # the seed's AdamW
    assert len(seed["epochs"]) == len(record["fast_path"]["epochs"]) == 1
    assert record["speedup"] == pytest.approx(seed["seconds_per_epoch"] / record["fast_path"]["seconds_per_epoch"])


def test_script_entry_point_reports_bad_arguments(monkeypatch, capsys):
    """Run as a script (``__main__``, its own sys.path set-up), a bad --recipe is a clear error."""
    import runpy

    script = PROJECT_ROOT / "benchmarks" / "time_to_accuracy.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--method", "simclr", "--smoke", "--recipe", "lr_base=1"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    message = str(exit_info.value.code)
    assert "SimCLRRecipe has no such field" in message and "base_lr" in message


def test_seed_dataset_serves_pil_images_like_torchvision():
    """The seed pipeline's dataset goes through PIL, as torchvision's CIFAR10 does, and makes two views."""
    from benchmarks.seed_pipeline import SEED_SETTINGS, SeedCIFAR10, SeedTwoViewTransform

    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    seen = []
    dataset = SeedCIFAR10(images, torch.arange(4), transform=lambda img: seen.append(img) or img)
    image, label = dataset[2]
    assert label == 2 and type(image).__module__.startswith("PIL")
    np.testing.assert_array_equal(np.asarray(image), images[2].numpy())
    view1, view2 = SeedTwoViewTransform(size=32)(image)
    assert view1.shape == view2.shape == (3, 32, 32) and view1.dtype == torch.float32
    assert 0.0 <= float(view1.min()) and float(view1.max()) <= 1.0
    assert {m: (s.lr, s.weight_decay, s.batch_size, s.num_workers) for m, s in SEED_SETTINGS.items()} == {
        "simclr": (0.6, 0.0, 256, 10),
        "byol": (0.5, 1e-6, 256, 10),
        "barlow": (0.5, 1e-6, 256, 10),
    }


# ======================================================================================
# The results page
# ======================================================================================
def gpu_record(method="simclr", epochs=100, minutes=9.5, knn=0.8312, probe=0.8567, name="NVIDIA H100 80GB HBM3"):
    return {
        "benchmark": "time_to_accuracy",
        "schema_version": 1,
        "method": method,
        "smoke": False,
        "device": "cuda",
        "device_name": name,
        "epochs": epochs,
        "minutes": minutes,
        "total_seconds": 60 * minutes,
        "seconds_per_epoch_steady": 4.25,
        "knn": {"final": knn},
        "linear_probe": {"accuracy": probe},
        "sessions": [{"seconds": 60 * minutes}],
        "recipe_overrides": {"epochs": epochs},
        "notes": [],
        "command": f"python benchmarks/time_to_accuracy.py --method {method} --source .cifar --max-minutes 9",
    }


def seed_record(method="simclr"):
    return {
        "benchmark": "seed_pipeline",
        "method": method,
        "smoke": False,
        "device": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "speedup": 20.0,
        "speedup_train_only": 12.5,
        "seed_pipeline": {"epochs": [{}, {}], "seconds_per_epoch": 90.0, "train_seconds_per_epoch": 50.0},
        "fast_path": {"seconds_per_epoch": 4.5, "train_seconds_per_epoch": 4.0},
        "command": "python benchmarks/time_to_accuracy.py --method simclr --source .cifar --seed-pipeline",
    }


def write_records(folder: Path, records: dict[str, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, record in records.items():
        (folder / name).write_text(json.dumps(record))
    return folder


def test_results_page_tables_come_from_the_records(tmp_path):
    """Each GPU record becomes a row with its numbers and its command; smoke and CPU runs do not."""
    smoke = {**gpu_record("byol"), "smoke": True}
    cpu = {**gpu_record("barlow"), "device": "cpu", "device_name": "Some CPU"}
    folder = write_records(
        tmp_path / "results",
        {
            "time_to_accuracy-simclr-100ep-h100.json": gpu_record(),
            "time_to_accuracy-byol-100ep-h100-smoke.json": smoke,
            "time_to_accuracy-barlow-100ep-cpu.json": cpu,
            "seed_pipeline-simclr-h100.json": seed_record(),
            "augment_throughput-cpu.json": {
                "benchmark": "augment_throughput",
                "device_name": "Some CPU",
                "batch_size": 512,
                "workers": 2,
                "per_image_images_per_s": 1234.5,
                "batched_images_per_s": 4321.0,
                "ratio": 3.5,
                "command": "python aug.py",
            },
            "grade_time-cpu.json": {
                "benchmark": "grade_time",
                "command": "python benchmarks/grade_time.py",
                "machine": {"cpu": "Some CPU", "logical_cpus": 2},
                "target_s": 20.0,
                "results": {
                    "ssl_methods": {
                        "runs": [{"wall_s": 42.0, "load_1min_before": 0.5}, {"wall_s": 40.0, "load_1min_before": 0.7}],
                        "median_s": 41.0,
                        "warm_median_s": 3.25,
                        "all_full_score": True,
                    }
                },
            },
        },
    )
    text = page.render_page(page.load_records(folder))
    assert "| SimCLR | NVIDIA H100 80GB HBM3 | 100 | 9.5 | 4.25 | 83.1 % | 85.7 % | 1 |" in text
    assert "BYOL" not in text.split("## Recipes")[0] and "Some CPU |" not in text.split("## Speed-up")[0]
    assert "| SimCLR | NVIDIA H100 80GB HBM3 | 2 | 90.00 | 4.50 | 20.0× | 50.00 | 4.00 | 12.5× |" in text
    assert (
        "| Some CPU | 512 | 2 | 1,234 | 4,321 | 3.50× |" in text
        or "| Some CPU | 512 | 2 | 1,235 | 4,321 | 3.50× |" in text
    )
    assert "## Grading time" in text
    assert "| ssl_methods | Some CPU (2 CPUs) | 2 | 41.0 | 3.2 | 20 | yes | 0.5–0.7 |" in text
    assert "`python benchmarks/time_to_accuracy.py --method simclr --source .cifar --max-minutes 9`" in text
    assert "No GPU record yet" not in text


def test_results_page_without_gpu_records_says_so(tmp_path):
    """No GPU record: both training sections say so and show how to measure; no table rows."""
    folder = write_records(
        tmp_path / "results", {"time_to_accuracy-simclr-1ep-cpu-smoke.json": {**gpu_record(), "smoke": True}}
    )
    text = page.render_page(page.load_records(folder))
    assert text.count("No GPU record yet") == 2 and "No GPU session record yet" in text
    measured = text.split("## Recipes")[0] + text.split("## GPU session")[1]  # all but the recipes and public results
    assert "--max-minutes 9" in text and "| SimCLR |" not in measured
    assert page.render_page(page.load_records(tmp_path / "missing")) == text  # no folder = no records


def test_results_page_is_deterministic(tmp_path):
    """Same records, any file order: the same bytes; rows sorted by method then device."""
    records = {
        "time_to_accuracy-barlow-h100.json": gpu_record("barlow"),
        "time_to_accuracy-simclr-h100.json": gpu_record("simclr"),
        "time_to_accuracy-byol-a100.json": gpu_record("byol", name="NVIDIA A100-SXM4-40GB"),
    }
    first = page.render_page(page.load_records(write_records(tmp_path / "a", records)))
    reordered = list(page.load_records(tmp_path / "a"))[::-1]
    assert page.render_page(reordered) == first
    assert page.render_page(page.load_records(write_records(tmp_path / "b", dict(reversed(records.items()))))) == first
    measured = first.split("## Recipes")[0]
    rows = [
        line
        for line in measured.splitlines()
        if line.startswith("| SimCLR") or line.startswith("| BYOL") or line.startswith("| Barlow")
    ]
    assert [row.split(" | ")[0] for row in rows] == ["| SimCLR", "| BYOL", "| Barlow Twins"]


def test_results_page_check_and_bad_records(tmp_path, capsys):
    """--check fails on a stale page and passes after regeneration; a broken record is named."""
    folder = write_records(tmp_path / "results", {"time_to_accuracy-simclr-h100.json": gpu_record()})
    output = tmp_path / "README.md"
    assert page.main(["--results-dir", str(folder), "--output", str(output), "--check"]) == 1
    assert page.main(["--results-dir", str(folder), "--output", str(output)]) == 0
    assert page.main(["--results-dir", str(folder), "--output", str(output), "--check"]) == 0
    (folder / "broken.json").write_text("{not json")
    assert page.main(["--results-dir", str(folder), "--output", str(output)]) == 2
    assert "broken.json" in capsys.readouterr().err


def test_committed_results_page_is_up_to_date():
    """benchmarks/README.md must be what make_results_page.py renders from benchmarks/results/."""
    expected = page.render_page(page.load_records(page.DEFAULT_RESULTS_DIR))
    actual = (PROJECT_ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert actual == expected, "benchmarks/README.md is stale: run `python benchmarks/make_results_page.py`"


def test_results_page_renders_other_records_generically(tmp_path):
    """Other benchmarks' records: scalar fields as columns, one row per item of a list of runs."""
    record = {
        "benchmark": "other_bench",
        "accuracy": 0.875,
        "nested": {"a": 1},
        "command": "python x.py",
        "device_name": "cpu",
    }
    text = page.render_page([("other_bench-1.json", copy.deepcopy(record))])
    assert "## Other bench" in text and "| 0.88 | cpu |" in text and "nested" not in text
    runs = {
        "benchmark": "other_bench",
        "batch_size": 500,
        "device": "cpu",
        "machine": {"cpu": "x"},
        "runs": [
            {"threads": 1, "wall_s": 80.25, "load_average_after": [1, 2, 3]},
            {"threads": 2, "wall_s": 45.5, "meets_time_target": True},
        ],
        "command": "python benchmarks/other_bench.py",
    }
    text = page.render_page([("other_bench-2.json", runs)])
    assert "| batch size | device | threads | wall s | meets time target |" in text
    assert "| 500 | cpu | 1 | 80.25 | – |" in text and "| 500 | cpu | 2 | 45.50 | true |" in text


def test_results_page_checkpoint_section_shows_medians_and_targets():
    """One row per thread count: the torch build, the median wall time with its range, the
    largest peak RSS, the import alone, and each target judged."""
    record = {
        "benchmark": "checkpoint_eval",
        "command": "python benchmarks/checkpoint_eval.py --repeats 3",
        "torch": "2.13.0+cpu",
        "torch_cuda_build": None,
        "import_baseline": {"wall_s": 2.6, "peak_rss_mb": 228.8},
        "targets": {"wall_s_with_2_threads": 90.0, "peak_rss_mb": 700.0},
        "summary": [
            {
                "threads": 2,
                "runs": 3,
                "wall_s_median": 84.31,
                "wall_s_min": 80.02,
                "wall_s_max": 95.5,
                "evaluation_s_median": 80.0,
                "peak_rss_mb_max": 501.7,
                "meets_time_target": True,
                "meets_memory_target": True,
            },
            {
                "threads": 1,
                "runs": 1,
                "wall_s_median": 160.0,
                "wall_s_min": 160.0,
                "wall_s_max": 160.0,
                "evaluation_s_median": 155.0,
                "peak_rss_mb_max": 720.0,
                "meets_memory_target": False,
            },
        ],
        "runs": [],
    }
    text = page.render_page([("checkpoint_eval-3.json", record)])
    assert "## Checkpoint evaluation" in text and "under 90 s with 2 threads, under 700 MB" in text
    assert "| 2.13.0+cpu (CPU build) | 2 | 3 | 84.3 (80.0–95.5) | 80.0 | 502 | 229 | yes | yes |" in text
    assert "| 2.13.0+cpu (CPU build) | 1 | 1 | 160.0 (160.0–160.0) | 155.0 | 720 | 229 | – | no |" in text
    assert "`python benchmarks/checkpoint_eval.py --repeats 3`  — record `results/checkpoint_eval-3.json`" in text


def test_grading_memory_counts_every_process_of_the_tree():
    """The whole-grading memory benchmark adds up the grader and the processes it starts: a
    parent that starts a child holding 150 MiB is measured at 150 MiB or more, over two
    processes."""
    from benchmarks import grading_memory

    code = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "\"import time; block = bytearray(150 * 2**20); block[::4096] = b'x' * len(block[::4096]); "
        'time.sleep(1.5)"])'
    )
    run = grading_memory._measure([sys.executable, "-c", code], env={}, interval=0.05)
    assert run["exit"] == 0 and run["samples"] > 3
    assert run["most_processes"] == 2
    assert run["peak_total_pss_mb"] >= 150 and run["peak_total_rss_mb"] >= run["peak_total_pss_mb"] - 1


def test_checkpoint_eval_measures_the_childs_own_peak_memory():
    """The peak RSS is the grading process's own (VmHWM), not ru_maxrss, which would report at
    least this test process's memory (torch imported) copied at the fork."""
    from benchmarks import checkpoint_eval

    small = checkpoint_eval._run(sys.executable, "-c", "pass", [], env={})
    assert small["exit"] == 0 and 0 < small["peak_rss_mb"] < 100
    code = "block = bytearray(150 * 2**20); block[::4096] = b'x' * len(block[::4096])"
    large = checkpoint_eval._run(sys.executable, "-c", code, [], env={})
    assert large["exit"] == 0 and 150 <= large["peak_rss_mb"] < 250
    failing = checkpoint_eval._run(sys.executable, "-m", "json.tool", ["/nonexistent.json"], env={})
    assert failing["exit"] != 0 and failing["peak_rss_mb"] > 0  # measured also when the module fails


# ======================================================================================
# The prepared GPU session (benchmarks/gpu_session.py) and its CPU dry run
# ======================================================================================
def gpu_session(tmp: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The dry run as DEVELOPERS.md runs the real one: the script, its own process, --out."""
    command = [
        sys.executable,
        str(PROJECT_ROOT / "benchmarks" / "gpu_session.py"),
        "--dry-run",
        "--out",
        str(tmp / "out"),
        "--state-dir",
        str(tmp / "state"),
        "--data-root",
        str(tmp / "data"),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "SSL_LAB_CIFAR10", "SSL_LAB_SMOKE")}
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def dry_session(tmp_path_factory):
    """Two calls: the first with too little time for every step (it leaves some for the next
    call), the second finishing the session."""
    tmp = tmp_path_factory.mktemp("gpu_session")
    first = gpu_session(tmp, "--minutes", "0.35")
    first_files = sorted(p.name for p in (tmp / "out").iterdir())
    first_record = json.loads(next((tmp / "out").glob("gpu_session-*.json")).read_text())
    (tmp / "out").rename(tmp / "out-first")  # the device tool empties $OUT before each call
    second = gpu_session(tmp, "--minutes", "8")
    record = json.loads(next((tmp / "out").glob("gpu_session-*.json")).read_text())
    return {
        "tmp": tmp,
        "first": first,
        "first_files": first_files,
        "first_record": first_record,
        "second": second,
        "record": record,
    }


@pytest.mark.slow
def test_gpu_session_dry_run_runs_every_step(dry_session):
    """The CPU dry run of the GPU session: every step ran through the real code, the record says
    it was a smoke run and holds each step's result; nothing claims a GPU."""
    second, record = dry_session["second"], dry_session["record"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "GPU SESSION: finished" in second.stdout
    assert record["benchmark"] == "gpu_session" and record["smoke"] is True and record["device"] == "cpu"
    assert record["finished"] is True
    assert {name: step["status"] for name, step in record["steps"].items()} == {
        name: "done" for name, _, _ in gpu_session_module.STEPS
    }
    matmul = record["environment"]["matmul"]
    assert matmul and all(row["tflops"] > 0 for row in matmul)
    paths = {row["key"]: row for row in record["training_paths"]}
    assert set(paths) == {"simclr-bf16", "byol-fp16", "barlow-bf16-compile"}
    for row in paths.values():
        assert row["status"] == "done", row.get("error")
        assert row["images_per_second"] > 0 and row["finite_loss"] and len(row["loss_per_epoch"]) == row["epochs"]
        assert "peak_memory_gib" not in row  # no GPU figure from a CPU
    tests = record["steps"]["cuda_tests"]
    assert "tests/test_augment.py::test_cuda_matches_cpu_and_never_synchronises" in tests["selected"]
    assert "tests/test_train.py::test_fit_never_synchronises_between_steps_on_cuda" in tests["selected"]
    if not torch.cuda.is_available():
        assert tests["counts"]["skipped"] == len(tests["tests"]) > 0
    assert record["steps"]["time_to_accuracy"]["record"].startswith("time_to_accuracy-simclr-2ep-")
    lines = record["steps"]["time_to_accuracy"]["epoch_lines"]
    assert [line["epoch"] for line in lines] == [1, 2] and all(line["knn_percent"] is not None for line in lines)
    assert record["steps"]["seed_pipeline"]["record"].startswith("seed_pipeline-simclr-")
    assert record["steps"]["train_overheads"]["record"].startswith("train_overheads-")


@pytest.mark.slow
def test_gpu_session_continues_in_a_second_call(dry_session):
    """A call that runs out of time leaves steps for the next, which does only those."""
    first, record = dry_session["first"], dry_session["record"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "GPU SESSION: unfinished -- still to run:" in first.stdout
    assert dry_session["first_record"]["finished"] is False
    assert len(record["calls"]) == 2
    ran_first = {s["step"] for s in record["calls"][0]["steps"] if s["status"] == "done"}
    ran_second = {s["step"] for s in record["calls"][1]["steps"]}
    assert not ran_first & ran_second  # nothing finished is run again
    assert ran_first | ran_second == {name for name, _, _ in gpu_session_module.STEPS}


@pytest.mark.slow
def test_gpu_session_output_fits_the_device_tool(dry_session):
    """What comes back from a device call: at most 8 files, each under 16 MiB, named in letters,
    digits, '.', '_' and '-', no folders; the benchmark records are valid smoke records."""
    out = dry_session["tmp"] / "out"
    files = sorted(out.iterdir())
    assert 4 <= len(files) <= 8
    for path in files:
        assert path.is_file() and re.fullmatch(r"[A-Za-z0-9._-]+", path.name), path.name
        assert path.stat().st_size < 16 * 2**20
    for path in out.glob("*.json"):
        assert json.loads(path.read_text())["smoke"] is True
    tta_record = json.loads(next(out.glob("time_to_accuracy-*.json")).read_text())
    jsonschema.validate(tta_record, TIME_TO_ACCURACY_SCHEMA)
    jsonschema.validate(json.loads(next(out.glob("seed_pipeline-*.json")).read_text()), SEED_PIPELINE_SCHEMA)
    assert (out / next(out.glob("gpu_session-*.log")).name).read_text().count("=== gpu_session call") == 2
    assert set(dry_session["first_files"]) <= {p.name for p in files} | {
        n for n in dry_session["first_files"] if n.startswith("gpu_session-")
    }


@pytest.mark.slow
def test_gpu_session_call_after_the_end_runs_nothing(dry_session):
    """A third call on a finished session trains nothing and publishes the same records again."""
    tmp = dry_session["tmp"]
    third = gpu_session(tmp, "--minutes", "8", timeout=120)
    assert third.returncode == 0 and "GPU SESSION: finished" in third.stdout
    record = json.loads(next((tmp / "out").glob("gpu_session-*.json")).read_text())
    assert record["calls"][-1]["steps"] == []
    assert record["training_paths"] == dry_session["record"]["training_paths"]


def test_cuda_only_tests_are_found_by_their_skip_marker(tmp_path):
    """Tests skipped without CUDA are selected (function, class, method, whole module); tests
    skipped *with* CUDA, or for other reasons, are not."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_a.py").write_text(
        "import pytest, torch\n"
        "@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')\n"
        "def test_gpu(): pass\n"
        "@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')\n"
        "def test_no_gpu(): pass\n"
        "@pytest.mark.skipif(sys.platform == 'win32', reason='posix')\n"
        "def test_posix(): pass\n"
        "@pytest.mark.parametrize('x', [1])\n"
        "@pytest.mark.skipif(not (torch.cuda.is_available()), reason='gpu')\n"
        "def test_gpu_parametrized(x): pass\n"
        "class TestThings:\n"
        "    @pytest.mark.skipif(not torch.cuda.is_available(), reason='gpu')\n"
        "    def test_method(self): pass\n"
        "    def test_plain(self): pass\n"
        "@pytest.mark.skipif(not torch.cuda.is_available(), reason='gpu')\n"
        "class TestGpuClass:\n"
        "    def test_x(self): pass\n"
    )
    (tests / "test_b.py").write_text(
        "import pytest, torch\n"
        "pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason='gpu')]\n"
        "def test_anything(): pass\n"
    )
    (tests / "helper.py").write_text("def test_not_a_test_file(): pass\n")
    assert gpu_session_module.cuda_only_tests(tests) == [
        "tests/test_a.py::test_gpu",
        "tests/test_a.py::test_gpu_parametrized",
        "tests/test_a.py::TestThings::test_method",
        "tests/test_a.py::TestGpuClass",
        "tests/test_b.py",
    ]


def test_cuda_only_tests_of_the_project_include_the_no_sync_checks():
    found = gpu_session_module.cuda_only_tests()
    assert "tests/test_augment.py::test_cuda_matches_cpu_and_never_synchronises" in found
    assert "tests/test_train.py::test_fit_never_synchronises_between_steps_on_cuda" in found
    assert not any("without_cuda" in test for test in found)


def test_results_page_lists_the_recipes_and_attributed_public_results():
    """The recipes table comes from helpers.recipes; every public result names its source (a
    URL at a fixed commit) and is marked as not measured here."""
    from helpers.recipes import PUBLIC_RESULTS, RECIPES

    text = page.render_page([])
    section = text.split("## Recipes and what to expect")[1].split("\n## ")[0]
    for recipe in RECIPES.values():
        assert f"| {page.METHOD_NAMES[recipe.method]} | {recipe.epochs} | {recipe.batch_size} | " in section
    assert "published results, not measured here" in section
    for result in PUBLIC_RESULTS:
        assert re.fullmatch(r"https://github\.com/[^/]+/[^/]+/blob/[0-9a-f]{40}/\S+", result.url), result.url
        assert f"{100 * result.accuracy:.1f} %" in section and result.url in section


def test_results_page_shows_a_gpu_session_record():
    """A GPU session record: device line, tests, one row per precision path with its error."""
    record = {
        "benchmark": "gpu_session",
        "smoke": False,
        "device": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "torch_version": "2.11.0+cu130",
        "command": "python3 benchmarks/gpu_session.py --source .cifar",
        "environment": {
            "cuda_version": "13.0",
            "nvidia_smi": {"driver_version": "580.159.04"},
            "matmul": [{"dtype": "bfloat16", "tflops": 790.4}],
        },
        "steps": {
            "cuda_tests": {"status": "done", "counts": {"passed": 3, "failed": 0, "error": 0, "skipped": 0}},
            "time_to_accuracy": {
                "status": "partial",
                "epoch_lines": [
                    {"epoch": 1, "epochs": 100, "loss": 6.0, "knn_percent": None, "seconds": 9.0},
                    {"epoch": 2, "epochs": 100, "loss": 5.5, "knn_percent": None, "seconds": 4.0},
                    {"epoch": 3, "epochs": 100, "loss": 5.4, "knn_percent": 41.5, "seconds": 5.0},
                ],
            },
        },
        "training_paths": [
            {
                "method": "simclr",
                "amp": "bf16",
                "compile": False,
                "batch_size": 512,
                "status": "done",
                "first_epoch_seconds": 6.5,
                "steady_epoch_seconds": 3.25,
                "images_per_second": 15360.0,
                "peak_memory_gib": 5.5,
            },
            {
                "method": "byol",
                "amp": "fp16",
                "compile": True,
                "batch_size": 512,
                "status": "error",
                "error": "Traceback ...\nRuntimeError: boom",
            },
        ],
    }
    text = page.render_page([("gpu_session-nvidia-h100.json", record)])
    assert "**NVIDIA H100 80GB HBM3** (driver 580.159.04, torch 2.11.0+cu130, CUDA 13.0); bfloat16 790 TFLOP/s." in text
    assert "CUDA-only tests: 3 passed, 0 failed, 0 errors, 0 skipped." in text
    assert "| SimCLR | bf16 | off | 512 | 6.50 | 3.25 | 15,360 | 5.50 GiB | done |" in text
    assert "| BYOL | fp16 | on | 512 | – | – | – | – | error: RuntimeError: boom |" in text
    assert "No GPU session record yet" not in text
    assert (
        "SimCLR time to accuracy partial: 3 epochs of 100 trained, median 5.00 s per epoch, k-NN 41.5 % after epoch 3."
        in text
    )


def test_gpu_session_reads_fits_epoch_lines():
    """The per-epoch lines fit prints (k-NN only in the epochs that measured it) are parsed."""
    output = (
        "Resuming from x: 3 of 100 epochs done.\n"
        "epoch 4/100  loss 5.1234  lr 0.12  3.9 s\n"
        "epoch 5/100  loss 5.0011  k-NN 61.3 %  knn_seconds 1.2  lr 0.12  5.2 s\n"
        "STATUS: unfinished -- 5 of 100 epochs in x; run the same command again.\n"
    )
    assert gpu_session_module.epoch_lines(output) == [
        {"epoch": 4, "epochs": 100, "loss": 5.1234, "knn_percent": None, "seconds": 3.9},
        {"epoch": 5, "epochs": 100, "loss": 5.0011, "knn_percent": 61.3, "seconds": 5.2},
    ]
