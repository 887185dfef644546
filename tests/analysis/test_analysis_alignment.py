"""CAM–perturbation alignment: a hand-made map/perturbation pair, and a stored run on the real ResNet20."""

import numpy as np
import pytest
import torch

from gse_explain.analysis import (
    cam_alignment,
    cam_alignment_curves,
    cam_alignment_table,
    class_activation_maps,
    interpretability_table,
    top_cam_region,
)


def test_alignment_on_a_hand_made_pair():
    cam = torch.arange(16, dtype=torch.float32).view(1, 4, 4) / 15  # top 25 % = the last row (values 12..15)
    delta = torch.zeros(1, 3, 4, 4)
    delta[0, 0, 3, 0] = 3.0  # inside the top row: energy 9
    delta[0, 2, 3, 3] = 1.0  # inside: 1
    delta[0, 1, 0, 0] = 4.0  # outside: 16 (lowest CAM value)
    region = top_cam_region(cam, 25)
    assert region[0].tolist() == [[False] * 4] * 3 + [[True] * 4]
    assert cam_alignment(cam, delta, 25).tolist() == pytest.approx([10 / 26])
    assert cam_alignment(cam, delta, 100).tolist() == pytest.approx([1.0])
    assert cam_alignment(cam, delta, 1).tolist() == pytest.approx([1 / 26])  # k = 1: only pixel (3, 3), value 15


def test_ties_are_included_in_the_region():
    cam = torch.zeros(1, 2, 5)
    cam[0, 0, 0] = 1.0  # one peak, everything else tied at 0
    assert int(top_cam_region(cam, 20).sum()) == 10  # k = 2 reaches the zeros: the whole image


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="must agree in batch size and H × W"):
        cam_alignment(torch.zeros(1, 8, 8), torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"cam must be a \(B, H, W\) map"):
        cam_alignment(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"top_percent must lie in \(0, 100\]"):
        top_cam_region(torch.zeros(1, 4, 4), 0)


@pytest.fixture
def resnet20_store(tmp_path, cifar_correct, make_patch_store):
    """A stored targeted 'attack' on 3 real images (a 3 × 3 patch per row); the config names the real weights."""
    path, adversarial, row_labels = make_patch_store(tmp_path / "patch")
    return path, cifar_correct[0][:3], adversarial, row_labels


def test_stored_run_with_rebuilt_model(resnet20_store, resnet20):
    path, images, adversarial, row_labels = resnet20_store
    table = cam_alignment_table(path, top_percents=[10, 50])  # model rebuilt from the stored configuration
    assert len(table) == 6 * 2 and table["top_percent"].tolist() == [10, 50] * 6
    cams = class_activation_maps(resnet20, images[np.tile(np.arange(3), 2)], row_labels)
    delta = adversarial - images[np.tile(np.arange(3), 2)]
    expected = cam_alignment(cams, delta, 10).numpy()
    assert table.loc[table["top_percent"] == 10, "energy_share"].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert table["region_fraction"].between(0, 1).all()
    _, summary = cam_alignment_curves({"patch": path}, resnet20, top_percents=[10, 50], successful_only=True)
    assert summary["n"].tolist() == [5, 5] and summary["chance"].tolist() == pytest.approx([0.1, 0.5], abs=0.01)
    scores = interpretability_table(path, percentiles=[50])
    assert len(scores) == 6 and scores["interpretability_score"].between(0, 1).all()
