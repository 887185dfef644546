"""Folding eval-mode batch norm into the layer before it, for cheaper model passes.

In eval mode a batch-norm layer is a fixed per-channel affine map, so ``BatchNorm(Conv(x))`` equals one
convolution with rescaled weights and a shifted bias. Folding removes the batch-norm kernels from every forward
and backward pass (on the authors' CIFAR-10 ResNet20, one forward+input-gradient pass of 32 images on one CPU
thread: 82 ms → 69 ms; with ``torch.compile`` on top 61 ms → 51 ms; ``bench/bench_gse.py`` has the attack-level
numbers). The folded model computes the same function up to floating-point rounding.

:func:`folded_model` is what the attacks use (``fold_batchnorm=True`` in
:mod:`gse_explain.attacks.execution`): it folds a private copy once per model and state, checks the copy
against the model on the first real inputs, and falls back to the model itself (with a warning saying why)
when the model cannot be folded. The caller's model is never modified.
"""

from __future__ import annotations

import copy
import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["FoldingError", "fold_batchnorm", "folded_model"]

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Folded and original logits must agree to this tolerance, relative to the logits' scale.
RELATIVE_TOLERANCE = 1e-4


class FoldingError(ValueError):
    """A model cannot be folded (training mode, or it cannot be copied); the message says why."""


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every Conv/Linear → BatchNorm pair folded into one layer, and the pair count.

    Uses ``torch.fx``. The model must be in eval mode (in training mode batch norm uses the batch's statistics,
    which no fixed layer reproduces). A module that ``torch.fx`` cannot trace (input checks, data-dependent
    control flow) is kept and its children are folded instead, recursively, so a wrapper such as
    :class:`~gse_explain.models.normalization.NormalizedModel` still gets its network folded. Pairs whose conv
    output feeds other nodes too, pairs split across modules that cannot be traced, and batch norms without
    running statistics are left as they are. The copy's parameters do not require gradients (attacks take
    gradients with respect to inputs only).

    Raises:
        FoldingError: the model is in training mode or cannot be deep-copied.
    """
    if model.training:
        raise FoldingError("the model is in training mode, where batch norm uses batch statistics; call model.eval()")
    before = _count_batchnorms(model)
    try:
        private = copy.deepcopy(model)
    except Exception as error:  # noqa: BLE001 - a model that cannot be copied is not folded
        raise FoldingError(f"the model cannot be copied ({type(error).__name__}: {str(error)[:160]})") from error
    folded = _fold_in_place(private)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded, max(before - _count_batchnorms(folded), 0)


def _fold_in_place(module: nn.Module) -> nn.Module:
    """``module`` (a private copy) traced and folded, or, if it cannot be traced, with its children folded."""
    if not any(isinstance(m, _BATCHNORMS) for m in module.modules()):
        return module
    try:
        graph = _LeafTracer().trace(module)
    except Exception:  # noqa: BLE001 - not traceable as a whole: fold what is inside
        for name, child in list(module.named_children()):
            module._modules[name] = _fold_in_place(child)
        return module
    traced = torch.fx.GraphModule(module, graph)
    _fold_graph(traced)
    return traced


class _LeafTracer(torch.fx.Tracer):
    """Keeps every Conv/Linear (subclasses too, e.g. "same"-padding convs) and batch norm as one graph node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, tuple(_LAYERS) + _BATCHNORMS) or super().is_leaf_module(m, qualname)


#: Layers a batch norm of the given class can be folded into.
_LAYERS = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d, nn.Linear: nn.BatchNorm1d}


