import csv

import numpy as np
import pytest
import torch
from PIL import Image

from gse_explain.data import image_folder, imagenet_val, nips2017, read_index_file


def save_image(path, color, size=(40, 30), mode="RGB"):
    """A solid-colour image; ``color`` is in 0..255 per channel."""
    Image.new(mode, size, color).save(path)


# --------------------------------------------------------------------------- NIPS 2017


@pytest.fixture(scope="module")
def nips_root(shared_data):
    return shared_data / "nips2017"


def test_nips2017_labels_and_images(nips_root):
    ds = nips2017(nips_root)
    with open(nips_root / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert (ds.name, ds.num_classes, ds.labels_known, len(ds)) == ("nips2017", 1000, True, 200)
    assert ds.labels == [int(r["TrueLabel"]) - 1 for r in rows]
    assert ds.target_classes == [int(r["TargetClass"]) - 1 for r in rows]
    assert ds.image_ids == [r["ImageId"] for r in rows]
    assert ds.index == list(range(200))
    image, label = ds[0]
    assert label == int(rows[0]["TrueLabel"]) - 1
    assert image.shape == (3, 299, 299) and image.dtype == torch.float32
    assert 0.0 <= image.min().item() and image.max().item() <= 1.0
    # At the native size no resampling happens: pixels are the PNG's bytes / 255.
    png = np.array(Image.open(nips_root / "images" / f"{rows[0]['ImageId']}.png").convert("RGB"))
    assert torch.equal(image, torch.from_numpy(png).permute(2, 0, 1).float() / 255)


def test_nips2017_resized_and_subset(nips_root):
    ds = nips2017(nips_root, size=224)
    assert ds[5][0].shape == (3, 224, 224)
    sub = ds.subset([7, 3])
    assert sub.index == [7, 3] and sub.target_classes == [ds.target_classes[7], ds.target_classes[3]]
    assert torch.equal(sub[0][0], ds[7][0])


def test_nips2017_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="root=.*not an existing folder"):
        nips2017(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="images.csv"):
        nips2017(tmp_path)
    (tmp_path / "images.csv").write_text("ImageId,TrueLabel,TargetClass\nabc,1,5\n")
    with pytest.raises(FileNotFoundError, match=r"abc\.png"):
        nips2017(tmp_path)


def test_nips2017_tiny_layout(tmp_path):
    (tmp_path / "images").mkdir()
    save_image(tmp_path / "images" / "a1.png", (255, 0, 0), size=(299, 299))
    (tmp_path / "images.csv").write_text("ImageId,URL,TrueLabel,TargetClass\na1,http://x,1,1000\n")
    ds = nips2017(tmp_path, size=(20, 10))
    image, label = ds[0]
    assert (label, ds.target_classes) == (0, [999])
    assert image.shape == (3, 20, 10)
    assert torch.allclose(image[0], torch.ones(20, 10)) and image[1:].abs().max() == 0


# --------------------------------------------------------------------------- ImageNet val


@pytest.fixture
def fake_imagenet(tmp_path):
    """torchvision's unpacked ImageNet layout: meta.bin plus val/<wnid>/*.JPEG (2 classes x 3 images)."""
    wnids = ["n01440764", "n01443537"]
    torch.save(({wnids[0]: ("tench",), wnids[1]: ("goldfish",)}, [wnids[0]] * 3 + [wnids[1]] * 3),
               tmp_path / "meta.bin")
    colors = {}
    for c, wnid in enumerate(wnids):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        for k in range(3):
            name = f"ILSVRC2012_val_{c * 3 + k + 1:08d}.JPEG"
            colors[c * 3 + k] = (40 * (c * 3 + k), 0, 0)
            save_image(tmp_path / "val" / wnid / name, colors[c * 3 + k], size=(50, 30))
    return tmp_path, colors


def test_imagenet_val_with_index_file(fake_imagenet, tmp_path_factory):
    root, colors = fake_imagenet
    index_file = tmp_path_factory.mktemp("idx") / "random_10k_indices.txt"
    index_file.write_text("4, 0, 2")
    ds = imagenet_val(root, index_file=index_file, size=16)
    assert (ds.name, ds.num_classes, len(ds)) == ("imagenet_val", 1000, 3)
    assert ds.index == [4, 0, 2]
    assert ds.labels == [1, 0, 0]
    assert [p.parent.name for p in ds.files] == ["n01443537", "n01440764", "n01440764"]
    for pos, idx in enumerate(ds.index):
        image, _ = ds[pos]
        assert image.shape == (3, 16, 16)
        assert image[0].mean().item() == pytest.approx(colors[idx][0] / 255, abs=0.02)  # JPEG is lossy


