"""``Attack``: a class API over the registered attack functions, for torchattacks-style code.

    attack = Attack("gse", model, preset="cifar10")          # options validated here
    adversarials = attack(images, labels)                     # (B, C, H, W), like the input
    attack.last_result.success, attack.last_result.model_passes

The functional API (``get_attack(name).function(model, images, labels, ...)``) stays the reference: a call
of the class is exactly one call of the function with the stored settings.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import AttackResult, check_seed_and_generator
from .execution import ExecutionOptions, run_with
from .registry import get_attack

__all__ = ["Attack"]


class Attack:
    """A registered attack bound to a model and its settings.

    Args:
        name: a registered attack (:func:`~gse_explain.attacks.list_attacks`).
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); not modified (modes and flags restored).
        targeted: ``labels`` passed to a call are targets (True) or true labels (False).
        bounds: the box of valid images (default [0, 1]).
        preset: a preset of the attack (the paper's settings) or None.
        seed: seeds one ``torch.Generator`` created here; successive calls continue its stream, so a fresh
            ``Attack`` with the same seed repeats the same sequence of results. ``generator`` instead: use it.
        progress: show the attack's progress bar.
        compile, amp, channels_last, fold_batchnorm: how the model passes run, for any attack (:mod:`gse_explain.attacks.execution`;
            checked here; a compiled model is cached, so repeated calls compile once).
        **options: the attack's options (checked now: unknown names raise TypeError, bad values ValueError).

    Attributes:
        spec: the :class:`~gse_explain.attacks.registry.AttackSpec`; config: the validated config;
        last_result: the :class:`AttackResult` of the latest call (None before the first).
    """

    def __init__(self, name: str, model: nn.Module, *, targeted: bool = False, bounds: Sequence[float] = (0.0, 1.0),
                 preset: str | None = None, seed: int | None = None, generator: torch.Generator | None = None,
                 progress: bool = False, compile: bool = False, amp: str | None = None, channels_last: bool = False,
                 fold_batchnorm: bool = False, **options):
        self.execution = ExecutionOptions(compile=compile, amp=amp, channels_last=channels_last,
                                          fold_batchnorm=fold_batchnorm)
        self.spec = get_attack(name)
        self.config = self.spec.make_config(preset, targeted, **options)
        check_seed_and_generator(seed, generator)
        self.model = model
        self.targeted = bool(targeted)
        self.bounds = tuple(bounds)
        self.preset = preset
        self.options = dict(options)
        self.progress = progress
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)
        self.last_result: AttackResult | None = None

    def run(self, images: torch.Tensor, labels: torch.Tensor) -> AttackResult:
        """The full :class:`AttackResult` for (B, C, H, W) ``images`` and (B,) ``labels`` (targets if targeted)."""
        options = self.execution
        with run_with(options):
            self.last_result = self.spec.function(
                self.model, images, labels, targeted=self.targeted, bounds=self.bounds, preset=self.preset,
                generator=self.generator, progress=self.progress, **self.options,
            )
        return self.last_result

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial images (B, C, H, W) in ``bounds``, on the images' device and in their dtype."""
        return self.run(images, labels).adversarials

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return (f"Attack({self.spec.name!r}, {type(self.model).__name__}, targeted={self.targeted}, bounds={self.bounds}, "
                f"preset={self.preset!r}{options})")
