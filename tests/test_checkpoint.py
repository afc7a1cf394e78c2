"""Tests of helpers.checkpoint: saving and safely loading the graded classifier checkpoint.

One real ResNet-18 checkpoint (about 45 MB) is built and saved once per module. The other
files are written from a "weightless" state_dict with the same keys, shapes and dtypes in
which every tensor is a broadcast view of one value (distinct per key), so each file is a
few KB and loads in milliseconds: loading looks at keys, shapes, dtypes and values, never at
how the storage is laid out.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers.checkpoint import (
    CHECKPOINT_FORMAT,
    MAX_CHECKPOINT_BYTES,
    CheckpointError,
    load_classifier,
    save_classifier,
)
from helpers.models import LinearClassifier

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def classifier() -> LinearClassifier:
    """A classifier with non-trivial weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = LinearClassifier(num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture(scope="module")
def state(classifier) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in classifier.state_dict().items()}


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(2, 3, 8, 8)  # small images keep the ResNet forward cheap on a CPU


@pytest.fixture(scope="module")
def saved(classifier, tmp_path_factory) -> Path:
    """The classifier saved once with save_classifier into a folder that does not exist yet,
    shared (read-only) by the tests."""
    return save_classifier(classifier, tmp_path_factory.mktemp("saved") / "new" / "simclr_lin_best.pt")


@pytest.fixture(scope="module")
def weightless(state) -> dict[str, torch.Tensor]:
    """The state_dict's keys, shapes and dtypes with almost no storage (see module docstring)."""
    light = {}
    for index, (key, value) in enumerate(state.items()):
        if key in ("mean", "std"):
            light[key] = value.clone()
        elif value.is_floating_point():
            light[key] = torch.tensor(index / 1000, dtype=value.dtype).expand(value.shape)
        else:
            light[key] = torch.tensor(index, dtype=value.dtype).expand(value.shape)
    return light


def wrapper(weights, **overrides) -> dict:
    """The save_classifier layout around the state_dict `weights`."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "num_classes": 10,
        "mean": list(CIFAR_MEAN),
        "std": list(CIFAR_STD),
        "state_dict": weights,
    }
    payload.update(overrides)
    return payload


def write(path: Path, obj, **save_kwargs) -> Path:
    torch.save(obj, path, **save_kwargs)
    return path


def load_error(path: Path, **kwargs) -> str:
    """The message of the CheckpointError that load_classifier raises for `path`."""
    with pytest.raises(CheckpointError) as info:
        load_classifier(path, **kwargs)
    return str(info.value)


def assert_same_state(model: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = model.state_dict()
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype and torch.equal(actual[key], value), key


# ----------------------------------------------------------------------------- round trip


def test_round_trip_gives_identical_outputs(classifier, saved, images, state):
    """Does a saved and reloaded classifier compute exactly what the original computes, from
    raw [0, 1] images, in eval mode, on the CPU?"""
    loaded = load_classifier(saved)
    assert isinstance(loaded, LinearClassifier)
    assert not loaded.training and not loaded.encoder.training
    assert_same_state(loaded, state)
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    assert all(p.requires_grad for p in loaded.parameters())
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), classifier(images), rtol=0, atol=0)


def test_saved_file_holds_only_plain_data_in_the_documented_layout(saved, state):
    """Is the file {"format", "version", "num_classes", "mean", "std", "state_dict"} with plain
    contiguous CPU tensors (not Parameters), readable with weights_only=True, and alone in
    the folder save_classifier created (no temporary file left behind)?"""
    assert [p.name for p in saved.parent.iterdir()] == ["simclr_lin_best.pt"]
    payload = torch.load(saved, map_location="cpu", weights_only=True)
    assert payload["format"] == "ssl-lab-classifier"
    assert payload["version"] == 1
    assert payload["num_classes"] == 10
    torch.testing.assert_close(torch.tensor(payload["mean"]), torch.tensor(CIFAR_MEAN))
    torch.testing.assert_close(torch.tensor(payload["std"]), torch.tensor(CIFAR_STD))
    assert list(payload["state_dict"]) == list(state)
    for key, tensor in payload["state_dict"].items():
        assert type(tensor) is torch.Tensor, key
        assert tensor.device.type == "cpu" and tensor.is_contiguous(), key
    assert 40 * 2**20 < saved.stat().st_size < 50 * 2**20


def test_load_calls_torch_load_with_weights_only(weightless, tmp_path, monkeypatch):
    """Is the file read with torch.load(..., weights_only=True), never full unpickling?"""
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    path = write(tmp_path / "x.pt", wrapper(weightless))
    monkeypatch.setattr(torch, "load", spy)
    load_classifier(path)
    assert calls and all(call.get("weights_only") is True for call in calls)
    assert calls[0].get("map_location") == "cpu"


def test_save_is_atomic_and_leaves_no_temporary_files(classifier, tmp_path, monkeypatch):
    """Does a save that fails midway keep the previous file intact and leave no temporary file?"""
    target = tmp_path / "simclr_lin_best.pt"
    before = b"the previous checkpoint"
    target.write_bytes(before)

    def failing_save(obj, file, *args, **kwargs):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_classifier(classifier, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["simclr_lin_best.pt"]


# ----------------------------------------------------------------------------- saving


class StudentClassifier(nn.Module):
    """A student's own class with the LinearClassifier keys (normalisation inside)."""

    def __init__(self, encoder: nn.Module, fc: nn.Linear, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.encoder = encoder
        self.fc = fc

    def forward(self, x):
        return self.fc(self.encoder((x - self.mean) / self.std))


def test_save_accepts_an_equivalent_student_class_wrapped_in_data_parallel(classifier, tmp_path, images, state):
    """Is a module whose state_dict has exactly the LinearClassifier keys accepted, also inside
    nn.DataParallel (keys prefixed `module.`, saved without it), and does the reloaded
    LinearClassifier compute the same function?"""
    student = StudentClassifier(classifier.encoder, classifier.fc, classifier.mean, classifier.std).eval()
    path = save_classifier(nn.DataParallel(student), str(tmp_path / "student.pt"))
    assert path == tmp_path / "student.pt"
    loaded = load_classifier(path)
    assert_same_state(loaded, state)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), student(images), rtol=0, atol=0)


