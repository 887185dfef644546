"""What the adv-lib adapters share: the install check, the [0, 1] box map, the checked model and the RNG fork.

adv-lib (https://github.com/jeromerony/adv_lib, PyPI ``adv-lib==0.2.8``) writes its attacks as functions
``attack(model, inputs, labels, ..., targeted=...) -> adversarial inputs`` on inputs in **[0, 1]** that call
the model directly and take their own gradients. An adapter (one module per attack, e.g.
:mod:`.adv_lib_fmn`) gives such a function the project's uniform signature (:mod:`gse_explain.attacks.base`)
through :func:`run_adv_lib`:

- box: the session's canonical images u ∈ [-1, 1] (any ``bounds``) become z = (u + 1) / 2 ∈ [0, 1] for
  adv-lib; the model adv-lib calls maps z back (u = 2z − 1, then the caller's map to ``bounds``). Entries
  adv-lib left unchanged (z_adv == z) are returned as the caller's values, bit-identical.
- model: adv-lib calls :class:`AdvLibModel`, which applies the checks of
  :class:`~gse_explain.attacks.caller.ModelCaller` to every call (finite inputs, logits of shape (B, K),
  label range, finite logits, finite input gradients through a tensor hook) and counts the passes: a call
  with autograd on an input that requires grad is a gradient pass, any other call runs under ``no_grad``
  and is a forward pass. Targeted runs check "target ≠ clean prediction" first (one counted forward pass).
- success: tested on the returned images (one counted forward pass), so it is exact for what comes back.
- randomness: adv-lib draws from the *global* torch RNG (e.g. VFGA's ``torch.randn``). The call runs inside
  ``torch.random.fork_rng`` seeded from the attack's generator (``seed`` / ``generator``), so results are
  reproducible and the caller's global RNG state is the same afterwards.
- dtype: adv-lib creates some tensors in torch's *default* dtype (VFGA's noise), which fails against a
  float64 or 16-bit model; the call runs with the default dtype set to the attack's dtype (the model's),
  restored afterwards (a process-wide setting: do not run other torch code in other threads meanwhile).

adv-lib is optional: this module imports without it; :func:`check_installed` raises an ImportError naming
the install command (``make install-adv-lib``) when it is missing.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from ..base import AttackResult, AttackSession
from ..caller import ModelCaller

__all__ = ["ADV_LIB_VERSION", "INSTALL_COMMAND", "AdvLibModel", "adv_lib_function", "check_installed", "run_adv_lib"]

ADV_LIB_VERSION = "0.2.8"
#: How to install the optional extra (the Makefile target builds visdom 0.2.4, adv-lib's dependency that has
#: no wheel and whose sdist needs pkg_resources, with setuptools<81, then installs the ``adv_lib`` extra).
INSTALL_COMMAND = "make install-adv-lib"


def check_installed() -> None:
    """ImportError naming the install command unless ``adv_lib.attacks`` imports."""
    try:
        import adv_lib.attacks  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"the adv_lib:NAME attacks need the optional package adv-lib=={ADV_LIB_VERSION}, which cannot be "
            f"imported ({error}). Install it with `{INSTALL_COMMAND}` (it builds visdom==0.2.4 with "
            "setuptools<81 and installs the project's [adv_lib] extra; see the README section 'adv-lib attacks')"
        ) from error


def adv_lib_function(name: str) -> Callable:
    """The function ``adv_lib.attacks.<name>`` (ImportError with the install command if adv-lib is missing)."""
    check_installed()
    import adv_lib.attacks

    return getattr(adv_lib.attacks, name)


class AdvLibModel:
    """The model as adv-lib sees it: z (B, C, H, W) in [0, 1] → logits (B, K), through the checks and pass
    counter of the session's :class:`ModelCaller` (see the module docstring).

    The caller's protected helpers are used on purpose: adv-lib needs the autograd graph of the logits (it
    calls ``torch.autograd.grad`` itself), which the caller's public ``logits`` / ``logits_and_grad`` do not
    return; the checks stay the caller's own.
    """

    def __init__(self, caller: ModelCaller, bar=None):
        self.caller = caller
        self.bar = bar

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        caller = self.caller
        with_gradient = torch.is_grad_enabled() and z.requires_grad
        u = z * 2.0 - 1.0
        caller._check_input(u.detach())
        if with_gradient:
            u.register_hook(self._check_gradient)
            inputs = caller._model_input(u)
            out = caller.model(inputs)
        else:
            with torch.no_grad():
                inputs = caller._model_input(u)
                out = caller.model(inputs)
        caller._check_output(out, inputs)
        caller._count(z.shape[0], with_gradient)
        if with_gradient and self.bar is not None:
            self.bar.update(1)
        return out

    def _check_gradient(self, grad: torch.Tensor) -> None:
        # d loss / d u: adv-lib's gradient through the model, before it reaches z.
        self.caller._check_gradient(grad)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Run the block with torch's default floating dtype set to ``dtype`` (restored afterwards)."""
    previous = torch.get_default_dtype()
    if dtype == previous:
        yield
        return
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _forked_global_rng(session: AttackSession) -> Iterator[None]:
    """Run the block with the global torch RNG (CPU, and the attack's CUDA device) seeded from the session's
    generator; the previous global state is restored afterwards."""
    seed = int(torch.randint(0, 2**62, (1,), generator=session.generator).item())
    device = session.device
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def run_adv_lib(session: AttackSession, function: Callable, kwargs: dict, *, label: str,
                steps: int | None = None, progress: bool = False) -> AttackResult:
    """Run the adv-lib attack ``function(model, z, labels, **kwargs)`` on the session's images and return
    the :class:`AttackResult` (adversarials in the caller's box and dtype, success tested on them).

    ``steps``: the number of gradient calls expected (the progress bar's total; None: unknown).
    """
    caller = session.caller
    if session.targeted:
        caller.check_targets_now()  # adv-lib's first call is on z, not bit-equal to the canonical clean images
    clean = session.canonical
    z = ((clean + 1.0) / 2.0).clamp(0.0, 1.0)
    with tqdm(total=steps, desc=label, disable=not progress) as bar, _forked_global_rng(session), \
            _default_dtype(session.dtype):
        z_adv = function(AdvLibModel(caller, bar), z, session.labels, **kwargs)
    if not isinstance(z_adv, torch.Tensor) or z_adv.shape != z.shape:
        raise RuntimeError(f"internal error: adv-lib's {label} returned {type(z_adv).__name__} of shape "
                           f"{getattr(z_adv, 'shape', None)}; expected a tensor of shape {tuple(z.shape)}")
    z_adv = z_adv.detach()
    adversarial = torch.where(z_adv == z, clean, (z_adv * 2.0 - 1.0).clamp(-1.0, 1.0))
    return session.result(adversarial)
