"""Fixtures for the analysis tests: one torch thread, the authors' ResNet20, real CIFAR-10 images, tiny models."""

import pytest
import torch
from torch import nn

from gse_explain.data import load_dataset
from gse_explain.evaluation.protocol import load_images, select_correct
from gse_explain.models import create_model, wrap_model


@pytest.fixture(autouse=True)
def _single_threaded(one_thread):
    """Every analysis test runs with one torch thread (see ``one_thread`` in tests/conftest.py)."""


@pytest.fixture(scope="session")
def resnet20_weights(shared_data):
    return shared_data / "models" / "resnet20_cifar10_gse.pt"


@pytest.fixture(scope="session")
def resnet20(resnet20_weights):
    """Authors' ResNet20 wrapped to take [0, 1] images (normalises to [-1, 1] inside)."""
    return create_model("resnet20", weights=resnet20_weights)


@pytest.fixture(scope="session")
def cifar_npz(shared_data):
    return shared_data / "cifar10" / "cifar10_test_0-499.npz"


@pytest.fixture(scope="session")
def cifar_correct(cifar_npz, resnet20):
    """First 6 correctly classified CIFAR-10 test images: ([0, 1] images (6, 3, 32, 32), labels (6,))."""
    dataset = load_dataset("cifar10_npz", root=cifar_npz)
    selection = select_correct(resnet20, dataset, 6)
    return load_images(dataset, selection.positions), torch.as_tensor(selection.labels)


@pytest.fixture
def make_linear_model():
    """Factory: Z = W · vec(x) (no bias) on (C, H, W) images, wrapped to take [0, 1] inputs unchanged."""

    def make(weight: torch.Tensor) -> nn.Module:
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(weight)
        return wrap_model(nn.Sequential(nn.Flatten(), linear))

    return make
