"""The code that runs inside the sandbox, in the same process as the student's code.

The grader copies this whole folder, and nothing else of the autograder, into every sandbox
(as the package ``sslgrader_worker``; `autograder.sandbox.zygote.prepare_package`), so what
lies here is what a submission can read, and it must never hold an answer:

- `worker`: the zygote and the child that loads the submission and serves the grader's calls;
- `confine`: how that child confines itself (user, privileges, Landlock, seccomp);
- `harness`: the grading operations, run identically on the reference (in the grader) and
  on the submission (here);
- `protocol`: the data-only wire format between the grader and the worker;
- `statements`: compiling the statements extraction kept, the same way on both sides.

These modules import only the standard library, torch, the confinement bindings
(``landlock``, ``pyseccomp``) and each other (tests/test_sandbox.py parses their imports).
The grader imports `protocol`, `harness` and `statements` from here; everything else of the
grader's side of the sandbox is in `autograder.sandbox`.
"""
