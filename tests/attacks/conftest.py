"""Fixtures for attack tests: the authors' ResNet20 and its first correctly classified CIFAR-10 images."""

import pytest
import torch

from gse_explain.data import load_dataset
from gse_explain.evaluation.protocol import load_images, select_correct
from gse_explain.models import create_model


@pytest.fixture(scope="session")
def resnet20(shared_data):
    """Authors' ResNet20 wrapped to take [0, 1] images (normalises to [-1, 1] inside)."""
    return create_model("resnet20", weights=shared_data / "models" / "resnet20_cifar10_gse.pt")


@pytest.fixture(scope="session")
def cifar_correct(shared_data, resnet20):
    """First 32 correctly classified CIFAR-10 test images: ([0, 1] images (32, 3, 32, 32), labels (32,))."""
    dataset = load_dataset("cifar10_npz", root=shared_data / "cifar10" / "cifar10_test_0-499.npz")
    selection = select_correct(resnet20, dataset, 32)
    return load_images(dataset, selection.positions), torch.as_tensor(selection.labels)
