"""Grading the submitted classifier checkpoint (`simclr_lin_best.pt`) on the CIFAR-10 test split.

The `simclr_homework` assignment (CMU 24-789 HW5) asks for a fine-tuned classifier whose
test accuracy reaches 75 % (full credit) and, for a bonus, 85 %. This package does the
grading; the graded pytest tests in ``autograder/tests/test_checkpoint.py`` call it and turn
its verdict into Gradescope results. One module per step:

- `rubric`: the ``[checkpoint]`` table of ``course.toml`` (thresholds, points, visibility,
  evaluation settings), checked (`load_course_config`);
- `scoring`: points for ``correct`` of ``total`` images, exactly (integers and fractions);
- `split`: the test split: prepared files and where the grader finds one
  (`resolve_test_split`);
- `loading`: finding the file in a submission and loading it as data, never as code;
- `evaluation`: the test accuracy, in batches, BatchNorm folded, exact counts;
- `grading`: one submission's `CheckpointGrade` and the students' feedback;
- `command`: ``python -m autograder checkpoint {prepare, check, grade}`` (also
  ``python -m autograder.checkpoint_grading ...``, as Gradescope's ``setup.sh`` calls it).

Import from the modules (``from autograder.checkpoint.grading import grade_checkpoint``):
this file imports nothing, so the command line can list the verbs without importing torch.

References:
    - CMU 24-789 HW5 (``../shared/seeds/cmu-24789-hw5-simclr.md``): "To get full credits, the
      final accuracy on test set should be more than 75%. You will get 5 bonus credits if
      the accuracy on the test set is more than 85%."
"""
