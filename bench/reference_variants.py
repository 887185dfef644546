"""Both variants of every baseline ("corrected" = the project's, "reference" = the GSE authors' port, spec §B) side
by side on the first correctly classified CIFAR-10 test images (the authors' ResNet20, paper cifar10 presets,
untargeted), next to the paper's Table 1/2 rows (spec §D), through ``gse_explain.run`` stores.

    OMP_NUM_THREADS=1 flock /tmp/heavy.lock .venv/bin/python bench/reference_variants.py \\
        --data /work/shared/data/cifar10/cifar10_test_0-499.npz \\
        --weights /work/shared/data/models/resnet20_cifar10_gse.pt

Stores go to ``--runs`` (default ``runs/refvar_cifar10/ATTACK-VARIANT``) and are resumed when run again; the
fast attacks run ``--images`` images in batches of ``--batch-size``, of which ``--shards`` says which batches this
call attacks (``0/2``: the first batch only; run again with ``1/2`` to complete the other half). Homotopy and
SAPF (slow; Table 1) run one image per batch in a store of ``--images`` images: ``--slow-images K`` attacks the
first K (shards ``i/--images`` for i < K, one ``run`` call per image), so a later call with a larger K adds images
one by one and a timeout loses at most the image under way. A store made for fewer images with the same batch size
(e.g. an earlier ``num_images=1`` slow store) is widened in place (:func:`widen_store`): its batches keep their
meaning because the selection is the first correctly classified images in dataset order and each batch is seeded
by its index. ``--variants`` picks the variants to run. The Markdown table (with the command, date and CPU time) is
written to ``--output`` (default ``bench/results/reference_variants_cifar10.md``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

import gse_explain
from gse_explain.evaluation import RunConfig, attack_variant, load_results
from gse_explain.evaluation.tables import variant_label
from gse_explain.io import atomic_write_bytes
from gse_explain.plotting.style import attack_label

FAST = ["gse", "pgd0", "sparse_rs", "fwnucl", "strattack"]  # cheapest first
SLOW = ["homotopy", "sapf"]
#: Paper numbers (spec §D): Table 2 untargeted CIFAR-10 ResNet20, Table 1 untargeted for Homotopy and SAPF.
PAPER = {
    "gse": ("100%", "41.7", "1.66", "0.80", "177", "Tab. 2"),
    "strattack": ("100%", "118", "7.50", "1.02", "428", "Tab. 2"),
    "fwnucl": ("94.6%", "460", "1.99", "2.01", "594", "Tab. 2"),
    "homotopy": ("100%", "55.3", "2.78", "0.64", "256", "Tab. 1"),
    "sapf": ("100%", "87.3", "4.59", "0.41", "324", "Tab. 1"),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="cifar10_test_0-499.npz")
    parser.add_argument("--weights", required=True, help="resnet20_cifar10_gse.pt (the authors' ResNet20)")
    parser.add_argument("--runs", default="runs/refvar_cifar10", help="folder of the result stores")
    parser.add_argument("--output", default="bench/results/reference_variants_cifar10.md")
    parser.add_argument("--images", type=int, default=16, help="images of the fast attacks")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of the fast attacks")
    parser.add_argument("--shards", default="0/1", help="'i/n': attack only batches b with b %% n == i")
    parser.add_argument("--slow-images", type=int, default=4,
                        help="Homotopy and SAPF attack the first K of --images images, one image per batch")
    parser.add_argument("--attacks", nargs="*", default=FAST + SLOW, help="attacks to run (GSE runs once)")
    parser.add_argument("--variants", nargs="*", default=["corrected", "reference"], choices=["corrected", "reference"],
                        help="baseline variants to run (GSE has none and runs whenever it is listed)")
    parser.add_argument("--report-only", action="store_true", help="only write the table from the stores there")
    return parser.parse_args(argv)


def configs(args) -> list[tuple[str, str | None, RunConfig]]:
    """(attack, variant, RunConfig) of every ``run`` call, in order; the corrected runs leave ``variant`` at its
    default. A slow attack gives one config per image (batch size 1, shard ``i/--images``, i < ``--slow-images``)."""
    if not 0 <= args.slow_images <= args.images:
        raise SystemExit(f"--slow-images must be in 0..--images ({args.images}); got {args.slow_images}")
    common = dict(dataset="cifar10_npz", data_root=args.data, model="resnet20", weights=args.weights,
                  preset="auto", targeted=False, seed=0, device="cpu")
    out = []
    for attack in args.attacks:
        if attack in SLOW:
            sizes = [dict(num_images=args.images, batch_size=1, shard=f"{i}/{args.images}") for i in range(args.slow_images)]
        else:
            sizes = [dict(num_images=args.images, batch_size=args.batch_size, shard=args.shards)]
        for variant in ([None] if attack == "gse" else args.variants):
            options = {"variant": "reference"} if variant == "reference" else {}
            out += [(attack, variant, RunConfig(attack=attack, options=options, **common, **size)) for size in sizes]
    return out


def widen_store(path: Path, num_images: int, batch_size: int) -> int | None:
    """Let the store at ``path`` grow to ``num_images`` images if it was made for fewer with ``batch_size``.

    Valid when its image count is a multiple of ``batch_size``: its batches then hold the same examples (the
    selection is the first correctly classified images in dataset order) with the same per-batch seed as in the
    larger run. The manifest's ``num_images`` is raised (``widened_from`` records the old count) and
    ``selection.json`` is removed; the next ``run`` writes the new selection and checks every stored batch's
    examples and image hashes against it. Returns the old count, or None when nothing was changed.
    """
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    config = manifest["config"]
    old = config.get("num_images")
    if config.get("batch_size") != batch_size or not isinstance(old, int) or old >= num_images or old % batch_size:
        return None
    manifest["config"] = {**config, "num_images": num_images}
    manifest.setdefault("widened_from", []).append({"num_images": old, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(), overwrite=True)
    (path / "selection.json").unlink(missing_ok=True)
    return old


def store_path(args, attack: str, variant: str | None) -> Path:
    return Path(args.runs) / (attack if variant is None else f"{attack}-{variant}")


def _row(attack: str, results) -> list[str]:
    variant = attack_variant(results)
    summary = results.summary()
    images = results.records["example"].nunique()

    def fmt(value, spec):
        return "N/A" if value != value else format(value, spec)

    return [variant_label(attack_label(attack), variant), variant or "–", str(images), f"{100 * summary['asr']:.1f}%",
            fmt(summary["acp"], ".1f"), fmt(summary["anc"], ".2f"), fmt(summary["l2"], ".2f"), fmt(summary["d20"], ".0f"),
            fmt(summary["time"], ".3g")]


def table(args) -> str:
    """The Markdown table: per attack its corrected and reference rows, then the paper's row."""
    header = ["attack", "variant", "images", "ASR", "ACP", "ANC", "ℓ2", "d2,0", "time/img (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for attack in FAST + SLOW:
        for variant in ([None] if attack == "gse" else ["corrected", "reference"]):
            path = store_path(args, attack, variant)
            if (path / "manifest.json").exists():
                results = load_results(path)
                if not results.records.empty:
                    lines.append("| " + " | ".join(_row(attack, results)) + " |")
        if attack in PAPER:
            *cells, where = PAPER[attack]
            lines.append(f"| *paper: {attack_label(attack)} ({where})* | port | – | " + " | ".join(cells) + " | – |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    started, cpu0 = time.time(), time.process_time()
    if not args.report_only:
        for attack, variant, config in configs(args):
            path = store_path(args, attack, variant)
            widened = widen_store(path, config.num_images, config.batch_size)
            if widened is not None:
                print(f"widened {path} from {widened} to {config.num_images} images", file=sys.stderr, flush=True)
            print(f"== {attack} {variant or ''} shard {config.shard}", file=sys.stderr, flush=True)
            gse_explain.run(config, path, progress=False)
    cpu = time.process_time() - cpu0
    command = "OMP_NUM_THREADS=1 flock /tmp/heavy.lock .venv/bin/python bench/reference_variants.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Baselines: corrected vs reference (the GSE authors' ports), CIFAR-10, authors' ResNet20, untargeted",
        "",
        f"Date: {datetime.date.today().isoformat()}; gse_explain {gse_explain.__version__}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, CPU, 1 thread. Paper cifar10 presets; first correctly classified "
        "test images of `cifar10_test_0-499.npz`. ℓ2 on the [-1, 1] scale; metrics over successful examples; "
        "time = seconds per image amortised over the batch (this CPU, shared with other jobs).",
        "",
        f"Command (this call, {cpu / 60:.1f} min CPU, {(time.time() - started) / 60:.1f} min wall): `{command}`",
        "",
        table(args),
        "",
    ])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
