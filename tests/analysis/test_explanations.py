"""Explanation methods: known answers on a linear model, seeded noise that leaves the global RNGs alone, the
registry's errors, IS with saliency="asm" equal to the ASM's numbers, the on-disk cache, callables."""

import numpy as np
import pytest
import torch

from gse_explain.analysis import (
    adversarial_saliency_map,
    cam_alignment,
    cam_alignment_table,
    interpretability_curves,
    interpretability_score,
    interpretability_table,
    list_explanations,
    register_explanation,
    unregister_explanation,
)
from gse_explain.analysis.explanations import CAPTUM_METHODS, explain, resolve_explanation
from gse_explain.analysis.runs import iter_row_batches, open_run
from gse_explain.evaluation.store import ResultStore

SHAPE = (3, 4, 5)


@pytest.fixture
def linear(make_linear_model):
    """(model, W (K, C, H, W), images (3, C, H, W), targets (3,)): Z = W · vec(x), no bias."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, int(np.prod(SHAPE)), generator=generator)
    images = torch.rand(3, *SHAPE, generator=generator)
    return make_linear_model(weight), weight.view(4, *SHAPE), images, torch.tensor([0, 2, 3])


def test_known_answers_on_a_linear_model(linear):
    model, weight, images, targets = linear
    w = weight[targets]
    assert torch.equal(explain("saliency", model, images, targets), w.abs())
    assert torch.equal(explain("saliency", model, images, targets, settings={"abs": False}), w)
    assert torch.equal(explain("input_x_gradient", model, images, targets), images * w)
    # Gauss-Legendre weights sum to 1 up to float rounding: equal to x ⊙ W[t] within 1e-6.
    torch.testing.assert_close(explain("integrated_gradients", model, images, targets), images * w, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(explain("deeplift", model, images, targets), images * w, rtol=1e-6, atol=1e-6)
    occluded = explain("occlusion", model, images, targets, settings={"window": 1, "stride": 1})
    torch.testing.assert_close(occluded, (images * w).sum(dim=1, keepdim=True).expand_as(images), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(explain("smoothgrad", model, images, targets), w.abs())  # noise cannot move a constant gradient
    # GradientShap: mean over draws of (x - b) ⊙ W with b black or white, i.e. (x - p) ⊙ W, p = share of white draws.
    shift = images - explain("gradient_shap", model, images, targets) / w
    p = shift.flatten(1).mean(dim=1)
    torch.testing.assert_close(shift, p.view(-1, 1, 1, 1).expand_as(shift), rtol=0, atol=1e-4)
    assert torch.allclose(p * 20, (p * 20).round(), atol=1e-4) and ((p > 0) & (p < 1)).all()
    asm = explain("asm", model, images, targets, labels=torch.tensor([1, 1, 0]))
    assert torch.equal(asm, w * weight[torch.tensor([1, 1, 0])].abs())


def test_noise_methods_are_seeded_per_row_and_leave_global_rngs_alone(linear, make_linear_model):
    _, _, images, targets = linear
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(60, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    model = make_linear_model(torch.zeros(4, 60))  # a wrapper; replace its network by a non-linear one
    model.model = net
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    for method in ("smoothgrad", "gradient_shap"):
        one = explain(method, model, images, targets, batch_size=1, seed=3)
        assert torch.equal(one, explain(method, model, images, targets, batch_size=64, seed=3))  # batch-size free
        assert not torch.equal(one, explain(method, model, images, targets, seed=4))
        row = explain(method, model, images[1:2], targets[1:2], seeds=[4])  # row 1 of seed 3 is seed 3 + 1
        assert torch.equal(row, one[1:2])
    assert torch.equal(torch_state, torch.get_rng_state())
    assert all(np.array_equal(a, b) for a, b in zip(numpy_state, np.random.get_state()))


def test_registry_errors_name_the_problem(linear):
    model, _, images, targets = linear
    assert set(CAPTUM_METHODS) | {"asm", "gradcam++"} <= set(list_explanations())
    with pytest.raises(ValueError, match="unknown explanation method 'gradients'.*registered: asm, saliency"):
        explain("gradients", model, images, targets)
    with pytest.raises(ValueError, match="'integrated_gradients' has no settings \\['n_steps'\\].*steps=50"):
        resolve_explanation("integrated_gradients", {"n_steps": 8})
    with pytest.raises(TypeError, match="registered method name .* or a callable"):
        resolve_explanation(3)
    with pytest.raises(ValueError, match="needs labels="):
        explain("asm", model, images, targets)
    with pytest.raises(ValueError, match="returned shape \\(3, 7\\)"):
        explain(lambda m, x, c: torch.zeros(3, 7), model, images, targets)
    with pytest.raises(ValueError, match="NaN or inf .*rows \\[1\\]"):
        explain(lambda m, x, c: torch.where(torch.arange(3).view(3, 1, 1) == 1, float("nan"), 1.0) * x[:, 0], model, images, targets)
    with pytest.raises(ValueError, match="already registered"):
        register_explanation("saliency")(lambda model, images, classes: images)


def test_asm_is_equals_the_asm_numbers_and_the_cache_round_trips(tmp_path, make_patch_store, resnet20):
    path, _, _ = make_patch_store(tmp_path / "patch")
    expected = []
    for rows in iter_row_batches(open_run(path), successful_only=False):
        labels, targets = torch.tensor(rows.records["label"].to_numpy()), torch.tensor(rows.records["target"].to_numpy())
        expected.append(interpretability_score(adversarial_saliency_map(resnet20, rows.clean, labels, targets), rows.delta))
    expected = torch.cat(expected).reshape(-1).numpy()
    uncached = interpretability_table(path, resnet20, cache=False)
    assert not (tmp_path / "patch" / "explanations").exists()
    cold = interpretability_table(path, resnet20)  # writes <store>/explanations/asm-*.npz
    files = list((tmp_path / "patch" / "explanations").glob("asm-*.npz"))
    warm = interpretability_table(path, resnet20)
    assert len(files) == 1
    for table in (uncached, cold, warm):
        assert np.array_equal(table["interpretability_score"].to_numpy(), expected)


def test_cache_hits_and_is_invalidated_by_settings_and_store_changes(tmp_path, make_patch_store, resnet20):
    path, _, _ = make_patch_store(tmp_path / "patch")
    calls = []

    @register_explanation("test_counting", defaults={"power": 1})
    def counting(model, images, classes, *, power):
        calls.append(images.shape[0])
        return images.sum(dim=1) ** power

    try:
        first = interpretability_table(path, resnet20, saliency="test_counting")
        assert calls == [6]
        assert first.equals(interpretability_table(path, resnet20, saliency="test_counting")) and calls == [6]  # hit
        interpretability_table(path, resnet20, saliency="test_counting", saliency_settings={"power": 2})
        assert calls == [6, 6]  # other settings: computed (own file)
        store = ResultStore.open(path)
        batch = store.read_batch(0, images=True)
        records = {k: batch["records"][k].to_numpy() for k in batch["records"].columns}
        records["success"] = np.ones(6, dtype=bool)  # the store changes: every cached map is stale
        store.write_batch(0, records, torch.from_numpy(batch["clean"]), torch.from_numpy(batch["adversarial"]))
        assert interpretability_table(path, resnet20, saliency="test_counting").equals(first.assign(success=True))
        assert calls == [6, 6, 6]
        elsewhere = tmp_path / "cache"
        interpretability_table(path, resnet20, saliency="test_counting", cache=elsewhere)
        assert len(list(elsewhere.glob("*test_counting-*.npz"))) == 1
    finally:
        unregister_explanation("test_counting")


def test_callables_and_errors_in_store_level_functions(tmp_path, make_patch_store, resnet20):
    path, adversarial, _ = make_patch_store(tmp_path / "patch")
    pixel_map = torch.linspace(0, 1, 32 * 32).view(1, 32, 32)

    def fixed(model, images, classes):
        return pixel_map.expand(images.shape[0], 32, 32)

    table = interpretability_table(path, resnet20, saliency=fixed, percentiles=[80])
    rows = next(iter_row_batches(open_run(path), successful_only=False))
    expected = interpretability_score(pixel_map[:, None].expand(6, 3, 32, 32), rows.delta, [80])[:, 0]
    assert np.array_equal(table["interpretability_score"].to_numpy(), expected.numpy())
    assert not (tmp_path / "patch" / "explanations").exists()  # callables are not cached
    with pytest.raises(ValueError, match="sign_condition=True is a setting of the ASM"):
        interpretability_table(path, resnet20, saliency="saliency", sign_condition=True)
    with pytest.raises(ValueError, match="unknown explanation method 'nope'"):
        interpretability_curves({"a": path}, resnet20, saliency="nope")
    aligned = cam_alignment_table(path, resnet20, saliency=fixed, top_percents=[25], cache=False)
    region_share = cam_alignment(pixel_map.expand(6, 32, 32).contiguous(), rows.delta, 25)
    assert np.allclose(aligned["energy_share"].to_numpy(), region_share.numpy())
