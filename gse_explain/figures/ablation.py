"""The ``ablation`` study (the paper's Tab. 9): untargeted GSE at each k̂ (``k_hat``: the iteration at which
support growth stops), on the base study's model and images (``--on demo`` or ``cifar10``).

Runs (group ``ablation``, tagged ``khat<k>``): the base study's main untargeted GSE run with ``k_hat=k``.
The k̂ equal to the preset's (cifar10 30, ImageNet/demo 50) is the base study's own GSE run, reused from its
runs folder. Defaults: k̂ = 10, 20, …, 100 on cifar10; on the demo, 10, 30, 50, 70, 100 on 2 photographs
(a few minutes on 2 CPU cores); ``--k-hats`` and ``--num-images`` change them.

Outputs (figure ``ablation``): ``ablation_khat.md`` / ``.tex`` (Table 2's layout, one row per k̂),
``ablation_khat.csv`` and ``ablation_khat.png`` / ``.pdf`` (ACP, ANC, ℓ2 and d2,0 against k̂).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..analysis.runs import open_run
from ..attacks import get_attack
from ..evaluation.tables import latex_escape, untargeted_table
from .registry import FigureContext, register_figure
from .studies import STUDIES, Study, StudyOptions, register_study

__all__ = ["CIFAR10_K_HATS", "DEMO_K_HATS", "PAPER_TAB9", "ablation_plot", "ablation_study", "ablation_table", "draw_ablation"]

CIFAR10_K_HATS = tuple(range(10, 101, 10))
DEMO_K_HATS = (10, 30, 50, 70, 100)
DEMO_ABLATION_IMAGES = 2
#: What the spec (§D) records of the paper's Tab. 9 (ImageNet-scale, k̂ = 10 … 100).
PAPER_TAB9 = ("Paper Tab. 9 (ImageNet, k̂ = 10 … 100; spec §D): ANC falls from 16.3 to 4.36 and d2,0 from 3529 to 2656; "
              "ACP stays around 1260–1560 and ℓ2 around 1.4.")
METRICS = (("acp", "ACP"), ("anc", "ANC"), ("l2", "$\\ell_2$"), ("d20", "$d_{2,0}$"))  # mathtext: the serif font lacks ℓ



def _notes(base: Study) -> tuple[str, ...]:
    """The base study's notes that concern this study's runs (not its Figure 5)."""
    return tuple(note for note in base.notes if "Figure 5" not in note)


@register_study("ablation")
def ablation_study(options: StudyOptions) -> Study:
    on = options.on or "demo"
    if on not in ("demo", "cifar10"):
        raise ValueError(f"ablation --on must be demo or cifar10; got {on!r}")
    if options.attacks and list(options.attacks) != ["gse"]:
        raise ValueError(f"the ablation study runs GSE only; drop --attacks (got {','.join(options.attacks)})")
    if "k_hat" in options.attack_options.get("gse", {}):
        raise ValueError("the ablation study sets GSE's k_hat itself: give the values with --k-hats, not --option gse:k_hat")
    k_hats = tuple(options.k_hats) if options.k_hats else (DEMO_K_HATS if on == "demo" else CIFAR10_K_HATS)
    if any(not isinstance(k, int) or k < 0 for k in k_hats) or len(set(k_hats)) != len(k_hats):
        raise ValueError(f"k_hats must be distinct integers ≥ 0; got {list(k_hats)}")
    num_images = options.num_images or (DEMO_ABLATION_IMAGES if on == "demo" else None)
    base = STUDIES[on](replace(options, on=None, k_hats=None, attacks=["gse"], table1_images=0, num_images=num_images))
    template = base.group("main", targeted=False)[0]
    preset = get_attack("gse").presets.get(template.config.resolved_preset or "", {}).get(False, {})
    reuse = num_images == options.num_images  # the base study's own image count: its GSE store can be reused
    runs = [template if reuse and k == preset.get("k_hat") else
            template.with_config("ablation", f"khat{k}", options={**template.options, "k_hat": k}) for k in k_hats]
    return Study(
        "ablation",
        f"k̂ ablation (Tab. 9) on {on}: untargeted GSE at k̂ = {', '.join(map(str, k_hats))} on {template.num_images} "
        f"images" + (f"; the preset's k̂ ({preset.get('k_hat')}) is the base study's GSE run." if template in runs else "."),
        tuple(runs), base.main_label, figures=("ablation",), runs_name=base.runs_name or base.name,
        notes=(*_notes(base), PAPER_TAB9) if on == "cifar10" else (
            f"Demo default: {DEMO_ABLATION_IMAGES} photographs and k̂ = {', '.join(map(str, DEMO_K_HATS))} "
            "(--num-images, --k-hats for more).", PAPER_TAB9),
    )


def _k_hat(run) -> int:
    """The k̂ a GSE run used: its option, else its preset's."""
    options = run.config.get("options") or {}
    if "k_hat" in options:
        return int(options["k_hat"])
    preset = get_attack("gse").presets.get(run.config.get("preset") or "", {}).get(bool(run.config.get("targeted")), {})
    return int(preset.get("k_hat", get_attack("gse").config_class().k_hat))


