"""Both variants of every baseline ("corrected" = the project's, "reference" = the GSE authors' port, spec §B) side
by side on the first correctly classified CIFAR-10 test images (the authors' ResNet20, paper cifar10 presets,
untargeted), next to the paper's Table 1/2 rows (spec §D), through ``gse_explain.run`` stores.

    OMP_NUM_THREADS=1 flock /tmp/heavy.lock .venv/bin/python bench/reference_variants.py \\
        --data /work/shared/data/cifar10/cifar10_test_0-499.npz \\
        --weights /work/shared/data/models/resnet20_cifar10_gse.pt

Stores go to ``--runs`` (default ``runs/refvar_cifar10/ATTACK-VARIANT``) and are resumed when run again; the
fast attacks run ``--images`` images in batches of ``--batch-size``, of which ``--shards`` says which batches this
call attacks (``0/2``: the first batch only; run again with ``1/2`` to complete the other half); Homotopy and
SAPF (slow; Table 1) run ``--slow-images`` images in one batch. The Markdown table (with the command, date and CPU
time) is written to ``--output`` (default ``bench/results/reference_variants_cifar10.md``).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import torch

import gse_explain
from gse_explain.evaluation import RunConfig, attack_variant, load_results
from gse_explain.evaluation.tables import variant_label
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
    parser.add_argument("--slow-images", type=int, default=4, help="images of Homotopy and SAPF (one batch)")
    parser.add_argument("--attacks", nargs="*", default=FAST + SLOW, help="attacks to run (GSE runs once)")
    parser.add_argument("--report-only", action="store_true", help="only write the table from the stores there")
    return parser.parse_args(argv)


def configs(args) -> list[tuple[str, str | None, RunConfig]]:
    """(attack, variant, RunConfig) of every run; the corrected runs leave ``variant`` at its default."""
    common = dict(dataset="cifar10_npz", data_root=args.data, model="resnet20", weights=args.weights,
                  preset="auto", targeted=False, seed=0, device="cpu")
    out = []
    for attack in args.attacks:
        slow = attack in SLOW
        size = dict(num_images=args.slow_images, batch_size=args.slow_images) if slow else \
            dict(num_images=args.images, batch_size=args.batch_size, shard=args.shards)
        for variant in ([None] if attack == "gse" else ["corrected", "reference"]):
            options = {"variant": "reference"} if variant == "reference" else {}
            out.append((attack, variant, RunConfig(attack=attack, options=options, **common, **size)))
    return out


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
            print(f"== {attack} {variant or ''}", file=sys.stderr, flush=True)
            gse_explain.run(config, store_path(args, attack, variant), progress=False)
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
