"""How an attack's model passes execute: ``torch.compile``, batch-norm folding, mixed precision (``amp``) and
channels-last inputs.

These options change how the model is run, never what the attack computes; every attack gets them, because
every model call goes through :class:`~gse_explain.attacks.caller.ModelCaller`:

    with execution(compile=True, fold_batchnorm=True):
        result = gse(model, images, labels, preset="cifar10")

(or ``gse(..., compile=True)``, ``Attack(..., compile=True)``, ``RunConfig(compile=True)``, ``--compile``).

- ``compile``: the model is wrapped in ``torch.compile`` (inductor) once per model object and the compiled
  callable is cached for the life of the model, so a run compiles once, not once per batch or attack call.
  The batch dimension is marked dynamic, so the working set that shrinks as images succeed reuses the one
  compiled graph (one graph for forward passes without gradient, one for forward+backward). A batch of one
  image gets graphs of its own (``torch.compile`` always specialises size 1), compiled once when the working
  set first shrinks to one image: the last image of a batch often runs alone for hundreds of iterations, and
  its own graph costs 4.7 ms per ResNet20 forward+backward on one CPU thread, where padding it to two rows
  cost 7.4 ms. If compiling fails, a warning names the error and the model runs eagerly
  from then on (the result is then exactly the eager one). The seconds spent in calls that compiled are
  reported as ``AttackResult.compile_seconds``.
- ``fold_batchnorm``: the passes run a private copy of the model in which every eval-mode Conv/Linear →
  BatchNorm pair is one layer (:mod:`gse_explain.models.batchnorm_folding`; the copy is checked against the
  model on the first inputs, re-made when the weights change, and a model that cannot be folded runs as it
  is, with a warning). Same function up to floating-point rounding; with ``compile`` the folded copy is what
  is compiled. Recommended with ``compile`` for long CPU runs (``bench/bench_gse.py``).
- ``amp``: ``"bf16"`` or ``"fp16"``: the model passes run under ``torch.autocast`` of the model's device
  (logits and input gradients come back in float32; the attack's own arithmetic stays float32). CUDA: both;
  CPU: ``"bf16"`` only (fast where the CPU has AVX512-BF16/AMX); ``"fp16"`` on CPU is a ValueError. Needs a
  float32 model. It changes the numerics (a store records it and compares it on resume).
- ``channels_last``: the model's inputs are passed in ``torch.channels_last`` memory format (the model
  itself is not touched; convolutions follow their input's layout). Results differ from the default layout
  only by floating-point rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
import weakref
from dataclasses import dataclass
from typing import Iterator

import torch

__all__ = ["AMP_DTYPES", "ExecutionOptions", "check_amp", "compiled_model", "current_execution", "execution", "run_with"]

#: ``amp`` values and the autocast dtype they select.
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ExecutionOptions:
    """How the model passes of an attack run (see the module docstring); validated on construction."""

    compile: bool = False
    amp: str | None = None
    channels_last: bool = False
    fold_batchnorm: bool = False

    def __post_init__(self) -> None:
        for name in ("compile", "channels_last", "fold_batchnorm"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise ValueError(f"amp must be None, 'bf16' or 'fp16'; got {self.amp!r}")

    def labels(self) -> list[str]:
        """The options that are on, in words (empty with the defaults), for plan lines and reports."""
        return ((["torch.compile"] if self.compile else []) + ([f"amp {self.amp}"] if self.amp else [])
                + (["channels-last inputs"] if self.channels_last else [])
                + (["batch norm folded"] if self.fold_batchnorm else []))


_CURRENT: contextvars.ContextVar[ExecutionOptions] = contextvars.ContextVar("gse_execution", default=ExecutionOptions())


def current_execution() -> ExecutionOptions:
    """The options of the innermost :func:`execution` block (defaults outside any)."""
    return _CURRENT.get()


@contextlib.contextmanager
def execution(*, compile: bool | None = None, amp: str | None = None, channels_last: bool | None = None,
              fold_batchnorm: bool | None = None) -> Iterator[ExecutionOptions]:
    """Run the attacks called inside the block with these execution options; ``None`` keeps the enclosing
    block's value (``amp="none"`` switches mixed precision off inside an ``amp`` block)."""
    outer = current_execution()
    options = ExecutionOptions(
        compile=outer.compile if compile is None else compile,
        amp=outer.amp if amp is None else (None if amp == "none" else amp),
        channels_last=outer.channels_last if channels_last is None else channels_last,
        fold_batchnorm=outer.fold_batchnorm if fold_batchnorm is None else fold_batchnorm,
    )
    with run_with(options):
        yield options


