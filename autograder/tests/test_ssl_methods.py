"""Graded tests of ssl_methods.ipynb (EPFL exercise 2): every task of DESIGN.md's contract.

The tests themselves live in `shared_task_tests` (simclr_homework shares four tasks); this
module selects the tasks of this notebook. Points per task: extract_features 3, probes 3,
simclr_forward 2, nt_xent 4, simclr_step 4, byol_forward 2, ema 3, byol_step 5,
barlow_loss 4, barlow_step 4 (34 in all).
"""

import pytest

from autograder.tests.shared_task_tests import (TestBarlowLoss, TestBarlowStep, TestBYOLForward, TestBYOLStep,
                                                TestEMA, TestExtractFeatures, TestNTXent, TestProbes,
                                                TestSimCLRForward, TestSimCLRStep)

pytestmark = pytest.mark.assignment("ssl_methods")

__all__ = ["TestExtractFeatures", "TestProbes", "TestSimCLRForward", "TestNTXent", "TestSimCLRStep",
           "TestBYOLForward", "TestEMA", "TestBYOLStep", "TestBarlowLoss", "TestBarlowStep"]
