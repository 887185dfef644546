"""Sparse-RS, ℓ0 pixel version (Croce et al. 2022, spec §B.5): black-box random search, forward passes only.

"Sparse-RS: a versatile framework for query-efficient sparse black-box adversarial attacks" (AAAI 2022).
Each image keeps a set M of exactly k perturbed pixels, each set to a corner of the colour cube {lo, hi}^C
(canonical box: {-1, +1}^C). Per restart:

    1. M ← k random pixels (per image), coloured with random corners; query the model (1 query).
    2. For i = 1 .. n_queries − 1 (one query each, active images only):
       k_i = max(⌊α(i)·k⌋, 1); candidate = current best with k_i random pixels of M restored to the clean
       image and k_i random pixels outside M added with random corners (if k_i = 1 the new colour differs
       from the pixel's current value); accept it if its loss is lower, or if it fools the model.
       An image stops as soon as its accepted candidate fools the model.

α(i) = alpha_init / f with f ∈ [1, 2, 4, 5, 6, 8, 10, 12, 15, 20] picked by ``bisect_left`` of
⌊i / n_queries · 10000⌋ in [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000] (spec §B.5).

Loss (as the original): untargeted ``margin`` Z_y − max_{j≠y} Z_j (the original's default) or ``ce`` −CE(y);
targeted CE(t) (the original forces CE when targeted; ``loss="margin"`` gives max_{j≠t} Z_j − Z_t).

Query budget: every image sent through the model is one query, the first of each restart included; per
image at most ``n_queries`` per restart and ``n_restarts · n_queries`` in total. The per-image counts are
attached to the result as ``result.queries`` ((B,) int64; ``result.forward_passes`` is their sum, plus B when
targeted: one forward pass on the clean images checks that no target is already the prediction, which is
not a query of the search). The model is never asked for a gradient (``gradient_passes == 0``). Successful images leave the working set at once.
Failures are returned unchanged.

Deviations from the GSE authors' code, and choices where paper/spec are silent:
    * Colours: the port draws ``randint(0, 1)`` (always 0), so every pixel is black, and with k_i = 1 its
      "must change colour" loop never ends on an already black pixel. We follow the original: uniformly random
      corners of {lo, hi}^C, and for k_i = 1 (as the original's later versions) a colour different from the
      pixel's current value, drawn directly from the corners that differ (uniform, no rejection loop).
    * Positions: the port uses the same pixel positions for the whole batch. As the original, every image has
      its own random pixel lists (M and its complement); the slots swapped at a query are drawn once per query
      and shared, exactly as in the original, which makes each image's positions uniformly random.
    * Loss: the port optimises −CE(y) untargeted; we use the original's margin default (``loss`` option).
    * Stopping and acceptance use the argmax test of the project (``is_successful``); the original uses
      margin ≤ 0 to stop and margin < −1e−6 to accept, which differ only on exact logit ties.
    * No extra queries: the original also queries the clean batch and each restart's output (uncounted);
      here every query is counted (targeted: the clean-image target check is counted in ``forward_passes``
      but is not a search query) and success comes from the logits of the accepted candidates, which are
      exactly the returned images (canonical coordinates).
    * k = H·W leaves no pixel outside M to swap in: the candidate then re-colours k_i pixels of M instead.

``variant="reference"`` follows the authors' port (spec §B.5) where it changes the search: every perturbed
pixel is set to the lower bound in all channels (black; the port's ``randint(0, 1)`` colours), including the
k_i = 1 case, where the port's "must change colour" loop would never end on a pixel that is already black
(here the pixel is set black anyway, so such a query may leave the candidate unchanged); and
``loss="auto"`` means −CE(y) untargeted, as the port optimises. Positions, acceptance and the query count
are shared with the corrected variant.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .base import AttackResult, attack_session
from .losses import is_successful
from .pixel_sparse import check_pixel_budget, random_corners
from .registry import AttackSpec, register_attack
from .variants import CORRECTED, REFERENCE, check_variant

__all__ = ["SPEC", "SparseRSConfig", "SPARSE_RS_PRESETS", "alpha_schedule", "sparse_rs", "sparse_rs_config"]

_BREAKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_FACTORS = (1, 2, 4, 5, 6, 8, 10, 12, 15, 20)
_LOSSES = ("auto", "margin", "ce")


@dataclass(frozen=True)
class SparseRSConfig:
    """Sparse-RS hyperparameters; defaults are the reference JSON's CIFAR-10 values (spec §B.5).

    Attributes:
        k: number of perturbed pixels per image (all channels of a pixel count once).
        n_queries: query budget per image and restart (the first query of a restart included).
        n_restarts: restarts; each runs only on images not fooled yet.
        alpha_init: initial fraction α of the k pixels swapped per query, in (0, 1].
        loss: ``"auto"`` (margin untargeted, CE targeted, as the original; the reference variant: CE in
            both modes, as the port), ``"margin"`` or ``"ce"``.
        variant: ``"corrected"`` (random colour-cube corners) or ``"reference"`` (the GSE authors' port:
            black pixels only); see the module docstring.
    """

    k: int = 90
    n_queries: int = 10000
    n_restarts: int = 10
    alpha_init: float = 0.8
    loss: str = "auto"
    variant: str = CORRECTED

    def __post_init__(self) -> None:
        check_variant(self.variant, "Sparse-RS")
        checks = [
            (_positive_int(self.k), f"k must be an integer ≥ 1 (pixels); got {self.k!r}"),
            (_positive_int(self.n_queries), f"n_queries must be an integer ≥ 1; got {self.n_queries!r}"),
            (_positive_int(self.n_restarts), f"n_restarts must be an integer ≥ 1; got {self.n_restarts!r}"),
            (0.0 < self.alpha_init <= 1.0, f"alpha_init must be in (0, 1]; got {self.alpha_init!r}"),
            (self.loss in _LOSSES, f"loss must be one of {list(_LOSSES)}; got {self.loss!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Sparse-RS option error: {message}")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# The paper's settings (attackParams.json of the reference code; spec §B.5). Same for both modes.
_COMMON = dict(n_queries=10000, n_restarts=10, alpha_init=0.8)
SPARSE_RS_PRESETS: dict[str, dict[bool, dict[str, float]]] = {
    "cifar10": {False: dict(k=90, **_COMMON), True: dict(k=90, **_COMMON)},
    "imagenet": {False: dict(k=6600, **_COMMON), True: dict(k=6600, **_COMMON)},
}


def sparse_rs_config(preset: str | None = None, targeted: bool = False, **options) -> SparseRSConfig:
    """Build a :class:`SparseRSConfig` from a preset name (``SPARSE_RS_PRESETS``) and explicit overrides."""
    return SPEC.make_config(preset, targeted, **options)


def alpha_schedule(i: int, n_queries: int, alpha_init: float) -> float:
    """α(i) for query index i of a restart with ``n_queries`` queries (spec §B.5)."""
    return alpha_init / _FACTORS[bisect.bisect_left(_BREAKPOINTS, int(i / n_queries * 10000))]


def sparse_rs(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    targeted: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    preset: str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    **options,
) -> AttackResult:
    """Run Sparse-RS (ℓ0 pixels) on a batch; forward passes only.

    Args:
        model: maps images in ``bounds`` (B, C, H, W) to logits (B, K); only its outputs are used.
        images: (B, C, H, W) float images inside ``bounds``; not modified.
        labels: (B,) int64 target classes (targeted) or true classes (untargeted).
        targeted: reach ``labels`` instead of leaving them.
        bounds: the box (lo, hi) of valid images; perturbed pixels take values in {lo, hi} per channel.
        preset: ``"cifar10"`` (k = 90) or ``"imagenet"`` (k = 6600); both 10 restarts × 10000 queries.
        seed, generator: randomness; ``generator`` (CPU) wins, else one seeded with ``seed`` (default 0).
        progress: tqdm bar over the queries of all restarts.
        **options: any :class:`SparseRSConfig` field, overriding the preset.

    Returns:
        :class:`AttackResult` with an extra attribute ``queries`` ((B,) int64, queries used per image).
        Adversarials differ from the images in at most k pixels; failures are returned unchanged.
    """
    config = sparse_rs_config(preset, targeted, **options)
    loss = config.loss if config.loss != "auto" else ("ce" if targeted or config.variant == REFERENCE else "margin")
    with attack_session(model, images, labels, bounds, targeted, seed=seed, generator=generator) as session:
        check_pixel_budget(config.k, session.x, "Sparse-RS")
        with tqdm(total=config.n_restarts * config.n_queries, desc="Sparse-RS queries", disable=not progress) as bar:
            result, success, queries = _restarts(
                session.caller, session.canonical, session.labels, targeted, loss, config, session.generator, bar
            )
        return session.result(result, success, queries=queries)


def _restarts(caller, u, y, targeted, loss, cfg: SparseRSConfig, generator, bar):
    """All restarts on canonical images u (B, C, H, W); returns (adversarials, success (B,), queries (B,))."""
    result = u.clone()
    success = torch.zeros(u.shape[0], dtype=torch.bool, device=u.device)
    queries = torch.zeros(u.shape[0], dtype=torch.long, device=u.device)
    for restart in range(cfg.n_restarts):
        index = torch.nonzero(~success).squeeze(1)
        if index.numel() == 0:
            break
        found, found_success, used = _single_run(caller, u[index], y[index], targeted, loss, cfg, generator, bar)
        result[index[found_success]] = found[found_success]
        success[index] = found_success
        queries[index] += used
        bar.n = (restart + 1) * cfg.n_queries  # fooled images end a restart early
        bar.set_postfix(success=f"{success.float().mean().item():.0%}")
        bar.refresh()
    return result, success, queries


def _loss(logits: torch.Tensor, labels: torch.Tensor, targeted: bool, kind: str) -> torch.Tensor:
    """(A,) loss to minimise: CE(t) / −CE(y) for ``"ce"``, the signed logit margin for ``"margin"``."""
    if kind == "ce":
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        return ce if targeted else -ce
    own = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return (others - own if targeted else own - others).float()


def _colours(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor, variant: str) -> torch.Tensor:
    """Colours of newly perturbed pixels, ``shape`` = (A, C, n): random corners of {-1, 1}^C, or for the
    reference variant the lower bound -1 everywhere (the port's black pixels; no random draw)."""
    if variant == REFERENCE:
        return torch.full(shape, -1.0, dtype=like.dtype, device=like.device)
    return random_corners(shape, generator, like.dtype, like.device)


def _new_colours(current: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(A, C, 1) random corners ∈ {-1, 1}^C that differ from ``current`` (A, C, 1) wherever it is a corner.

    Uniform over the 2^C − 1 other corners (as rejection sampling would be), drawn without a loop: the new
    corner is the current one with a uniformly random non-empty set of channels flipped.
    """
    batch, channels = current.shape[:2]
    is_corner = (current.abs() == 1).all(dim=1).view(batch)
    colours = random_corners((batch, channels, 1), generator, current.dtype, current.device)
    if not is_corner.any():
        return colours
    if channels <= 62:
        flips = torch.randint(1, 2**channels, (batch,), generator=generator)
        flip_bits = (flips[:, None] >> torch.arange(channels)) & 1
    else:  # 2^C − 1 is not an int64; a random non-empty flip set (all-zero draws flip channel 0)
        flip_bits = torch.randint(0, 2, (batch, channels), generator=generator)
        flip_bits[flip_bits.sum(dim=1) == 0, 0] = 1
    signs = 1 - 2 * flip_bits.to(device=current.device, dtype=current.dtype)
    flipped = current * signs.view(batch, channels, 1)
    return torch.where(is_corner.view(batch, 1, 1), flipped, colours)


def _single_run(caller, u, y, targeted, loss_kind, cfg: SparseRSConfig, generator, bar):
    """One restart on canonical images u (A, C, H, W).

    Returns (best images (A, C, H, W), success (A,), queries used (A,) int64).
    """
    batch, channels, height, width = u.shape
    n_pixels = height * width
    flat_u = u.reshape(batch, channels, n_pixels)
    queries = torch.zeros(batch, dtype=torch.long, device=u.device)
    success = torch.zeros(batch, dtype=torch.bool, device=u.device)

    search, logits = _random_start(caller, flat_u, y, cfg, generator, u.shape)
    queries += 1
    search.loss = _loss(logits, y, targeted, loss_kind)
    success |= is_successful(logits, y, targeted)
    result = flat_u.clone()
    result[success] = search.best[success]
    search.keep(torch.nonzero(~success).squeeze(1))

    for i in range(1, cfg.n_queries):
        if search.index.numel() == 0:
            break
        candidate, out_slots, in_slots = _propose(search, i, cfg, generator)
        logits = caller.logits(candidate.view(-1, channels, height, width))
        queries[search.index] += 1
        fooled = _accept(search, candidate, logits, targeted, loss_kind, (out_slots, in_slots), n_pixels > cfg.k)
        bar.update(1)
        if fooled.any():
            result[search.index[fooled]] = search.best[fooled]
            success[search.index[fooled]] = True
            search.keep(~fooled)
    return result.view_as(u), success, queries


@dataclass
class _Search:
    """Per-image random-search state of the images still active in a restart (flattened pixels).

    Attributes:
        index: (A,) rows of these images in the restart's batch.
        u: clean canonical images (A, C, H·W); y: labels (A,).
        best: the current best images (A, C, H·W), perturbed in exactly the k pixels of M.
        loss: (A,) loss of ``best``.
        lists: (A, H·W) pixel indices; ``lists[:, :k]`` is M, ``lists[:, k:]`` the other pixels.
    """

    index: torch.Tensor
    u: torch.Tensor
    y: torch.Tensor
    best: torch.Tensor
    loss: torch.Tensor | None
    lists: torch.Tensor

    def keep(self, rows: torch.Tensor) -> None:
        """Restrict every per-image tensor to ``rows`` (indices or a boolean mask over the active images)."""
        for name in ("index", "u", "y", "best", "loss", "lists"):
            setattr(self, name, getattr(self, name)[rows])


def _random_start(caller, flat_u, y, cfg: SparseRSConfig, generator, shape) -> tuple[_Search, torch.Tensor]:
    """Step 1 of a restart: M = k random pixels per image, coloured with random corners, and its query.

    Returns the search state of all images (``loss`` still None) and the logits (A, K) of the start."""
    batch, channels, n_pixels = flat_u.shape
    k = cfg.k
    # lists[:, :k] = the pixels in M, lists[:, k:] = the others (one random permutation per image).
    lists = torch.rand(batch, n_pixels, generator=generator).argsort(dim=1).to(flat_u.device)
    best = flat_u.clone()
    colours = _colours((batch, channels, k), generator, flat_u, cfg.variant)
    best.scatter_(2, _expand(lists[:, :k], channels), colours)
    logits = caller.logits(best.view(shape))
    index = torch.arange(batch, device=flat_u.device)
    return _Search(index, flat_u, y, best, None, lists), logits


def _propose(search: _Search, i: int, cfg: SparseRSConfig, generator):
    """Query i's candidate (A, C, H·W): k_i random pixels of M restored to the clean image, k_i random pixels
    outside M given random corners. Returns (candidate, out_slots (k_i,), in_slots (k_i,)), the swapped
    positions in ``search.lists``."""
    channels, n_pixels = search.u.shape[1:]
    k, device = cfg.k, search.u.device
    k_i = max(int(alpha_schedule(i, cfg.n_queries, cfg.alpha_init) * k), 1)
    if n_pixels > k:
        k_i = min(k_i, n_pixels - k)
        out_slots = torch.randperm(k, generator=generator)[:k_i].to(device)
        in_slots = (k + torch.randperm(n_pixels - k, generator=generator)[:k_i]).to(device)
    else:  # every pixel is in M: re-colour k_i of them
        out_slots = in_slots = torch.randperm(k, generator=generator)[:k_i].to(device)
    out_pos = _expand(search.lists[:, out_slots], channels)
    in_pos = _expand(search.lists[:, in_slots], channels)

    candidate = search.best.clone()
    candidate.scatter_(2, out_pos, search.u.gather(2, out_pos))
    if k_i == 1 and cfg.variant != REFERENCE:
        colours = _new_colours(search.best.gather(2, in_pos), generator)
    else:
        colours = _colours((search.u.shape[0], channels, k_i), generator, search.u, cfg.variant)
    candidate.scatter_(2, in_pos, colours)
    return candidate, out_slots, in_slots


def _accept(search: _Search, candidate, logits, targeted: bool, loss_kind: str, slots, swap_lists: bool):
    """Keep each candidate whose loss is lower or that fools the model; with ``swap_lists`` its swapped
    ``slots = (out_slots, in_slots)`` move in/out of M (not when k = H·W, where the candidate re-coloured
    pixels of M). Returns the (A,) fooled flags."""
    out_slots, in_slots = slots
    new_loss = _loss(logits, search.y, targeted, loss_kind)
    fooled = is_successful(logits, search.y, targeted)
    accept = (new_loss < search.loss) | fooled
    search.best = torch.where(accept.view(-1, 1, 1), candidate, search.best)
    search.loss = torch.where(accept, new_loss, search.loss)
    if swap_lists:
        swapped = search.lists.clone()
        swapped[:, out_slots] = search.lists[:, in_slots]
        swapped[:, in_slots] = search.lists[:, out_slots]
        search.lists = torch.where(accept.view(-1, 1), swapped, search.lists)
    return fooled


def _expand(positions: torch.Tensor, channels: int) -> torch.Tensor:
    """(A, n) pixel indices → (A, C, n) gather/scatter indices over flattened (A, C, H·W) images."""
    return positions[:, None, :].expand(-1, channels, -1)


# This attack's registry entry: the CLIs, contract tests, plot style and demo study read it.
SPEC = register_attack(AttackSpec(
    name="sparse_rs",
    function=sparse_rs,
    config_class=SparseRSConfig,
    presets=SPARSE_RS_PRESETS,
    description="Sparse-RS: black-box random search over k pixels with colour-cube corners (forward passes only)",
    label="Sparse-RS",
    color="#E69F00",
    demo_budget=dict(n_queries=300, n_restarts=1),  # ≤ 301 forward passes per image
    test_options=dict(k=3, n_queries=5, n_restarts=1),
    randomized=True,
))
