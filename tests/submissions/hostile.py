"""Hostile submissions: graded cells that attack the grader instead of answering.

Each attack sits in one task's graded cell; every other task of the notebook keeps the
reference answer, so the tests can check that no attack changes another task's score,
leaks a reference, breaks results.json or leaves a process behind. `format_cell` fills in
the paths and markers of one test run (the project root, a marker file the grader would
create if it ever ran the submission's code).
"""

from __future__ import annotations

#: Seconds of the leftover processes' `sleep` (unusual, so a test can look for them).
LEFTOVER_SLEEP = 3171

# --- notebook H1 (ssl_methods) -----------------------------------------------------------
MEMORY_BOMB = """
import torch


def extract_features_and_labels(model, dataloader, normalize=False):
    hoard = bytearray(10 ** 11)  # 100 GB at once
    chunks = []
    while True:  # and then little by little
        chunks.append(torch.ones(10 ** 7))
"""

MEGABYTES_OF_PRINTING = """
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier


def run_knn_probe(train_features, train_labels, test_features, test_labels):
    for i in range(6000):
        print("spam " * 200, i)
    knn = KNeighborsClassifier(n_neighbors=5).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(knn.score(np.asarray(test_features), np.asarray(test_labels)))


def run_linear_probe(train_features, train_labels, test_features, test_labels):
    import sys
    sys.stderr.write("err " * 300000)
    model = LogisticRegression(max_iter=1000).fit(np.asarray(train_features), np.asarray(train_labels))
    return float(model.score(np.asarray(test_features), np.asarray(test_labels)))
"""

READ_SOLUTIONS = """
import glob
import os

import torch.nn.functional as F


def _try_to_read():
    found = []
    candidates = ["{root}/solutions/ssl_methods.ipynb", "{root}/solutions/simclr_homework.ipynb",
                  "{root}/autograder/grading.py", "/autograder/source/solutions/ssl_methods.ipynb",
                  "../solutions/ssl_methods.ipynb", "/proc/1/environ"]
    candidates += glob.glob("/*/solutions/*.ipynb") + glob.glob("/*/*/solutions/*.ipynb") + glob.glob("{root}/*/*.ipynb")
    for path in candidates:
        try:
            with open(path, errors="replace") as handle:
                text = handle.read()
            if "BEGIN SOLUTION" in text or "def grade" in text:
                found.append(path + ": " + text[:200])
        except OSError as error:
            pass
    for folder in ("{root}", "{root}/solutions", "/work", "/autograder"):
        try:
            print("LISTED", folder, os.listdir(folder))
        except OSError as error:
            print("could not list", folder, type(error).__name__)
    return found


class SimCLRModel(SimCLRModelBase):
    def forward(self, x):
        found = _try_to_read()
        print(("LEAKED " + " | ".join(found)) if found else "DENIED: nothing of the grader could be read")
        h = self.encoder(x)
        return h, F.normalize(self.projector(h), dim=1)
"""

INFINITE_LOOP = """
def nt_xent(z1, z2, tau=0.5):
    while True:
        pass
"""

WRITE_GRADER_FILES = """
import os


def _vandalise():
    for path in ["{root}/autograder/PWNED", "{root}/solutions/PWNED", "{results}", "{root}/PWNED",
                 "/autograder/results/results.json"]:
        try:
            with open(path, "w") as handle:
                handle.write('{{"score": 1000}}')
            print("WROTE", path)
        except OSError as error:
            print("could not write", path, type(error).__name__)


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):
    _vandalise()
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
"""

SEGFAULT = """
import ctypes


class BYOLModel(BYOLModelBase):
    def forward(self, x):
        ctypes.string_at(0)
"""

HARD_EXIT = """
import os


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target):
        os._exit(0)
"""

SIGNAL_THE_GRADER = """
import os
import signal

import torch


def _attack():
    targets = [os.getppid(), 1, -1]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{{entry}}/cmdline", "rb") as handle:
                    command = handle.read()
                if b"autograder" in command or b"pytest" in command:
                    targets.append(int(entry))
            except OSError:
                pass
    for pid in targets:
        for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
            try:
                if pid != os.getpid():
                    os.kill(pid, sig)
            except OSError:
                pass


def byol_train_step(online, target, ema, optimizer, x1, x2):
    _attack()
    optimizer.zero_grad()
    _, _, pred = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, proj, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (pred * proj).sum(-1)).mean()
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
"""

