"""Fixtures for attack tests: the authors' ResNet20, its first correctly classified CIFAR-10 images and a
model wrapper that counts (and optionally records) the images the attack sends through the model."""

import pytest
import torch
from torch import nn

from gse_explain.evaluation.protocol import load_images, select_correct


@pytest.fixture(scope="session")
def cifar_correct(cifar_dataset, resnet20):
    """First 32 correctly classified CIFAR-10 test images: ([0, 1] images (32, 3, 32, 32), labels (32,))."""
    selection = select_correct(resnet20, cifar_dataset, 32)
    return load_images(cifar_dataset, selection.positions), torch.as_tensor(selection.labels)


class CountingModel(nn.Module):
    """Wraps a model; counts the images it sees with (``seen[True]``) and without (``seen[False]``) autograd
    enabled, and keeps copies of the inputs in ``inputs`` when ``record``."""

    def __init__(self, model: nn.Module, record: bool = False):
        super().__init__()
        self.model = model
        self.seen = {True: 0, False: 0}
        self.inputs = [] if record else None

    @property
    def images(self) -> int:
        return self.seen[True] + self.seen[False]

    def forward(self, x):
        self.seen[torch.is_grad_enabled()] += x.shape[0]
        if self.inputs is not None:
            self.inputs.append(x.detach().clone())
        return self.model(x)


@pytest.fixture
def counting_model():
    """``counting_model(model, record=False)`` → a :class:`CountingModel` around ``model``."""
    return CountingModel
