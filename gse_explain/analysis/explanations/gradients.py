"""The ASM and captum's attribution methods as registered explanations (per-channel maps, (B, C, H, W)).

All take the [0, 1] images the model takes and explain logit ``Z_t`` of the class ``t`` given per row;
baselines are images in the same [0, 1] units (0.0 = black). Settings (defaults):

- ``"asm"``: the paper's adversarial saliency map ∂Z_t/∂x ⊙ |∂Z_y/∂x| (y the true label;
  :func:`~gse_explain.analysis.adversarial_saliency_map`); ``sign_condition=False``.
- ``"saliency"``: captum ``Saliency``: ∂Z_t/∂x, as its absolute value (``abs=True``, Simonyan et al.).
- ``"input_x_gradient"``: captum ``InputXGradient``: x ⊙ ∂Z_t/∂x (signed).
- ``"integrated_gradients"``: captum ``IntegratedGradients`` from a constant ``baseline=0.0`` image with
  ``steps=50`` Gauss–Legendre points (``method="gausslegendre"``): (x − x₀) ⊙ ∫₀¹ ∂Z_t/∂x(x₀ + α(x − x₀)) dα.
- ``"smoothgrad"``: captum ``NoiseTunnel`` over ``Saliency`` (``nt_type="smoothgrad"``): the mean of
  |∂Z_t/∂x| (``abs=True``) over ``samples=25`` copies with Gaussian noise of standard deviation ``stdev=0.15``
  (15 % of the [0, 1] range, in Smilkov et al.'s 10–20 %); stochastic (seeded per row; one model call per row
  with its ``samples`` noisy copies).
- ``"gradient_shap"``: captum ``GradientShap`` with ``samples=20`` draws of a baseline from {black (0), white
  (1)} and a point on the straight path, ``stdev=0.0`` (no extra noise); stochastic (seeded per row).
- ``"deeplift"``: captum ``DeepLift`` (Rescale rule) from a constant ``baseline=0.0`` image. Non-linearities
  applied as functions (``F.relu``) rather than modules get plain gradients (captum's rule needs modules).
- ``"occlusion"``: captum ``Occlusion``: the drop of Z_t when a ``window`` × ``window`` patch of every channel
  is replaced by ``baseline=0.0``, sliding with ``stride``; ``window=0`` means ⌈min(H, W)/8⌉ and ``stride=0``
  ⌈window/2⌉. Every channel of a pixel gets the same value (captum averages over the patches covering it).
"""

from __future__ import annotations

import math

import torch

from ..saliency import adversarial_saliency_map
from .registry import register_explanation

__all__ = ["CAPTUM_METHODS"]

#: The captum methods registered here, in the order the agreement study shows them.
CAPTUM_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradient_shap", "deeplift",
                  "occlusion")


def _targets(classes: torch.Tensor) -> list[int]:
    return [int(c) for c in classes]


@register_explanation("asm", defaults={"sign_condition": False},
                      description="the paper's adversarial saliency map ∂Z_t/∂x ⊙ |∂Z_y/∂x| (Papernot et al.)")
def asm(model, images, classes, *, sign_condition, labels):
    return adversarial_saliency_map(model, images, labels, classes, sign_condition=sign_condition)


@register_explanation("saliency", defaults={"abs": True}, description="|∂Z_t/∂x| (captum Saliency)")
def saliency(model, images, classes, *, abs):
    from captum.attr import Saliency

    return Saliency(model).attribute(images, target=_targets(classes), abs=abs)


@register_explanation("input_x_gradient", description="x ⊙ ∂Z_t/∂x (captum InputXGradient)")
def input_x_gradient(model, images, classes):
    from captum.attr import InputXGradient

    return InputXGradient(model).attribute(images, target=_targets(classes))


@register_explanation("integrated_gradients", defaults={"steps": 50, "baseline": 0.0, "method": "gausslegendre"},
                      description="integrated gradients from a constant baseline image (captum IntegratedGradients)")
def integrated_gradients(model, images, classes, *, steps, baseline, method, batch_size):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(model).attribute(images, baselines=float(baseline), target=_targets(classes),
                                                n_steps=int(steps), method=method,
                                                internal_batch_size=max(batch_size, images.shape[0]))


@register_explanation("smoothgrad", defaults={"samples": 25, "stdev": 0.15, "abs": True}, stochastic=True, version=2,
                      description="SmoothGrad: mean |∂Z_t/∂x| over noisy copies (captum NoiseTunnel over Saliency)")
def smoothgrad(model, images, classes, *, samples, stdev, abs):
    from captum.attr import NoiseTunnel, Saliency

    # All noisy copies of the row in one call: the noise drawn then depends on the row's seed only (chunking
    # the copies would draw it in other pieces, i.e. other numbers).
    return NoiseTunnel(Saliency(model)).attribute(images, nt_type="smoothgrad", nt_samples=int(samples),
                                                  stdevs=float(stdev), target=_targets(classes), abs=abs)


@register_explanation("gradient_shap", defaults={"samples": 20, "stdev": 0.0}, stochastic=True, version=2,
                      description="GradientShap with black and white baselines (captum GradientShap)")
def gradient_shap(model, images, classes, *, samples, stdev):
    from captum.attr import GradientShap

    baselines = torch.cat([torch.zeros_like(images[:1]), torch.ones_like(images[:1])])
    # One call with all samples of the row (as smoothgrad): the draws depend on the row's seed only.
    return GradientShap(model).attribute(images, baselines=baselines, n_samples=int(samples), stdevs=float(stdev),
                                         target=_targets(classes))


@register_explanation("deeplift", defaults={"baseline": 0.0}, description="DeepLift (Rescale) from a constant baseline (captum DeepLift)")
def deeplift(model, images, classes, *, baseline):
    import warnings

    from captum.attr import DeepLift

    with warnings.catch_warnings():
        # captum warns that it sets requires_grad on the input (a fresh copy here) and, for models with
        # functional non-linearities, that those get plain gradients (documented above).
        warnings.simplefilter("ignore", UserWarning)
        return DeepLift(model).attribute(images, baselines=float(baseline), target=_targets(classes))


@register_explanation("occlusion", defaults={"window": 0, "stride": 0, "baseline": 0.0},
                      description="drop of Z_t when a patch is replaced by the baseline (captum Occlusion)")
def occlusion(model, images, classes, *, window, stride, baseline, batch_size):
    from captum.attr import Occlusion

    channels, height, width = images.shape[1:]
    window = int(window) or math.ceil(min(height, width) / 8)
    stride = int(stride) or math.ceil(window / 2)
    if not 1 <= window <= min(height, width) or stride < 1:
        raise ValueError(f"occlusion window must be in [1, {min(height, width)}] and stride ≥ 1; got {window}, {stride}")
    return Occlusion(model).attribute(images, sliding_window_shapes=(channels, window, window),
                                      strides=(channels, stride, stride), baselines=float(baseline),
                                      target=_targets(classes), perturbations_per_eval=max(1, batch_size // images.shape[0]))
