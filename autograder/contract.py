"""The contract of ../shared/DESIGN.md in one place: the graded tasks, the names each task's
cell defines, and the assignments with their notebooks, tasks and other files.

Standard library only: the grader, the sandboxed worker, the release tools and the tests all
import it, and nothing else restates it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Task id (a graded cell's ``grade_id``) -> the names that cell defines, in the contract's order.
TASKS: dict[str, tuple[str, ...]] = {
    "extract_features": ("extract_features_and_labels",),
    "probes": ("run_knn_probe", "run_linear_probe"),
    "simclr_forward": ("SimCLRModel",),
    "nt_xent": ("nt_xent",),
    "simclr_step": ("simclr_train_step",),
    "byol_forward": ("BYOLModel",),
    "ema": ("EMA",),
    "byol_step": ("byol_train_step",),
    "barlow_loss": ("barlow_loss",),
    "barlow_step": ("barlow_train_step",),
    "finetune_step": ("finetune_train_step",),
    "evaluate": ("evaluate",),
}

#: The task graded from the submitted file rather than from a notebook cell.
CHECKPOINT_TASK = "checkpoint"


@dataclass(frozen=True)
class Assignment:
    """An assignment: its notebook's file name and its graded tasks in the contract's order."""

    name: str
    notebook: str
    tasks: tuple[str, ...]
    files: tuple[str, ...] = ()  # other files the submission should contain

    @property
    def cell_tasks(self) -> tuple[str, ...]:
        """The tasks graded from the notebook's cells (all but the checkpoint)."""
        return tuple(task for task in self.tasks if task in TASKS)


ASSIGNMENTS: dict[str, Assignment] = {
    "ssl_methods": Assignment(
        "ssl_methods",
        "ssl_methods.ipynb",
        (
            "extract_features",
            "probes",
            "simclr_forward",
            "nt_xent",
            "simclr_step",
            "byol_forward",
            "ema",
            "byol_step",
            "barlow_loss",
            "barlow_step",
        ),
    ),
    "simclr_homework": Assignment(
        "simclr_homework",
        "simclr_homework.ipynb",
        ("nt_xent", "barlow_loss", "simclr_forward", "simclr_step", "finetune_step", "evaluate", CHECKPOINT_TASK),
        files=("simclr_lin_best.pt",),
    ),
}

#: Every name a graded cell defines: the answers, which `helpers` must never hold.
GRADED_NAMES: frozenset[str] = frozenset(name for names in TASKS.values() for name in names)