@contextlib.contextmanager
def run_with(options: ExecutionOptions) -> Iterator[ExecutionOptions]:
    """Run the attacks called inside the block with exactly ``options`` (whatever an enclosing block says)."""
    token = _CURRENT.set(options)
    try:
        yield options
    finally:
        _CURRENT.reset(token)


def check_amp(amp: str | None, device: torch.device, dtype: torch.dtype) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` for a model computing in ``dtype``; ValueError naming the
    problem and the fix when that combination cannot run."""
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be None, 'bf16' or 'fp16'; got {amp!r}")
    if dtype != torch.float32:
        raise ValueError(f"amp={amp!r} needs a float32 model (autocast lowers float32 passes); the model computes in "
                         f"{dtype}. Use model.float(), or amp=None")
    if device.type == "cuda":
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"amp='bf16' is not supported by {torch.cuda.get_device_name(device)}; use amp='fp16'")
        return AMP_DTYPES[amp]
    if device.type == "cpu":
        if amp == "fp16":
            raise ValueError("amp='fp16' needs a CUDA model; on CPU use amp='bf16' (fast on CPUs with AVX512-BF16 or AMX)")
        return AMP_DTYPES[amp]
    raise ValueError(f"amp={amp!r} is supported on CUDA and (bf16) CPU models; the model is on {device}")


#: Graphs dynamo may compile for the models of one process (each model needs 2-4: grad mode × size 1 or not).
RECOMPILE_LIMIT = 64


class CompiledModel:
    """A model's ``torch.compile`` wrapper with its compile count, the seconds of the calls that compiled, and
    the eager fallback after a failure (see the module docstring)."""

    def __init__(self, model):
        self.model = model
        self.graphs = 0  # graphs compiled by inductor (one per guard set: grad mode, autocast, layout)
        self.failed: str | None = None
        self.function = torch.compile(model, backend=self._backend)

    def _backend(self, graph_module, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        self.graphs += 1
        return compile_fx(graph_module, example_inputs)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """The logits of ``inputs`` (B, C, H, W) from the compiled model (the eager one after a failure)."""
        if self.failed is not None:
            return self.model(inputs)
        if inputs.shape[0] > 1:  # size 1 is specialised (its own graphs, see the module docstring)
            torch._dynamo.maybe_mark_dynamic(inputs, 0)
        # Every compiled module shares one code object (nn.Module's call), so dynamo's recompile limit (8 graphs)
        # counts across all models of the process; past it, dynamo would silently run eagerly. A raised limit
        # for our calls only, and an error at the limit, which the caller turns into the eager fallback's warning.
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, fail_on_recompile_limit_hit=True):
            return self.function(inputs)

    def fail(self, error: Exception) -> None:
        """Give up compiling after ``error`` (warned once): the model runs eagerly from now on."""
        cause = getattr(error, "inner_exception", None) or error  # a backend's failure: its own error
        text = str(cause).strip()
        self.failed = f"{type(cause).__name__}: {text.splitlines()[0] if text else ''}"
        warnings.warn(f"torch.compile failed on {type(self.model).__name__} ({self.failed}); running it eagerly "
                      "(compile=False gives the same result without trying)", RuntimeWarning, stacklevel=4)


_CACHE: "weakref.WeakKeyDictionary[object, CompiledModel]" = weakref.WeakKeyDictionary()


def compiled_model(model) -> CompiledModel:
    """The cached :class:`CompiledModel` of ``model`` (created on first use; lives as long as the model)."""
    try:
        entry = _CACHE.get(model)
    except TypeError:  # not weak-referenceable: compiled for this attack call only
        return CompiledModel(model)
    if entry is None:
        entry = _CACHE[model] = CompiledModel(model)
    return entry