def ablation_table(runs) -> pd.DataFrame:
    """One row per k̂ (ascending) from GSE runs: ``k_hat``, ``examples``, ``asr``, ``acp``, ``anc``, ``l2``,
    ``d20`` (means over successful examples, ℓ2 on the [-1, 1] scale) and ``time`` (s/image).

    Args:
        runs: RunResults (or store paths) of GSE runs that differ in k̂; two runs with one k̂ are an error.
    """
    rows = {}
    for run in runs:
        run = open_run(run)
        if run.config.get("attack") != "gse":
            raise ValueError(f"the k̂ ablation reads GSE runs; {run.store.path} holds {run.config.get('attack')!r}")
        k = _k_hat(run)
        if k in rows:
            raise ValueError(f"two runs have k_hat={k} (one is {run.store.path}); give one run per k̂")
        summary = run.summary()
        rows[k] = {"k_hat": k, "examples": len(run.records), **{m: summary[m] for m in ("asr", "acp", "anc", "l2", "d20", "time")}}
    if not rows:
        raise ValueError("ablation_table needs at least one GSE run")
    return pd.DataFrame([rows[k] for k in sorted(rows)])


def ablation_plot(table: pd.DataFrame, axes=None):
    """ACP, ANC, ℓ2 and d2,0 of :func:`ablation_table` against k̂, one panel each; returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(METRICS), figsize=(3.0 * len(METRICS), 2.6), constrained_layout=True)
    axes = list(axes)
    if len(axes) != len(METRICS):
        raise ValueError(f"ablation_plot needs {len(METRICS)} axes (ACP, ANC, ℓ2, d2,0); got {len(axes)}")
    for ax, (column, name) in zip(axes, METRICS):
        ax.plot(table["k_hat"], table[column], marker="o")
        ax.set_xlabel("$\\hat{k}$")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    return axes[0].figure, axes


@register_figure("ablation", "k̂ ablation of GSE: ACP, ANC, ℓ2, d2,0 against k̂ (Tab. 9)", order=80)
def draw_ablation(context: FigureContext) -> list[Path]:
    study = context.study
    specs = [s for s in study.runs if s.attack == "gse" and not s.targeted and s.group in ("main", "ablation")]
    if not any(s.group == "ablation" for s in specs):
        return context.skip("the study has no k̂ ablation runs (python -m gse_explain.figures ablation)")
    table = ablation_table([context.runs[s.key] for s in specs])
    rows = {f"k̂ = {k}": row for k, row in zip(table["k_hat"], table.to_dict("records"))}
    caption = (f"k̂ ablation of untargeted GSE ({study.main_label}; {int(table['examples'].iloc[0])} images): "
               "metrics over successful examples, ℓ2 on the [-1, 1] scale; times are each run's own (runs made "
               "at other times or under other load are not comparable).")
    markdown = f"**{caption}**\n\n{untargeted_table(rows, 'markdown').replace('| attack |', '| k̂ |', 1)}\n\n{PAPER_TAB9}\n"
    latex = ("\\begin{table}[t]\n\\centering\n\\caption{" + latex_escape(caption) + "}\n" + untargeted_table(rows, "latex").replace("attack &", "k̂ &", 1)
             + "\n\\end{table}\n").replace("k̂", "$\\hat{k}$").replace("ℓ2", "$\\ell_2$")
    files = [context.write_csv(table, "ablation_khat.csv"), context.write_text("ablation_khat.md", markdown),
             context.write_text("ablation_khat.tex", latex)]
    fig, _ = ablation_plot(table)
    fig.suptitle(f"GSE against $\\hat{{k}}$ (untargeted, {study.main_label})")
    return files + context.save(fig, "ablation_khat")
