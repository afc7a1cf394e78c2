"""Build the sample submissions the grader's tests grade (one folder each).

Every sample starts from a solution notebook (``solutions/<assignment>.ipynb``) and
replaces some graded cells (found by ``grade_id``) with the answers of `variants` or the
attacks of `hostile`, so each sample says exactly which tasks must keep their points and
which must lose some:

- ``reference-*``: the solutions as they are (every point);
- ``untouched-*``: the generated student notebooks (0, "not implemented yet" everywhere);
- ``wrong-*``: one wrong answer per task of a group, the other group's tasks correct. The
  groups separate every task from the tasks whose tests could depend on it (losses and
  forwards vs. the steps that use them), so a sample also shows that its wrong answers
  cost nothing elsewhere;
- ``correct-*``: a correct variant for every task (every point);
- ``hostile-*``: attacks (see `hostile`), each in one task;
- ``broken-*``: no notebook, a file that is not JSON, a renamed notebook.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.contract import ASSIGNMENTS

from . import hostile
from .variants import CORRECT, WRONG

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: assignment -> its notebook's graded tasks (the task registry's).
TASKS = {name: list(assignment.cell_tasks) for name, assignment in ASSIGNMENTS.items()}
#: Tasks whose graded tests cannot depend on one another (losses, forwards, EMA, ...) and the
#: tasks that use them (the steps); a wrong sample makes one group wrong and gives the other
#: group correct variants, so it also shows that wrong answers cost nothing elsewhere.
GROUPS = {
    "ssl_methods": (
        ["extract_features", "simclr_forward", "nt_xent", "byol_forward", "ema", "barlow_loss"],
        ["probes", "simclr_step", "byol_step", "barlow_step"],
    ),
    "simclr_homework": (["finetune_step", "evaluate", "nt_xent", "barlow_loss"], []),
}


def groups(assignment: str) -> tuple[list[str], list[str]]:
    """`GROUPS` of `assignment`, where a task of the registry that no group lists (a new task)
    joins the first group: it is taken to depend on no other task (list it in the second
    group if it calls one). The homework's other shared tasks are graded in ssl_methods samples."""
    first, second = GROUPS[assignment]
    listed = {*first, *second}
    new = [t for t in TASKS[assignment] if t not in listed and (assignment == "ssl_methods" or t not in SHARED)]
    return first + new, second


#: Tasks of both notebooks: ssl_methods samples use their first SSL_ROUNDS wrong answers,
#: simclr_homework samples the rest.
SHARED = set(TASKS["ssl_methods"]) & set(TASKS["simclr_homework"])
SSL_ROUNDS = 5


@dataclass
class Sample:
    """One submission folder and what grading it must give.

    expect: task -> "full" (every point), "loses" (fewer than all), "zero" (not implemented).
    """

    name: str
    assignment: str | None
    expect: dict[str, str] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)  # task -> which answer it holds

    @property
    def folder_name(self) -> str:
        return self.name


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def replace_cells(notebook: dict, sources: dict[str, str]) -> dict:
    """A copy of `notebook` whose graded cells (by grade_id) hold `sources`."""
    notebook = copy.deepcopy(notebook)
    seen = set()
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell["source"] = sources[grade_id]
            seen.add(grade_id)
    missing = set(sources) - seen
    if missing:
        raise KeyError(f"no graded cell with grade_id {sorted(missing)}")
    return notebook


def code_cell(source: str, grade_id: str | None = None) -> dict:
    metadata = {}
    if grade_id:
        metadata["nbgrader"] = {
            "grade": False,
            "grade_id": grade_id,
            "locked": False,
            "schema_version": 3,
            "solution": True,
            "task": False,
        }
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": source}