class PretrainModel(nn.Module):
    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projector = nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 16))


def test_save_refuses_a_pretraining_model(classifier, tmp_path):
    """Is a SimCLR-style model (encoder + projector) refused, naming the key differences and
    how to build the classifier, with no file written?"""
    with pytest.raises(CheckpointError) as info:
        save_classifier(PretrainModel(classifier.encoder), tmp_path / "x.pt")
    message = str(info.value)
    assert "PretrainModel" in message and "LinearClassifier" in message
    assert "missing keys: mean, std, fc.weight, fc.bias" in message
    assert "projector.0.weight" in message
    assert "pre-training" in message
    assert "normalisation" not in message  # only the hint that explains the mismatch
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_save_refuses_non_finite_weights(weightless, tmp_path, bad):
    state = dict(weightless)
    state["fc.bias"] = torch.tensor([0.0] * 9 + [bad])
    with pytest.raises(CheckpointError, match=r"fc\.bias contains 1 NaN or infinite"):
        save_classifier(state, tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("model", ["simclr_lin_best.pt", None, 3])
def test_save_refuses_what_is_not_a_model(model, tmp_path):
    with pytest.raises(CheckpointError, match="expects the classifier"):
        save_classifier(model, tmp_path / "x.pt")


def test_save_refuses_a_folder_as_target(weightless, tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        save_classifier(weightless, tmp_path)


# ----------------------------------------------------------------------------- lenient loading


@pytest.mark.parametrize(
    "layout",
    ["bare", "module.", "_orig_mod.", "module._orig_mod.", "model_state_dict", "state_dict", "legacy"],
)
def test_load_accepts_safe_variants(layout, weightless, tmp_path):
    """Are the documented safe variants accepted with exactly the saved weights: a bare
    state_dict, DataParallel / torch.compile prefixes, a training-checkpoint dict holding the
    state_dict, and the legacy (non-zip) torch.save format?"""
    state = weightless
    path = tmp_path / "variant.pt"
    if layout == "bare":
        write(path, state)
    elif layout.endswith("."):
        write(path, {layout + k: v for k, v in state.items()})
    elif layout in ("model_state_dict", "state_dict"):
        write(path, {"epoch": 3, layout: state, "optimizer_state_dict": {"state": {}, "param_groups": []}})
    else:
        write(path, wrapper(state), _use_new_zipfile_serialization=False)
    assert_same_state(load_classifier(path), state)


def test_load_accepts_half_precision_weights_as_float32(weightless, tmp_path):
    half = {k: v.half() if v.is_floating_point() else v for k, v in weightless.items()}
    loaded = load_classifier(write(tmp_path / "half.pt", half))
    expected = {k: v.float() if v.is_floating_point() else v for k, v in half.items()}
    assert_same_state(loaded, expected)
    assert loaded.fc.weight.dtype == torch.float32


def test_load_other_number_of_classes_when_allowed(weightless, tmp_path):
    """expected_classes=None accepts any number of classes; the model then has that many."""
    hundred = dict(weightless, **{"fc.weight": torch.randn(100, 512), "fc.bias": torch.randn(100)})
    path = write(tmp_path / "c100.pt", wrapper(hundred, num_classes=100))
    message = load_error(path)
    assert "100 classes" in message and "expected 10" in message
    loaded = load_classifier(path, expected_classes=None)
    assert loaded.num_classes == 100 and loaded.fc.weight.shape == (100, 512)
    assert_same_state(loaded, hundred)


def test_partial_prefix_is_not_stripped(weightless, tmp_path):
    """Only a prefix on every key is removed; a stray `module.` key is reported."""
    state = dict(weightless)
    state["module.fc.bias"] = state.pop("fc.bias")
    message = load_error(write(tmp_path / "p.pt", state))
    assert "missing keys: fc.bias" in message and "unexpected keys: module.fc.bias" in message
    assert "save the unwrapped model" in message


# ----------------------------------------------------------------------------- file problems


@pytest.mark.parametrize("sibling", ["simclr_lin_best.pth", "simclr_best_epoch.pt", "Simclr_Lin_Best.PT"])
def test_missing_file_suggests_a_similarly_named_sibling(tmp_path, sibling):
    (tmp_path / sibling).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("unrelated")
    message = load_error(tmp_path / "simclr_lin_best.pt")
    assert "not found" in message
    assert sibling in message and "notes.txt" not in message
    assert "rename it to simclr_lin_best.pt" in message


def test_missing_file_without_siblings(tmp_path):
    message = load_error(tmp_path / "simclr_lin_best.pt")
    assert "Checkpoint not found" in message and "save_classifier" in message


def test_missing_folder(tmp_path):
    message = load_error(tmp_path / "nowhere" / "simclr_lin_best.pt")
    assert "does not exist" in message


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "simclr_lin_best.pt").write_bytes(b"x")
    message = load_error(tmp_path)
    assert "is a folder" in message and "simclr_lin_best.pt" in message


def test_empty_file(tmp_path):
    path = tmp_path / "simclr_lin_best.pt"
    path.touch()
    message = load_error(path)
    assert "empty (0 bytes)" in message and "Save it again" in message


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    """Is a file over the cap refused from its size alone (no open, no torch.load)?"""
    path = tmp_path / "huge.pt"
    with open(path, "wb") as file:
        file.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: no disk space used

    def no_reading(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(torch, "load", no_reading)
    monkeypatch.setattr(Path, "open", no_reading)
    message = load_error(path)
    assert "larger than the limit of 209,715,200 bytes (200.0 MiB)" in message
    assert "209,715,201 bytes" in message and "was not read" in message


def test_max_bytes_argument(saved):
    message = load_error(saved, max_bytes=10 * 2**20)
    assert "larger than the limit of 10,485,760 bytes (10.0 MiB)" in message


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_truncated_file(weightless, tmp_path, legacy):
    full = write(tmp_path / "full.pt", wrapper(weightless), _use_new_zipfile_serialization=not legacy)
    data = full.read_bytes()
    path = tmp_path / "simclr_lin_best.pt"
    path.write_bytes(data[: len(data) // 2])
    message = load_error(path)
    assert "truncated or corrupted" in message and "save it again" in message


def test_corrupted_header(weightless, tmp_path):
    data = bytearray(write(tmp_path / "full.pt", wrapper(weightless)).read_bytes())
    for i in range(30, 200):
        data[i] ^= 0xFF
    path = tmp_path / "simclr_lin_best.pt"
    path.write_bytes(bytes(data))
    assert "truncated or corrupted" in load_error(path)


def _plain_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hw5/notes.txt", "hello")


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"hello, this is my model\n", "text file"),
        (json.dumps({"cells": [], "nbformat": 4}).encode(), "Jupyter notebook"),
        (b"\xff\xd8\xff\xe0" + bytes(range(256)), "JPEG image"),
        (b"\x01\x02\x03\xfe\xfa" * 10, "first bytes"),
        (pickle.dumps({"fc.weight": [1.0, 2.0]}, protocol=2), "plain Python pickle"),
        (pickle.dumps({"fc.weight": [1.0, 2.0]}, protocol=5), "plain Python pickle"),
        (_plain_zip, "zip archive but not a PyTorch checkpoint"),
    ],
    ids=["text", "notebook", "jpeg", "binary", "pickle2", "pickle5", "zip"],
)
def test_not_a_torch_checkpoint(tmp_path, content, fragment):
    path = tmp_path / "simclr_lin_best.pt"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    message = load_error(path)
    assert fragment in message
    assert "save_classifier" in message or "not a zip of it" in message


def test_unsupported_pickle_protocol(weightless, tmp_path):
    path = write(tmp_path / "p4.pt", wrapper(weightless), pickle_protocol=4)
    message = load_error(path)
    assert "pickle protocol" in message and "save_classifier" in message


# ----------------------------------------------------------------------------- malicious files


class OpenMarker:
    """Unpickling this calls open(marker, "w"), creating the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class SystemMarker:
    """Unpickling this runs a shell command that creates the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


PAYLOADS = {"open": OpenMarker, "os.system": SystemMarker}


def write_malicious(path: Path, container: str, payload) -> Path:
    if container == "pickle-protocol-2":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif container == "pickle-protocol-5":
        path.write_bytes(pickle.dumps(payload, protocol=5))
    elif container == "torch-zip":
        torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "state_dict": {"x": payload}}, path)
    elif container == "torch-legacy":
        torch.save({"state_dict": payload}, path, _use_new_zipfile_serialization=False)
    return path


