"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest
import torch

from gse_explain.data import load_dataset
from gse_explain.models import create_model

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (``$GSE_EXPLAIN_SHARED_DATA``, default ``<repo>/../shared/data``).

    Tests that need real weights or images are skipped, not failed, on a
    machine that does not have the folder.
    """
    path = Path(os.environ.get("GSE_EXPLAIN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).expanduser()
    if not path.is_dir():
        if os.environ.get("GSE_EXPLAIN_REQUIRE_SHARED_DATA"):  # CI: a missing data folder is a failure, not a skip
            pytest.fail(f"shared data folder '{path}' not found and GSE_EXPLAIN_REQUIRE_SHARED_DATA is set")
        pytest.skip(f"shared data folder '{path}' not found: set GSE_EXPLAIN_SHARED_DATA to the shared data folder")
    return path


@pytest.fixture
def one_thread():
    """Run torch on one thread: small batches gain nothing from more, and under CPU contention two
    OpenMP threads spin-wait and make tiny attacks 10-100x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def resnet20_weights(shared_data) -> Path:
    """The authors' ResNet20 CIFAR-10 weights (plain state dict)."""
    return shared_data / "models" / "resnet20_cifar10_gse.pt"


@pytest.fixture(scope="session")
def resnet20(resnet20_weights):
    """Authors' ResNet20 wrapped to take [0, 1] images (normalises to [-1, 1] inside). Shared by the whole
    session: tests that change its mode or flags must restore them."""
    return create_model("resnet20", weights=resnet20_weights)


@pytest.fixture(scope="session")
def cifar_npz(shared_data) -> Path:
    """The first 500 CIFAR-10 test images as an .npz file."""
    return shared_data / "cifar10" / "cifar10_test_0-499.npz"


@pytest.fixture(scope="session")
def cifar_dataset(cifar_npz):
    return load_dataset("cifar10_npz", root=cifar_npz)
