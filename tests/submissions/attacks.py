"""Attacks on the grader itself (not on one task): rewriting the harness to forge records,
harvesting the reference through the step oracles, malformed answers, state carried from a
hidden test to a visible one, the zygote, the host's shared folders, the time budget.

Each attack is one extra code cell appended to a notebook (`attack_notebook`). The cells
run at *load* time through what extraction keeps (a class body, a default argument), so
they act before every operation of every test. ``{marker}`` is a folder the tests control
(the attacks try to leave files there and in the host's shared temporary folders).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Replaces every harness operation by one that calls nothing of the notebook and returns
#: records built from the grader's own inputs (or empty lists), hoping the grader compares
#: nothing. On an untouched notebook this must still earn 0 points.
FORGE_RECORDS = """
import sys


def _forge():
    harness = [m for name, m in list(sys.modules.items()) if name.endswith(".harness")][0]

    def steps(ctx, method, fn, state, batches, optimizer, **kwargs):
        record = {{"returned": 0.5, "params": dict(state), "eval_forwards": 0}}
        if method == "byol":
            record.update(target=dict(kwargs["target_state"]), target_grads=[])
        if method == "finetune":
            record["returned"] = (0.5, 3)
        return {{"steps": [dict(record) for _ in batches]}}

    def ema(ctx, cls, beta, online_state, target_state, updates, target_requires_grad):
        mixed = {{k: beta * target_state[k] + (1 - beta) * v for k, v in online_state.items()}}
        return {{"targets": [], "online": dict(online_state), "online_grads_kept": True, "same_objects": True,
                "leaves": True, "requires_grad": [True] * len(online_state), "mixed": mixed}}

    def evaluate(ctx, fn, state, images, labels, batch_size):
        return {{"returned": (0.5, 0.5), "forward_calls": 3, "grad_enabled_calls": 0, "training_calls": 0, "grads": 0}}

    def features(ctx, fn, net_kind, state, images, labels, batch_size, normalize):
        return {{"returned": (images.flatten(1)[:, :16], labels), "features_require_grad": False}}

    harness.OPS.update(train_steps=steps, ema=ema, evaluate=evaluate, extract_features=features)
    harness.OPS["call"] = lambda ctx, fn, args, kwargs, numpy_args=False: {{"returned": 0.5}}
    harness.OPS["loss_and_grads"] = lambda ctx, fn, args, kwargs: {{"returned": args[0].sum() * 0, "grads": []}}
    return 0


class _Forgery:
    installed = _forge()
"""

#: Malformed answers written straight to the grader's channel: a tensor with absurd
#: dimensions, and a record of the wrong form. Each must cost only its own test.
MALFORMED_FRAMES = """
import json
import os
import struct


def _frame(header):
    data = json.dumps(header).encode()
    return struct.pack("<4sIQ", b"SSLG", len(data), 0) + data


def barlow_loss(z1, z2, alpha, eps=1e-5):
    absurd = {{"$tensor": {{"dtype": "float32", "shape": [0, 10 ** 30], "offset": 0, "nbytes": 0}}}}
    for fd in range(3, 40):
        try:
            os.write(fd, _frame({{"kind": "result", "seq": 0, "status": "ok", "value": absurd}}))
        except OSError:
            pass
    return z1.sum()


class EMA:
    import sys as _sys  # the class body runs at load time, before every operation

    _harness = [m for name, m in list(_sys.modules.items()) if name.endswith(".harness")][0]
    _harness.OPS["ema"] = lambda ctx, **kwargs: {{"targets": [{{"weight": 1.0}}], "online": None}}

    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        pass
"""

#: Harvesting: the hidden nt_xent tests' inputs are kept in every place that might survive
#: into a later (visible) test; the visible step test then asks the reference loss about
#: them and about arbitrary tensors, many times, and prints what comes back.
HARVEST = """
import os
import pickle
import threading
import time

import torch

_PLACES = ["/tmp/.harvest", "/dev/shm/.harvest", "/var/tmp/.harvest", "~/.harvest", "{marker}/harvest"]
_SEEN = []


