"""Shared fixtures of the project's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CIFAR_JPEG = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg"

# Two cores are shared by the test process and any workers it starts; more threads only
# oversubscribe them.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def cifar_source() -> Path:
    """The real CIFAR-10 copy beside the project (../shared/data/cifar10-jpeg)."""
    if not (CIFAR_JPEG / "test.tar.gz").is_file():
        pytest.skip(f"real CIFAR-10 copy not found at {CIFAR_JPEG}")
    return CIFAR_JPEG


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A data/ folder for one test session, so tests never touch the user's cache."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(autouse=True)
def _no_user_data_env(monkeypatch):
    """Tests decide their data source explicitly; the caller's environment must not leak in."""
    for name in ("SSL_LAB_CIFAR10", "SSL_LAB_SYNTHETIC", "SSL_LAB_SMOKE", "SSL_LAB_DEVICE"):
        monkeypatch.delenv(name, raising=False)
