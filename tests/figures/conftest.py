"""Hand-made result stores for the figure tests: a tiny GAP + linear classifier on 3×8×8 images, three
attacks with chosen perturbations (one pixel cluster, two clusters, a dense block), untargeted and targeted."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from gse_explain.evaluation.metrics import example_metrics  # noqa: E402
from gse_explain.evaluation.store import ResultStore  # noqa: E402
from gse_explain.models import wrap_model  # noqa: E402

NUM_CLASSES = 3
NAMES = ["ant", "bee", "cow"]


@pytest.fixture(autouse=True)
def _close_figures(one_thread):
    yield
    plt.close("all")


def toy_model() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, NUM_CLASSES))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return wrap_model(net).eval()


@pytest.fixture(scope="session")
def model():
    return toy_model()


def _delta(kind: str, row: int) -> torch.Tensor:
    delta = torch.zeros(3, 8, 8)
    if kind == "one_cluster":
        delta[:, 2:4, 2:4] = 0.2 + 0.05 * row
    elif kind == "two_clusters":
        delta[0, 1, 1] = 0.3
        delta[1, 6, 5:7] = -0.2 - 0.05 * row
    else:  # dense
        delta[:, 1:7, 1:7] = 0.05
    return delta


ATTACKS = {"gse": "one_cluster", "strattack": "two_clusters", "pgd0": "dense"}


def write_store(path, attack: str, targeted: bool, *, images: int = 3, offsets=(1, 2), failed=()) -> str:
    """A complete store of ``images`` clean images (one batch of 2 and one of the rest); ``failed`` lists
    (image, offset) rows marked unsuccessful."""
    config = {"dataset": "toy", "model": "toy", "attack": attack, "targeted": targeted, "mode": "targeted" if targeted else "untargeted",
              "batch_size": 2, "bounds": [0.0, 1.0], "offsets": list(offsets) if targeted else None, "seed": 0, "options": {}}
    store = ResultStore.create(path, config)
    generator = torch.Generator().manual_seed(1)
    clean_all = 0.2 + 0.6 * torch.rand(images, 3, 8, 8, generator=generator)
    labels = np.arange(images) % NUM_CLASSES
    store.write_selection({"positions": list(range(images)), "examples": [100 + i for i in range(images)],
                           "labels": labels.tolist(), "scanned": images, "correct": images})
    for batch, start in enumerate(range(0, images, 2)):
        clean = clean_all[start:start + 2]
        rows = [(i, o) for o in (offsets if targeted else (-1,)) for i in range(clean.shape[0])]
        image = np.array([i for i, _ in rows], dtype=np.int64)
        adversarial = torch.stack([(clean[i] + _delta(ATTACKS[attack], i)).clamp(0, 1) for i, _ in rows])
        label = labels[start + image]
        records = {
            "image": image, "label": label,
            "target": np.array([(label[k] + o) % NUM_CLASSES if targeted else -1 for k, (_, o) in enumerate(rows)], dtype=np.int64),
            "offset": np.array([o for _, o in rows], dtype=np.int64),
            "success": np.array([(start + i, o) not in failed for i, o in rows]),
            "time": np.full(len(rows), 0.5 if attack == "gse" else 2.0),
            "model_passes": np.full(len(rows), 10.0),
            **example_metrics(clean[image], adversarial, (0.0, 1.0)),
        }
        store.write_batch(batch, records, clean, adversarial)
    return str(path)


@pytest.fixture
def toy_runs(tmp_path):
    """``{"untargeted": {attack: store}, "targeted": {attack: store}}`` for the three toy attacks."""
    return {mode: {a: write_store(tmp_path / f"{a}-{mode}", a, mode == "targeted", failed={(1, 2)} if a == "strattack" else ())
                   for a in ATTACKS} for mode in ("untargeted", "targeted")}


@pytest.fixture
def make_store():
    """The :func:`write_store` factory."""
    return write_store


@pytest.fixture
def names():
    return NAMES
