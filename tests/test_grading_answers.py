"""The graded tests each wrong answer of the corpus loses, and the demo's partly wrong submission.

Every wrong sample answer of the corpus (tests/answers, ``sample=True``) is graded in one
sample submission (tests/submissions/build.py, graded once per session by
tests/submissions/corpus.py); it must fail exactly the graded tests its ``loses`` lists, all
of its own task (tests/test_grading.py shows that the other tasks keep every point). The
demo's partly wrong submission (`autograder.demo.PARTLY_WRONG`) is three of these answers, so
its score follows from what they lose.
"""

from __future__ import annotations

import pytest
from answers import answer, answers

from autograder import demo
from submissions.corpus import graded_corpus

WRONG_SAMPLES = answers(correct=False, sample=True)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return graded_corpus(tmp_path_factory.mktemp("corpus"))


def _sample_holding(corpus, task: str, name: str) -> str:
    holding = [s.name for s in corpus.samples.values() if s.name.startswith("wrong-") and s.answers.get(task) == name]
    assert len(holding) == 1, (task, name, holding)
    return holding[0]


def test_every_wrong_sample_answer_lists_the_tests_it_loses():
    """A wrong sample answer names at least one graded test of its own task; no other answer names any."""
    for found in WRONG_SAMPLES:
        assert found.loses and all(test.startswith(f"{found.task}: ") for test in found.loses), found.id
        assert len(set(found.loses)) == len(found.loses), found.id
    assert not any(found.loses for found in answers(correct=True) + answers(sample=False))


@pytest.mark.parametrize("found", WRONG_SAMPLES, ids=[a.id for a in WRONG_SAMPLES])
def test_wrong_answer_loses_exactly_the_tests_it_lists(corpus, found):
    """Does the grader fail the listed tests of the answer's task, and only those?"""
    sample = _sample_holding(corpus, found.task, found.name)
    failed = {t["name"] for t in corpus.tests(sample, found.task) if t["status"] != "passed"}
    assert failed == set(found.loses), {"missing": set(found.loses) - failed, "unexpected": failed - set(found.loses)}


def test_demo_grades_three_answers_of_the_corpus():
    """The demo's partly wrong submission holds three wrong sample answers of the corpus, verbatim."""
    sources = demo.partly_wrong_sources()
    assert set(sources) == set(demo.PARTLY_WRONG)
    for task, name in demo.PARTLY_WRONG.items():
        found = answer(task, name)
        assert not found.correct and found.sample and sources[task] == found.source


def test_demo_partly_wrong_submission_loses_exactly_its_answers_tests(corpus):
    """The demo's partly wrong submission scores the reference's points (the markers' sum) minus
    the points of the tests its three answers lose, and nothing else."""
    from autograder.tests.tasks import unit_points

    reference = corpus.results["reference-ssl"]
    assert reference["score"] == sum(unit_points("ssl_methods").values())
    lost = 0.0
    for task, name in demo.PARTLY_WRONG.items():
        tests = corpus.tests(_sample_holding(corpus, task, name), task)
        lost_here = sum(t["max_score"] - t["score"] for t in tests)
        assert lost_here == sum(t["max_score"] for t in tests if t["name"] in answer(task, name).loses) > 0, task
        lost += lost_here
    assert 0 < reference["score"] - lost < reference["score"]
