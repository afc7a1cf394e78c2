"""The graded classifier checkpoint's format, and the checks a state_dict must pass.

Part of `helpers.checkpoint` (use that module: `save_classifier`, `load_classifier`): what a
checkpoint holds (`CHECKPOINT_FORMAT`, its version, its limits), `CheckpointError`, where the
state_dict sits in what ``torch.load`` returned (`find_state_dict`), and `check_state_dict`:
keys, shapes, dtypes, finite values and number of classes against `LinearClassifier`, with
messages that say what is wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from helpers.models import LinearClassifier

#: Value of the "format" entry of a checkpoint written by `save_classifier`.
CHECKPOINT_FORMAT = "ssl-lab-classifier"
#: Newest format version `helpers.checkpoint` reads and the one it writes.
CHECKPOINT_VERSION = 1
#: Largest checkpoint `load_classifier` reads (a ResNet-18 classifier is about 45 MiB).
MAX_CHECKPOINT_BYTES = 200 * 2**20
#: At most this many members in a checkpoint's zip (a ResNet-18 checkpoint has about 130).
MAX_ZIP_MEMBERS = 4096

# Keys of a training-checkpoint dict under which a classifier state_dict is looked for.
_STATE_DICT_ENTRIES = ("state_dict", "model_state_dict", "model")
# Prefixes added by nn.DataParallel / DistributedDataParallel and by torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# How many offending keys an error message names.
_SHOWN = 5
_SAVE_CALL = "helpers.save_classifier(classifier, path)"
_SAVE = f"Save the classifier with {_SAVE_CALL}"


class CheckpointError(ValueError):
    """A classifier checkpoint that cannot be saved or loaded; the message says why and what
    to do next."""


# ----------------------------------------------------------------------------- layout


def find_state_dict(obj: Any, path: Path) -> tuple[Mapping, dict | None]:
    """The state_dict inside what torch.load returned, and the wrapper's metadata if tagged."""
    if not isinstance(obj, Mapping):
        if isinstance(obj, torch.Tensor):
            kind = f"a tensor of shape {tuple(obj.shape)}"
        else:
            kind = f"a {type(obj).__name__}"
        raise CheckpointError(f"Checkpoint {path} holds {kind}, not the classifier's weights (a dict). {_SAVE}.")
    if "format" in obj:
        if obj["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"Checkpoint {path} has format {obj['format']!r}, expected {CHECKPOINT_FORMAT!r}. {_SAVE}."
            )
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"Checkpoint {path} has an invalid format version {version!r}. {_SAVE}.")
        if version > CHECKPOINT_VERSION:
            raise CheckpointError(
                f"Checkpoint {path} has format version {version}, newer than the {CHECKPOINT_VERSION} "
                f"this copy of helpers reads: update the helpers package (or save it with this copy)."
            )
        state = obj.get("state_dict")
        if not isinstance(state, Mapping):
            raise CheckpointError(f"Checkpoint {path} has no 'state_dict' dict (got {type(state).__name__}). {_SAVE}.")
        return state, {k: obj[k] for k in ("num_classes", "mean", "std") if k in obj}
    reference = set(_reference_shapes(1))
    if any(_strip_wrapper_prefixes(str(key)) in reference for key in obj):
        return obj, None  # a bare state_dict
    for entry in _STATE_DICT_ENTRIES:  # a training checkpoint {"model_state_dict": ..., ...}
        if isinstance(obj.get(entry), Mapping):
            return obj[entry], None
    if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
        return obj, None  # a state_dict of some other model: the key check explains
    keys = ", ".join(repr(k) for k in list(obj)[:8])
    raise CheckpointError(
        f"Checkpoint {path} is a dict with keys [{keys}] but holds no classifier weights "
        f"(no state_dict of helpers.LinearClassifier, directly or under "
        f"{' / '.join(repr(e) for e in _STATE_DICT_ENTRIES)}). {_SAVE}."
    )


