"""Hostile submissions cannot fool the grader: no attack changes another task's score, leaks
a reference, breaks results.json or leaves a process behind.

The attacks (tests/submissions/hostile.py) are graded with the rest of the sample corpus,
once per session, by `grade-all --jobs 2` with a 5 s limit per call. The isolation checks
that need root (another user, no access to solutions/) skip, saying why, when the tests do
not run as root; CI runs as root.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from submissions.corpus import CALL_TIMEOUT, LOAD_TIMEOUT, PROJECT_ROOT, graded_corpus

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user and hidden project need root")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return graded_corpus(tmp_path_factory.mktemp("corpus"))


def _outputs(corpus, sample: str, task: str) -> list[str]:
    return [t["output"] for t in corpus.tests(sample, task)]


@pytest.mark.parametrize("sample", ["hostile-1", "hostile-2"])
def test_attacks_cost_only_their_own_task(corpus, sample):
    expect = corpus.samples[sample].expect
    for task, expectation in expect.items():
        row = corpus.task(sample, task)
        if expectation == "full":
            assert row["score"] == row["max_score"], (task, _outputs(corpus, sample, task))
        else:
            assert row["score"] < row["max_score"], task
    assert corpus.rows[sample]["status"] == "graded"


def test_endless_loop_fails_after_the_time_limit(corpus):
    for output in _outputs(corpus, "hostile-1", "nt_xent"):
        assert f"did not finish within {CALL_TIMEOUT} seconds" in output, output


def test_crashes_fail_with_a_clear_message(corpus):
    segfault = _outputs(corpus, "hostile-1", "byol_forward")
    assert any("SIGSEGV" in o for o in segfault), segfault
    hard_exit = _outputs(corpus, "hostile-1", "ema")
    assert all("the worker running your code died" in o for o in hard_exit), hard_exit
    sys_exit = _outputs(corpus, "hostile-1", "barlow_loss")
    assert all("sys.exit(0)" in o for o in sys_exit), sys_exit


def test_memory_bomb_fails_its_task(corpus):
    for output in _outputs(corpus, "hostile-1", "extract_features"):
        assert "MemoryError" in output or "memory" in output, output


def test_megabytes_of_printing_are_cut(corpus):
    results = corpus.results["hostile-1"]
    assert len(json.dumps(results).encode()) < 1_000_000
    knn = [t for t in corpus.tests("hostile-1", "probes") if "k-NN" in t["name"]][0]
    assert knn["status"] == "passed" and "bytes of output omitted" in knn["output"]
    assert "5999" in knn["output"], "the end of the output is kept"
    assert len(knn["output"]) < 4000


@needs_root
def test_solutions_and_grader_cannot_be_read(corpus):
    outputs = _outputs(corpus, "hostile-1", "simclr_forward")
    assert outputs and all("DENIED" in o and "LEAKED" not in o for o in outputs), outputs
    for results in corpus.results.values():
        assert "BEGIN SOLUTION" not in json.dumps(results)


@needs_root
def test_results_and_grader_files_cannot_be_written(corpus):
    for path in (PROJECT_ROOT / "PWNED", PROJECT_ROOT / "autograder" / "PWNED", PROJECT_ROOT / "solutions" / "PWNED"):
        assert not path.exists(), path
    results = corpus.results["hostile-1"]
    assert results["score"] < 1000 and results["tests"]
    output = [t["output"] for t in corpus.tests("hostile-1", "simclr_step")][0]
    assert "WROTE" not in output, output


def test_signalling_the_grader_changes_nothing(corpus):
    assert corpus.task("hostile-1", "byol_step")["score"] == corpus.task("hostile-1", "byol_step")["max_score"]
    assert corpus.returncode == 0


def test_no_process_is_left_behind(corpus):
    assert corpus.leftovers == []


def test_tensor_subclass_that_always_compares_equal_is_rejected(corpus):
    output = _outputs(corpus, "hostile-2", "nt_xent")[0]
    assert re.search(r"expected [0-9.]+, got -?0 ", output), output


def test_unpickling_payload_never_runs(corpus):
    assert not (corpus.root / "UNPICKLED-PWNED").exists()
    outputs = _outputs(corpus, "hostile-2", "barlow_loss")
    assert all("an object of type submission.Payload" in o for o in outputs), outputs


def test_code_run_at_definition_time_costs_only_its_task(corpus):
    ema = _outputs(corpus, "hostile-2", "ema")
    assert all("`EMA` is not defined" in o and "crashed the worker" in o for o in ema), ema
    byol = _outputs(corpus, "hostile-2", "byol_forward")
    assert all("`BYOLModel` is not defined" in o and f"took longer than {LOAD_TIMEOUT} s" in o for o in byol), byol


def test_writing_to_the_grader_channel_fails_that_test_only(corpus):
    outputs = _outputs(corpus, "hostile-2", "simclr_step")
    assert any("could not be read" in o for o in outputs), outputs


def test_binary_and_fake_marker_output_keeps_results_valid(corpus):
    results = corpus.results["hostile-2"]
    first = corpus.tests("hostile-2", "extract_features")[0]
    assert first["status"] == "passed" and "fake marker" in first["output"]
    assert "\\u0000" not in json.dumps(results)
