"""Fixtures for the analysis tests: one torch thread, the authors' ResNet20, real CIFAR-10 images, tiny models."""

import pytest
import torch
from torch import nn

from gse_explain.evaluation.protocol import load_images, select_correct
from gse_explain.models import wrap_model


@pytest.fixture(autouse=True)
def _single_threaded(one_thread):
    """Every analysis test runs with one torch thread (see ``one_thread`` in tests/conftest.py)."""


@pytest.fixture(scope="session")
def cifar_correct(cifar_dataset, resnet20):
    """First 6 correctly classified CIFAR-10 test images: ([0, 1] images (6, 3, 32, 32), labels (6,))."""
    selection = select_correct(resnet20, cifar_dataset, 6)
    return load_images(cifar_dataset, selection.positions), torch.as_tensor(selection.labels)


@pytest.fixture
def make_linear_model():
    """Factory: Z = W · vec(x) (no bias) on (C, H, W) images, wrapped to take [0, 1] inputs unchanged."""

    def make(weight: torch.Tensor) -> nn.Module:
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            linear.weight.copy_(weight)
        return wrap_model(nn.Sequential(nn.Flatten(), linear))

    return make
