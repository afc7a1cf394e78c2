"""Tests of helpers.files (atomic writes) and helpers.runtime.available_cpus."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from helpers.files import write_atomically
from helpers.runtime import available_cpus


def test_write_atomically_writes_the_file_readable_by_all(tmp_path):
    path = tmp_path / "new" / "folder" / "tensor.pt"
    assert write_atomically(path, lambda file: torch.save(torch.arange(3), file)) == path
    assert torch.equal(torch.load(path, weights_only=True), torch.arange(3))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["tensor.pt"], "a temporary file was left behind"


@pytest.mark.parametrize("fsync", [True, False])
def test_a_failed_write_leaves_the_old_file_whole(tmp_path, fsync):
    """Half a write never replaces the old file, and the temporary file is removed."""
    path = tmp_path / "record.json"
    path.write_text("old, complete\n")

    def half_then_crash(file):
        file.write(b"new, but only ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_then_crash, fsync=fsync)
    assert path.read_text() == "old, complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_available_cpus_is_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cpus() == expected >= 1