def check_metadata(metadata: dict | None, state: dict, num_classes: int, where: str) -> None:
    """The wrapper's num_classes / mean / std must agree with the state_dict (its source of truth)."""
    if not metadata:
        return
    fix = f"The file was edited or assembled by hand. {_SAVE}."
    if "num_classes" in metadata and metadata["num_classes"] != num_classes:
        raise CheckpointError(
            f"{where} says num_classes={metadata['num_classes']!r} but fc.weight has {num_classes} rows. {fix}"
        )
    for name in ("mean", "std"):
        if name not in metadata:
            continue
        try:
            stored = torch.as_tensor(metadata[name], dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise CheckpointError(f"{where} has an invalid {name!r} entry {metadata[name]!r}. {fix}") from None
        actual = state[name].detach().to("cpu", torch.float64).flatten()
        if stored.shape != actual.shape or not torch.allclose(stored, actual, rtol=1e-3, atol=1e-6):
            raise CheckpointError(
                f"{where} has {name}={metadata[name]!r} but its state_dict buffer {name} is {actual.tolist()}. {fix}"
            )


# ----------------------------------------------------------------------------- checks


@lru_cache(maxsize=8)
def _reference_shapes(num_classes: int) -> dict[str, tuple[tuple[int, ...], bool]]:
    """name -> (shape, is floating) of a LinearClassifier's state_dict, built on the meta
    device (no memory, no initialisation)."""
    with torch.device("meta"):
        model = LinearClassifier(num_classes=num_classes)
    return {name: (tuple(t.shape), t.is_floating_point()) for name, t in model.state_dict().items()}


def _strip_wrapper_prefixes(key: str) -> str:
    for prefix in _WRAPPER_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _strip_common_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """Remove `module.` / `_orig_mod.` when every key carries it (DataParallel, torch.compile)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix) :]: value for key, value in state.items()}
                changed = True
    return state


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > _SHOWN else shown


def _key_hints(missing: list[str], unexpected: list[str], present: int) -> str:
    """Likely causes of a key mismatch, as sentences (empty when none is recognised)."""
    missing_set, unexpected_set = set(missing), set(unexpected)
    encoder_missing = any(k.startswith("encoder.") for k in missing)
    pretraining = any(k.startswith(("projector.", "predictor.")) for k in unexpected)
    mixed_prefix = any(
        _strip_wrapper_prefixes(k) != k and _strip_wrapper_prefixes(k) in missing_set for k in unexpected
    )
    bare_encoder = any(k.startswith("encoder.") and k[len("encoder.") :] in unexpected_set for k in missing)
    hints = []
    if pretraining:
        hints.append(
            "It holds an encoder with a projection head (a pre-training model), not the "
            "fine-tuned classifier: that is LinearClassifier(model.encoder, ...) after fine-tuning, "
            "saved as simclr_lin_best.pt."
        )
    if bare_encoder:
        hints.append(
            "Its encoder keys lack the 'encoder.' prefix: it is a bare encoder, or a model whose "
            "encoder is not the attribute `encoder`."
        )
    if mixed_prefix:
        hints.append(
            "Some keys start with 'module.' or '_orig_mod.' and others do not: save the "
            "unwrapped model (model.module for DataParallel, model._orig_mod for torch.compile)."
        )
    if any(k.startswith("encoder.fc.") for k in unexpected):
        hints.append("The encoder still has its own fc layer: set encoder.fc = nn.Identity().")
    # The two below only when the encoder is there and nothing above explains the mismatch.
    specific = encoder_missing or pretraining or mixed_prefix
    if not specific and {"mean", "std"} & missing_set:
        hints.append(
            "The input normalisation is missing: build helpers.LinearClassifier(encoder, "
            "mean=..., std=...) with the mean/std your data pipeline used, so the model holds it."
        )
    if not specific and {"fc.weight", "fc.bias"} & missing_set and unexpected:
        hints.append("The linear layer must be the attribute `fc` (nn.Linear(512, num_classes)).")
    if present == 0 and not hints:
        hints.append("None of its keys belongs to a LinearClassifier: it is the state_dict of another model.")
    return (" " + " ".join(hints)) if hints else ""


def _all_finite(tensor: torch.Tensor) -> bool:
    """True when no element is NaN or infinite.

    A NaN or infinity makes the sum non-finite, so a finite sum proves the check in one cheap
    reduction (10x faster than `isfinite(t).all()` on a ResNet layer); only when the sum
    overflows or is non-finite are the elements checked one by one.
    """
    if bool(torch.isfinite(tensor.sum())):
        return True
    return bool(torch.isfinite(tensor).all())


def check_state_dict(
    raw_state: Mapping, *, where: str, fix: str, expected_classes: int | None
) -> tuple[dict[str, torch.Tensor], int]:
    """Check a classifier state_dict against LinearClassifier; return it (prefixes stripped,
    floats as float32, integers as int64) and its number of classes."""
    bad_keys = [repr(k) for k in raw_state if not isinstance(k, str)]
    if bad_keys:
        raise CheckpointError(f"{where}: state_dict keys must be strings, got {_names(bad_keys)}. {fix}.")
    state = _strip_common_prefixes(dict(raw_state))

    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: state_dict[{name!r}] is a {type(value).__name__}, not a tensor. {fix}.")
        if value.is_meta or value.layout != torch.strided or value.is_quantized:
            raise CheckpointError(
                f"{where}: state_dict[{name!r}] is not a plain dense tensor with values "
                f"(layout {value.layout}, device {value.device}). {fix}."
            )

    expected_keys = _reference_shapes(1)  # the keys do not depend on the number of classes
    missing = [k for k in expected_keys if k not in state]
    unexpected = [k for k in state if k not in expected_keys]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_names(unexpected)}")
        present = len(expected_keys) - len(missing)
        raise CheckpointError(
            f"{where} does not match helpers.LinearClassifier ({'; '.join(parts)})."
            f"{_key_hints(missing, unexpected, present)} {fix}."
        )

    fc_weight = state["fc.weight"]  # (C, 512)
    num_classes = fc_weight.shape[0] if fc_weight.dim() == 2 and fc_weight.shape[0] > 0 else None
    if num_classes is not None and expected_classes is not None and num_classes != expected_classes:
        raise CheckpointError(
            f"{where}: the classifier has {num_classes} classes (fc.weight {tuple(fc_weight.shape)}), "
            f"expected {expected_classes}{' (CIFAR-10)' if expected_classes == 10 else ''}. Build it with "
            f"LinearClassifier(encoder, num_classes={expected_classes}, ...)."
        )
    if num_classes is None:
        num_classes = expected_classes or 10  # fc.weight is malformed: the shape check names it
    reference = _reference_shapes(num_classes)

    wrong_shapes = [
        f"{k}: {tuple(state[k].shape)} instead of {shape}"
        for k, (shape, _) in reference.items()
        if tuple(state[k].shape) != shape
    ]
    if wrong_shapes:
        hint = ""
        if tuple(state["encoder.conv1.weight"].shape) == (64, 3, 7, 7):
            hint = (
                " encoder.conv1 is the 7x7 ImageNet stem: use helpers.cifar_resnet18() "
                "(3x3 stride-1 conv1, no max-pool) as the encoder."
            )
        raise CheckpointError(f"{where} has tensors of the wrong shape: {_names(wrong_shapes)}.{hint} {fix}.")

    converted: dict[str, torch.Tensor] = {}
    for name, (_, is_float) in reference.items():
        tensor = state[name]
        if is_float:
            if not tensor.is_floating_point():
                raise CheckpointError(
                    f"{where}: {name} has dtype {tensor.dtype}, but weights must be floating point (float32). {fix}."
                )
            if not _all_finite(tensor):
                bad = int((~torch.isfinite(tensor)).sum())
                raise CheckpointError(
                    f"{where}: {name} contains {bad} NaN or infinite value(s): training diverged "
                    f"(lower the learning rate, check the loss) and these weights are unusable. "
                    f"Retrain, or use an earlier checkpoint."
                )
            converted[name] = tensor.float()
        else:
            if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
                raise CheckpointError(f"{where}: {name} has dtype {tensor.dtype}, expected an integer counter. {fix}.")
            converted[name] = tensor.long()
    if not bool((converted["std"] > 0).all()):
        raise CheckpointError(
            f"{where}: the std buffer {converted['std'].flatten().tolist()} has a zero or negative "
            f"entry, so the input normalisation divides by zero. {fix}."
        )
    return converted, num_classes
