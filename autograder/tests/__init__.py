"""The graded suite (run by `python -m autograder grade`, never collected by the project's pytest)."""
