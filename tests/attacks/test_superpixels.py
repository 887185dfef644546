"""SLIC superpixels shared by Homotopy and SAPF (gse_explain.attacks.superpixels)."""

import numpy as np
import pytest
import torch
from skimage.segmentation import slic

from gse_explain.attacks.superpixels import group_ids, slic_segments


def _cifar(shared_data, n=4):
    data = np.load(shared_data / "cifar10" / "cifar10_test_0-499.npz")
    return data["x"][:n], torch.from_numpy(data["x"][:n]).permute(0, 3, 1, 2).float() / 255


def test_segments_shape_dtype_and_contiguous_labels(shared_data):
    _, images = _cifar(shared_data)
    segments = slic_segments(images, (0.0, 1.0), n_segments=150, compactness=10.0)
    assert segments.shape == (4, 32, 32) and segments.dtype == torch.int64
    for seg in segments:
        labels = torch.unique(seg)
        assert torch.equal(labels, torch.arange(labels.numel()))  # 0..n-1, no gaps
        assert 50 <= labels.numel() <= 300  # about n_segments superpixels on a 32×32 image


def test_segments_follow_the_real_image_like_the_sapf_authors_uint8_slic(shared_data):
    """Same segmentation as SLIC on the uint8 RGB image (Fan et al.'s input), not the GSE port's grid."""
    raw, images = _cifar(shared_data)
    ours = slic_segments(images, (0.0, 1.0), n_segments=150, compactness=10.0)
    for seg, picture in zip(ours, raw):
        reference = slic(picture, n_segments=150, compactness=10)
        # Same partition (labels may be numbered differently): every pair of labels maps one-to-one.
        pairs = set(zip(seg.flatten().tolist(), reference.flatten().tolist()))
        assert len(pairs) == len(np.unique(reference)) == int(seg.max()) + 1
    # The port's SLIC on a uint8-cast [-1, 1] tensor sees an almost constant image: a different partition.
    garbage = (images[0] * 2 - 1).permute(1, 2, 0).numpy().astype(np.uint8)
    port = slic(garbage, n_segments=150, compactness=10)
    pairs = set(zip(ours[0].flatten().tolist(), port.flatten().tolist()))
    assert len(pairs) > int(ours[0].max()) + 1


def test_bounds_are_mapped_to_the_unit_box(shared_data):
    _, images = _cifar(shared_data, n=2)
    unit = slic_segments(images, (0.0, 1.0), n_segments=100)
    symmetric = slic_segments(images * 2 - 1, (-1.0, 1.0), n_segments=100)
    assert (unit == symmetric).float().mean() > 0.99


def test_group_ids_offsets_per_image():
    segments = torch.tensor([[[0, 0], [1, 2]], [[0, 1], [1, 1]]])
    ids, total, counts = group_ids(segments, channels=3)
    assert total == 5 and counts.tolist() == [3, 2]
    assert ids.shape == (2, 3, 2, 2)
    assert torch.equal(ids[0, 2], torch.tensor([[0, 0], [1, 2]]))
    assert torch.equal(ids[1, 0], torch.tensor([[3, 4], [4, 4]]))
    sums = torch.zeros(total).index_add_(0, ids.flatten(), torch.ones(ids.numel()))
    assert sums.tolist() == [6.0, 3.0, 3.0, 3.0, 9.0]  # entries per group (3 channels × pixels)


@pytest.mark.parametrize("kwargs, message", [(dict(n_segments=0), "n_segments"), (dict(compactness=0.0), "compactness")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        slic_segments(torch.rand(1, 3, 8, 8), **kwargs)
    with pytest.raises(ValueError, match="shape"):
        slic_segments(torch.rand(3, 8, 8))
