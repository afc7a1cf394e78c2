"""Answers to every graded task, as students write them: correct variants and wrong ones.

Each entry is the full source of a graded cell (what a student's notebook would hold under
that ``grade_id``). The correct variants must keep full points; every wrong one must lose
points on its own task, and only there (see tests/test_grading.py). The wrong answers are
the mistakes of DESIGN.md's contract and issue 4 (self-similarity not masked, mean over N,
temperature multiplied, one view order, EMA before the step or on the wrong network,
gradients accumulated, projections not normalised, accuracy in percent, no stop-gradient,
...) plus others students make.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    task: str
    name: str
    why: str
    source: str


CORRECT: dict[str, list[Answer]] = {}
WRONG: dict[str, list[Answer]] = {}


def _add(table: dict, task: str, name: str, why: str, source: str) -> None:
    table.setdefault(task, []).append(Answer(task, name, why, source.strip("\n") + "\n"))


def correct(task: str, name: str, why: str, source: str) -> None:
    _add(CORRECT, task, name, why, source)


def wrong(task: str, name: str, why: str, source: str) -> None:
    _add(WRONG, task, name, why, source)


# ======================================================================================
# extract_features
# ======================================================================================
correct("extract_features", "seed", "the seed's loop with the notebook's global `device`", '''
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
''')
correct("extract_features", "inference_mode", "torch.inference_mode, a manual norm per batch", '''
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
''')
correct("extract_features", "stack_rows", "collects rows one by one and stacks them", '''
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
''')
wrong("extract_features", "no_unwrap", "assumes the model returns a tensor (a tuple breaks torch.cat)", '''
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
''')
wrong("extract_features", "normalize_dim0", "normalises each feature (dim=0) instead of each vector", '''
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
''')
wrong("extract_features", "grad_enabled", "no torch.no_grad(): the features keep an autograd graph", '''
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
''')
wrong("extract_features", "float_labels", "returns the labels as float32", '''
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
''')
wrong("extract_features", "last_batch_only", "overwrites instead of collecting: only the last batch", '''
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
''')

# ======================================================================================
# probes
# ======================================================================================
_KNN_OK = '''
def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5)
    knn.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))
'''
_LINEAR_OK = '''
def run_linear_probe(train_features, train_labels, test_features, test_labels):
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(np.asarray(train_features), np.asarray(train_labels))
    return float(classifier.score(np.asarray(test_features), np.asarray(test_labels)))
'''
_PROBE_IMPORTS = '''
import numpy as np
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
'''
correct("probes", "seed", "the seed's probes with accuracy_score (tensors converted by sklearn)", _PROBE_IMPORTS + '''

def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5, n_jobs=-1)
    knn.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, knn.predict(test_features))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    logreg = LogisticRegression(max_iter=1000, n_jobs=-1)
    logreg.fit(train_features, train_labels)
    return skm.accuracy_score(test_labels, logreg.predict(test_features))
''')
correct("probes", "mean_of_matches", "accuracy as the mean of matches, numpy conversions", _PROBE_IMPORTS + '''

def _np(a):
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    model = KNeighborsClassifier(5).fit(_np(train_features), _np(train_labels))
    return float((model.predict(_np(test_features)) == _np(test_labels)).mean())


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = LogisticRegression(max_iter=2000).fit(_np(train_features), _np(train_labels))
    return float((model.predict(_np(test_features)) == _np(test_labels)).mean())
''')
wrong("probes", "percent", "returns the k-NN accuracy in percent", _PROBE_IMPORTS + '''

def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return 100.0 * knn.score(np.asarray(test_features), np.asarray(test_labels))
''' + _LINEAR_OK)
wrong("probes", "train_accuracy", "scores the linear probe on the training set", _PROBE_IMPORTS + _KNN_OK + '''

def run_linear_probe(train_features, train_labels, test_features, test_labels):
    classifier = LogisticRegression(max_iter=1000).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(classifier.score(np.asarray(train_features), np.asarray(train_labels)))
''')
wrong("probes", "k1", "1-nearest neighbour instead of k = 5", _PROBE_IMPORTS + '''

def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=1).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))
''' + _LINEAR_OK)
wrong("probes", "linear_is_knn", "the linear probe is a k-NN classifier", _PROBE_IMPORTS + _KNN_OK + '''

def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(model.score(np.asarray(test_features), np.asarray(test_labels)))
''')
wrong("probes", "tensor_result", "returns torch tensors instead of Python floats", _PROBE_IMPORTS + '''
import torch


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    knn = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return torch.tensor(knn.score(np.asarray(test_features), np.asarray(test_labels)))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    model = LogisticRegression(max_iter=1000).fit(np.asarray(train_features), np.asarray(train_labels))
    return torch.tensor(model.score(np.asarray(test_features), np.asarray(test_labels)))
''')

# ======================================================================================
# simclr_forward / byol_forward (the base classes are the notebooks' locked cells)
# ======================================================================================
def _simclr(body: str, imports: str = "import torch\nimport torch.nn.functional as F\n") -> str:
    return imports + "\n\nclass SimCLRModel(SimCLRModelBase):\n    def forward(self, x):\n" + body


correct("simclr_forward", "f_normalize", "F.normalize", _simclr('''
        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
'''))
correct("simclr_forward", "manual_norm", "a manual norm with eps", _simclr('''
        representation = self.encoder(x)
        projection = self.projector(representation)
        return representation, projection / (projection.norm(dim=-1, keepdim=True) + 1e-8)
'''))
wrong("simclr_forward", "unnormalized", "the projections are not L2-normalised", _simclr('''
        h = self.encoder(x)
        return h, self.projector(h)
'''))
wrong("simclr_forward", "normalize_dim0", "normalises along the batch (dim=0)", _simclr('''
        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=0)
'''))
wrong("simclr_forward", "normalized_repr", "projects a normalised representation and returns it", _simclr('''
        h = F.normalize(self.encoder(x), dim=1)
        return h, F.normalize(self.projector(h), dim=1)
'''))
wrong("simclr_forward", "swapped", "returns (proj, repr)", _simclr('''
        h = self.encoder(x)
        return F.normalize(self.projector(h), dim=1), h
'''))
wrong("simclr_forward", "frozen_encoder", "computes the representation under no_grad: the encoder never learns", _simclr('''
        with torch.no_grad():
            h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
'''))


def _byol(body: str) -> str:
    return ("import torch\nimport torch.nn.functional as F\n\n\nclass BYOLModel(BYOLModelBase):\n"
            "    def forward(self, x):\n" + body)


correct("byol_forward", "seed", "the seed's F.normalize(eps=1e-8)", _byol('''
        repr = self.encoder(x)
        proj = self.projector(repr)
        pred = self.predictor(proj)
        return repr, F.normalize(proj, dim=-1, eps=1e-8), F.normalize(pred, dim=-1, eps=1e-8)
'''))
correct("byol_forward", "manual_norm", "manual norms, a list instead of a tuple", _byol('''
        h = self.encoder(x)
        z = self.projector(h)
        q = self.predictor(z)
        return [h, z / z.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)]
'''))
wrong("byol_forward", "pred_unnormalized", "pred is not normalised", _byol('''
        h = self.encoder(x)
        z = self.projector(h)
        return h, F.normalize(z, dim=1), self.predictor(z)
'''))
wrong("byol_forward", "pred_from_unit_proj", "feeds the normalised projection to the predictor", _byol('''
        h = self.encoder(x)
        z = F.normalize(self.projector(h), dim=1)
        return h, z, F.normalize(self.predictor(z), dim=1)
'''))
wrong("byol_forward", "proj_unnormalized", "proj is not normalised", _byol('''
        h = self.encoder(x)
        z = self.projector(h)
        return h, z, F.normalize(self.predictor(z), dim=1)
'''))
wrong("byol_forward", "two_outputs", "returns only (repr, pred)", _byol('''
        h = self.encoder(x)
        return h, F.normalize(self.predictor(self.projector(h)), dim=1)
'''))

# ======================================================================================
# nt_xent
# ======================================================================================
_NT = "import torch\nimport torch.nn.functional as F\n\n\ndef nt_xent(z1, z2, tau=0.5):\n"
correct("nt_xent", "seed", "the seed's: masked_fill(-1e9) and cross_entropy", _NT + '''
    B, d = z1.shape
    z = torch.cat([z1, z2], dim=0)
    sim = (z @ z.t()) / tau
    mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    sim.masked_fill_(mask, -1e9)
    targets = torch.arange(B, device=z.device)
    targets = torch.cat([targets + B, targets], dim=0)
    return F.cross_entropy(sim, targets)
''')
correct("nt_xent", "loop", "a loop over the 2N anchors, straight from the paper's equation", _NT + '''
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = torch.stack([z[i] @ z[k] / tau for k in range(2 * n) if k != i])
        total = total - (z[i] @ z[j] / tau - torch.logsumexp(sims, dim=0))
    return total / (2 * n)
''')
correct("nt_xent", "renormalize_logsumexp", "re-normalises its inputs, explicit logsumexp", _NT + '''
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.T / tau
    logits = logits - torch.eye(2 * n) * 1e12
    positives = torch.cat([torch.diagonal(logits, n), torch.diagonal(logits, -n)])
    return (torch.logsumexp(logits, dim=1) - positives).mean()
''')
wrong("nt_xent", "no_self_mask", "self-similarity not masked", _NT + '''
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = z @ z.T / tau
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)
''')
wrong("nt_xent", "mean_over_n", "sums the 2N terms and divides by N (the EPFL markdown's 1/N)", _NT + '''
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets, reduction="sum") / n
''')
wrong("nt_xent", "tau_multiplied", "multiplies by the temperature", _NT + '''
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T * tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets)
''')
wrong("nt_xent", "one_direction", "only the anchors of the first view", _NT + '''
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z1 @ z.T / tau).masked_fill(torch.eye(n, 2 * n, dtype=torch.bool), float("-inf"))
    return F.cross_entropy(logits, torch.arange(n, 2 * n))
''')
wrong("nt_xent", "cross_view_only", "negatives from the other view only", _NT + '''
    logits = z1 @ z2.T / tau
    targets = torch.arange(z1.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
''')
wrong("nt_xent", "returns_float", "returns loss.item(): no gradient can flow", _NT + '''
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets).item()
''')

# ======================================================================================
# simclr_step
# ======================================================================================
_SIMCLR_STEP = "import torch\n\n\ndef simclr_train_step(model, x1, x2, optimizer, tau=0.5):\n"
correct("simclr_step", "separate_views", "two forward passes (the ssl_methods reference's way)", _SIMCLR_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
correct("simclr_step", "concatenated", "one forward of both views, zero_grad after the step", _SIMCLR_STEP + '''
    _, z = model(torch.cat([x1, x2]))
    z1, z2 = z.chunk(2)
    loss = nt_xent(z1, z2, tau)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)
''')
wrong("simclr_step", "no_zero_grad", "never zeroes the gradients: they accumulate", _SIMCLR_STEP + '''
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("simclr_step", "ignores_tau", "calls nt_xent with its default temperature", _SIMCLR_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("simclr_step", "uses_repr", "applies the loss to the representations", _SIMCLR_STEP + '''
    optimizer.zero_grad()
    h1, _ = model(x1)
    h2, _ = model(x2)
    loss = nt_xent(torch.nn.functional.normalize(h1, dim=1), torch.nn.functional.normalize(h2, dim=1), tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("simclr_step", "same_view", "pairs each view with itself", _SIMCLR_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    loss = nt_xent(z1, z1, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("simclr_step", "eval_mode", "puts the model in eval mode for the step", _SIMCLR_STEP + '''
    model.eval()
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
''')

# ======================================================================================
# EMA
# ======================================================================================
correct("ema", "seed", "the seed's `.data =` assignment", '''
class EMA():
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for online_param, target_param in zip(online.parameters(), target.parameters()):
            target_param.data = self.beta * target_param.data + (1 - self.beta) * online_param.data
''')
correct("ema", "lerp", "torch.lerp_ under no_grad", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.lerp_(o, 1.0 - self.beta)
''')
correct("ema", "foreach", "torch._foreach_mul_ / _foreach_add_", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        with torch.no_grad():
            targets = list(target.parameters())
            torch._foreach_mul_(targets, self.beta)
            torch._foreach_add_(targets, list(online.parameters()), alpha=1 - self.beta)
''')
wrong("ema", "swapped_weights", "w_t = (1 - beta) w_t + beta w_o", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(1 - self.beta).add_(o, alpha=self.beta)
''')
wrong("ema", "updates_online", "moves the online network towards the target", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            o.mul_(self.beta).add_(t, alpha=1 - self.beta)
''')
wrong("ema", "hardcoded_beta", "ignores beta (always 0.99)", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(0.99).add_(o, alpha=0.01)
''')
wrong("ema", "autograd_history", "updates in place without no_grad (fails when the target requires grad)", '''
class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        for o, t in zip(online.parameters(), target.parameters()):
            t.copy_(self.beta * t + (1 - self.beta) * o)
''')
wrong("ema", "new_parameters", "replaces the target's Parameter objects", '''
import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        online_params = dict(online.named_parameters())
        for name, t in list(target.named_parameters()):
            module_name, _, attribute = name.rpartition(".")
            module = target.get_submodule(module_name) if module_name else target
            value = self.beta * t.detach() + (1 - self.beta) * online_params[name].detach()
            setattr(module, attribute, torch.nn.Parameter(value, requires_grad=t.requires_grad))
''')

# ======================================================================================
# byol_step
# ======================================================================================
_BYOL_STEP = "import torch\nimport torch.nn.functional as F\n\n\ndef byol_train_step(online, target, ema, optimizer, x1, x2):\n"
correct("byol_step", "seed_mean", "concatenated views, mean over the 2N terms", _BYOL_STEP + '''
    _, _, pred = online(torch.cat([x1, x2], dim=0))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1], dim=0))
    loss = (2 - 2 * (pred * proj.detach()).sum(dim=-1)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
''')
correct("byol_step", "paper_sum", "the paper's L + L~ averaged over N (twice the mean), detach", _BYOL_STEP + '''
    optimizer.zero_grad(set_to_none=True)
    p1, p2 = online(x1)[2], online(x2)[2]
    t1, t2 = target(x1)[1].detach(), target(x2)[1].detach()
    loss = ((2 - 2 * (p1 * t2).sum(1)) + (2 - 2 * (p2 * t1).sum(1))).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return float(loss.item())
''')
correct("byol_step", "cosine_similarity", "F.cosine_similarity", _BYOL_STEP + '''
    optimizer.zero_grad()
    _, _, p1 = online(x1)
    _, _, p2 = online(x2)
    with torch.no_grad():
        t1 = target(x1)[1]
        t2 = target(x2)[1]
    loss = 0.5 * ((2 - 2 * F.cosine_similarity(p1, t2, dim=-1)).mean()
                  + (2 - 2 * F.cosine_similarity(p2, t1, dim=-1)).mean())
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
''')
wrong("byol_step", "one_view_order", "only prediction(x1) against target(x2)", _BYOL_STEP + '''
    optimizer.zero_grad()
    _, _, p1 = online(x1)
    with torch.no_grad():
        t2 = target(x2)[1]
    loss = (2 - 2 * (p1 * t2).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
''')
wrong("byol_step", "ema_before_step", "updates the target before the optimiser step", _BYOL_STEP + '''
    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    ema.update(online, target)
    optimizer.step()
    return loss.item()
''')
wrong("byol_step", "ema_wrong_network", "ema.update(target, online)", _BYOL_STEP + '''
    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(target, online)
    return loss.item()
''')
wrong("byol_step", "no_stop_gradient", "the target's projections are not detached", _BYOL_STEP + '''
    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
''')
wrong("byol_step", "no_zero_grad", "never zeroes the gradients", _BYOL_STEP + '''
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
''')
# ======================================================================================
# barlow_loss
# ======================================================================================
_BT = "import torch\nimport torch.nn.functional as F\n\n\ndef barlow_loss(z1, z2, alpha, eps=1e-5):\n"
correct("barlow_loss", "seed_unbiased", "the seed's: unbiased variance, off_diagonal helper", '''
import torch


def off_diagonal(x):
    bs, d = x.shape
    return x.flatten()[:-1].view(bs - 1, bs + 1)[:, 1:].flatten()


def barlow_loss(z1, z2, alpha, eps=1e-5):
    B, d = z1.shape
    z1 = (z1 - z1.mean(dim=0, keepdim=True)) / torch.sqrt(z1.var(dim=0, keepdim=True) + eps)
    z2 = (z2 - z2.mean(dim=0, keepdim=True)) / torch.sqrt(z2.var(dim=0, keepdim=True) + eps)
    cross_corr = z1.T @ z2 / B
    invariance_term = torch.diagonal(cross_corr).add_(-1).pow_(2).sum()
    redundancy_term = off_diagonal(cross_corr).pow_(2).sum()
    return invariance_term + alpha * redundancy_term
''')
correct("barlow_loss", "batch_norm", "F.batch_norm without affine (biased std), masks", _BT + '''
    n, d = z1.shape
    a = F.batch_norm(z1, None, None, training=True, eps=eps)
    b = F.batch_norm(z2, None, None, training=True, eps=eps)
    c = a.T @ b / n
    eye = torch.eye(d, dtype=torch.bool)
    return ((1 - c[eye]) ** 2).sum() + alpha * (c[~eye] ** 2).sum()
''')
correct("barlow_loss", "cmu_formula_centred", "the CMU formula (2) on batch-centred outputs", _BT + '''
    a = z1 - z1.mean(0)
    b = z2 - z2.mean(0)
    c = (a.T @ b) / (a.pow(2).sum(0).sqrt()[:, None] * b.pow(2).sum(0).sqrt()[None, :])
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
''')
wrong("barlow_loss", "not_centred", "divides by the std without subtracting the mean", _BT + '''
    n = z1.shape[0]
    a = z1 / torch.sqrt(z1.var(0) + eps)
    b = z2 / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
''')
wrong("barlow_loss", "rows_standardized", "standardises each sample instead of each feature", _BT + '''
    n = z1.shape[0]
    a = (z1 - z1.mean(1, keepdim=True)) / torch.sqrt(z1.var(1, keepdim=True) + eps)
    b = (z2 - z2.mean(1, keepdim=True)) / torch.sqrt(z2.var(1, keepdim=True) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
''')
wrong("barlow_loss", "diagonal_in_redundancy", "the redundancy term includes the diagonal", _BT + '''
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    return (1 - torch.diagonal(c)).pow(2).sum() + alpha * c.pow(2).sum()
''')
wrong("barlow_loss", "alpha_ignored", "uses a fixed 0.005 instead of alpha", _BT + '''
    n = z1.shape[0]
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + 0.005 * (c.pow(2).sum() - on.pow(2).sum())
''')
wrong("barlow_loss", "not_divided_by_n", "forgets to divide C by N", _BT + '''
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b
    on = torch.diagonal(c)
    return (1 - on).pow(2).sum() + alpha * (c.pow(2).sum() - on.pow(2).sum())
''')
wrong("barlow_loss", "means", "averages the terms instead of summing them", _BT + '''
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0) + eps)
    c = a.T @ b / n
    on = torch.diagonal(c)
    return (1 - on).pow(2).mean() + alpha * (c.pow(2).sum() - on.pow(2).sum()) / (d * d - d)
''')

# ======================================================================================
# barlow_step
# ======================================================================================
_BT_STEP = "import torch\n\n\ndef barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):\n"
correct("barlow_step", "separate_views", "two forward passes", _BT_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
correct("barlow_step", "concatenated", "one forward of both views, alpha positional", _BT_STEP + '''
    _, z = model(torch.cat([x1, x2]))
    z1, z2 = torch.split(z, x1.shape[0])
    loss = barlow_loss(z1, z2, alpha)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
''')
wrong("barlow_step", "ignores_alpha", "calls barlow_loss with a fixed alpha", _BT_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=5e-3)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("barlow_step", "no_zero_grad", "never zeroes the gradients", _BT_STEP + '''
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("barlow_step", "returns_tensor", "returns the loss tensor", _BT_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss
''')
wrong("barlow_step", "uses_repr", "applies the loss to the representations", _BT_STEP + '''
    optimizer.zero_grad()
    h1, _ = model(x1)
    h2, _ = model(x2)
    loss = barlow_loss(h1, h2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
''')
wrong("barlow_step", "no_optimizer_step", "forgets optimizer.step()", _BT_STEP + '''
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    return loss.item()
''')

# ======================================================================================
# finetune_step (simclr_homework)
# ======================================================================================
_FT = "import torch\nimport torch.nn.functional as F\n\n\ndef finetune_train_step(classifier, x, y, optimizer):\n"
correct("finetune_step", "standard", "zero_grad first, argmax", _FT + '''
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
''')
correct("finetune_step", "max_indices", "logits.max(1) indices, nn.CrossEntropyLoss, zero_grad last", _FT + '''
    criterion = torch.nn.CrossEntropyLoss()
    outputs = classifier(x)
    loss = criterion(outputs, y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    _, predicted = outputs.max(1)
    return float(loss), int(predicted.eq(y).sum())
''')
wrong("finetune_step", "no_zero_grad", "never zeroes the gradients", _FT + '''
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
''')
wrong("finetune_step", "accuracy_fraction", "returns the batch accuracy instead of the count", _FT + '''
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).float().mean().item()
''')
wrong("finetune_step", "tensors", "returns tensors instead of Python numbers", _FT + '''
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) == y).sum()
''')
wrong("finetune_step", "summed_loss", "sums the cross-entropy over the batch", _FT + '''
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
''')
wrong("finetune_step", "eval_mode", "runs the step in eval mode", _FT + '''
    classifier.eval()
    optimizer.zero_grad()
    logits = classifier(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), (logits.argmax(1) == y).sum().item()
''')

# ======================================================================================
# evaluate (simclr_homework)
# ======================================================================================
_EV = "import torch\nimport torch.nn.functional as F\n\n\ndef evaluate(classifier, dataloader):\n"
correct("evaluate", "per_sample", "loss summed per sample, divided by the number of images", _EV + '''
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, correct / seen
''')
correct("evaluate", "batch_means", "mean of the per-batch mean losses, inference_mode", _EV + '''
    classifier.eval()
    losses, hits, count = [], 0, 0
    with torch.inference_mode():
        for x, y in dataloader:
            out = classifier(x)
            losses.append(F.cross_entropy(out, y).item())
            hits += int((out.argmax(dim=1) == y).sum())
            count += y.numel()
    return sum(losses) / len(losses), hits / count
''')
correct("evaluate", "restores_mode", "eval mode for the loop, then the classifier's incoming mode restored", _EV + '''
    was_training = classifier.training
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    classifier.train(was_training)
    return total / seen, correct / seen
''')
wrong("evaluate", "percent", "accuracy in percent", _EV + '''
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, 100.0 * correct / seen
''')
wrong("evaluate", "train_mode", "never switches to eval mode", _EV + '''
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, correct / seen
''')
wrong("evaluate", "grad_enabled", "records gradients while evaluating", _EV + '''
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    for x, y in dataloader:
        logits = classifier(x)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen
''')
wrong("evaluate", "count", "returns the number correct instead of the accuracy", _EV + '''
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, float(correct)
''')
wrong("evaluate", "summed_loss", "the loss summed over the batches, not averaged", _EV + '''
    classifier.eval()
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            logits = classifier(x)
            total += F.cross_entropy(logits, y).item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return total, correct / seen
''')
