"""Factories for ``create_model("gse_test_factories:NAME")`` in the tests (the folder is put on sys.path by the
tests' ``factories`` fixture). ``BUILT`` counts the networks built, so a test can check that nothing was built."""

import torch
from torch import nn

from gse_explain.models import ModelInfo, declare_model_info, wrap_model

BUILT = {"count": 0}
NOT_CALLABLE = 3


class TinyConvNet(nn.Module):
    """conv-ReLU-conv-ReLU, spatial mean in ``forward`` (no pooling module), linear head."""

    def __init__(self, num_classes: int = 5, width: int = 4):
        super().__init__()
        BUILT["count"] += 1
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, 6, 3, padding=1, stride=2), nn.ReLU())
        self.fc = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def build_tiny(num_classes: int = 5, width: int = 4) -> nn.Module:
    """Declares nothing: identity normalisation, Grad-CAM layer found by probing."""
    return TinyConvNet(num_classes, width)


@declare_model_info(input_size=(3, 16, 16), num_classes=5, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                    cam_head="fc", gradcam_layer="features", description="a declared tiny net")
def build_declared(num_classes: int = 5) -> nn.Module:
    return TinyConvNet(num_classes)


def build_info_object() -> nn.Module:
    return TinyConvNet()


build_info_object.gse_model_info = ModelInfo("ignored", input_size=(3, 8, 8), gradcam_layer="features.2")


def build_bad_path() -> nn.Module:
    return TinyConvNet()


build_bad_path.gse_model_info = {"gradcam_layer": "features.7"}


def build_normalized() -> nn.Module:
    """A factory that normalises itself (returns a NormalizedModel)."""
    return wrap_model(TinyConvNet(), (0.4, 0.4, 0.4), (0.2, 0.2, 0.2))


def build_mlp() -> nn.Module:
    """No layer outputs a (B, C, h, w) map: Grad-CAM cannot probe a layer."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))


def not_a_module():
    return {"weights": "not a network"}


class Builders:
    """Factories may be nested attributes: ``gse_test_factories:Builders.tiny``."""

    @staticmethod
    def tiny(num_classes: int = 5) -> nn.Module:
        return TinyConvNet(num_classes)
