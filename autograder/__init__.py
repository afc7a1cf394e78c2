"""SSL Lab's autograder: grades a submitted notebook against the reference solutions.

Modules: `extract` (notebook -> definitions, by `ast`), `sandbox` and `worker` (the
isolated worker process that runs a submission's code), `protocol` (the data-only wire
format between them), `harness` (the grading operations, run identically on reference and
submission), `compare` (messages for students), `results` (pytest plugin -> Gradescope's
results.json), `grading` (one submission), `cli` (``python -m autograder``), `demo`, and
`release` (the student notebooks). The graded tests are in ``autograder/tests/``.
"""