CONTAINERS = ["pickle-protocol-2", "pickle-protocol-5", "torch-zip", "torch-legacy"]


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_malicious_pickle_is_refused_and_never_run(tmp_path, container, kind):
    """Does a file whose unpickling would run code (create a marker file) raise a
    CheckpointError that says so, without creating the marker?"""
    marker = tmp_path / "marker"
    path = write_malicious(tmp_path / "simclr_lin_best.pt", container, PAYLOADS[kind](marker))
    message = load_error(path)
    assert "not allowed" in message and "nothing in it was run" in message
    assert not marker.exists()


@pytest.mark.parametrize("container", ["pickle-protocol-2", "torch-zip"])
def test_malicious_payload_is_live(tmp_path, container):
    """Control for the test above: full unpickling of the same files does create the marker,
    so its absence there means load_classifier never ran the payload."""
    marker = tmp_path / "marker"
    path = write_malicious(tmp_path / "evil.pt", container, OpenMarker(marker))
    if container == "torch-zip":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_malicious_object_hidden_in_a_valid_checkpoint(weightless, tmp_path):
    marker = tmp_path / "marker"
    path = write(tmp_path / "simclr_lin_best.pt", wrapper(weightless, notes=OpenMarker(marker)))
    assert "nothing in it was run" in load_error(path)
    assert not marker.exists()


