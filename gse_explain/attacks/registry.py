"""The attack registry: one :class:`AttackSpec` per attack, declared at the end of the attack's own module.

An attack module ends with::

    SPEC = register_attack(AttackSpec(
        name="pgd0", function=pgd0, config_class=PGD0Config, presets=PGD0_PRESETS,
        description="PGD0: ...", label="PGD0", color="#CC79A7",
        demo_budget=dict(n_restarts=1), test_options=dict(k=3, iterations=3, n_restarts=1), randomized=True,
    ))

and :mod:`gse_explain.attacks` imports the module. Attacks of optional extras (``adv_lib:fmn``, see
:mod:`gse_explain.attacks.external`) are listed in :data:`LAZY_ATTACKS` instead: :func:`get_attack`
imports and registers them the first time their name is used. Everything that iterates over attacks (the CLIs, the
contract tests, the plot colours and labels, the demo study's budgets) reads the spec, so adding an attack
is its module, one import line and its tests. ``with registered(spec): ...`` registers an attack for the
duration of a block (tests, notebooks).

This module must not import the attack modules (they import it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from .base import AttackResult, build_config
from .options import check_option_types

__all__ = [
    "ATTACKS", "AttackSpec", "LAZY_ATTACKS", "get_attack", "list_attacks", "lookup_key", "register_attack",
    "registered", "unregister_attack",
]

_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

#: Attacks of optional extras, registered on first use: name -> module (relative to this package) that
#: declares the unregistered ``SPEC`` and ``check_installed()`` (ImportError with the install command).
LAZY_ATTACKS: dict[str, str] = {
    "adv_lib:fmn": ".external.adv_lib_fmn",
    "adv_lib:sigma_zero": ".external.adv_lib_sigma_zero",
    "adv_lib:vfga": ".external.adv_lib_vfga",
}


def lookup_key(name: str) -> str:
    """The case-, '-', '_' and space-insensitive key under which names and labels are matched
    ("Sparse-RS", "sparse_rs" and "SPARSE RS" all give "sparse_rs")."""
    return str(name).lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True)
class AttackSpec:
    """Everything the project knows about one attack.

    Attributes:
        name: registry name (a Python identifier, e.g. ``"sparse_rs"``, or ``"namespace:identifier"`` for
            adapters of other libraries, e.g. ``"adv_lib:fmn"``), used by ``--attack`` and :func:`get_attack`.
        function: the attack, with the uniform signature of :mod:`gse_explain.attacks.base`.
        config_class: the attack's frozen config dataclass (its fields are the attack's ``**options``).
        presets: the module's ``*_PRESETS`` dict, preset name -> ``{False: untargeted values, True: targeted
            values}`` (the paper's settings); iterating over it gives the preset names.
        description: one line for humans.
        label: the display name as the paper writes it (``"Sparse-RS"``); figures and tables use it.
        color: ``"#RRGGBB"``, the attack's colour in every figure.
        demo_budget: options of the offline demo study (a cut-down budget; empty keeps the preset).
        test_options: fast options for the contract tests (well under a second per call on 2 images of
            32×32 on one CPU thread; pixel budgets ≤ 16 so 4×4 images fit).
        randomized: the attack draws from ``generator`` / ``seed`` (otherwise it is deterministic).
        sequential: the attack runs one image at a time or is very slow; benchmarks use fewer images.
        independent_rows: each row's result depends only on its own image and label (no batch-shared constant,
            no random draws), so one call on B images × T targets equals T calls of B rows bit for bit; the
            evaluation then attacks all target offsets of a batch in one call.

    The option mappings are stored as plain dicts; treat them as read-only (copy before changing).
    """

    name: str
    function: Callable[..., AttackResult]
    config_class: type
    presets: Mapping[str, Mapping[bool, dict]]
    description: str
    label: str
    color: str
    demo_budget: Mapping[str, object] = field(default_factory=dict)
    test_options: Mapping[str, object] = field(default_factory=dict)
    randomized: bool = False
    sequential: bool = False
    independent_rows: bool = False

    def __post_init__(self) -> None:
        _check_identity(self)
        _check_config_class(self)
        _check_presets(self)
        for field_name in ("demo_budget", "test_options"):
            # A copy, so that later changes to the dict passed in do not reach the registry.
            object.__setattr__(self, field_name, dict(_check_options(self, field_name, getattr(self, field_name))))

    def make_config(self, preset: str | None = None, targeted: bool = False, **options):
        """The attack's config (an instance of :attr:`config_class`) for a preset and option overrides,
        without running the attack. Unknown preset: ValueError; unknown option: TypeError; invalid values:
        the config's own error."""
        # The label names the attack in the error messages ("unknown Sparse-RS preset ...").
        return build_config(self.config_class, self.presets, self.label, preset, targeted, options)


def _check_identity(spec: AttackSpec) -> None:
    if not isinstance(spec.name, str) or not all(part.isidentifier() for part in spec.name.split(":", 1)):
        raise ValueError(f"AttackSpec.name must be a non-empty identifier such as 'my_attack' (or "
                         f"'namespace:identifier'); got {spec.name!r}")
    where = f"AttackSpec {spec.name!r}"
    if not callable(spec.function):
        raise TypeError(f"{where}: function must be callable; got {type(spec.function).__name__}")
    for field_name in ("description", "label"):
        value = getattr(spec, field_name)
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise ValueError(f"{where}: {field_name} must be a non-empty one-line string; got {value!r}")
    if not isinstance(spec.color, str) or not _COLOR.fullmatch(spec.color):
        raise ValueError(f"{where}: color must be a '#RRGGBB' hex string; got {spec.color!r}")
    for field_name in ("randomized", "sequential"):
        if not isinstance(getattr(spec, field_name), bool):
            raise TypeError(f"{where}: {field_name} must be a bool; got {getattr(spec, field_name)!r}")


