"""The model caller every attack goes through: the [-1, 1] coordinate map, the pass counter and the checks
of every model call (output shape, label range, finite logits and gradients, and the target check).

Every model call an attack makes goes through :class:`ModelCaller`, so these checks are written once:

- logits of shape (B, K), labels < K (on the first call);
- finite logits (:func:`~gse_explain.models.inference.check_logits`: NaN or inf logits raise
  :class:`~gse_explain.models.inference.NonFiniteLogitsError` naming the rows; an arg-max of NaN would
  otherwise count as class 0, i.e. as a success of an untargeted attack on any image of another class);
- finite input gradients (:class:`~gse_explain.models.inference.NonFiniteGradientError`);
- targeted attacks: no target may equal the model's prediction on the clean image (ValueError naming the
  images). The first model call of the attack is reused for this when it is on exactly the clean images;
  otherwise one counted forward pass on the clean images is made before it.

How the model runs (``torch.compile``, ``amp``, channels-last inputs) follows the caller's
:class:`~gse_explain.attacks.execution.ExecutionOptions` (by default those of the enclosing
:func:`~gse_explain.attacks.execution.execution` block). The finiteness checks of one call (its inputs,
logits and gradient) are one host synchronisation together, made after the pass: a CUDA attack waits for
the device once per model call, not once per check.
"""

from __future__ import annotations

import time

import torch

from ..models.batchnorm_folding import folded_model
from ..models.inference import check_gradient, check_logits, model_device, model_dtype
from .execution import ExecutionOptions, check_amp, compiled_model, current_execution
from .losses import is_successful

__all__ = ["ModelCaller", "UnsupportedDtypeError"]


class UnsupportedDtypeError(TypeError):
    """An attack cannot run in the dtype it was given (the model's, or a parameter-free model's input dtype)."""