def test_whole_model_saved_with_torch_save(tmp_path):
    """torch.save(model) pickles the model's class: refused, with the fix."""
    path = write(tmp_path / "simclr_lin_best.pt", nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    message = load_error(path)
    assert "torch.nn.modules" in message and "torch.save(model, path)" in message
    assert "save_classifier" in message


# ----------------------------------------------------------------------------- wrong content


@pytest.mark.parametrize(
    "obj, fragment",
    [
        (torch.zeros(3), "holds a tensor of shape (3,)"),
        ([1, 2, 3], "holds a list"),
        ({"epoch": 3, "optimizer": {"lr": 0.1}}, "holds no classifier weights"),
    ],
)
def test_wrong_top_level_object(tmp_path, obj, fragment):
    assert fragment in load_error(write(tmp_path / "x.pt", obj))


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"format": "something-else"}, "has format 'something-else'"),
        ({"version": 2}, "newer than"),
        ({"version": "1"}, "invalid format version"),
        ({"state_dict": [1, 2]}, "no 'state_dict' dict"),
        ({"num_classes": 5}, "num_classes=5 but fc.weight has 10 rows"),
        ({"mean": [0.0, 0.0, 0.0]}, "state_dict buffer mean"),
        ({"std": "wide"}, "invalid 'std' entry"),
    ],
)
def test_inconsistent_wrapper(weightless, tmp_path, overrides, fragment):
    path = write(tmp_path / "x.pt", wrapper(weightless, **overrides))
    assert fragment in load_error(path)