def test_imagenet_val_all_and_sequence(fake_imagenet):
    root, _ = fake_imagenet
    ds = imagenet_val(root)
    assert ds.index == list(range(6)) and ds.labels == [0, 0, 0, 1, 1, 1]
    assert ds[0][0].shape == (3, 256, 256)
    assert imagenet_val(root, index_file=[5, 1], size=8).labels == [1, 0]
    with pytest.raises(IndexError, match=r"outside the 6 validation images.*\[6\]"):
        imagenet_val(root, index_file=[1, 6])


def test_imagenet_val_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        imagenet_val(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_devkit_t12.tar.gz"):
        imagenet_val(tmp_path)


def test_read_index_file_formats(tmp_path):
    paper = tmp_path / "paper.txt"
    paper.write_text("12, 7, 40000, 3\n")
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("12\n7 40000\n\n3\n")
    assert read_index_file(paper) == read_index_file(spaced) == [12, 7, 40000, 3]
    bad = tmp_path / "bad.txt"
    bad.write_text("1, two, 3")
    with pytest.raises(ValueError, match="integers"):
        read_index_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no indices"):
        read_index_file(empty)
    with pytest.raises(FileNotFoundError, match="index_file=PATH"):
        read_index_file(tmp_path / "missing.txt")


# --------------------------------------------------------------------------- user folders


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    save_image(folder / "b.jpg", (0, 255, 0))
    save_image(folder / "a.png", (255, 0, 0))
    save_image(folder / "c.BMP", (0, 0, 255))
    save_image(folder / "d.webp", 128, mode="L")
    save_image(folder / "e.png", (255, 255, 0, 0), mode="RGBA")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    save_image(folder / "sub" / "z.png", (1, 1, 1))
    return folder


def test_image_folder_without_labels(photo_dir):
    ds = image_folder(photo_dir, size=24)
    assert [p.name for p in ds.files] == ["a.png", "b.jpg", "c.BMP", "d.webp", "e.png"]
    assert (ds.name, ds.num_classes, ds.labels_known, ds.index) == ("folder", 1000, False, [0, 1, 2, 3, 4])
    assert ds.labels == [-1] * 5
    images = [ds[i][0] for i in range(5)]
    assert all(im.shape == (3, 24, 24) and im.dtype == torch.float32 for im in images)
    assert images[0][0].min() == 1.0 and images[0][1:].max() == 0.0  # red png
    assert images[1][1].mean() > 0.95 and images[1][0].mean() < 0.05  # green jpeg
    assert torch.allclose(images[3][0], images[3][2])  # greyscale -> RGB
    assert images[4].shape[0] == 3  # RGBA -> RGB


def test_image_folder_with_labels_csv(photo_dir, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\nc.BMP,7\na.png,3\nb.jpg,0\nd.webp,999\ne.png,1\n")
    ds = image_folder(photo_dir, size=(10, 20), labels_csv=labels)
    assert ds.labels == [3, 0, 7, 999, 1] and ds.labels_known
    assert ds[2][1] == 7 and ds[2][0].shape == (3, 10, 20)
    partial = tmp_path / "partial.csv"
    partial.write_text("filename,label\nb.jpg,5\n")
    ds = image_folder(photo_dir, size=8, labels_csv=partial, num_classes=10)
    assert ds.labels == [-1, 5, -1, -1, -1] and not ds.labels_known


@pytest.mark.parametrize(
    "content, match",
    [
        ("file,label\na.png,1\n", "columns filename,label"),
        ("filename,label\nmissing.png,1\n", r"not images in .*\['missing.png'\]"),
        ("filename,label\na.png,cat\n", "line 2: label 'cat' is not an integer"),
        ("filename,label\na.png,1000\n", r"outside 0..999"),
    ],
)
def test_image_folder_bad_labels_csv(photo_dir, tmp_path, content, match):
    labels = tmp_path / "labels.csv"
    labels.write_text(content)
    with pytest.raises(ValueError, match=match):
        image_folder(photo_dir, size=8, labels_csv=labels)


def test_image_folder_errors(tmp_path, photo_dir):
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        image_folder(tmp_path / "absent", size=8)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        image_folder(empty, size=8)
    with pytest.raises(FileNotFoundError, match="labels_csv"):
        image_folder(photo_dir, size=8, labels_csv=tmp_path / "none.csv")
    with pytest.raises(ValueError, match="size=0"):
        image_folder(photo_dir, size=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="x.png' .* cannot be decoded"):
        image_folder(broken, size=8)[0]