def write(notebook: dict, folder: Path, filename: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(json.dumps(notebook, indent=1))


def _expect(assignment: str, losing: set[str]) -> dict[str, str]:
    return {task: ("loses" if task in losing else "full") for task in TASKS[assignment]}


def build(root: Path, project: Path = PROJECT_ROOT) -> list[Sample]:
    """Write every sample under `root` (one folder each) and return their descriptions."""
    samples = []
    for sample, notebook, filename in plan(root, project):
        (root / sample.name).mkdir(parents=True, exist_ok=True)
        if notebook is not None:
            write(notebook, root / sample.name, filename)
        elif filename is not None:
            (root / sample.name / filename).write_text(BROKEN_FILES[filename])
        samples.append(sample)
    return samples


BROKEN_FILES = {"README.txt": "I forgot the notebook.\n", "ssl_methods.ipynb": "this is not JSON {"}


def plan(root: Path, project: Path = PROJECT_ROOT) -> list[tuple[Sample, dict | None, str | None]]:
    """(sample, notebook or None, file name) of every sample, without writing anything."""
    samples: list[tuple[Sample, dict | None, str | None]] = []
    solutions = {a: load(project / "solutions" / f"{a}.ipynb") for a in TASKS}

    def add(sample: Sample, notebook: dict | None, filename: str | None = None) -> None:
        samples.append((sample, notebook, filename or f"{sample.assignment}.ipynb"))

    for assignment in TASKS:
        short = "ssl" if assignment == "ssl_methods" else "hw"
        add(Sample(f"reference-{short}", assignment, _expect(assignment, set())), solutions[assignment])
        untouched = load(project / "notebooks" / f"{assignment}.ipynb")
        add(Sample(f"untouched-{short}", assignment, {t: "zero" for t in TASKS[assignment]}), untouched)

        # Wrong answers, group by group; the other group holds correct variants (or the reference).
        wrong_group, steps_group = groups(assignment)
        for group_index, group in enumerate((wrong_group, steps_group)):
            others = steps_group if group is wrong_group else wrong_group
            first = 0 if assignment == "ssl_methods" else SSL_ROUNDS  # hw uses the shared tasks' later variants
            rounds = max((len(WRONG[t]) - (first if t in SHARED else 0) for t in group), default=0)
            for r in range(min(rounds, SSL_ROUNDS) if assignment == "ssl_methods" else rounds):
                answers = {
                    t: WRONG[t][i] for t in group for i in [r + (first if t in SHARED else 0)] if i < len(WRONG[t])
                }
                right = {t: CORRECT[t][r] for t in others if r < len(CORRECT[t])}
                sample = Sample(
                    f"wrong-{short}-g{group_index}-r{r}",
                    assignment,
                    _expect(assignment, set(answers)),
                    {**{t: a.name for t, a in answers.items()}, **{t: "correct " + a.name for t, a in right.items()}},
                )
                add(
                    sample, replace_cells(solutions[assignment], {t: a.source for t, a in {**answers, **right}.items()})
                )

        # Correct variants of the tasks that have no "other group" to hold them.
        tasks = [t for t in wrong_group if not steps_group]
        for r in range(max((len(CORRECT[t]) for t in tasks if t not in SHARED), default=0)):
            answers = {t: CORRECT[t][r] for t in tasks if r < len(CORRECT[t])}
            sample = Sample(
                f"correct-{short}-r{r}",
                assignment,
                _expect(assignment, set()),
                {t: "correct " + a.name for t, a in answers.items()},
            )
            add(sample, replace_cells(solutions[assignment], {t: a.source for t, a in answers.items()}))

    # Hostile submissions.
    for name, attacks in (("hostile-1", hostile.H1), ("hostile-2", hostile.H2)):
        folder = root / name
        values = dict(root=project, results=folder / "results.json", marker=root / "UNPICKLED-PWNED")
        sources = {task: hostile.format_cell(source, **values) for task, (source, _) in attacks.items()}
        expect = _expect("ssl_methods", {t for t, (_, e) in attacks.items() if e == "loses"})
        add(
            Sample(name, "ssl_methods", expect, {t: "attack" for t in attacks}),
            replace_cells(solutions["ssl_methods"], sources),
        )
    add(*_extraction_sample(solutions["simclr_homework"]))

    # Broken submissions.
    samples.append((Sample("broken-no-notebook", None), None, "README.txt"))
    samples.append((Sample("broken-not-json", "ssl_methods"), None, "ssl_methods.ipynb"))
    add(
        Sample("broken-renamed", "ssl_methods", _expect("ssl_methods", set())),
        solutions["ssl_methods"],
        "ssl_methods (1).ipynb",
    )
    return samples


def _extraction_sample(solution: dict) -> tuple[Sample, dict]:
    """simclr_homework with the extraction's edge cases (ast, metadata, magics, redefinitions)."""
    notebook = copy.deepcopy(solution)
    cells = notebook["cells"]

    def index_of(grade_id: str) -> int:
        return next(
            i for i, c in enumerate(cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
        )

    # nt_xent: the student broke the metadata -> found by name.
    cells[index_of("nt_xent")]["metadata"] = {}
    # barlow_loss: a syntax error costs this task only.
    cells[index_of("barlow_loss")]["source"] = (
        "import torch\n\ndef barlow_loss(z1, z2, alpha, eps=1e-5):\n    return (\n"
    )
    # evaluate: IPython magics and shell lines inside the graded cell.
    ev = index_of("evaluate")
    lines = "".join(cells[ev]["source"]).split("\n")
    cells[ev]["source"] = "%time\n!echo hello\n" + "\n".join(lines)
    # simclr_step: a wrong version in an earlier scratch cell; the graded (later) one wins.
    wrong_step = next(a for a in WRONG["simclr_step"] if a.name == "no_zero_grad").source
    cells.insert(index_of("simclr_step"), code_cell(wrong_step))
    # finetune_step: a later cell redefines it wrongly; the later definition wins (as in the kernel).
    wrong_finetune = next(a for a in WRONG["finetune_step"] if a.name == "no_zero_grad").source
    cells.insert(index_of("finetune_step") + 1, code_cell(wrong_finetune))
    # Top-level statements that would be fatal if the grader ran them.
    cells.insert(3, code_cell("import os\nos._exit(1)\n"))
    cells.insert(4, code_cell("while True:\n    pass\n"))
    cells.insert(5, code_cell("raise SystemExit('training would start here')\n"))
    cells.append(code_cell("%%bash\nrm -rf /\n"))
    expect = {
        "nt_xent": "full",
        "barlow_loss": "loses",
        "simclr_forward": "full",
        "simclr_step": "full",
        "finetune_step": "loses",
        "evaluate": "full",
    }
    return Sample("hostile-extraction-hw", "simclr_homework", expect), notebook
