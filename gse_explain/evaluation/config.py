"""``RunConfig``: everything one evaluation run depends on, typed, frozen and validated on construction.

A run attacks the first ``num_images`` correctly classified images of a dataset with one attack (untargeted,
or targeted over label offsets) and writes a result store (:mod:`.store`). The configuration is what the
store's manifest records and compares on resume; :meth:`RunConfig.to_json` / :meth:`RunConfig.from_json`
convert it, and read the configurations of stores written before this class existed (schema 1) unchanged.

Fields that say *where* or *how* a run executes (``data_root``, ``weights`` path, ``download``, ``device``,
``shard``) are recorded but not compared on resume (:data:`NOT_COMPARED`): a store may be resumed from
another folder, machine or process count. What the weights file *holds* is compared through its SHA-256.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "CIFAR_DATASETS", "COMPARED_WHEN_RECORDED", "CONFIG_SCHEMA", "NOT_COMPARED", "OBJECT_PREFIX", "RunConfig", "model_label",
    "parse_shard",
]

#: Version of the JSON form written by :meth:`RunConfig.to_json` (1: the argparse-keyed dict of the first
#: stores, which had no ``model_options``, ``device`` or ``shard``).
CONFIG_SCHEMA = 2
CIFAR_DATASETS = ("cifar10", "cifar10_npz")
#: Configuration keys that may differ on resume (where things live, how they are run).
NOT_COMPARED = frozenset({"data_root", "weights", "download", "device", "shard", "progress", "schema", "compile", "channels_last",
                          "fold_batchnorm"})
#: Values that keys added after schema 1 take in a configuration recorded before they existed (``attack_variant``:
#: stores made before the baselines' ``variant`` option ran the corrected attacks).
SCHEMA1_DEFAULTS: Mapping[str, Any] = types.MappingProxyType({"model_options": {}, "attack_variant": "corrected", "amp": None})
#: Recorded facts about the data that are compared only when both sides have them (stores made before
#: they were recorded, and a quick check made before the data is loaded, lack them).
COMPARED_WHEN_RECORDED = frozenset({"dataset_identity", "model_sha256"})
_WEIGHT_WORDS = ("DEFAULT", "random")
#: How a model passed as an object is named in a manifest (it cannot be rebuilt by name).
OBJECT_PREFIX = "object:"


def parse_shard(value) -> tuple[int, int]:
    """``(index, count)`` from ``"i/n"`` or a pair; ValueError naming the rule otherwise."""
    if isinstance(value, str):
        try:
            index, count = (int(part) for part in value.split("/"))
        except ValueError:
            raise ValueError(f"shard must look like 'i/n' (e.g. '0/2'); got {value!r}") from None
    else:
        try:
            index, count = value
        except (TypeError, ValueError):
            raise TypeError(f"shard must be 'i/n' or a pair (i, n) of ints; got {value!r}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, count)):
            raise TypeError(f"shard must be a pair (i, n) of ints; got {value!r}")
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard i/n needs n ≥ 1 and 0 ≤ i < n; got {index}/{count}")
    return index, count


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_type(name: str, value, kinds: tuple, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise TypeError(f"RunConfig.{name} must be {what}; got {value!r} ({type(value).__name__})")


def _absolute(path) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


@dataclass(frozen=True)
class RunConfig:
    """One evaluation run (see the module docstring); every value is checked on construction.

    Data:
        dataset: a name from :func:`gse_explain.data.list_datasets` (default ``"skimage"``, offline photos).
        data_root: dataset folder or ``.npz`` file (stored as an absolute path).
        image_size: square size ImageNet-style images are resized to (None: the model's input size).
        index_file: ``imagenet_val``: the validation indices to use. labels_csv: ``folder``: labels CSV.
        download: ``cifar10``: download into ``data_root`` if missing (needs a network).
    Model:
        model: a name from :func:`gse_explain.models.list_models`, ``"timm:NAME"`` (timm, weights from a file),
            ``"package.module:factory"`` (any importable callable returning an nn.Module), or an ``nn.Module`` taking [0, 1] images (used as
            it is, on its own device; its manifest records its class and state-dict SHA-256, and the analysis asks
            for the object again and checks that hash).
        weights: a weights file (stored absolute), ``"DEFAULT"`` (torchvision's), ``"random"``, or None (the
            model's built-in weights; an error for models without them).
        normalization: ``"unit"`` ([-1, 1]) or ``"imagenet"`` to override the model's input normalisation.
        model_options: keyword arguments for the model's constructor.
    Attack:
        attack: a name from :func:`gse_explain.attacks.list_attacks`.
        preset: ``"auto"`` (the paper's ``cifar10`` or ``imagenet`` setting by dataset, where the attack has
            it), a preset name of the attack, None / ``"none"`` for the attack's defaults, or a preset JSON file
            (``PATH.json``, :mod:`gse_explain.attacks.presets`; stored absolute, its SHA-256 and values recorded).
        options: attack options overriding the preset (validated by the attack's config).
        targeted: targeted over label offsets; offsets: the offsets (None: the paper's for the class count).
    Run:
        num_images: attack the first N correctly classified images (None: all).
        batch_size: images per attack call (≥ 1). seed: seed of the attacks' random choices (int).
        device: ``"auto"`` (CUDA if available; ``cuda:LOCAL_RANK`` under torchrun), ``"cpu"``, ``"cuda:1"``, …
        shard: ``(i, n)`` or ``"i/n"``: attack only batches b with b % n == i; ``"auto"``: i and n from torchrun or a
            SLURM array (:mod:`.launchers`), the whole run otherwise.
    Execution (:mod:`gse_explain.attacks.execution`):
        compile: ``torch.compile`` the model passes (compiled once per run; not compared on resume: the same
            examples up to floating-point rounding). channels_last: channels-last model inputs (not compared either).
        fold_batchnorm: fold eval-mode batch norm into the layer before it (not compared: rounding only).
        amp: ``"bf16"`` / ``"fp16"`` autocast of the model passes (CUDA; ``"bf16"`` also CPU), or None; it changes
            the numerics, so it is compared on resume (stores made before it existed ran without: None).
    """

    dataset: str = "skimage"
    data_root: str | None = None
    image_size: int | None = None
    index_file: str | None = None
    labels_csv: str | None = None
    download: bool = False
    model: str = "efficientnet_lite0"
    weights: str | None = None
    normalization: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    attack: str = "gse"
    preset: str | None = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)
    targeted: bool = False
    offsets: tuple[int, ...] | None = None
    num_images: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    shard: tuple[int, int] | str = "auto"
    compile: bool = False
    amp: str | None = None
    channels_last: bool = False
    fold_batchnorm: bool = False

    def __post_init__(self) -> None:
        self._check_data()
        self._check_model()
        self._check_attack()
        self._check_run()

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen instance during construction only

    def _check_data(self) -> None:
        from ..data import list_datasets

        if not isinstance(self.dataset, str) or self.dataset not in list_datasets():
            raise ValueError(f"RunConfig.dataset: unknown dataset {self.dataset!r}; available: {', '.join(list_datasets())}")
        for name in ("data_root", "index_file", "labels_csv"):
            _check_type(name, getattr(self, name), (str, Path), "a path (str) or None")
        self._set("data_root", _absolute(self.data_root))
        # Compared on resume as given (schema-1 stores recorded them so); only the data root may move.
        for name in ("index_file", "labels_csv"):
            if getattr(self, name) is not None:
                self._set(name, str(getattr(self, name)))
        if self.image_size is not None and (not _is_int(self.image_size) or self.image_size < 1):
            raise ValueError(f"RunConfig.image_size must be a positive int or None; got {self.image_size!r}")
        if not isinstance(self.download, bool):
            raise TypeError(f"RunConfig.download must be a bool; got {self.download!r}")

    def _check_model(self) -> None:
        from torch import nn

        if isinstance(self.model, nn.Module):
            if self.weights is not None or self.normalization is not None or self.model_options:
                raise ValueError("RunConfig.model is a model object: weights, normalization and model_options apply only "
                                 "to models built by name; load and wrap the object yourself (gse_explain.models.wrap_model)")
        elif not (isinstance(self.model, str) and self.model.startswith(OBJECT_PREFIX)):  # a stored object run: readable
            _check_model_name(self.model)
        _check_type("weights", self.weights, (str, Path), "a weights file path, 'DEFAULT', 'random' or None")
        if self.weights is not None and str(self.weights) not in _WEIGHT_WORDS:
            self._set("weights", _absolute(self.weights))
        if self.normalization not in (None, "unit", "imagenet"):
            raise ValueError(f"RunConfig.normalization must be 'unit', 'imagenet' or None; got {self.normalization!r}")
        self._set("model_options", _frozen_options("model_options", self.model_options))

    def _check_attack(self) -> None:
        from ..attacks import get_attack, list_attacks

        if not isinstance(self.attack, str):
            raise ValueError(f"RunConfig.attack: unknown attack {self.attack!r}; available: {', '.join(list_attacks())}")
        try:  # get_attack registers optional extras (adv_lib:NAME) on first use; ImportError if not installed
            spec = get_attack(self.attack)
        except ValueError as exc:
            raise ValueError(f"RunConfig.attack: {exc}") from None
        if self.preset == "none":
            self._set("preset", None)
        self._check_preset(spec)
        if not isinstance(self.targeted, bool):
            raise TypeError(f"RunConfig.targeted must be a bool; got {self.targeted!r}")
        self._set("options", _frozen_options("options", self.options))
        try:  # the attack's own config checks every option's name and value
            spec.make_config(self.resolved_preset, self.targeted, **self.options)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"RunConfig.options: {exc}") from None
        self._set("offsets", self._checked_offsets())

    def _check_preset(self, spec) -> None:
        """A preset name of the attack, ``"auto"``, None, or a preset JSON file (stored as an absolute path; its
        structure is checked here, its values by the attack's config in ``_check_attack``)."""
        from ..attacks.presets import is_preset_path, load_preset

        if is_preset_path(self.preset):
            self._set("preset", load_preset(self.preset).path)
            try:  # the file's values for this mode, alone (errors name the preset, not the options)
                spec.make_config(self.preset, self.targeted)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"RunConfig.preset: {exc}") from None
        elif self.preset is not None and self.preset != "auto" and self.preset not in spec.presets:
            raise ValueError(f"RunConfig.preset {self.preset!r} is not a preset of {self.attack}; "
                             f"choose one of {', '.join(spec.presets)}, 'auto', None or a preset JSON file (PATH.json)")

    def _checked_offsets(self) -> tuple[int, ...] | None:
        if self.offsets is None:
            return None
        if not self.targeted:
            raise ValueError("RunConfig.offsets only apply to targeted runs; set targeted=True or offsets=None")
        if isinstance(self.offsets, (str, bytes)) or not all(_is_int(o) for o in self.offsets):
            raise TypeError(f"RunConfig.offsets must be a sequence of ints; got {self.offsets!r}")
        offsets = tuple(int(o) for o in self.offsets)
        if not offsets:
            raise ValueError("RunConfig.offsets is empty; give at least one label offset or None for the paper's")
        duplicates = sorted({o for o in offsets if offsets.count(o) > 1})
        if duplicates:
            raise ValueError(f"RunConfig.offsets repeats {duplicates}: every (image, target) pair would be attacked and counted twice")
        if any(o <= 0 for o in offsets):
            raise ValueError(f"RunConfig.offsets must be positive (target = (label + offset) mod classes); got {list(offsets)}")
        return offsets

    def _check_run(self) -> None:
        if self.num_images is not None and (not _is_int(self.num_images) or self.num_images < 1):
            raise ValueError(f"RunConfig.num_images must be an int ≥ 1 or None (all); got {self.num_images!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"RunConfig.batch_size must be an int ≥ 1; got {self.batch_size!r}")
        if not _is_int(self.seed):
            raise TypeError(f"RunConfig.seed must be an int; got {self.seed!r} ({type(self.seed).__name__})")
        if not isinstance(self.device, str) or not self.device:
            raise TypeError(f"RunConfig.device must be a device string ('auto', 'cpu', 'cuda:0', ...); got {self.device!r}")
        self._set("shard", "auto" if self.shard == "auto" else parse_shard(self.shard))
        self._check_execution()

    def _check_execution(self) -> None:
        try:
            self.execution
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"RunConfig.{exc}") from None

    @property
    def execution(self):
        """The :class:`~gse_explain.attacks.execution.ExecutionOptions` of the run's model passes."""
        from ..attacks.execution import ExecutionOptions

        return ExecutionOptions(compile=self.compile, amp=self.amp, channels_last=self.channels_last,
                                fold_batchnorm=self.fold_batchnorm)

    # -- derived values ----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "targeted" if self.targeted else "untargeted"

    @property
    def resolved_preset(self) -> str | None:
        """The preset the attack runs with: ``"auto"`` becomes the paper's setting for the dataset."""
        if self.preset != "auto":
            return self.preset
        from ..attacks import get_attack

        wanted = "cifar10" if self.dataset in CIFAR_DATASETS else "imagenet"
        return wanted if wanted in get_attack(self.attack).presets else None

    @property
    def bounds(self) -> tuple[float, float]:
        """The box of the stored images: every dataset yields [0, 1] images."""
        return (0.0, 1.0)

    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- JSON form ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The manifest form: every field (preset resolved) plus ``mode``, ``bounds`` and ``schema`` (and
        ``attack_variant``, the resolved ``variant`` option of a baseline that has one)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(model=model_label(self.model), preset=self.resolved_preset, options=dict(self.options), model_options=dict(self.model_options),
                   offsets=list(self.offsets) if self.offsets is not None else None,
                   shard=self.shard if self.shard == "auto" else list(self.shard),
                   mode=self.mode, bounds=list(self.bounds), schema=CONFIG_SCHEMA)
        out.update(self._preset_file_facts())
        from ..attacks.variants import run_variant

        if (variant := run_variant(self)) is not None:  # baselines with a ``variant`` option: the resolved one
            out["attack_variant"] = variant
        return out

    def _preset_file_facts(self) -> dict:
        """For a preset file: its SHA-256 and this mode's values (compared on resume, so a changed file is
        refused); nothing for a preset name, so those manifests stay as they were."""
        from ..attacks.presets import is_preset_path, load_preset

        if not is_preset_path(self.preset) or not Path(self.preset).is_file():  # missing: a stored run read back
            return {}
        loaded = load_preset(self.preset)
        return {"preset_sha256": loaded.sha256, "preset_values": loaded.values_for(self.targeted)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, check_attack: bool = True) -> "RunConfig":
        """A :class:`RunConfig` from :meth:`to_json`'s form or a schema-1 store configuration.

        Derived and recorded-only keys (``mode``, ``bounds``, ``schema``, ``weights_sha256``) are dropped;
        unknown keys raise ValueError naming them. ``check_attack=False`` skips the attack's name and option
        checks (the rest is still checked), so a stored run made with an attack that is not registered in
        this process (e.g. from a user's module) can still be read and its model rebuilt.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"a run configuration must be a mapping; got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        derived = {"mode", "bounds", "schema", "weights_sha256", "preset_sha256", "preset_values", "attack_variant",
                   *COMPARED_WHEN_RECORDED}
        unknown = sorted(set(data) - names - derived)
        if unknown:
            raise ValueError(f"unknown run configuration keys {unknown}; known: {sorted(names)}")
        values = {k: v for k, v in data.items() if k in names}
        for key in ("offsets", "shard"):
            if values.get(key) is not None and values[key] != "auto":
                values[key] = tuple(values[key])
        if check_attack:
            return cls(**values)
        config = cls.__new__(cls)
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            object.__setattr__(config, f.name, values.get(f.name, default))
        config._check_data()
        config._check_model()
        config._set("options", _frozen_options("options", config.options))
        config._set("offsets", config._checked_offsets())
        config._check_run()
        return config


def _check_model_name(name) -> None:
    """ValueError naming the problem unless ``name`` is a model that can be built by name."""
    from .. import models

    if not isinstance(name, str):
        raise TypeError(f"RunConfig.model must be a model name (str) or an nn.Module; got {type(name).__name__}")
    checker = getattr(models, "check_model_name", None)
    if checker is not None:  # registry names, "timm:NAME" and "package.module:factory"
        try:
            checker(name)
        except (ValueError, ImportError) as exc:
            raise ValueError(f"RunConfig.model: {exc}") from None
    elif name not in models.list_models():
        raise ValueError(f"RunConfig.model: unknown model {name!r}; available: {', '.join(models.list_models())}")


def model_label(model) -> str:
    """How a run's model is named in its manifest: the registry name, or ``object:<module>.<class>`` for an object."""
    if isinstance(model, str):
        return model
    cls = type(model)
    return f"{OBJECT_PREFIX}{cls.__module__}.{cls.__qualname__}"


def _frozen_options(name: str, options) -> Mapping[str, Any]:
    """A read-only copy of an options mapping with string keys and JSON-representable values."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"RunConfig.{name} must be a mapping of option names to values; got {type(options).__name__}")
    for key, value in options.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"RunConfig.{name} keys must be option names (str); got {key!r}")
        if not _json_value(value):
            raise TypeError(f"RunConfig.{name}[{key!r}] must be a number, string, bool, None or a list of them "
                            f"(it is stored in the manifest); got {type(value).__name__}")
    return types.MappingProxyType(dict(options))


def _json_value(value) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_json_value(v) for v in value)
    return False
