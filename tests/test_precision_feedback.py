"""A training step that runs its own torch.autocast (seen in a public solution of the EPFL
course) loses its step points with a message that says why, never a bare value mismatch; and
no wrong answer of the corpus is mistaken for one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from submissions.attacks import replace_task
from submissions.corpus import graded_corpus

PROJECT_ROOT = Path(__file__).resolve().parents[1]

BYOL_AUTOCAST = """import torch


def byol_train_step(online, target, ema, optimizer, x1, x2):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        _, _, p1 = online(x1)
        _, _, p2 = online(x2)
        with torch.no_grad():
            _, t1, _ = target(x1)
            _, t2, _ = target(x2)
        loss = (2 - 2 * (p1 * t2).sum(-1)).mean() / 2 + (2 - 2 * (p2 * t1).sum(-1)).mean() / 2
    loss.backward()
    optimizer.step()
    ema.update(online, target)
    return loss.item()
"""
SIMCLR_AUTOCAST = """import torch


def simclr_train_step(model, x1, x2, optimizer, tau=0.5):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        _, z1 = model(x1)
        _, z2 = model(x2)
        loss = nt_xent(z1, z2, tau=tau)
    loss.backward()
    optimizer.step()
    return loss.item()
"""


def _escape(source: str) -> str:
    return source.replace("{", "{{").replace("}", "}}")


def test_a_step_under_its_own_autocast_is_told_why(tmp_path):
    notebook = json.loads((PROJECT_ROOT / "solutions" / "ssl_methods.ipynb").read_text())
    notebook = replace_task(notebook, "byol_step", _escape(BYOL_AUTOCAST))
    notebook = replace_task(notebook, "simclr_step", _escape(SIMCLR_AUTOCAST))
    (tmp_path / "ssl_methods.ipynb").write_text(json.dumps(notebook))
    subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(tmp_path), "--unit-only", "--quiet"],
        cwd=PROJECT_ROOT,
        check=True,
        timeout=600,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    for task in ("byol_step", "simclr_step"):
        failed = [t for t in results["tests"] if task in t["tags"] and t["status"] == "failed"]
        assert failed and all("under torch.autocast" in t["output"] for t in failed), [t["output"] for t in failed]
    others = {k: v for k, v in results["extra_data"]["tasks"].items() if k not in ("byol_step", "simclr_step")}
    assert all(row["score"] == row["max_score"] for row in others.values()), others


def test_no_wrong_answer_is_taken_for_autocast(tmp_path_factory):
    corpus = graded_corpus(tmp_path_factory.mktemp("corpus"))
    for name, results in corpus.results.items():
        if name.startswith("wrong-"):
            assert "under torch.autocast" not in json.dumps(results), name
