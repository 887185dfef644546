"""Fixtures for the evaluation tests: the authors' ResNet20, the CIFAR-10 npz, and one CPU thread."""

import pytest

from gse_explain.data import load_dataset
from gse_explain.models import create_model


@pytest.fixture(autouse=True)
def _single_threaded(one_thread):
    """Every evaluation test runs with one torch thread (see ``one_thread`` in tests/conftest.py)."""


@pytest.fixture(scope="session")
def cifar_npz(shared_data):
    return shared_data / "cifar10" / "cifar10_test_0-499.npz"


@pytest.fixture(scope="session")
def eval_resnet20(shared_data):
    """Authors' ResNet20 taking [0, 1] images."""
    return create_model("resnet20", weights=shared_data / "models" / "resnet20_cifar10_gse.pt")


@pytest.fixture(scope="session")
def cifar_dataset(cifar_npz):
    return load_dataset("cifar10_npz", root=cifar_npz)
