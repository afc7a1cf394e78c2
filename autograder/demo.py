"""``python -m autograder demo``: the README's main job, offline, in about a minute.

1. regenerate the student notebooks from ``solutions/`` (`autograder.release.release`);
2. grade three ``ssl_methods`` submissions with the real grader and sandbox:
   the reference solutions as they are (every point), the untouched student notebook
   (0, "not implemented yet" per task) and a partly wrong one (three classic mistakes);
3. print a score table per submission.

Nothing is downloaded and no GPU is needed: the unit tests use seeded inputs and small
stand-in networks. The submissions are written to a temporary folder (``--keep DIR`` keeps
them, each with its ``results.json``).
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Three classic mistakes, as a student would write the graded cells.
PARTLY_WRONG = {
    "nt_xent": '''import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau=0.5):
    # Mistake: the EPFL markdown's 1/N (the mean is over the 2N anchors).
    n = z1.shape[0]
    z = torch.cat([z1, z2])
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, targets, reduction="sum") / n
''',
    "ema": '''import torch


class EMA:
    def __init__(self, beta=0.99):
        self.beta = beta

    @torch.no_grad()
    def update(self, online, target):
        # Mistake: beta and 1 - beta swapped.
        for o, t in zip(online.parameters(), target.parameters()):
            t.mul_(1 - self.beta).add_(o, alpha=self.beta)
''',
    "byol_step": '''import torch


def byol_train_step(online, target, ema, optimizer, x1, x2):
    optimizer.zero_grad()
    _, _, prediction = online(torch.cat([x1, x2]))
    with torch.no_grad():
        _, projection, _ = target(torch.cat([x2, x1]))
    loss = (2 - 2 * (prediction * projection).sum(dim=-1)).mean()
    loss.backward()
    ema.update(online, target)  # Mistake: the target follows the online network *before* its update.
    optimizer.step()
    return loss.item()
''',
}


def _partly_wrong(solution: dict) -> dict:
    notebook = copy.deepcopy(solution)
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in PARTLY_WRONG:
            cell["source"] = PARTLY_WRONG[grade_id]
    return notebook


def main(quiet: bool = False, keep: Path | None = None) -> int:
    """Run the demo; returns 0 when every step worked (and the scores are as expected)."""
    from autograder import grading, release, sandbox

    say = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))
    started = time.monotonic()
    written = release.release(PROJECT_ROOT)
    say(f"1. regenerated the student notebooks: {', '.join(p.name for p in written) or 'already up to date'}")
    isolation = sandbox.detect_isolation()
    say(f"2. grading three ssl_methods submissions ({isolation.summary().splitlines()[0]})")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ssl-lab-demo-"))
    solution = json.loads((PROJECT_ROOT / "solutions" / "ssl_methods.ipynb").read_text())
    untouched = json.loads((PROJECT_ROOT / "notebooks" / "ssl_methods.ipynb").read_text())
    submissions = {
        "reference solutions": solution,
        "untouched student notebook": untouched,
        "partly wrong (nt_xent, ema, byol_step)": _partly_wrong(solution),
    }
    scores = {}
    try:
        for index, (title, notebook) in enumerate(submissions.items()):
            submission = folder / f"submission-{index + 1}"
            submission.mkdir(parents=True, exist_ok=True)
            (submission / "ssl_methods.ipynb").write_text(json.dumps(notebook, indent=1))
            outcome = grading.grade(submission, grading.GradeOptions(assignment="ssl_methods"))
            results = outcome.results
            maximum = sum(t["max_score"] for t in results["tests"])
            scores[title] = (results["score"], maximum, outcome.exit_code)
            say(f"\n=== {title}: {results['score']:g} / {maximum:g} ({results['execution_time']:.1f} s) ===")
            say(grading.summary_table(results))
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
        sandbox.close_all()
    say(f"\n3. done in {time.monotonic() - started:.0f} s" + (f"; submissions and results in {folder}" if keep else ""))
    (full, full_max, code1), (zero, _, code2), (partial, _, code3) = scores.values()
    as_expected = full == full_max and zero == 0 and 0 < partial < full_max and code1 == code2 == code3 == 0
    if not as_expected:
        say("UNEXPECTED SCORES: the reference should get every point, the untouched notebook none, "
            "the partly wrong one some.")
    return 0 if as_expected else 1
