"""``create_model("timm:NAME", ...)``: timm's network with timm's normalisation inside, weights from local files
only, metadata derived from timm's configs, clear errors. No test downloads anything (see ``no_downloads``)."""

import pytest
import timm  # a dependency of the package (pyproject.toml): a missing install is a failure, not a skip
import torch
from timm.data import resolve_model_data_config

from gse_explain.models import NormalizedModel, check_model_name, create_model, model_info


@pytest.fixture(scope="module")
def resnet18_ref():
    """A random-init timm ResNet-18 with 10 classes (eval mode) and its state dict."""
    torch.manual_seed(0)
    ref = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    return ref, {k: v.clone() for k, v in ref.state_dict().items()}


def _timm_normalised(ref, x):
    config = resolve_model_data_config(ref)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return ref((x - mean) / std)


def test_timm_resnet18_gives_timm_logits_with_timm_normalisation(tmp_path, resnet18_ref, one_thread):
    ref, state = resnet18_ref
    path = tmp_path / "resnet18_c10.pth"
    torch.save({"state_dict": state, "epoch": 7}, path)
    model = create_model("timm:resnet18", weights=path, num_classes=10)
    assert isinstance(model, NormalizedModel) and not model.training
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), _timm_normalised(ref, x))
    info = model.info
    assert (info.name, info.num_classes, info.input_size) == ("timm:resnet18", 10, (3, 224, 224))
    assert info.mean == pytest.approx((0.485, 0.456, 0.406)) and info.std == pytest.approx((0.229, 0.224, 0.225))
    assert (info.cam_head, info.gradcam_layer, info.gradcam_capture) == ("fc", "global_pool", "input")
    assert torch.allclose(model.mean.flatten(), torch.tensor(info.mean))


@pytest.mark.parametrize("form", ["model_key", "plain", "safetensors", "normalized"])
def test_weight_file_forms(tmp_path, resnet18_ref, form, one_thread):
    ref, state = resnet18_ref
    path = tmp_path / ("w.safetensors" if form == "safetensors" else "w.pt")
    if form == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif form == "normalized":  # the state_dict of a saved gse_explain model (model.* keys plus mean/std)
        torch.save(create_model("timm:resnet18", weights="random", num_classes=10).state_dict() | {
            f"model.{k}": v for k, v in state.items()}, path)
    else:
        torch.save({"model": state} if form == "model_key" else state, path)
    model = create_model("timm:resnet18", weights=str(path), num_classes=10)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), _timm_normalised(ref, x))


def test_random_weights_and_normalization_override(one_thread):
    model = create_model("timm:resnet18", weights="random", num_classes=3, normalization="unit")
    assert model.info.mean == (0.5, 0.5, 0.5) and model.info.std == (0.5, 0.5, 0.5)
    assert torch.equal(model.mean.flatten(), torch.full((3,), 0.5))
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3)


def test_pretrained_tag_selects_its_config():
    # vit_tiny's default config uses (0.5, 0.5, 0.5); the tag picks the pretrained config of the weights file.
    assert model_info("timm:vit_tiny_patch16_224").mean == (0.5, 0.5, 0.5)
    assert model_info("timm:resnet18.tv_in1k").description.endswith("(pretrained config tv_in1k)")


def test_model_info_is_derived_from_timm_metadata():
    vit = model_info("timm:vit_tiny_patch16_224")
    assert (vit.gradcam_layer, vit.token_grid, vit.prefix_tokens, vit.cam_head) == ("blocks.11.norm1", (14, 14), 1, None)
    assert model_info("timm:deit_tiny_distilled_patch16_224").prefix_tokens == 2  # class + distillation token
    regnet = model_info("timm:regnety_002")  # ClassifierHead: head.global_pool -> head.fc
    assert (regnet.cam_head, regnet.gradcam_layer, regnet.gradcam_capture) == ("head.fc", "head.global_pool", "input")
    mobilenet = model_info("timm:mobilenetv3_small_100")  # conv_head between the pooling and the classifier
    assert mobilenet.cam_head is None and mobilenet.gradcam_layer == "blocks.5"
    assert model_info("timm:convnext_atto").cam_head is None  # a norm between pooling and classifier
    assert model_info("timm:swin_tiny_patch4_window7_224").gradcam_layer is None  # channels-last maps
    assert model_info("timm:efficientnet_b0").cam_head == "classifier"
    check_model_name("timm:resnet18")
    check_model_name("timm:resnet18.a1_in1k")


def test_unknown_timm_name():
    with pytest.raises(ValueError, match=r"unknown timm model 'resnet1800'.*Close matches: resnet18"):
        check_model_name("timm:resnet1800")
    with pytest.raises(ValueError, match="unknown timm model 'resnet1800'"):
        create_model("timm:resnet1800", weights="random")
    with pytest.raises(ValueError, match=r"no pretrained config 'nope'.*tv_in1k"):
        check_model_name("timm:resnet18.nope")
    with pytest.raises(ValueError, match="hub names such as 'hf-hub:...' would download"):
        check_model_name("timm:hf-hub:timm/resnet18.a1_in1k")


def test_weights_none_and_default_are_errors_not_downloads():
    with pytest.raises(ValueError, match=r"timm:resnet18 needs weights=PATH.*weights='random'.*nothing is downloaded"):
        create_model("timm:resnet18")
    with pytest.raises(ValueError, match=r"weights='DEFAULT' is not available for timm:resnet18.*never downloads"):
        create_model("timm:resnet18", weights="DEFAULT")


def test_missing_and_mismatched_weight_files(tmp_path, resnet18_ref):
    _, state = resnet18_ref
    with pytest.raises(FileNotFoundError, match=r"missing\.pth' not found: pass weights=PATH for timm:resnet18"):
        create_model("timm:resnet18", weights=tmp_path / "missing.pth")
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"r18\.pth' does not match timm resnet34 built with \{'num_classes': 10\}: "
                                         r"\d+ missing keys"):
        create_model("timm:resnet34", weights=path, num_classes=10)
    with pytest.raises(ValueError, match=r"r18\.pth' does not match timm resnet18: tensor shapes differ "
                                         r"\(fc\.weight: file \(10, 512\) vs model \(1000, 512\)"):
        create_model("timm:resnet18", weights=path)  # num_classes=10 forgotten
    with pytest.raises(TypeError, match=r"timm.create_model\('resnet18'\) rejected the options \{'colour': 1\}"):
        create_model("timm:resnet18", weights="random", colour=1)