def _check_config_class(spec: AttackSpec) -> None:
    cls = spec.config_class
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
        raise TypeError(f"AttackSpec {spec.name!r}: config_class must be a frozen dataclass; got {cls!r}")


def _check_presets(spec: AttackSpec) -> None:
    where = f"AttackSpec {spec.name!r}: presets"
    if not isinstance(spec.presets, Mapping):
        raise TypeError(f"{where} must map preset names to {{False: options, True: options}}; "
                        f"got {type(spec.presets).__name__}")
    for preset, modes in spec.presets.items():
        if not isinstance(preset, str) or not isinstance(modes, Mapping) or set(modes) != {False, True}:
            raise ValueError(f"{where}[{preset!r}] must be {{False: untargeted options, True: targeted options}}")
        for targeted in (False, True):
            _check_options(spec, f"presets[{preset!r}][{targeted}]", modes[targeted])


def _check_options(spec: AttackSpec, field_name: str, options) -> Mapping:
    """``options`` if it is a dict of config field names with values of the fields' types (TypeError naming
    ``field_name`` otherwise)."""
    if not isinstance(options, Mapping):
        raise TypeError(f"AttackSpec {spec.name!r}: {field_name} must be a dict of options; "
                        f"got {type(options).__name__}")
    known = {f.name for f in dataclasses.fields(spec.config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"AttackSpec {spec.name!r}: {field_name} has unknown option(s) {unknown}; "
                        f"valid options: {sorted(known)}")
    check_option_types(spec.config_class, options, f"AttackSpec {spec.name!r}:", f" in {field_name}")
    return options


#: Registered attacks by name (read-only for callers: use :func:`register_attack` / :func:`unregister_attack`).
ATTACKS: dict[str, AttackSpec] = {}


def _clashes(spec: AttackSpec) -> list[str]:
    """Names, labels and colours of other registered attacks that ``spec`` would make ambiguous: plot styles
    look attacks up by name *or* label, and figures tell attacks apart by colour."""
    problems = []
    for other in ATTACKS.values():
        if other.name == spec.name:
            continue  # the entry being replaced
        keys = {lookup_key(other.name), lookup_key(other.label)}
        if lookup_key(spec.name) in keys or lookup_key(spec.label) in keys:
            problems.append(f"its name/label {spec.name!r}/{spec.label!r} matches attack {other.name!r}")
        if other.color.lower() == spec.color.lower():
            problems.append(f"its color {spec.color} is the color of attack {other.name!r}")
    return problems


def register_attack(spec: AttackSpec, *, replace: bool = False) -> AttackSpec:
    """Make ``spec`` selectable by ``spec.name`` (CLI ``--attack``, :func:`get_attack`) and return it.

    ValueError if the name is taken (unless ``replace``), or if the spec's name, label or colour matches
    another attack's.
    """
    if not isinstance(spec, AttackSpec):
        raise TypeError(f"register_attack takes an AttackSpec (register_attack(AttackSpec(name=..., ...))); "
                        f"got {type(spec).__name__}")
    if spec.name in ATTACKS and not replace:
        raise ValueError(f"an attack named {spec.name!r} is already registered (pass replace=True to replace it)")
    problems = _clashes(spec)
    if problems:
        raise ValueError(f"cannot register attack {spec.name!r}: {'; '.join(problems)}")
    ATTACKS[spec.name] = spec
    return spec


def unregister_attack(name: str) -> AttackSpec:
    """Remove the attack registered as ``name`` and return its spec (ValueError for unknown names)."""
    spec = get_attack(name)
    del ATTACKS[name]
    return spec


def get_attack(name: str) -> AttackSpec:
    """The :class:`AttackSpec` registered as ``name``; a ValueError lists the known names otherwise.

    A name of :data:`LAZY_ATTACKS` (``"adv_lib:fmn"``) is registered here on first use: ImportError naming
    the install command when its optional library is missing.
    """
    try:
        return ATTACKS[name]
    except (KeyError, TypeError):
        pass
    if isinstance(name, str) and name in LAZY_ATTACKS:
        module = importlib.import_module(LAZY_ATTACKS[name], __package__)
        module.check_installed()
        return ATTACKS.get(name) or register_attack(module.SPEC)
    optional = [n for n in LAZY_ATTACKS if n not in ATTACKS]
    extra = f"; optional extras (registered on first use): {', '.join(optional)}" if optional else ""
    raise ValueError(f"unknown attack {name!r}; available: {', '.join(sorted(ATTACKS))}{extra}")


def list_attacks() -> list[str]:
    """Registered attack names, sorted."""
    return sorted(ATTACKS)


@contextlib.contextmanager
def registered(spec: AttackSpec, *, replace: bool = False) -> Iterator[AttackSpec]:
    """Register ``spec`` for the duration of a ``with`` block (tests, notebooks); afterwards the registry is
    as before (a spec replaced with ``replace=True`` is restored)."""
    previous = ATTACKS.get(spec.name)
    register_attack(spec, replace=replace)
    try:
        yield spec
    finally:
        if ATTACKS.get(spec.name) is spec:
            del ATTACKS[spec.name]
            if previous is not None:
                ATTACKS[spec.name] = previous
