"""``python -m autograder demo``: the README's main job, offline, for both assignments.

1. regenerate the student notebooks from ``solutions/`` (`autograder.release.release`);
2. grade three ``ssl_methods`` submissions with the real grader and sandbox:
   the reference solutions as they are (every point), the untouched student notebook
   (0, "not implemented yet" per task) and a partly wrong one (three classic mistakes);
3. grade two ``simclr_homework`` submissions end to end, checkpoint included: the reference
   solutions with a generated ``simclr_lin_best.pt`` (a `LinearClassifier` with seeded
   random weights, saved with `helpers.checkpoint.save_classifier`: every unit-test point,
   and a checkpoint at chance level that the checkpoint test grades below 75 %), and the
   untouched student notebook without a checkpoint (0, and "no simclr_lin_best.pt");
4. print a score table per submission.

Nothing is downloaded and no GPU is needed: the unit tests use seeded inputs and small
stand-in networks. The checkpoint is graded on a class-balanced subset of 1,000 CIFAR-10
test images (a demo course configuration with ``test_images = 1000``; real grading refuses
anything but the 10,000) read from the course's local copy (``test_split_sources`` of
``course.toml``, ``$SSL_LAB_CIFAR10``), or, where there is none, on the synthetic stand-in's
500 test images, said out loud. The submissions are written to a temporary folder
(``--keep DIR`` keeps them, each with its ``results.json``).
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: The partly wrong submission: three classic mistakes (task -> answer) of the project's corpus
#: of student answers, which tests/test_grading_answers.py grades (each costs its task's points):
#: the EPFL markdown's 1/N in NT-Xent, beta and 1 - beta swapped in the EMA, and the target's EMA
#: update before the online network's optimiser step.
PARTLY_WRONG = {"nt_xent": "mean_over_n", "ema": "swapped_weights", "byol_step": "ema_before_step"}
#: The corpus (a test fixture, so outside the shipped packages): the demo runs from a checkout.
ANSWERS = PROJECT_ROOT / "tests" / "answers"


def partly_wrong_sources() -> dict[str, str]:
    """task -> the source of the graded cell the partly wrong submission holds (read from `ANSWERS`)."""
    import importlib.util

    if not (ANSWERS / "__init__.py").is_file():
        raise FileNotFoundError(
            f"the demo reads its partly wrong answers from {ANSWERS}, a folder of the "
            "project's checkout; run the demo from a checkout of SSL Lab"
        )
    spec = importlib.util.spec_from_file_location(
        "ssl_lab_demo_answers", ANSWERS / "__init__.py", submodule_search_locations=[str(ANSWERS)]
    )
    corpus = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = corpus  # the corpus's task modules import it by this name
    try:
        spec.loader.exec_module(corpus)
    finally:
        for name in [n for n in sys.modules if n == spec.name or n.startswith(spec.name + ".")]:
            del sys.modules[name]
    return {task: corpus.answer(task, name).source for task, name in PARTLY_WRONG.items()}


def _partly_wrong(solution: dict) -> dict:
    sources = partly_wrong_sources()
    notebook = copy.deepcopy(solution)
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in sources:
            cell["source"] = sources[grade_id]
    return notebook


#: Test images the demo grades the checkpoint on (a class-balanced subset; real grading uses 10,000).
DEMO_TEST_IMAGES = 1_000


def _demo_test_split(folder: Path, say) -> tuple[Path, Path]:
    """A prepared test split and a course configuration whose rubric expects its size."""
    from autograder.checkpoint.rubric import load_course_config
    from autograder.checkpoint.split import save_test_split
    from helpers.data import load_cifar10

    rubric = load_course_config()
    sources = [
        (PROJECT_ROOT / s).resolve() if not Path(s).is_absolute() else Path(s) for s in rubric.test_split_sources
    ]
    sources.append(None)  # then $SSL_LAB_CIFAR10, else torchvision's download in data/ (never downloads)
    images = labels = None
    for source in sources:
        try:
            images, labels = load_cifar10(
                "test",
                source=source,
                root=folder / "data" if source else PROJECT_ROOT / "data",
                download=False,
                limit=DEMO_TEST_IMAGES,
                verbose=False,
            )
            described = f"{len(labels):,} class-balanced CIFAR-10 test images from {source or 'the local copy'}"
            break
        except Exception:  # noqa: BLE001 - try the next source; the synthetic set is the last resort
            continue
    if images is None:
        images, labels = load_cifar10("test", synthetic=True, verbose=False)
        described = f"the SYNTHETIC stand-in's {len(labels):,} test images (no CIFAR-10 copy found; not CIFAR-10)"
    split = save_test_split(images, labels, folder / "demo-test-split.pt", described)
    config = folder / "demo-course.toml"
    config.write_text(
        f"# The demo's rubric: course.toml's, graded on {len(labels)} images instead of 10,000.\n"
        f"[checkpoint]\ntest_images = {len(labels)}\n"
    )
    return split, config


def _split_source(path: Path) -> str:
    from autograder.checkpoint.split import load_test_split_file

    return load_test_split_file(path).source


def _generated_checkpoint(path: Path) -> Path:
    """simclr_lin_best.pt: a LinearClassifier with seeded random weights (what an untrained run saves)."""
    import torch

    from helpers.checkpoint import save_classifier
    from helpers.data import CIFAR10_MEAN, CIFAR10_STD
    from helpers.models import LinearClassifier

    torch.manual_seed(0)
    return save_classifier(LinearClassifier(mean=CIFAR10_MEAN, std=CIFAR10_STD), path)


def _grade_all(submissions: dict, assignment: str, folder: Path, grading, say) -> dict:
    scores = {}
    for title, (notebook, extra_files) in submissions.items():
        submission = folder / f"{assignment}-{len(scores) + 1}"
        submission.mkdir(parents=True, exist_ok=True)
        (submission / f"{assignment}.ipynb").write_text(json.dumps(notebook, indent=1))
        for name, make in extra_files.items():
            make(submission / name)
        outcome = grading.grade(submission, grading.GradeOptions(assignment=assignment))
        results = outcome.results
        maximum = sum(t["max_score"] for t in results["tests"])
        scores[title] = (results, maximum, outcome.exit_code)
        say(f"\n=== {assignment}: {title}: {results['score']:g} / {maximum:g} ({results['execution_time']:.1f} s) ===")
        say(grading.summary_table(results))
        for test in results["tests"]:
            if "checkpoint" in test["tags"]:
                say(
                    f"   {test['name']}: {test['score']:g} / {test['max_score']:g}\n      "
                    + test["output"].strip().replace("\n", "\n      ")[:600]
                )
    return scores


def _environment(**values: str):
    import contextlib
    import os

    @contextlib.contextmanager
    def patched():
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return patched()


def main(quiet: bool = False, keep: Path | None = None) -> int:
    """Run the demo; returns 0 when every step worked (and the scores are as expected)."""
    from autograder import grading, release, sandbox

    say = (lambda *a, **k: None) if quiet else (lambda *a, **k: print(*a, **k, flush=True))
    started = time.monotonic()
    written = release.release(PROJECT_ROOT)
    say(f"1. regenerated the student notebooks and README's points table: {', '.join(p.name for p in written)}")
    try:
        isolation = sandbox.detect_isolation()
    except sandbox.SandboxError as error:
        say(
            f"the sandbox cannot isolate submissions on this machine, so nothing is graded:\n{error}\n"
            "(python -m autograder check-sandbox says the same; on code you trust, grade with --isolation unconfined)"
        )
        return 1
    say(f"2. grading three ssl_methods submissions ({isolation.summary().splitlines()[0]})")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ssl-lab-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    load = lambda path: json.loads((PROJECT_ROOT / path).read_text())  # noqa: E731
    solution = load("solutions/ssl_methods.ipynb")
    ssl = {
        "reference solutions": (solution, {}),
        "untouched student notebook": (load("notebooks/ssl_methods.ipynb"), {}),
        "partly wrong (nt_xent, ema, byol_step)": (_partly_wrong(solution), {}),
    }
    # The demo's rubric must be in place before the first grading: the graded test modules read
    # the course configuration when they are first imported, and they stay imported.
    split, config = _demo_test_split(folder, lambda *a, **k: None)
    try:
        with _environment(SSL_LAB_TEST_SPLIT=str(split), SSL_LAB_COURSE_CONFIG=str(config)):
            ssl_scores = _grade_all(ssl, "ssl_methods", folder, grading, say)
            say(f"\n   hidden inputs: {_hidden_inputs_line()}")
            from autograder import similarity

            report = similarity.run(folder, "ssl_methods", folder / "similarity")
            say(f"   {report.summary()}")
            say("\n3. grading two simclr_homework submissions, checkpoint included")
            say(f"   the checkpoint is graded on {_split_source(split)}")
            from autograder.checkpoint.rubric import load_course_config  # the options in force

            say(f"   {load_course_config().summary()}")
            homework = {
                "reference solutions + a generated simclr_lin_best.pt (random weights)": (
                    load("solutions/simclr_homework.ipynb"),
                    {"simclr_lin_best.pt": _generated_checkpoint},
                ),
                "untouched student notebook, no checkpoint": (load("notebooks/simclr_homework.ipynb"), {}),
            }
            hw_scores = _grade_all(homework, "simclr_homework", folder, grading, say)
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
        sandbox.close_all()
    say(f"\n4. done in {time.monotonic() - started:.0f} s" + (f"; submissions and results in {folder}" if keep else ""))
    say(
        "   on a folder of real submissions: python -m autograder grade-all SUBMISSIONS --jobs 2 --csv grades.csv "
        "[--similarity] [--compare earlier.csv] (the similarity report, and who changed score since an earlier run)"
    )
    as_expected = _as_expected(ssl_scores, hw_scores)
    if not as_expected:
        say(
            "UNEXPECTED SCORES: the references should get every unit-test point (the homework's random "
            "checkpoint none), the untouched notebooks none, the partly wrong one some."
        )
    return 0 if as_expected else 1


def _hidden_inputs_line() -> str:
    """The course's choice of hidden inputs, as the demo reports it."""
    from autograder import hidden_inputs

    setting = hidden_inputs.load_setting()
    if setting == hidden_inputs.PER_SUBMISSION:
        return "drawn per submission (course.toml [grading] hidden_seed); each results.json names its seed"
    if isinstance(setting, int):
        return f"drawn from seed {setting} for every submission (course.toml [grading] hidden_seed)"
    return 'the fixed seeds (course.toml [grading] hidden_seed = "per-submission" draws them per submission)'


def _as_expected(ssl_scores: dict, hw_scores: dict) -> bool:
    """The demo's promise: references full (random checkpoint 0), untouched 0, partly wrong some."""
    (full, full_max, code1), (zero, _, code2), (partial, _, code3) = ssl_scores.values()
    (hw_ref, hw_max, code4), (hw_zero, _, code5) = hw_scores.values()
    checkpoint = [t for t in hw_ref["tests"] if "checkpoint" in t["tags"]]
    unit_max = sum(t["max_score"] for t in hw_ref["tests"] if "checkpoint" not in t["tags"])
    graded_below_threshold = bool(checkpoint) and all(
        t["score"] == 0 and "grader" not in t["output"].lower()[:200] for t in checkpoint
    )
    return (
        full["score"] == full_max
        and zero["score"] == 0
        and 0 < partial["score"] < full_max
        and hw_ref["score"] == unit_max
        and graded_below_threshold
        and hw_zero["score"] == 0
        and code1 == code2 == code3 == code4 == code5 == 0
    )
