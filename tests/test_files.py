"""Tests of helpers.files (atomic writes, tagged files) and helpers.runtime.available_cpus."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import pytest
import torch

from helpers import runtime
from helpers.files import UnexpectedFile, read_tagged, write_atomically
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


def test_available_cpus_is_the_affinity_capped_by_the_quota():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = runtime._cgroup_cpu_quota()
    if quota is not None:
        expected = min(expected, max(1, math.ceil(quota)))
    assert available_cpus() == expected >= 1


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "max 100000\n"}, None),  # v2, no limit
        ({"cpu.max": "150000 100000\n"}, 1.5),  # v2: 1.5 CPUs (Docker --cpus=1.5)
        ({"cpu.max": "garbage"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, no limit
        ({}, None),  # no cgroup files (macOS, Windows, a bare machine)
    ],
)
def test_cgroup_cpu_quota(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert runtime._cgroup_cpu_quota(tmp_path) == quota


def test_a_quota_caps_the_cpus(monkeypatch):
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 0.5)
    assert available_cpus() == 1  # rounded up, at least one


def test_read_tagged_returns_the_dict_and_names_each_problem(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"format": "ssl-lab-thing", "version": 2, "value": torch.ones(2)}, good)
    assert torch.equal(read_tagged(good, "ssl-lab-thing", 2, "thing")["value"], torch.ones(2))

    cases = {
        "unreadable": b"not a torch file",
        "format": {"format": "something-else", "version": 2},
        "version": {"format": "ssl-lab-thing", "version": 1},
    }
    for reason, content in cases.items():
        path = tmp_path / f"{reason}.pt"
        path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
        with pytest.raises(UnexpectedFile) as error:
            read_tagged(path, "ssl-lab-thing", 2, "thing")
        assert error.value.reason == reason and str(path) in str(error.value)
    torch.save([1, 2], tmp_path / "list.pt")  # not a dict at all
    with pytest.raises(UnexpectedFile, match="is not a thing") as error:
        read_tagged(tmp_path / "list.pt", "ssl-lab-thing", 2, "thing")
    assert error.value.reason == "format"


def test_read_tagged_runs_no_code_from_the_file(tmp_path):
    """A pickle that would run code when loaded is refused (weights_only), never executed."""

    class Boom:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('ran').write_text('x')",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "ssl-lab-thing", "version": 2, "x": Boom()}, path)
    with pytest.raises(UnexpectedFile) as error:
        read_tagged(path, "ssl-lab-thing", 2, "thing")
    assert error.value.reason == "unreadable" and not (tmp_path / "ran").exists() and not Path("ran").exists()
