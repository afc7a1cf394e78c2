"""SSL Lab's autograder: grades a submitted notebook against the reference solutions.

Modules: `extract` (notebook -> definitions, by `ast`), `sandbox` (the grader's side of the
isolated worker process that runs a submission's code), `in_sandbox` (the only code copied
into that sandbox: the worker, the data-only wire format `protocol`, and `harness`, the
grading operations run identically on reference and submission), `compare` (messages for
students), `results` (pytest plugin -> Gradescope's results.json), `grading` (one
submission), `cli` (``python -m autograder``), `demo`, and `release` (the student
notebooks). The graded tests are in ``autograder/tests/``.
"""