def _fold_graph(traced: torch.fx.GraphModule) -> None:
    """Replace each ``layer → batch norm`` node pair of ``traced`` by the folded layer, where that is exact: the
    layer's output feeds only the batch norm, neither module is called elsewhere, both are in eval mode."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    modules = dict(traced.named_modules())
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in list(traced.graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        prev = node.args[0] if isinstance(bn, _BATCHNORMS) and node.args else None
        if not (isinstance(prev, torch.fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
            continue
        layer = modules[prev.target]
        kind = next((k for k in _LAYERS if isinstance(layer, k)), None)
        if (kind is None or not isinstance(bn, _LAYERS[kind]) or calls[prev.target] != 1 or calls[node.target] != 1
                or layer.training or bn.training or not bn.track_running_stats or bn.running_mean is None):
            continue
        fused = fuse_linear_bn_eval(layer, bn) if kind is nn.Linear else fuse_conv_bn_eval(layer, bn)
        parent, _, name = prev.target.rpartition(".")
        setattr(traced.get_submodule(parent) if parent else traced, name, fused)
        node.replace_all_uses_with(prev)
        traced.graph.erase_node(node)
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()


def _count_batchnorms(model: nn.Module) -> int:
    """Batch-norm modules the model still calls (a traced module's unused leftovers are not counted)."""
    if isinstance(model, torch.fx.GraphModule):
        modules = dict(model.named_modules())
        called = [modules[n.target] for n in model.graph.nodes if n.op == "call_module"]
        nested = sum(_count_batchnorms(m) for m in called if not isinstance(m, _BATCHNORMS) and m is not model)
        return sum(isinstance(m, _BATCHNORMS) for m in called) + nested
    if isinstance(model, _BATCHNORMS):
        return 1
    return sum(_count_batchnorms(child) for child in model.children())


@dataclass
class _Entry:
    fingerprint: tuple
    folded: nn.Module | None  # the folded copy; None: run the model itself (never a reference to it: weak key)
    reason: str | None = None  # why the model runs unfolded
    checked: bool = False


_CACHE: "weakref.WeakKeyDictionary[nn.Module, _Entry]" = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> tuple:
    """Changes when any parameter or buffer is replaced or modified in place (``_version``) or the mode flips."""
    tensors = list(model.parameters()) + list(model.buffers())
    return (model.training,) + tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


def folded_model(model, example: torch.Tensor):
    """What to run instead of ``model`` for ``fold_batchnorm=True``: its folded copy, or ``model`` itself.

    The copy is made once per model and state (re-made after the weights change) and checked against the
    model on ``example`` (the first inputs of a model call, (B, ...); its first 4 rows): if the logits differ by more than
    :data:`RELATIVE_TOLERANCE` of their scale, the model runs unfolded. Every fallback (training mode, not
    traceable, check failed) warns once per model and state with the reason; a model without batch norm,
    or a plain function, runs as it is, silently.
    """
    if not isinstance(model, nn.Module) or not any(isinstance(m, _BATCHNORMS) for m in model.modules()):
        return model
    fingerprint = _fingerprint(model)
    entry = _CACHE.get(model)
    if entry is None or entry.fingerprint != fingerprint:
        entry = _make_entry(model, fingerprint)
        _CACHE[model] = entry
    if not entry.checked:
        entry.checked = True
        _check(model, entry, example[:4])
    return model if entry.folded is None else entry.folded


def _make_entry(model: nn.Module, fingerprint: tuple) -> _Entry:
    try:
        folded, pairs = fold_batchnorm(model)
    except FoldingError as error:
        return _Entry(fingerprint, None, reason=str(error))
    if pairs == 0:
        return _Entry(fingerprint, None, checked=True)  # nothing folded: no copy needed
    return _Entry(fingerprint, folded)


def _check(model: nn.Module, entry: _Entry, example: torch.Tensor) -> None:
    """Drop the folded copy if it disagrees with the model on ``example``; warn once if the model runs unfolded."""
    if entry.folded is not None:
        entry.reason = _disagreement(model, entry.folded, example)
        if entry.reason is not None:
            entry.folded = None
    if entry.reason is not None:
        warnings.warn(f"fold_batchnorm: running {type(model).__name__} unfolded: {entry.reason}", RuntimeWarning,
                      stacklevel=5)


def _disagreement(model: nn.Module, folded: nn.Module, example: torch.Tensor) -> str | None:
    """Why ``folded`` cannot stand in for ``model`` on ``example`` (it raises, its output has another shape, its
    logits differ by more than :data:`RELATIVE_TOLERANCE` of their scale), or None when it can."""
    with torch.no_grad():
        expected = model(example)
        try:
            got = folded(example)
        except Exception as error:  # noqa: BLE001 - a folded copy that cannot run is not used
            return f"the folded copy raised {type(error).__name__}: {str(error)[:160]}"
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return "the folded model's output has another shape"
    scale = float(expected.abs().max()) or 1.0
    error = float((got - expected).abs().max())
    if not error <= RELATIVE_TOLERANCE * scale:
        return (f"the folded model's logits differ from the model's by {error:.3g} "
                f"(more than {RELATIVE_TOLERANCE:g} of their scale {scale:.3g})")
    return None
