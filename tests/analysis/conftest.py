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


def write_patch_store(path, images, labels, weights, *, batch_size: int = 3, extra_config=None):
    """A stored targeted 'attack' on 3 real images, 2 targets each (a 3 × 3 inverted patch per row), in batches of
    ``batch_size`` images; the config names ``weights``. Returns (path, adversarial rows, row labels)."""
    import numpy as np

    from gse_explain.evaluation.store import ResultStore

    images, labels = images[:3], labels[:3]
    config = {"dataset": "cifar10_npz", "model": "resnet20", "weights": str(weights), "normalization": None,
              "attack": "patch", "targeted": True, "mode": "targeted", "batch_size": batch_size, "bounds": [0.0, 1.0],
              **(extra_config or {})}
    store = ResultStore.create(path, config)
    store.write_selection({"positions": [0, 1, 2], "examples": [0, 1, 2], "labels": labels.tolist(), "scanned": 3, "correct": 3})
    image = np.tile(np.arange(3), 2)
    adversarial = images[image].clone()
    for row in range(6):
        adversarial[row, :, 2 * row : 2 * row + 3, 10:13] = 1.0 - adversarial[row, :, 2 * row : 2 * row + 3, 10:13]
    records = {"image": image, "label": labels[image].numpy(), "target": ((labels[image] + torch.tensor([1, 1, 1, 2, 2, 2])) % 10).numpy(),
               "offset": np.repeat([1, 2], 3), "success": np.array([True, True, False, True, True, True]), "l2": np.ones(6)}
    for batch, start in enumerate(range(0, 3, batch_size)):
        keep = (image >= start) & (image < start + batch_size)
        batch_records = {k: np.asarray(v)[keep] for k, v in records.items()}
        batch_records["image"] = batch_records["image"] - start
        store.write_batch(batch, batch_records, images[start : start + batch_size], adversarial[torch.from_numpy(keep)])
    return path, adversarial, labels[image]


@pytest.fixture
def make_patch_store(cifar_correct, resnet20_weights):
    """Factory ``(path, batch_size=3, weights=None, extra_config=None)`` → :func:`write_patch_store` on the real images."""

    def make(path, batch_size: int = 3, weights=None, extra_config=None):
        return write_patch_store(path, *cifar_correct, resnet20_weights if weights is None else weights,
                                 batch_size=batch_size, extra_config=extra_config)

    return make
