"""ImageNet-style data: NIPS-2017 dev set, ImageNet validation, user folders."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torchvision

from ._base import ImageFileDataset, SizeSpec

PathLike = Union[str, os.PathLike]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _existing_dir(root: PathLike, arg: str, expected: str) -> Path:
    p = Path(root).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{arg}='{p}' is not an existing folder: point {arg} to {expected}")
    return p


def nips2017(root: PathLike, size: SizeSpec = 299) -> ImageFileDataset:
    """The NIPS-2017 adversarial competition development set (ImageNet classes).

    Args:
        root: folder with ``images.csv`` and ``images/<ImageId>.png``.
        size: output size in pixels (int = square, or (H, W)); images are
            squashed with ``Resize((size, size))`` like in the GSE paper. The
            originals are 299x299.

    Returns:
        Dataset in ``images.csv`` row order with labels ``TrueLabel - 1``
        (0-based ImageNet class). ``index`` is the csv row (0-based),
        ``image_ids`` the ImageId strings, ``target_classes`` the competition's
        ``TargetClass - 1``.
    """
    root_p = _existing_dir(root, "root", "the NIPS-2017 folder containing images.csv and images/")
    csv_path = root_p / "images.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"'{csv_path}' not found: root must contain the competition's images.csv")
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    required = {"ImageId", "TrueLabel", "TargetClass"}
    if not rows or not required <= set(rows[0]):
        raise ValueError(f"'{csv_path}' must have the columns {sorted(required)} and at least one row")
    files, labels, targets, ids = [], [], [], []
    for row_no, row in enumerate(rows):
        try:
            true_label, target = int(row["TrueLabel"]) - 1, int(row["TargetClass"]) - 1
        except ValueError as exc:
            raise ValueError(f"'{csv_path}' row {row_no + 2}: TrueLabel/TargetClass must be integers") from exc
        if not (0 <= true_label < 1000 and 0 <= target < 1000):
            raise ValueError(
                f"'{csv_path}' row {row_no + 2}: TrueLabel and TargetClass must be 1-based in 1..1000, "
                f"got {row['TrueLabel']} and {row['TargetClass']}"
            )
        image = root_p / "images" / f"{row['ImageId']}.png"
        if not image.is_file():
            raise FileNotFoundError(f"image '{image}' listed in '{csv_path}' (row {row_no + 2}) not found")
        files.append(image)
        labels.append(true_label)
        targets.append(target)
        ids.append(row["ImageId"])
    return ImageFileDataset(
        files,
        labels,
        list(range(len(files))),
        size=size,
        name="nips2017",
        num_classes=1000,
        extra={"image_ids": ids, "target_classes": targets},
    )


def read_index_file(path: PathLike) -> List[int]:
    """Read integer indices separated by commas and/or whitespace (e.g. ``random_10k_indices.txt``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"index file '{p}' not found: pass index_file=PATH to a text file of integers")
    tokens = [t for t in re.split(r"[,\s]+", p.read_text(encoding="utf-8")) if t]
    try:
        indices = [int(t) for t in tokens]
    except ValueError as exc:
        raise ValueError(f"index file '{p}' must hold integers separated by commas or whitespace ({exc})") from exc
    if not indices:
        raise ValueError(f"index file '{p}' holds no indices")
    return indices


def imagenet_val(
    root: PathLike,
    index_file: Union[PathLike, Sequence[int], None] = None,
    size: SizeSpec = 256,
) -> ImageFileDataset:
    """The ImageNet-2012 validation set via ``torchvision.datasets.ImageNet``.

    Args:
        root: torchvision's ImageNet root (``meta.bin`` and ``val/<wnid>/``,
            or the devkit and val archives, which torchvision then unpacks).
        index_file: text file of validation-set indices (the GSE paper's
            ``random_10k_indices.txt``: one line of ", "-separated ints;
            whitespace/newlines also work), or a sequence of ints, or None
            for all 50,000 images. Indices refer to torchvision's order
            (sorted by class folder, then file name).
        size: output size in pixels; images are squashed to (size, size).

    Returns:
        Dataset in ``index_file`` order; ``index`` holds the validation-set
        indices, ``files`` the JPEG paths.
    """
    root_p = _existing_dir(root, "root", "torchvision's ImageNet root (with meta.bin and val/, or the archives)")
    try:
        base = torchvision.datasets.ImageNet(str(root_p), split="val")
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"torchvision could not open ImageNet val under root='{root_p}' ({exc}). Place "
            "ILSVRC2012_devkit_t12.tar.gz and ILSVRC2012_img_val.tar there, or an already unpacked "
            "meta.bin and val/<wnid>/*.JPEG"
        ) from exc
    n = len(base.samples)
    if index_file is None:
        indices = list(range(n))
    elif isinstance(index_file, (str, os.PathLike)):
        indices = read_index_file(index_file)
    else:
        indices = [int(i) for i in index_file]
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise IndexError(
            f"index_file has indices outside the {n} validation images (0..{n - 1}), e.g. {bad[:5]}: "
            "check that root holds the complete validation set"
        )
    return ImageFileDataset(
        [base.samples[i][0] for i in indices],
        [base.samples[i][1] for i in indices],
        indices,
        size=size,
        name="imagenet_val",
        num_classes=1000,
    )


def _read_labels_csv(path: PathLike, num_classes: int) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"labels_csv '{p}' not found: pass a CSV with the columns filename,label")
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"filename", "label"} <= {h.strip() for h in reader.fieldnames}:
            raise ValueError(f"labels_csv '{p}' must have a header with the columns filename,label")
        labels = {}
        for line_no, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            try:
                label = int(row["label"])
            except ValueError as exc:
                raise ValueError(f"labels_csv '{p}' line {line_no}: label {row['label']!r} is not an integer") from exc
            if not 0 <= label < num_classes:
                raise ValueError(
                    f"labels_csv '{p}' line {line_no}: label {label} is outside 0..{num_classes - 1} "
                    "(labels are 0-based class indices)"
                )
            labels[Path(row["filename"]).name] = label
    return labels


def image_folder(
    root: PathLike,
    size: SizeSpec,
    labels_csv: Optional[PathLike] = None,
    num_classes: int = 1000,
) -> ImageFileDataset:
    """A folder of the user's own images (png, jpg, jpeg, bmp, webp).

    Args:
        root: the folder; files are taken in name order, subfolders ignored.
        size: output size in pixels (int = square, (H, W), or None to keep
            each image's own size, which only batches if all sizes agree).
        labels_csv: optional CSV with columns ``filename,label`` (0-based
            class index). Files it does not list get label -1; names it lists
            that are not in the folder raise an error (catches typos).
        num_classes: size of the label space (1000 for ImageNet models).

    Returns:
        Dataset with ``index`` = position in name order and ``files``.
    """
    root_p = _existing_dir(root, "root", "a folder of png/jpg/jpeg/bmp/webp images")
    files = sorted(
        (p for p in root_p.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )
    if not files:
        raise FileNotFoundError(f"no images with extensions {IMAGE_EXTENSIONS} in root='{root_p}'")
    labels = [-1] * len(files)
    if labels_csv is not None:
        by_name = _read_labels_csv(labels_csv, num_classes)
        unknown = sorted(set(by_name) - {f.name for f in files})
        if unknown:
            raise ValueError(f"labels_csv '{labels_csv}' names files that are not images in '{root_p}': {unknown[:5]}")
        labels = [by_name.get(f.name, -1) for f in files]
    return ImageFileDataset(
        files, labels, list(range(len(files))), size=size, name="folder", num_classes=num_classes
    )
