"""``python -m autograder.checkpoint_grading {prepare, check, grade}``: the documented command of
`autograder.checkpoint.command`, kept under its first name (Gradescope's ``setup.sh`` and the
README call it). The code is in the `autograder.checkpoint` package; import from its modules.
"""

from autograder.checkpoint.command import main

if __name__ == "__main__":
    raise SystemExit(main())