def test_missing_keys_are_named(weightless, tmp_path):
    state = {k: v for k, v in weightless.items() if k != "encoder.layer4.1.bn2.weight"}
    message = load_error(write(tmp_path / "x.pt", wrapper(state)))
    assert "missing keys: encoder.layer4.1.bn2.weight" in message
    assert "unexpected" not in message
    assert "save_classifier" in message


def test_unexpected_keys_are_named(weightless, tmp_path):
    state = dict(weightless, **{"encoder.extra.weight": torch.zeros(3), "head.bias": torch.zeros(2)})
    message = load_error(write(tmp_path / "x.pt", wrapper(state)))
    assert "unexpected keys: encoder.extra.weight, head.bias" in message
    assert "missing" not in message


def test_many_missing_keys_are_counted(weightless, tmp_path):
    state = {k: v for k, v in weightless.items() if not k.startswith("encoder.layer4.")}
    message = load_error(write(tmp_path / "x.pt", wrapper(state)))
    missing = sum(k.startswith("encoder.layer4.") for k in weightless)
    assert f"({missing} in all)" in message


@pytest.mark.parametrize(
    "transform, fragments",
    [
        (
            lambda s: {k: v for k, v in s.items() if k not in ("mean", "std")},
            ["missing keys: mean, std", "normalisation is missing"],
        ),
        (
            lambda s: {
                **{k: v for k, v in s.items() if k.startswith("encoder.")},
                "projector.0.weight": torch.zeros(2048, 512),
                "projector.2.weight": torch.zeros(128, 2048),
            },
            ["unexpected keys: projector.0.weight", "pre-training"],
        ),
        (
            lambda s: {k.removeprefix("encoder."): v for k, v in s.items()},
            ["missing keys: encoder.conv1.weight", "lack the 'encoder.' prefix"],
        ),
        (
            lambda s: {**s, "encoder.fc.weight": torch.zeros(10, 512)},
            ["unexpected keys: encoder.fc.weight", "encoder.fc = nn.Identity()"],
        ),
        (
            lambda s: {("linear." + k[3:] if k.startswith("fc.") else k): v for k, v in s.items()},
            ["missing keys: fc.weight, fc.bias", "unexpected keys: linear.weight", "attribute `fc`"],
        ),
    ],
    ids=["no-normalisation", "pretraining", "bare-encoder", "encoder-fc", "renamed-fc"],
)
def test_key_mismatch_hints(weightless, tmp_path, transform, fragments):
    """Does a key mismatch with a recognisable cause say what the cause is?"""
    message = load_error(write(tmp_path / "x.pt", transform(dict(weightless))))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "key, shape, fragments",
    [
        ("encoder.conv1.weight", (64, 3, 7, 7), ["(64, 3, 7, 7) instead of (64, 3, 3, 3)", "ImageNet stem"]),
        ("fc.weight", (10, 2048), ["fc.weight: (10, 2048) instead of (10, 512)"]),
        ("mean", (3,), ["mean: (3,) instead of (1, 3, 1, 1)"]),
        (
            "encoder.layer2.0.bn1.running_var",
            (64,),
            ["encoder.layer2.0.bn1.running_var: (64,) instead of (128,)"],
        ),
    ],
)
def test_shape_mismatches_are_named_with_both_shapes(weightless, tmp_path, key, shape, fragments):
    state = dict(weightless)
    state[key] = torch.ones(()).expand(shape)
    message = load_error(write(tmp_path / "x.pt", state))
    assert "wrong shape" in message
    for fragment in fragments:
        assert fragment in message


