import pytest
import torch

from gse_explain.data import list_datasets, load_dataset, skimage_photos


def test_default_photos():
    ds = skimage_photos()
    assert ds.names == ["chelsea", "coffee", "rocket", "astronaut"]
    assert (ds.name, ds.num_classes, ds.labels_known, ds.index, len(ds)) == ("skimage", 1000, False, [0, 1, 2, 3], 4)
    for i in range(4):
        image, label = ds[i]
        assert label == -1
        assert image.shape == (3, 224, 224) and image.dtype == torch.float32
        assert 0.0 <= image.min().item() and image.max().item() <= 1.0
        assert image.std() > 0.05  # a real photograph, not a blank


def test_grey_photo_becomes_rgb_and_size_options():
    ds = skimage_photos(names="camera", size=(32, 48))
    image, _ = ds[0]
    assert image.shape == (3, 32, 48)
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_antialiased_resize_is_smooth():
    """Antialiasing averages the fur texture: the small image has no values the area mean cannot explain."""
    native = skimage_photos(names=("chelsea",), size=None)[0][0]
    small = skimage_photos(names=("chelsea",), size=30)[0][0]
    assert native.shape == (3, 300, 451)
    assert small.mean().item() == pytest.approx(native.mean().item(), abs=0.01)
    assert small.std() < native.std()


def test_unknown_photo_and_bad_arguments():
    with pytest.raises(ValueError, match="'nonexistent', which is not an image of skimage.data"):
        skimage_photos(names=("chelsea", "nonexistent"))
    with pytest.raises(ValueError, match="names is empty"):
        skimage_photos(names=())
    with pytest.raises(ValueError, match="differ in size"):
        skimage_photos(names=("chelsea", "coffee"), size=None)


def test_load_dataset_registry(shared_data):
    assert list_datasets() == ["cifar10", "cifar10_npz", "folder", "imagenet_val", "nips2017", "skimage"]
    photos = load_dataset("skimage", names=("coffee",), size=64)
    assert photos[0][0].shape == (3, 64, 64)
    cifar = load_dataset("cifar10_npz", shared_data / "cifar10" / "cifar10_test_0-499.npz")
    assert len(cifar) == 500 and cifar[0][1] == 3
    nips = load_dataset("nips2017", shared_data / "nips2017", size=64)
    assert len(nips) == 200 and nips[0][0].shape == (3, 64, 64)
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*cifar10.*skimage"):
        load_dataset("mnist", "/tmp")
    with pytest.raises(ValueError, match="needs root=PATH"):
        load_dataset("nips2017")
    with pytest.raises(ValueError, match="leave root=None"):
        load_dataset("skimage", "/tmp")


def test_dataloader_batches(shared_data):
    from torch.utils.data import DataLoader

    nips = load_dataset("nips2017", shared_data / "nips2017", size=32)
    images, labels = next(iter(DataLoader(nips, batch_size=4)))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == nips.labels[:4]


def test_class_names_for_titles():
    from gse_explain.data import class_names

    assert class_names(10)[3] == "cat" and class_names(10)[9] == "truck"
    imagenet = class_names(1000)
    assert len(imagenet) == 1000 and imagenet[285] == "Egyptian cat" and imagenet[967] == "espresso"
    assert class_names(3) == ["class 0", "class 1", "class 2"]
    with pytest.raises(ValueError, match="num_classes"):
        class_names(0)
