"""SSL Lab's autograder: grades a submitted notebook against the reference solutions.

The contract:
- `contract`: the graded tasks, the names each defines, the assignments (the one registry);
- `course_settings`: the course's ``course.toml``.

Grading one submission:
- `assignments` (finding the notebook), `extract` (notebook -> definitions, by `ast`),
  `safe_files` (reading a submission folder without following what it plants);
- `sandbox` (the grader's side of the isolated worker process that runs a submission's code);
- `in_sandbox` (the only code copied into that sandbox: the worker, the data-only wire format
  `protocol`, and `harness`, the grading operations run identically on reference and submission);
- `grading` (one submission), `hidden_inputs` (the hidden tests' seed), `compare` (messages for
  students), `results` (pytest plugin -> Gradescope's results.json);
- `checkpoint` (the fine-tuned classifier: rubric, test split, evaluation, rate limit);
- the graded tests themselves: ``autograder/tests/tasks/``, one module per task.

Around it: `cli` (``python -m autograder <verb>``, every verb), `batch` (grade-all),
`similarity` and `regrade_diff` (reports for instructors), `manual` (pages graded by hand),
`gradescope` and `submission_metadata` (Gradescope's image and files), `release` (the student
notebooks and zip), `demo`, and `wheels` (the pins' wheels per Python version).
"""
