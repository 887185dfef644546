"""Execution options of the model passes: compile=True equals eager (one compile per model, no recompile per batch
size, eager fallback on a failing compile), amp validation and bf16 on CPU, channels-last inputs."""

import warnings

import pytest
import torch
from torch import nn

from gse_explain.attacks import gse
from gse_explain.attacks.caller import ModelCaller
from gse_explain.attacks.execution import CompiledModel, ExecutionOptions, check_amp, compiled_model, execution
from gse_explain.attacks.losses import cw_margin_loss
from gse_explain.attacks.wrapper import Attack
from gse_explain.models.inference import frozen_model

TINY = dict(iterations=6, search_steps=1, patch_size=2, k_hat=3, step_size=0.05)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # the test's own model weights
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))


SHARED = _mlp()  # compiled in the first test; the second shows that other batch sizes reuse its graphs


def test_compiled_gse_matches_eager_and_compiles_once():
    model, x = SHARED, _images(3)
    y = model(x).argmax(1)
    eager = gse(model, x, y, **TINY)
    compiled = gse(model, x, y, compile=True, **TINY)
    assert torch.equal(compiled.success, eager.success) and compiled.model_calls == eager.model_calls
    assert torch.equal(compiled.adversarials != x, eager.adversarials != x)  # same perturbation support
    torch.testing.assert_close(compiled.adversarials, eager.adversarials, atol=1e-5, rtol=0)
    assert compiled.compile_seconds > 0 and eager.compile_seconds == 0
    graphs = compiled_model(model).graphs
    assert graphs == 2  # one graph without gradient, one with: the shrinking working set reuses them
    again = Attack("gse", model, compile=True, **TINY).run(x, y)  # cached per model: nothing compiled again
    assert compiled_model(model).graphs == graphs and again.compile_seconds == 0
    assert torch.equal(again.adversarials, compiled.adversarials)


def test_no_recompile_per_batch_size():
    model = SHARED
    graphs = compiled_model(model).graphs  # 2 if the test above ran, else compiled here
    caller = ModelCaller(model, (0.0, 1.0), 2, execution=ExecutionOptions(compile=True))
    loss = lambda labels: lambda logits: cw_margin_loss(logits, labels, False)  # noqa: E731
    with frozen_model(model):  # as in an attack session (a parameter's requires_grad is part of the guards)
        _passes_of_sizes(caller, model, loss)
    # sizes 5..2 reuse the two graphs; a single image gets its own pair, compiled once
    assert compiled_model(model).graphs == (graphs or 2) + 2
    with frozen_model(model):
        _passes_of_sizes(caller, model, loss)
    assert compiled_model(model).graphs == (graphs or 2) + 2
    assert caller.forward_passes == caller.gradient_passes == 30


def _passes_of_sizes(caller, model, loss):
    for size in (5, 4, 3, 2, 1):  # torch.compile specialises size 1
        x = _images(size, size) * 2 - 1
        logits = caller.logits(x)
        _, grad = caller.logits_and_grad(x, loss(torch.zeros(size, dtype=torch.long)))
        with torch.no_grad():
            torch.testing.assert_close(logits, model(x * 0.5 + 0.5), atol=1e-5, rtol=0)
        assert logits.shape == (size, 3) and grad.shape == x.shape


def test_failing_compile_warns_and_runs_eagerly(monkeypatch):
    def broken(self, graph_module, example_inputs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(CompiledModel, "_backend", broken)
    model, x = _mlp(3), _images(2)
    y = model(x).argmax(1)
    with pytest.warns(RuntimeWarning, match="torch.compile failed on Sequential \\(RuntimeError: no compiler here\\); running it eagerly"):
        compiled = gse(model, x, y, compile=True, **TINY)
    assert torch.equal(compiled.adversarials, gse(model, x, y, **TINY).adversarials)  # exactly eager
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per model
        gse(model, x, y, compile=True, **TINY)


def test_model_errors_are_not_compile_failures():
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 3)).eval()  # wrong input size: the model's own error
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        gse(model, _images(2), torch.tensor([0, 1]), compile=True, **TINY)
    assert compiled_model(model).failed is None


@pytest.mark.parametrize("amp, device, dtype, fragment", [
    ("fp8", "cpu", torch.float32, "amp must be None, 'bf16' or 'fp16'"),
    ("fp16", "cpu", torch.float32, "amp='fp16' needs a CUDA model; on CPU use amp='bf16'"),
    ("bf16", "cpu", torch.float64, "needs a float32 model"),
    ("bf16", "meta", torch.float32, "supported on CUDA and \\(bf16\\) CPU models"),
])
def test_amp_errors_name_the_problem(amp, device, dtype, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_amp(amp, torch.device(device), dtype)


def test_amp_errors_before_the_attack_and_in_execution():
    model, x = _mlp(), _images(2)
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA model"):
        gse(model, x, torch.tensor([0, 1]), amp="fp16", **TINY)
    with pytest.raises(ValueError, match="amp must be None"):
        with execution(amp="half"):
            pass
    with pytest.raises(TypeError, match="compile must be True or False"):
        ExecutionOptions(compile="yes")


def test_bf16_autocast_and_channels_last_on_cpu():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).eval()
    x = _images(2, 5)
    y = model(x).argmax(1)
    caller = ModelCaller(model, (0.0, 1.0), 2, execution=ExecutionOptions(amp="bf16", channels_last=True))
    logits, grad = caller.logits_and_grad(x * 2 - 1, lambda z: cw_margin_loss(z, y, False))
    assert logits.dtype == torch.float32 and grad.dtype == torch.float32 and grad.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), atol=0.05, rtol=0.05)  # bf16: about 3 significant digits
    eager = gse(model, x, y, **TINY)
    last = gse(model, x, y, channels_last=True, **TINY)  # a layout changes rounding only
    torch.testing.assert_close(last.adversarials, eager.adversarials, atol=1e-4, rtol=0)


def test_many_models_in_one_process_all_compile():
    """Dynamo's recompile limit (8 graphs) counts across every compiled module of a process; past it, models
    would run eagerly without a word. Ten models, one graph each, all really compile."""
    models = [nn.Sequential(nn.Flatten(), nn.Linear(48, 3)).eval() for _ in range(10)]
    x = _images(2) * 2 - 1
    for model in models:
        caller = ModelCaller(model, (-1.0, 1.0), 2, execution=ExecutionOptions(compile=True))
        with frozen_model(model):
            caller.logits(x)
        entry = compiled_model(model)
        assert entry.graphs == 1 and entry.failed is None