class ModelCaller:
    """Calls the model for an attack, in the attack's canonical box [-1, 1].

    Attacks whose hyperparameters are defined on the paper's [-1, 1] scale work in coordinates
    ``u = (x - mid) / half`` (mid, half = centre and half-width of ``bounds``); this caller maps ``u`` back
    to the model's box, checks the model's output, and counts passes. With bounds (-1, 1) the map is the
    identity and is skipped.

    Args:
        model: an ``nn.Module`` or a function mapping images to logits.
        bounds: the model's box (lo, hi).
        num_labels_max: the largest label (checked against the number of classes on the first call).
        batch_size: the number of images passed to the attack (for the row names of error messages).
        execution: how the model runs (None: :func:`~gse_explain.attacks.execution.current_execution`); an
            ``amp`` the model's device and dtype cannot run is a ValueError here.

    Attributes:
        image_offset: attacks that run one image at a time set it to the image's index, so that errors name
            the image; None (batched calls) names the rows of the call.
        compile_seconds: wall seconds of the one-off preparation: the model calls during which
            ``torch.compile`` compiled a graph (their passes included) and the batch-norm folding
            (``fold_batchnorm``); 0 without those options or once the model's graphs are cached.
    """

    def __init__(self, model, bounds: tuple[float, float], num_labels_max: int, *, batch_size: int | None = None,
                 execution: ExecutionOptions | None = None):
        self.model = model
        self.execution = current_execution() if execution is None else execution
        dtype = model_dtype(model, torch.float32)
        self._autocast = check_amp(self.execution.amp, model_device(model, torch.device("cpu")), dtype)
        self._runner = None  # what the passes run: the model or its folded copy (set on the first call)
        self._compiled = None
        self.compile_seconds = 0.0
        lo, hi = bounds
        self.mid = (lo + hi) / 2.0
        self.half = (hi - lo) / 2.0
        self.identity = lo == -1.0 and hi == 1.0
        self.num_labels_max = num_labels_max
        self.forward_passes = 0
        self.gradient_passes = 0
        self.calls: list[tuple[int, bool]] = []
        self.num_classes: int | None = None
        self.image_offset: int | None = None
        self._batch = batch_size
        self._targets: torch.Tensor | None = None
        self._clean: torch.Tensor | None = None  # the clean images while the target check is pending

    def check_targets_first(self, targets: torch.Tensor, clean: torch.Tensor) -> None:
        """Before (or with) the next model call, check that no target (B,) is the model's prediction on the
        canonical clean images (B, C, H, W); ValueError naming the images otherwise."""
        self._targets, self._clean = targets, clean

    def to_canonical(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.identity else (images - self.mid) / self.half

    def from_canonical(self, original: torch.Tensor, canonical_adv: torch.Tensor, canonical: torch.Tensor,
                       bounds: tuple[float, float]) -> torch.Tensor:
        """Map canonical adversarials back to the box, in ``original``'s dtype; entries the attack left
        unchanged (``canonical_adv == canonical``) are ``original``'s, bit-identical."""
        if self.identity and original.dtype == canonical_adv.dtype:
            return canonical_adv  # the canonical images are the images: unchanged entries are original's
        mapped = canonical_adv if self.identity else (canonical_adv * self.half + self.mid).clamp(*bounds)
        return torch.where(canonical_adv == canonical, original, mapped.to(original.dtype))

    def _model_input(self, canonical: torch.Tensor) -> torch.Tensor:
        return canonical if self.identity else canonical * self.half + self.mid

    def _context(self, batch: int) -> tuple[int, str]:
        """(first row, wording) for error messages about the rows of a model call on ``batch`` images."""
        if self.image_offset is not None and batch == 1:
            return self.image_offset, " of the images passed to the attack"
        if batch == self._batch:
            return 0, " of the images passed to the attack (a model call on all of them)"
        return 0, f" of a model call on {batch} images built by the attack (not indices of the images passed in)"

    def _check_output(self, logits, inputs: torch.Tensor) -> None:
        """Shape, label range and finite values of one call's logits."""
        self._check_shape(logits, inputs)
        if not bool(torch.isfinite(logits).all()):
            self._check_logit_values(logits)

    def _check_shape(self, logits, inputs: torch.Tensor) -> None:
        batch = inputs.shape[0]
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(
                f"the model must return logits of shape (B, num_classes) = ({batch}, K); got {shape}"
            )
        if self.num_classes is None:
            self.num_classes = logits.shape[1]
            if self.num_labels_max >= self.num_classes:
                raise ValueError(
                    f"labels must be < num_classes = {self.num_classes} (the model's output size); "
                    f"got label {self.num_labels_max}"
                )

    def _check_logit_values(self, logits: torch.Tensor) -> None:
        """NonFiniteLogitsError naming the rows when ``logits`` hold NaN or inf (nothing otherwise)."""
        first_row, context = self._context(logits.shape[0])
        check_logits(logits, first_row, context=context)

    @staticmethod
    def _check_input(canonical: torch.Tensor) -> None:
        """The attack never sends NaN or inf images to the model: in a 16-bit dtype that is an overflow of
        the attack's own computation (:class:`UnsupportedDtypeError`), otherwise a bug of the attack."""
        finite = torch.isfinite(canonical).flatten(1).all(dim=1)
        if bool(finite.all()):
            return
        rows = torch.nonzero(~finite).flatten().tolist()[:10]
        where = f"rows {rows} of a model call on {canonical.shape[0]} images"
        if canonical.dtype in (torch.float16, torch.bfloat16):
            raise UnsupportedDtypeError(
                f"the attack's computation overflowed in {canonical.dtype} (the model's dtype): it produced NaN "
                f"or inf images ({where}). Fix: use model.float() (float32) and images.float()"
            )
        raise RuntimeError(f"internal error of the attack: it produced NaN or inf images ({where}); please report it")

    def _check_gradient(self, grad: torch.Tensor) -> None:
        if not bool(torch.isfinite(grad).all()):
            first_row, context = self._context(grad.shape[0])
            if first_row:
                context = f" (row 0 is image {first_row}){context}"
            check_gradient(grad, context=context)

    def _count(self, batch: int, with_gradient: bool) -> None:
        if with_gradient:
            self.gradient_passes += batch
        else:
            self.forward_passes += batch
        self.calls.append((batch, with_gradient))

    def _before_call(self, canonical: torch.Tensor) -> bool:
        """Run the pending target check unless this call (on ``canonical``) can give it; returns whether
        the call's logits must be used for the check."""
        clean = self._clean
        if clean is None:
            return False
        if canonical.shape == clean.shape and (canonical is clean or torch.equal(canonical, clean)):
            return True
        self.check_targets_now()
        return False

    def check_targets_now(self) -> None:
        """Run the pending target check now, with one counted forward pass on the clean images (for attacks
        whose first call cannot give it and that budget their passes per image); nothing when none pends."""
        clean, self._clean = self._clean, None
        if clean is not None:
            self._check_targets(self.logits(clean))

    def _check_targets(self, clean_logits: torch.Tensor) -> None:
        self._clean = None
        already = is_successful(clean_logits, self._targets, targeted=True)
        if bool(already.any()):
            rows = torch.nonzero(already).flatten().tolist()
            raise ValueError(
                f"target equals the model's prediction for images {rows}: the image is already classified as "
                "the target; choose a different target class"
            )

    def _prepare(self, canonical: torch.Tensor) -> None:
        """On the first call (on ``canonical`` images): fold the model (``fold_batchnorm``, checked on these
        images) and look up its compiled wrapper (``compile``); later calls return at once."""
        if self._runner is not None:
            return
        start = time.perf_counter()
        if self.execution.fold_batchnorm:
            with torch.no_grad():
                self._runner = folded_model(self.model, self._model_input(canonical))
        else:
            self._runner = self.model
        if self._runner is not self.model:
            self.compile_seconds += time.perf_counter() - start
        self._compiled = compiled_model(self._runner) if self.execution.compile else None

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's logits for model-box ``inputs``, run as :attr:`execution` says (in the inputs' dtype)."""
        if self.execution.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        compiled = self._compiled
        model = compiled if compiled is not None and compiled.failed is None and not self._eager else self._runner
        if self._autocast is None:
            return model(inputs)
        with torch.autocast(inputs.device.type, dtype=self._autocast):
            out = model(inputs)
        return out.to(inputs.dtype) if isinstance(out, torch.Tensor) and out.is_floating_point() else out

    _eager = False  # set while a failed compiled pass is retried eagerly

    def _run_pass(self, function):
        """``function()`` (one model pass); with ``compile``: the seconds of a pass that compiled are counted, and
        a compiled pass that raises is retried eagerly: if that works the compile failed (warned, eager from
        now on), otherwise the eager error is the model's own and propagates."""
        compiled = self._compiled
        if compiled is None or compiled.failed is not None:
            return function()
        before, start = compiled.graphs, time.perf_counter()
        try:
            result = function()
        except Exception as error:  # noqa: BLE001 - decided by the eager retry below
            self._eager = True
            try:
                result = function()
            finally:
                self._eager = False
            compiled.fail(error)
            return result
        if compiled.graphs != before:
            self.compile_seconds += time.perf_counter() - start
        return result

    def _check_finite(self, canonical: torch.Tensor, logits: torch.Tensor, grad: torch.Tensor | None = None) -> None:
        """The checks of one call's inputs, logits and gradient, with one host synchronisation when all pass."""
        finite = torch.isfinite(canonical).all() & torch.isfinite(logits).all()
        if grad is not None:
            finite &= torch.isfinite(grad).all()
        if bool(finite):
            return
        self._check_input(canonical)
        self._check_logit_values(logits)
        if grad is not None:
            self._check_gradient(grad)

    def logits(self, canonical: torch.Tensor) -> torch.Tensor:
        """Logits for canonical images, without gradient."""
        reuse = self._before_call(canonical)
        with torch.no_grad():
            self._prepare(canonical)
            inputs = self._model_input(canonical)
            out = self._run_pass(lambda: self._forward(inputs))
        self._check_shape(out, inputs)
        self._check_finite(canonical, out)
        self._count(canonical.shape[0], False)
        if reuse:
            self._check_targets(out)
        return out

    def logits_and_grad(self, canonical: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and ∂(Σ_b loss_fn(logits)_b)/∂canonical for canonical images (B, C, H, W)."""
        reuse = self._before_call(canonical)
        self._prepare(canonical)

        def forward_backward():
            with torch.enable_grad():
                inputs = canonical.detach().requires_grad_(True)
                out = self._forward(self._model_input(inputs))
                self._check_shape(out, inputs)
                (grad,) = torch.autograd.grad(loss_fn(out).sum(), inputs)
            return out.detach(), grad.contiguous()  # channels-last passes: the attack's tensors keep their layout

        out, grad = self._run_pass(forward_backward)
        self._check_finite(canonical, out, grad)
        self._count(canonical.shape[0], True)
        if reuse:
            self._check_targets(out)
        return out, grad