def nt_xent(z1, z2, tau=0.5):
    _SEEN.append((z1.detach().clone(), z2.detach().clone(), tau))
    for place in _PLACES:
        try:
            with open(os.path.expanduser(place), "wb") as handle:
                pickle.dump(_SEEN, handle)
        except OSError:
            pass

    def crash_later():  # a thread that outlives this call and kills whatever process it is in
        time.sleep(1.5)
        os._exit(9)

    threading.Thread(target=crash_later, daemon=True).start()
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    sim = z @ z.T / tau
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return torch.nn.functional.cross_entropy(sim, targets)


def _harvest(loss):
    found = []
    for place in _PLACES:
        try:
            with open(os.path.expanduser(place), "rb") as handle:
                found += pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
    print("HARVEST-FOUND", len(found))
    answers = 0
    for z1, z2, tau in found + [(torch.randn(16, 32), torch.randn(16, 32), 0.1)] * 300:
        try:
            value = loss(z1, z2, tau=tau)
            answers += 1
            print("HARVESTED", tuple(z1.shape), tau, float(value))
        except BaseException as error:
            print("REFUSED", type(error).__name__)
    print("HARVEST-ANSWERS", answers)


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):
    _harvest(globals()["nt_xent"])
    optimizer.zero_grad()
    _, p1 = model(x1)
    _, p2 = model(x2)
    loss = nt_xent(p1, p2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
"""

#: What a worker can do to its surroundings: the zygote, other processes of its user, the
#: host's shared folders, the network, files outside its own.
SURROUNDINGS = """
import ctypes
import os
import signal
import socket

import torch.nn.functional as F


def _report():
    lines = []
    for pid in [os.getppid(), 1]:
        for sig in (signal.SIGKILL,):
            try:
                os.kill(pid, sig)
                lines.append(f"KILLED {{pid}}")
            except OSError as error:
                lines.append(f"kill {{pid}}: {{type(error).__name__}}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, os.getppid(), None, None) == 0:  # PTRACE_ATTACH
        lines.append("PTRACED the zygote")
    for place in ["/tmp/ssl-lab-leftover", "/dev/shm/ssl-lab-leftover", "/var/tmp/ssl-lab-leftover",
                  "{marker}/leftover"]:
        try:
            with open(place, "w") as handle:
                handle.write("left behind")
            lines.append(f"WROTE {{place}}")
        except OSError:
            pass
    for path in ["{secret}", "{root}/solutions/ssl_methods.ipynb", "{root}/autograder/grading.py"]:
        try:
            with open(path, "rb") as handle:
                lines.append(f"READ {{path}} {{handle.read(40)!r}}")
        except OSError:
            pass
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK):
        try:
            socket.socket(family, socket.SOCK_DGRAM if family != socket.AF_NETLINK else socket.SOCK_RAW).close()
            lines.append(f"SOCKET {{family.name}}")
        except OSError:
            pass
    try:
        os.unshare(os.CLONE_NEWUSER | os.CLONE_NEWNS)
        lines.append("UNSHARED")
    except (OSError, AttributeError):
        pass
    if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0:
        lines.append("MOUNTED over /tmp")
    lines.append(f"uid {{os.getuid()}} euid {{os.geteuid()}} groups {{os.getgroups()}}")
    here = os.getcwd()  # folders nested deeper than any recursive removal or PATH_MAX allows
    try:
        os.chdir(os.path.expanduser("~"))
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
        lines.append("NESTED 3000")
    except OSError as error:
        lines.append(f"nesting stopped: {{type(error).__name__}}")
    os.chdir(here)
    print("\\n".join(lines))


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):
        _report()
        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
"""

#: Slow calls under every per-call limit, and a load that keeps announcing progress.
SLOW = """
import time


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    time.sleep(4.5)
    return 0.5


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    time.sleep(4.5)
    return 0.5


def extract_features_and_labels(model, dataloader, normalize=False):
    time.sleep(4.5)
    return None
"""


def attack_notebook(base: Path, cells: list[str], **values: str) -> dict:
    """`base` (a notebook) with one code cell appended per attack (after formatting)."""
    notebook = copy.deepcopy(json.loads(Path(base).read_text()))
    for source in cells:
        notebook["cells"].append(
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source.format(**values),
            }
        )
    return notebook


def replace_task(notebook: dict, task: str, source: str, **values: str) -> dict:
    """The notebook with the graded cell `task` replaced by `source` (formatted)."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == task:
            cell["source"] = source.format(**values)
            return notebook
    raise KeyError(task)
