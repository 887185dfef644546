"""``python -m gse_explain.figures [STUDY]``: run a study's attacks (if their stores are not complete) and
draw the paper's figures and tables into ``figures/<study>/``.

Re-running with the same options finds the complete stores and only redraws (seconds); ``--rerun`` moves
the stores aside and recomputes them. See ``--help`` and the README for each study's options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..attacks import list_attacks
from ..attacks.execution import ExecutionOptions
from ..attacks.registry import LAZY_ATTACKS
from ..evaluate import USER_ERRORS, _parse_offsets, _parse_option, cli_message
from ..io import check_writable_folder
from .registry import list_figures
from .reproduce import reproduce
from .runner import StudyRunError
from .studies import STUDIES, StudyOptions, build_study, describe

__all__ = ["build_parser", "main", "study_options"]


def _attack_option(text: str) -> tuple[str, str, object]:
    attack, sep, _ = text.partition("=")[0].rpartition(":")  # the last ':' before '=': adv_lib:fmn:steps=9
    rest = text[len(attack) + 1:]
    if not sep or (attack not in list_attacks() and attack not in LAZY_ATTACKS):
        raise argparse.ArgumentTypeError(
            f"--option must look like ATTACK:NAME=VALUE with ATTACK one of {', '.join(list_attacks())} "
            f"(e.g. strattack:max_iter=100); got {text!r}")
    name, value = _parse_option(rest)
    return attack, name, value


def _attack_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in list_attacks() and n not in LAZY_ATTACKS]  # extras: registered on use
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--attacks takes names from {', '.join(list_attacks())}; got {text!r}")
    return names


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names; got {text!r}")
    return names


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 10,20,30; got {text!r}")
    return values


def _figure_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in list_figures()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--only takes names from {', '.join(list_figures())}; got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gse_explain.figures",
        description="Regenerate the GSE paper's figures (1-5) and tables (1-4) for a study. Attack runs are stored in "
        "--runs (resumable); complete stores are only redrawn.",
    )
    parser.add_argument("study", nargs="?", default="demo", choices=list(STUDIES),
                        help="demo (default; offline, EfficientNet-Lite0 on scikit-image photos), cifar10 (ResNet20, the paper's "
                        "CIFAR-10 setting), imagenet (validation folder), nips2017 (NIPS-2017 competition images); derived "
                        "from demo or cifar10 (--on): transfer (Tab. 8), ablation (k̂, Tab. 9) and the others registered")
    where = parser.add_argument_group("where")
    where.add_argument("--runs", help="folder of the study's result stores (default: runs/<study>)")
    where.add_argument("--out", help="folder for figures and tables (default: figures/<study>)")
    data = parser.add_argument_group("data and models (cifar10, imagenet, nips2017)")
    data.add_argument("--data-root", help="cifar10: torchvision CIFAR-10 folder or .npz file; imagenet: validation folder; nips2017: its folder")
    data.add_argument("--index-file", help="imagenet: the paper's random_10k_indices.txt (default: every validation image)")
    data.add_argument("--image-size", type=int, help="imagenet/nips2017: resize to this square size (default: the model's; the paper squashes to 256)")
    data.add_argument("--model", help="main model (cifar10: resnet20; imagenet/nips2017: resnet50, vit_b_16, vgg19 or efficientnet_lite0)")
    data.add_argument("--weights", help="main model's weights file (cifar10: the authors' resnet20_cifar10_gse.pt; torchvision models: "
                      "a file, or DEFAULT for torchvision's cache/download)")
    data.add_argument("--second-model", help="Figure 5's model (cifar10: resnet56; imagenet/nips2017: vgg19)")
    data.add_argument("--second-weights", help="Figure 5's weights (cifar10: needed for Figure 5, e.g. resnet56_cifar10_akamaster.th)")
    data.add_argument("--no-second", action="store_true", help="skip the second model (no Figure 5)")
    size = parser.add_argument_group("budget")
    size.add_argument("--num-images", type=int, help="untargeted images (default: demo 4, cifar10 50, imagenet/nips2017 100)")
    size.add_argument("--targeted-images", type=int, help="targeted images (default: demo 2, cifar10 10, imagenet/nips2017 20)")
    size.add_argument("--offsets", type=_parse_offsets, help="target label offsets (default: demo 857; otherwise the paper's)")
    size.add_argument("--table1-images", type=int, help="images for Table 1's sequential GSE/Homotopy/SAPF runs; 0 skips Table 1 "
                      "(default: demo 1, cifar10 2, others 0)")
    size.add_argument("--attacks", type=_attack_list, help="comma-separated attacks for Figures 2-5 and Tables 2-4 "
                      "(default: gse,strattack,fwnucl,pgd0,sparse_rs)")
    size.add_argument("--option", action="append", type=_attack_option, default=[], metavar="ATTACK:NAME=VALUE",
                      help="override one attack option, e.g. strattack:max_iter=100 (repeatable)")
    size.add_argument("--batch-size", type=int, help="images per attack call (default: demo 4, cifar10 16, imagenet 8)")
    derived = parser.add_argument_group("derived studies and paper extras")
    derived.add_argument("--on", choices=("demo", "cifar10"), help="explain/transfer/ablation: the base study whose data "
                         "(and stored runs) they use (default: demo)")
    derived.add_argument("--explanations", type=_name_list, help="explain: comma-separated explanation methods "
                         "(default: asm and the captum methods)")
    derived.add_argument("--percentile", type=float, help="explain: the IS percentile of the heatmap (default 80)")
    derived.add_argument("--k-hats", type=_int_list, help="ablation: comma-separated k̂ values (default 10,20,...,100)")
    derived.add_argument("--transfer-models", type=_name_list, metavar="MODEL[=WEIGHTS],...", help="transfer: the other "
                         "source/target models (default: demo efficientnet_lite1; cifar10 resnet20 and resnet56 with the "
                         "akamaster weights found beside --weights)")
    derived.add_argument("--baseline-variant", choices=("corrected", "reference"), help="reference: run every baseline "
                         "as the GSE authors' port (spec §B) to reproduce the paper's rows as published (default: corrected)")
    derived.add_argument("--table1-targeted-images", type=int, help="images for Table 1's targeted columns (default 0: none)")
    derived.add_argument("--examples", type=int, help="images shown in Figures 3 and 4 (default 1)")
    run = parser.add_argument_group("run")
    run.add_argument("--rerun", action="store_true", help="move the existing stores aside and recompute every run")
    run.add_argument("--only", type=_figure_list, help=f"draw only these outputs ({', '.join(list_figures())})")
    run.add_argument("--device", default="cpu", help="device for the saliency maps and CAMs of the figures (default: cpu)")
    run.add_argument("--compile", action="store_true", help="torch.compile the attacks' model passes (pays off on long "
                     "runs: a one-off compile of 1-3 min on CPU; stores made without it are reused)")
    run.add_argument("--fold-batchnorm", action="store_true", help="fold the models' eval-mode batch norm into their "
                     "convolutions (cheaper passes, same results up to rounding; stores made without it are reused)")
    run.add_argument("--dry-run", action="store_true", help="print the runs and budgets, run nothing")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one line")
    return parser


def _check(args) -> None:
    """Value checks argparse cannot express; ValueError naming the flag."""
    for flag in ("num_images", "targeted_images", "batch_size", "examples"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be ≥ 1; got {value}")
    for flag in ("table1_images", "table1_targeted_images"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be ≥ 0; got {value}")
    if args.k_hats is not None and (min(args.k_hats) < 0 or len(set(args.k_hats)) != len(args.k_hats)):
        raise ValueError(f"--k-hats must be distinct integers ≥ 0 (GSE's k_hat); got {','.join(map(str, args.k_hats))}")
    if args.percentile is not None and not 0 <= args.percentile < 100:
        raise ValueError(f"--percentile must be in [0, 100); got {args.percentile}")
    for flag in ("data_root", "weights", "second_weights", "index_file"):
        value = getattr(args, flag)
        if value not in (None, "DEFAULT", "random") and not Path(value).exists():
            raise ValueError(f"--{flag.replace('_', '-')} {value} does not exist; give the path of the "
                             f"{'dataset' if flag == 'data_root' else 'file'} (see --help)")


def study_options(args: argparse.Namespace) -> StudyOptions:
    """The :class:`StudyOptions` of parsed arguments."""
    attack_options: dict = {}
    for attack, name, value in args.option:
        attack_options.setdefault(attack, {})[name] = value
    return StudyOptions(
        attacks=args.attacks, attack_options=attack_options, num_images=args.num_images, targeted_images=args.targeted_images,
        offsets=args.offsets, table1_images=args.table1_images, model=args.model, weights=args.weights, second_model=args.second_model,
        second_weights=args.second_weights, no_second=args.no_second, data_root=args.data_root, index_file=args.index_file,
        image_size=args.image_size, batch_size=args.batch_size, on=args.on, explanations=args.explanations,
        percentile=args.percentile, baseline_variant=args.baseline_variant, table1_targeted_images=args.table1_targeted_images,
        examples=args.examples, k_hats=args.k_hats, transfer_models=args.transfer_models,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and call :func:`~gse_explain.figures.reproduce.reproduce`; 0 on success, 1 with a
    one-line ``error: ...`` on stderr for a user mistake (argparse's own errors exit with 2)."""
    args = build_parser().parse_args(argv)
    try:
        _check(args)
        study = build_study(args.study, study_options(args))
        runs_dir = args.runs or f"runs/{study.runs_name or study.name}"
        out_dir = args.out or f"figures/{study.name}"
        check_writable_folder(runs_dir, "the runs folder (--runs)")
        check_writable_folder(out_dir, "the figures folder (--out)")
        print(describe(study), file=sys.stderr)
        if args.dry_run:
            return 0
        reproduce(study, runs_dir, out_dir, rerun=args.rerun,
                  only=args.only, device=args.device, progress=not args.no_progress,
                  execution=ExecutionOptions(compile=args.compile, fold_batchnorm=args.fold_batchnorm),
                  command=["python", "-m", "gse_explain.figures", *(argv if argv is not None else sys.argv[1:])])
    except (StudyRunError, *USER_ERRORS) as exc:
        # e.g. a store made with other settings, or a weights file moved since the run
        if args.debug:
            raise
        print(f"error: {cli_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted: finished batches are stored; run the same command to resume", file=sys.stderr)
        return 130
    return 0
