import pickle

import numpy as np
import pytest
import torch
import torchvision

from gse_explain.data import ArrayImageDataset, cifar10, cifar10_npz


@pytest.fixture(scope="module")
def npz_path(shared_data):
    return shared_data / "cifar10" / "cifar10_test_0-499.npz"


def test_npz_items(npz_path):
    ds = cifar10_npz(npz_path)
    assert isinstance(ds, ArrayImageDataset)
    assert (ds.name, ds.num_classes, ds.labels_known, len(ds)) == ("cifar10", 10, True, 500)
    assert [ds[i][1] for i in range(10)] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert list(ds.index) == list(range(500))
    image, label = ds[0]
    assert isinstance(label, int)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    with np.load(npz_path) as npz:
        raw = npz["x"][7]
    assert torch.equal(ds[7][0], torch.from_numpy(raw).permute(2, 0, 1).float() / 255)
    assert torch.equal(ds[-1][0], ds[499][0])
    with pytest.raises(IndexError, match="out of range"):
        ds[500]


def test_returned_images_are_independent_copies(npz_path):
    ds = cifar10_npz(npz_path)
    first, _ = ds[3]
    first.zero_()
    assert ds[3][0].abs().sum() > 0


def test_subset_keeps_original_indices(npz_path):
    ds = cifar10_npz(npz_path).subset([10, 2, 499])
    assert ds.index == [10, 2, 499] and len(ds) == 3
    assert ds[1][1] == 8  # image 2 of the test set is a ship


def test_npz_without_index_key(tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, x=np.zeros((4, 32, 32, 3), np.uint8), y=np.array([0, 1, 2, 9]))
    ds = cifar10_npz(path)
    assert ds.index == [0, 1, 2, 3] and [ds[i][1] for i in range(4)] == [0, 1, 2, 9]


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((2, 32, 32, 3), np.uint8)}, r"lacks the array\(s\) \['y'\]"),
        ({"x": np.zeros((2, 3, 32, 32), np.uint8), "y": np.zeros(2, np.int64)}, "looks like NCHW"),
        ({"x": np.zeros((2, 32, 32, 3), np.float32), "y": np.zeros(2, np.int64)}, "must be uint8"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8), "y": np.zeros(3, np.int64)}, r"y must be shaped \(2,\)"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8), "y": np.array([0, 10])}, "labels in 0..9"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8), "y": np.zeros(2, np.int64), "index": np.zeros(3)}, "index"),
    ],
)
def test_bad_npz_contents(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        cifar10_npz(path)


def test_npz_missing_or_unreadable(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.npz' not found"):
        cifar10_npz(tmp_path / "none.npz")
    text = tmp_path / "text.npz"
    text.write_text("not a zip archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        cifar10_npz(text)


def _fake_cifar_root(root, images_nhwc, labels):
    """torchvision's layout: pickled dicts with rows of 3072 bytes in CHW order."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = images_nhwc.transpose(0, 3, 1, 2).reshape(len(images_nhwc), -1)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": rows, "labels": list(labels)}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, f)


def test_torchvision_layout(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    labels = [4, 0, 9, 1, 1]
    _fake_cifar_root(tmp_path, images, labels)
    # torchvision checks the md5 of all official batch files, which a fake
    # cannot match; the reading code after that check is what is tested here.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    ds = cifar10(tmp_path)
    assert (ds.name, ds.num_classes, len(ds), ds.index) == ("cifar10", 10, 5, [0, 1, 2, 3, 4])
    assert [ds[i][1] for i in range(5)] == labels
    for i in range(5):
        assert torch.equal(ds[i][0], torch.from_numpy(images[i]).permute(2, 0, 1).float() / 255)


def test_torchvision_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True.*cifar-10-batches-py"):
        cifar10(tmp_path)
    _fake_cifar_root(tmp_path, np.zeros((1, 32, 32, 3), np.uint8), [0])
    # Without the md5 bypass torchvision rejects the fake: the error must say why and what to do.
    with pytest.raises(RuntimeError, match="md5.*cifar10_npz"):
        cifar10(tmp_path)
