"""``python -m autograder.checkpoint <verb>``: see `autograder.checkpoint.command`."""

from autograder.checkpoint.command import main

raise SystemExit(main(prog="python -m autograder.checkpoint"))