def test_wrong_number_of_classes(weightless, tmp_path):
    state = dict(weightless, **{"fc.weight": torch.zeros(()).expand(100, 512), "fc.bias": torch.zeros(100)})
    message = load_error(write(tmp_path / "x.pt", wrapper(state, num_classes=100)))
    assert "has 100 classes" in message and "expected 10" in message
    assert "num_classes=10" in message
    assert "100 classes" in load_error(tmp_path / "x.pt", expected_classes=10)
    assert "has 10 classes" in load_error(write(tmp_path / "y.pt", weightless), expected_classes=5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("key", ["fc.bias", "encoder.layer3.0.conv2.weight", "encoder.bn1.running_var"])
def test_non_finite_values(weightless, tmp_path, key, bad):
    state = dict(weightless)
    values = torch.zeros(state[key].shape)
    values.view(-1)[0] = bad
    state[key] = values
    message = load_error(write(tmp_path / "x.pt", wrapper(state)))
    assert f"{key} contains 1 NaN or infinite value(s)" in message
    assert "training diverged" in message


@pytest.mark.parametrize(
    "key, dtype, fragment",
    [
        ("fc.weight", torch.int64, "fc.weight has dtype torch.int64, but weights must be floating point"),
        ("encoder.conv1.weight", torch.bool, "encoder.conv1.weight has dtype torch.bool"),
        ("std", torch.int32, "std has dtype torch.int32"),
        ("encoder.bn1.num_batches_tracked", torch.float32, "expected an integer counter"),
    ],
)
def test_wrong_dtypes(weightless, tmp_path, key, dtype, fragment):
    state = dict(weightless)
    state[key] = torch.ones(state[key].shape).to(dtype)
    assert fragment in load_error(write(tmp_path / "x.pt", state))


def test_non_tensor_value(weightless, tmp_path):
    state = dict(weightless, **{"fc.bias": [0.0] * 10})
    message = load_error(write(tmp_path / "x.pt", wrapper(state)))
    assert "state_dict['fc.bias'] is a list, not a tensor" in message


def test_zero_std_buffer(weightless, tmp_path):
    state = dict(weightless, std=torch.tensor([0.2, 0.0, 0.2]).view(1, 3, 1, 1))
    assert "divides by zero" in load_error(write(tmp_path / "x.pt", state))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_map_location_without_a_gpu(saved):
    assert "no CUDA GPU" in load_error(saved, map_location="cuda")


# ----------------------------------------------------------------------------- opening safely
def _deflated(source: Path, target: Path) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return target


def test_load_refuses_a_zip_that_would_inflate_past_the_cap(tmp_path, monkeypatch):
    """A few KB of DEFLATE that torch.load would expand to 32 MiB is refused by
    load_classifier itself, before torch.load sees it."""
    plain = write(tmp_path / "plain.pt", {"w": torch.zeros(8 * 2**20)})
    bomb = _deflated(plain, tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 200_000

    def no_loading(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_loading)
    message = load_error(bomb, max_bytes=16 * 2**20)
    assert "would expand to" in message and "more than the limit of 16 MiB" in message


@pytest.mark.timeout(20)
def test_load_refuses_a_named_pipe_without_waiting_on_it(tmp_path):
    pipe = tmp_path / "simclr_lin_best.pt"
    os.mkfifo(pipe)
    assert "not a regular file" in load_error(pipe)


def test_load_reads_from_an_open_file_and_path_only_names_it(weightless, tmp_path):
    """With `file=`, nothing is read through `path` (the autograder opened the file itself)."""
    path = write(tmp_path / "real.pt", wrapper(weightless))
    with open(path, "rb") as file:
        model = load_classifier(tmp_path / "nowhere" / "named.pt", file=file)
    assert isinstance(model, LinearClassifier)
    with open(write(tmp_path / "bad.pt", {"x": 1}), "rb") as file, pytest.raises(CheckpointError) as info:
        load_classifier(tmp_path / "named.pt", file=file)
    assert "named.pt" in str(info.value)
