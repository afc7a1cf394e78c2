"""Answers to `extract_features` (its cell defines `extract_features_and_labels`; graded in ssl_methods.ipynb).

The correct ways students write it and their known mistakes; tests/answers/__init__.py says
what each field promises.
"""

from __future__ import annotations

from . import correct, wrong

ANSWERS = [
    correct(
        "seed",
        "the seed's loop with the notebook's global `device`",
        """
import torch
import torch.nn.functional as F
from tqdm import tqdm


def extract_features_and_labels(model, dataloader, normalize=False):
    features = []
    labels = []
    for batch in tqdm(dataloader, disable=True):
        x, y = batch
        x = x.to(device)
        with torch.no_grad():
            feat = model(x)
            if type(feat) is tuple or type(feat) is list:
                feat = feat[0]
        features.append(feat.cpu())
        labels.append(y)
    features = torch.cat(features, dim=0)
    labels = torch.cat(labels, dim=0)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, labels
""",
        sample=True,
    ),
    correct(
        "inference_mode",
        "torch.inference_mode, a manual norm per batch",
        """
import torch


@torch.inference_mode()
def extract_features_and_labels(model, dataloader, normalize=False):
    model.eval()
    chunks, targets = [], []
    for x, y in dataloader:
        out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        if normalize:
            out = out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
        chunks.append(out.detach().cpu())
        targets.append(y.long())
    return torch.cat(chunks), torch.cat(targets)
""",
        sample=True,
    ),
    correct(
        "stack_rows",
        "collects rows one by one and stacks them",
        """
import torch


def extract_features_and_labels(model, dataloader, normalize=False):
    rows, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            if isinstance(out, (list, tuple)):
                out = out[0]
            rows.extend(out)
            labels.extend(int(v) for v in y)
    features = torch.stack(rows)
    if normalize:
        features = torch.nn.functional.normalize(features, p=2, dim=-1)
    return features, torch.tensor(labels, dtype=torch.long)
""",
        sample=True,
    ),
    correct(
        "model_device",
        "the seed's loop on the model's own device",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):

    device = next(model.parameters()).device
    features, labels = [], []
    for x, y in dataloader:
        with torch.no_grad():
            feat = model(x.to(device))
            if isinstance(feat, (tuple, list)):
                feat = feat[0]
        features.append(feat.cpu())
        labels.append(y)
    features, labels = torch.cat(features), torch.cat(labels)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, labels
""",
    ),
    wrong(
        "no_unwrap",
        "assumes the model returns a tensor (a tuple breaks torch.cat)",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            features.append(model(x))
            labels.append(y)
    features = torch.cat(features)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, torch.cat(labels)
""",
        hint="take its first element",
        sample=True,
        loses=(
            "extract_features: The features are the first element when the model returns a tuple or a list.",
            "extract_features: normalize=True gives unit rows, and the features carry no autograd graph.",
        ),
    ),
    wrong(
        "normalize_dim0",
        "normalises each feature (dim=0) instead of each vector",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            features.append(out[0] if isinstance(out, (tuple, list)) else out)
            labels.append(y)
    features = torch.cat(features)
    if normalize:
        features = F.normalize(features, dim=0)
    return features, torch.cat(labels)
""",
        hint="normalise each feature vector (row)",
        sample=True,
        loses=("extract_features: normalize=True gives unit rows, and the features carry no autograd graph.",),
    ),
    wrong(
        "grad_enabled",
        "no torch.no_grad(): the features keep an autograd graph",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    features, labels = [], []
    for x, y in dataloader:
        out = model(x)
        features.append(out[0] if isinstance(out, (tuple, list)) else out)
        labels.append(y)
    features = torch.cat(features)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, torch.cat(labels)
""",
        hint="with torch.no_grad():",
        sample=True,
        loses=("extract_features: normalize=True gives unit rows, and the features carry no autograd graph.",),
    ),
    wrong(
        "float_labels",
        "returns the labels as float32",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            features.append(out[0] if isinstance(out, (tuple, list)) else out)
            labels.append(y.float())
    features = torch.cat(features)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, torch.cat(labels)
""",
        hint="int64",
        sample=True,
        loses=(
            "extract_features: Features and labels of a model that returns a tensor, in the loader's order.",
            "extract_features: The features are the first element when the model returns a tuple or a list.",
            "extract_features: normalize=True gives unit rows, and the features carry no autograd graph.",
        ),
    ),
    wrong(
        "last_batch_only",
        "overwrites instead of collecting: only the last batch",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            features = out[0] if isinstance(out, (tuple, list)) else out
            labels = y
    if normalize:
        features = F.normalize(features, dim=1)
    return features, labels
""",
        hint="concatenate the features of all batches",
        sample=True,
        loses=(
            "extract_features: Features and labels of a model that returns a tensor, in the loader's order.",
            "extract_features: The features are the first element when the model returns a tuple or a list.",
            "extract_features: normalize=True gives unit rows, and the features carry no autograd graph.",
        ),
    ),
    wrong(
        "always_normalized",
        "ignores the flag and always L2-normalises",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):

    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            features.append(out[0] if isinstance(out, (tuple, list)) else out)
            labels.append(y)
    return F.normalize(torch.cat(features), dim=1), torch.cat(labels)
""",
        hint="L2-normalised although normalize=False",
    ),
    wrong(
        "detached_after",
        "runs the model with gradients enabled and only detaches afterwards (builds graphs, wastes memory)",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):

    features, labels = [], []
    for x, y in dataloader:
        out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        features.append(out.detach().cpu())
        labels.append(y)
    features = torch.cat(features)
    return (F.normalize(features, dim=1) if normalize else features), torch.cat(labels)
""",
        hint="with torch.no_grad():",
    ),
    wrong(
        "left_on_device",
        "leaves the features on the model's device: invisible on a CPU-only machine (the public check "
        "catches it when it runs on a GPU)",
        """
import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):

    device = next(model.parameters()).device
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x.to(device))
            features.append(out[0] if isinstance(out, (tuple, list)) else out)
            labels.append(y)
    features = torch.cat(features)
    return (F.normalize(features, dim=1) if normalize else features), torch.cat(labels)
""",
        hint=None,
    ),
]
