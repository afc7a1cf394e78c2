"""Graded unit tests of simclr_homework.ipynb (CMU HW5): every code task of DESIGN.md's contract.

The checkpoint (`simclr_lin_best.pt` against the 75 % / 85 % thresholds) is graded by its
own module in this folder. Points per task: nt_xent 4, barlow_loss 4, simclr_forward 2,
simclr_step 4, finetune_step 4, evaluate 4 (22 in all).
"""

import pytest

from autograder.tests.shared_task_tests import (TestBarlowLoss, TestEvaluate, TestFinetuneStep, TestNTXent,
                                                TestSimCLRForward, TestSimCLRStep)

pytestmark = pytest.mark.assignment("simclr_homework")

__all__ = ["TestNTXent", "TestBarlowLoss", "TestSimCLRForward", "TestSimCLRStep", "TestFinetuneStep",
           "TestEvaluate"]
