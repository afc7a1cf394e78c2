"""Sample submissions for the grader's tests: correct and wrong answers, hostile cells, and
the builder that turns them into notebooks (see build.py)."""