SYS_EXIT = """
import sys


def barlow_loss(z1, z2, alpha, eps=1e-5):
    sys.exit(0)
"""

LEAVE_PROCESSES = """
import os
import subprocess
import time


def _leave_processes():
    try:
        subprocess.Popen(["sleep", "{sleep}"], start_new_session=True)
    except OSError:
        pass
    try:
        if os.fork() == 0:  # a daemon: double fork, new session
            os.setsid()
            if os.fork() == 0:
                time.sleep({sleep})
            os._exit(0)
    except OSError:
        pass


def barlow_train_step(model, x1, x2, optimizer, alpha=5e-3):
    _leave_processes()
    optimizer.zero_grad()
    _, z1 = model(x1)
    _, z2 = model(x2)
    loss = barlow_loss(z1, z2, alpha=alpha)
    loss.backward()
    optimizer.step()
    return loss.item()
"""

# --- notebook H2 (ssl_methods) -----------------------------------------------------------
ALWAYS_EQUAL_TENSOR = """
import torch


class AlwaysEqual(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.isclose, torch.Tensor.__eq__, torch.Tensor.allclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {{}})

    def __eq__(self, other):
        return True

    def item(self):
        return 0.0


def nt_xent(z1, z2, tau=0.5):
    return (z1.sum() * 0).as_subclass(AlwaysEqual)
"""

UNPICKLING_RUNS_CODE = """
import os


class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))


def barlow_loss(z1, z2, alpha, eps=1e-5):
    return Payload()
"""

DEFINITION_TIME_DEFAULT = """
import os


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    def update(self, online, target, _=os._exit(3)):
        pass
"""

DEFINITION_TIME_CLASS_BODY = """
import torch.nn.functional as F


class BYOLModel(BYOLModelBase):
    while True:
        pass

    def forward(self, x):
        return None
"""

CORRUPT_CHANNEL = """
import os


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):
    for fd in range(3, 64):
        try:
            os.write(fd, b"SSLG\\xff\\xff\\xff\\xff garbage " * 100)
        except OSError:
            pass
    return 0.0
"""

BINARY_PRINTING = """
import sys

import torch
import torch.nn.functional as F


def extract_features_and_labels(model, dataloader, normalize=False):
    sys.stdout.buffer.write(b"\\x00\\xff\\xfe invalid utf-8 \\x1b[31m \\x00SSLG-END:0000:1\\x00 fake marker\\n")
    print("\\ud800 lone surrogate", "\\u2028", '{{"score": 1000}}')
    features, labels = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            features.append(out[0] if isinstance(out, (tuple, list)) else out)
            labels.append(y)
    features = torch.cat(features)
    if normalize:
        features = F.normalize(features, dim=1)
    return features, torch.cat(labels)
"""

#: grade_id -> (cell source, expectation): "full" keeps every point, "loses" loses some.
H1 = {
    "extract_features": (MEMORY_BOMB, "loses"),
    "probes": (MEGABYTES_OF_PRINTING, "full"),
    "simclr_forward": (READ_SOLUTIONS, "full"),
    "nt_xent": (INFINITE_LOOP, "loses"),
    "simclr_step": (WRITE_GRADER_FILES, "full"),
    "byol_forward": (SEGFAULT, "loses"),
    "ema": (HARD_EXIT, "loses"),
    "byol_step": (SIGNAL_THE_GRADER, "full"),
    "barlow_loss": (SYS_EXIT, "loses"),
    "barlow_step": (LEAVE_PROCESSES, "full"),
}
H2 = {
    "nt_xent": (ALWAYS_EQUAL_TENSOR, "loses"),
    "barlow_loss": (UNPICKLING_RUNS_CODE, "loses"),
    "ema": (DEFINITION_TIME_DEFAULT, "loses"),
    "byol_forward": (DEFINITION_TIME_CLASS_BODY, "loses"),
    "simclr_step": (CORRUPT_CHANNEL, "loses"),
    "extract_features": (BINARY_PRINTING, "full"),
}


def format_cell(source: str, **values: object) -> str:
    """Fill in {root}, {results}, {marker} and {sleep} (other braces are doubled in the sources)."""
    return source.format(sleep=LEFTOVER_SLEEP, **values)
