"""Every registered attack with ``compile=True`` (through ``execution(compile=True)``, the way any attack gets
it): no fallback to eager, the contract's shapes and box, and the eager result.

One tiny conv model object is shared by all cases, so ``torch.compile`` builds its graphs (forward, and
forward+backward, for batches of any size and for one image) once (they are cached per model object in
:mod:`gse_explain.attacks.execution`) and every other case, batch size and attack reuses them: the whole module takes ~10 s on one CPU thread, most of it
that one compile. The images lie just inside a decision boundary of the model, so the attacks' fast
``test_options`` budgets (SAPF's: :data:`STRONGER`) perturb them and there is a perturbation to compare.

Tolerances: every attack here is deterministic given its seed (PGD0 and Sparse-RS draw from ``seed=0``). For all
but Homotopy (:data:`ROUNDING_SENSITIVE`: its branches follow rounding, so only the contract is checked) the
compiled passes differ from eager ones only by float32 rounding (~1e-6 on these logits, whose top-2 margins are 0.3-0.4), so the same
model calls, the same success flags and the same perturbed pixels are required of all of them, and the
adversarial values must agree to 1e-5. That exactness rests on the attacks' decisions (success checks, the
accept/reject of Sparse-RS, GSE's support selection) not falling within rounding of a tie on these images:
a tie broken the other way would be a legitimate difference, not a compile bug (the margins printed by a
failure would show it).
"""

import warnings

import pytest
import torch
from torch import nn

from gse_explain.attacks import get_attack, list_attacks
from gse_explain.attacks.execution import compiled_model, execution
from gse_explain.attacks.losses import is_successful

pytestmark = pytest.mark.slow

CLASSES = 5


def _model() -> nn.Module:
    torch.manual_seed(0)  # the test's own weights
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, CLASSES)).eval()
    with torch.no_grad():  # logits of a few units (margins ~0.3 near the boundary), as a trained model's are
        model[3].weight.mul_(100.0)
        model[3].bias.mul_(100.0)
    return model


MODEL = _model()  # one object for every case: compiled once

#: Options beyond ``test_options`` where those fool none of these images (SAPF's 1 × 1 × 2 steps do not): the
#: comparison then covers a perturbation. The others' ``test_options`` fool or perturb some of the images.
STRONGER = {"sapf": dict(preset="cifar10", search_steps=1, iterations=5, iterations_delta=20, iterations_g=20,
                         iterations_finetune=10, rho_growth=1.105, eta_decay_every=5, lam1=0.1)}


def _near_boundary(seed: int) -> tuple[torch.Tensor, int, int]:
    """An image (3, 8, 8) in [0, 1] on the segment between two random images of different classes, 3 % of the
    segment inside the first class's side of the boundary; returns (image, its class, the class across)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        while True:
            a, b = torch.rand(2, 3, 8, 8, generator=generator)
            ca, cb = (int(MODEL(z[None]).argmax()) for z in (a, b))
            if ca != cb:
                break
        lo, hi = 0.0, 1.0  # class(a + t (b - a)) is ca at lo, not ca at hi
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if int(MODEL((a + mid * (b - a))[None]).argmax()) == ca else (lo, mid)
        image = a + max(0.0, lo - 0.03) * (b - a)
        across = int(MODEL((a + hi * (b - a))[None]).argmax())
    return image, ca, across


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels, targets = zip(*(_near_boundary(seed) for seed in range(3)))
    return torch.stack(images), torch.tensor(labels), torch.tensor(targets)


IMAGES, LABELS, TARGETS = _batch()

#: Attacks whose result follows float32 rounding, so compiled and eager runs legitimately differ: for them the
#: test checks the contract (and the pass budget), not equality. Homotopy's nmAPG takes Barzilai-Borwein steps
#: (quotients of gradient differences, floors 1e-5 / 1e-10) and accepts steps on comparisons such as
#: f(z) ≤ c − δ‖z − y‖² and |f(v) − bound| < 1e-3, so a last-bit change flips a branch: on these images
#: (2026-12-02) eager runs changed their model calls and adversarials (by one 0.05 step) just as much with
#: ``channels_last=True`` (a layout change, rounding only) on 2 of 3 images, and with the last layer's
#: weights × (1 + 1e-6), as with ``compile=True``.
ROUNDING_SENSITIVE = {"homotopy"}


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("name", list_attacks())
def test_attack_compiled_matches_eager(name, targeted, one_thread):
    spec = get_attack(name)
    goal = TARGETS if targeted else LABELS
    options = {**spec.test_options, **STRONGER.get(name, {}), "targeted": targeted, **({"seed": 0} if spec.randomized else {})}
    eager = spec.function(MODEL, IMAGES, goal, **options)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="torch.compile failed", category=RuntimeWarning)
        with execution(compile=True):
            compiled = spec.function(MODEL, IMAGES, goal, **options)
    assert compiled_model(MODEL).failed is None  # compiled, not the eager fallback
    # forward and forward+backward for any batch size, and the same pair for one image (Homotopy's calls, a
    # working set shrunk to one), shared by every attack: nothing recompiles per attack or size
    assert 1 <= compiled_model(MODEL).graphs <= 4

    # the contract: shapes, dtype, the box, success = the model's verdict, pass counts
    adversarials, success = compiled.adversarials, compiled.success
    assert adversarials.shape == IMAGES.shape and adversarials.dtype == IMAGES.dtype
    assert success.shape == (3,) and success.dtype == torch.bool
    assert adversarials.min() >= 0 and adversarials.max() <= 1
    with torch.no_grad():
        logits = MODEL(adversarials)
    assert torch.equal(is_successful(logits, goal, targeted), success), logits
    assert compiled.model_passes == sum(batch for batch, _ in compiled.model_calls) > 0

    if name in ROUNDING_SENSITIVE:  # its branches follow rounding: the contract and its budget only
        assert eager.model_passes <= 3 * (options["max_passes"] + 2) >= compiled.model_passes
        return
    # the eager result (see the module docstring for why exact flags and support are required)
    assert compiled.model_calls == eager.model_calls
    assert torch.equal(success, eager.success)
    assert torch.equal(adversarials != IMAGES, eager.adversarials != IMAGES)
    assert (adversarials != IMAGES).any(), "nothing perturbed: the comparison would be empty"
    torch.testing.assert_close(adversarials, eager.adversarials, atol=1e-5, rtol=0)


def test_the_images_are_near_a_boundary_so_the_cases_compare_perturbations():
    with torch.no_grad():
        logits = MODEL(IMAGES)
    assert torch.equal(logits.argmax(1), LABELS) and not torch.equal(TARGETS, LABELS)
    top2 = logits.topk(2, dim=1).values
    margins = top2[:, 0] - top2[:, 1]
    assert (margins > 1e-3).all() and (margins < 0.05 * logits.abs().max()).all()  # far above rounding, yet close
