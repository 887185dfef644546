"""``create_model("package.module:factory", ...)``: your own network, its declared ModelInfo, weights from a file,
``check_model_name`` without building, and clear errors (factories in ``gse_test_factories.py``)."""

import pytest
import torch

from gse_explain.models import ModelInfo, NormalizedModel, check_model_name, create_model, model_info


def test_factory_builds_loads_a_checkpoint_and_wraps_with_identity(factories, tmp_path, one_thread):
    torch.manual_seed(0)
    reference = factories.build_tiny(num_classes=3, width=5).eval()
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": reference.state_dict(), "epoch": 1}, path)
    model = create_model("gse_test_factories:build_tiny", weights=path, num_classes=3, width=5)
    assert isinstance(model, NormalizedModel) and not model.training
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))  # identity normalisation: the network sees the [0, 1] images
    info = model.info
    assert (info.name, info.mean, info.std) == ("gse_test_factories:build_tiny", (0.0,), (1.0,))
    assert info.input_size is None and info.num_classes is None and info.gradcam_layer is None
    assert create_model("gse_test_factories:Builders.tiny", num_classes=2)(x).shape == (2, 2)  # nested attribute


def test_declared_info_sets_normalisation_and_layers(factories, one_thread):
    model = create_model("gse_test_factories:build_declared", weights=None)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), model.model((x - 0.5) / 0.25))
    info = model.info
    assert info == ModelInfo("gse_test_factories:build_declared", (3, 16, 16), 5, "a declared tiny net", None,
                             (0.5,) * 3, (0.25,) * 3, cam_head="fc", gradcam_layer="features")
    assert model_info("gse_test_factories:build_declared") == info
    assert model_info("gse_test_factories:build_info_object").input_size == (3, 8, 8)  # a ModelInfo attribute, renamed
    assert model_info("gse_test_factories:build_info_object").name == "gse_test_factories:build_info_object"
    override = create_model("gse_test_factories:build_declared", normalization="imagenet")
    assert override.info.mean == pytest.approx((0.485, 0.456, 0.406))


def test_factory_returning_a_normalized_model_keeps_its_normalisation(factories):
    model = create_model("gse_test_factories:build_normalized")
    assert isinstance(model.model, factories.TinyConvNet)  # not wrapped twice
    assert model.info.mean == pytest.approx((0.4,) * 3) and model.info.std == pytest.approx((0.2,) * 3)


def test_check_model_name_builds_nothing(factories):
    before = factories.BUILT["count"]
    for name in ("resnet20", "gse_test_factories:build_tiny", "gse_test_factories:Builders.tiny", "timm:resnet18"):
        check_model_name(name)
    model_info("gse_test_factories:build_declared")
    assert factories.BUILT["count"] == before


def test_factory_returns_non_module(factories):
    with pytest.raises(TypeError, match=r"the factory returned builtins\.dict .*not a torch\.nn\.Module"):
        create_model("gse_test_factories:not_a_module")


def test_module_not_found(factories):
    with pytest.raises(ModuleNotFoundError, match=r"cannot import module 'no_such_pkg\.nets'.*put its folder on the Python path"):
        create_model("no_such_pkg.nets:build")
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg\.nets'"):
        check_model_name("no_such_pkg.nets:build")


def test_attribute_missing_and_not_callable(factories):
    with pytest.raises(AttributeError, match=r"'gse_test_factories' has no attribute 'build_tinny': did you mean build_tiny"):
        create_model("gse_test_factories:build_tinny")
    with pytest.raises(ValueError, match="has no attribute 'build_tinny'"):
        check_model_name("gse_test_factories:build_tinny")
    with pytest.raises(TypeError, match="NOT_CALLABLE is not a callable factory \\(it is int 3\\)"):
        create_model("gse_test_factories:NOT_CALLABLE")
    with pytest.raises(ValueError, match="not a callable factory"):
        check_model_name("gse_test_factories:NOT_CALLABLE")


@pytest.mark.parametrize("name", ["nets:", ":build", "my-pkg.nets:build", "a:b:c", "pkg..nets:build", "pkg.nets: build"])
def test_malformed_factory_names(name):
    with pytest.raises(ValueError, match=r"is malformed: a factory is named 'package\.module:function'"):
        check_model_name(name)
    with pytest.raises(ValueError, match="is malformed"):
        create_model(name)


def test_unknown_registry_name_lists_models_and_prefixes():
    with pytest.raises(ValueError, match=r"unknown model 'resnet18'.*resnet20.*'timm:NAME'.*'package\.module:factory'"):
        check_model_name("resnet18")
    with pytest.raises(TypeError, match="must be a str"):
        check_model_name(None)


def test_factory_weights_errors(factories, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone\.pt' not found: pass weights=PATH for gse_test_factories:build_tiny"):
        create_model("gse_test_factories:build_tiny", weights=tmp_path / "gone.pt")
    path = tmp_path / "wide.pt"
    torch.save(factories.build_tiny(width=7).state_dict(), path)
    with pytest.raises(ValueError, match=r"wide\.pt' does not match the network of gse_test_factories:build_tiny: "
                                         r"tensor shapes differ \(features\.0\.weight"):
        create_model("gse_test_factories:build_tiny", weights=path)
    torch.save({"other.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"missing keys.*unexpected keys \(e\.g\. \['other\.weight'\]\)"):
        create_model("gse_test_factories:build_tiny", weights=path)
    with pytest.raises(ValueError, match="has no DEFAULT weights"):
        create_model("gse_test_factories:build_tiny", weights="DEFAULT")


def test_bad_declarations(factories, monkeypatch):
    monkeypatch.setattr(factories.build_tiny, "gse_model_info", {"colour": "red"}, raising=False)
    with pytest.raises(ValueError, match=r"gse_model_info has unknown ModelInfo fields \['colour'\]"):
        create_model("gse_test_factories:build_tiny")
    monkeypatch.setattr(factories.build_tiny, "gse_model_info", 42)
    with pytest.raises(TypeError, match="must be a ModelInfo or a dict of its fields, got int"):
        model_info("gse_test_factories:build_tiny")
