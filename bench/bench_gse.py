"""Benchmark GSE on the paper's CIFAR-10 setting and write a markdown report.

Setting: the authors' ResNet20 on its native [-1, 1] inputs (bounds (-1, 1), paper presets), the first N
correctly classified images of ../shared/data/cifar10. For untargeted and targeted GSE it reports seconds
per image (amortised over the batch), the model passes used, and the ratio of the attack's time to the time
of replaying exactly those model passes (same batch sizes, forward or forward+backward) without the attack:
the attack's own overhead. Target: ratio ≤ 1.2.

Execution options (see gse_explain.attacks.execution): --compile (torch.compile; its one-off cost is reported
apart and excluded from s/image), --amp bf16|fp16 (autocast; fp16 needs CUDA), --channels-last, --fold-batchnorm (eval-mode batch norm folded
into the convolutions; its one-off cost is reported with compile's). The replay
runs the model passes with the same options. --device cuda writes bench/results/gse_cifar10_cuda.md.

Usage:  python bench/bench_gse.py [--images 32] [--targeted-images 8] [--compile] [--fold-batchnorm] [--amp bf16] [--channels-last]
                                  [--device cpu|cuda] [--out bench/results/gse_cifar10_cpu.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

from gse_explain import distances
from gse_explain.attacks import gse
from gse_explain.attacks.base import ModelCaller
from gse_explain.attacks.execution import ExecutionOptions, run_with
from gse_explain.attacks.losses import cw_margin_loss
from gse_explain.data import load_dataset
from gse_explain.evaluation.protocol import load_images, select_correct
from gse_explain.models import create_model

ROOT = Path(__file__).resolve().parents[1]


def replay_seconds(network, images, labels, calls, options: ExecutionOptions) -> float:
    """Time of the model passes alone: same batch sizes and kinds as the attack's calls, run as the attack ran
    them (``options``: compiled graphs already cached by the attack)."""
    caller = ModelCaller(network, (-1.0, 1.0), int(labels.max()), execution=options)
    _sync(images)
    start = time.perf_counter()
    for batch, with_grad in calls:
        x = images[:batch]
        if with_grad:
            caller.logits_and_grad(x, lambda logits: cw_margin_loss(logits, labels[:batch], False))
        else:
            caller.logits(x)
    _sync(images)
    return time.perf_counter() - start


def _sync(tensor: torch.Tensor) -> None:
    if tensor.is_cuda:
        torch.cuda.synchronize(tensor.device)


class _TimedCalls:
    """Accumulates the wall time spent inside ModelCaller's model calls while active."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._originals = (ModelCaller.logits, ModelCaller.logits_and_grad)
        for name, original in zip(("logits", "logits_and_grad"), self._originals):
            setattr(ModelCaller, name, self._timed(original))
        return self

    def _timed(self, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return wrapper

    def __exit__(self, *exc):
        ModelCaller.logits, ModelCaller.logits_and_grad = self._originals


def measure(network, x, labels, targeted, options: ExecutionOptions, sequential=False) -> dict:
    with _TimedCalls() as inside, run_with(options):
        _sync(x)
        start = time.perf_counter()
        result = gse(network, x, labels, targeted=targeted, bounds=(-1.0, 1.0), preset="cifar10", sequential=sequential)
        _sync(x)
        # The one-off compile time (calls that compiled a graph) is reported apart.
        seconds = time.perf_counter() - start - result.compile_seconds
        inside.seconds -= result.compile_seconds
    for p in network.parameters():
        p.requires_grad_(False)
    # The faster of two replays: a conservative (larger) ratio when the machine is noisy.
    replay = min(replay_seconds(network, x, labels, result.model_calls, options) for _ in range(2))
    delta = result.adversarials - x
    ok = result.success
    return {
        "n": x.shape[0],
        "asr": ok.float().mean().item(),
        "acp": distances.acp(delta)[ok].float().mean().item(),
        "anc": distances.anc(delta)[ok].float().mean().item(),
        "l2": distances.l2(delta)[ok].mean().item(),
        "d20": distances.d20(delta)[ok].float().mean().item(),
        "seconds": seconds,
        "per_image": seconds / x.shape[0],
        "passes": result.model_passes / x.shape[0],
        "replay": replay,
        "ratio": seconds / replay,
        "outside": 1.0 - inside.seconds / seconds,
        "compile": result.compile_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("GSE_EXPLAIN_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--images", type=int, default=32, help="untargeted: first N correctly classified images")
    parser.add_argument("--targeted-images", type=int, default=8, help="targeted: first N images × 9 targets")
    parser.add_argument("--sequential-images", type=int, default=4, help="also time sequential mode on N images (0: skip)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model passes")
    parser.add_argument("--amp", choices=["bf16", "fp16"], help="autocast the model passes (fp16: CUDA only)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last model inputs")
    parser.add_argument("--fold-batchnorm", action="store_true", help="fold eval-mode batch norm into the convolutions")
    parser.add_argument("--out", help="results file (default: bench/results/gse_cifar10_<cpu|cuda>.md)")
    args = parser.parse_args()
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    args.out = args.out or str(ROOT / "bench" / "results" / f"gse_cifar10_{kind}.md")
    options = ExecutionOptions(compile=args.compile, amp=args.amp, channels_last=args.channels_last,
                               fold_batchnorm=args.fold_batchnorm)

    data = Path(args.data)
    wrapped = create_model("resnet20", weights=data / "models" / "resnet20_cifar10_gse.pt", device=args.device)
    network = wrapped.model  # raw [-1, 1] network, as in the paper's code
    dataset = load_dataset("cifar10_npz", root=data / "cifar10" / "cifar10_test_0-499.npz")
    selection = select_correct(wrapped, dataset, max(args.images, args.targeted_images))
    x = (load_images(dataset, selection.positions) * 2 - 1).to(args.device)
    y = torch.as_tensor(selection.labels).to(args.device)

    rows = measure_all(network, x, y, args, options)
    write_report(rows, args, options)


def measure_all(network, x, y, args, options: ExecutionOptions) -> dict[str, dict]:
    """The benchmark's rows: untargeted batched, targeted over 9 targets batched, untargeted sequential (each
    optional: 0 images skips it)."""
    rows = {}
    if args.images:
        rows["untargeted (batched)"] = measure(network, x[: args.images], y[: args.images], False, options)
        print(rows, file=sys.stderr)
    n_t = args.targeted_images
    if n_t:
        xt = x[:n_t].repeat(9, 1, 1, 1)
        yt = torch.cat([(y[:n_t] + offset) % 10 for offset in range(1, 10)])
        rows["targeted, 9 targets (batched)"] = measure(network, xt, yt, True, options)
        print(rows, file=sys.stderr)
    if args.sequential_images:
        n_s = args.sequential_images
        rows["untargeted (sequential)"] = measure(network, x[:n_s], y[:n_s], False, options, sequential=True)
    return rows


def write_report(rows: dict[str, dict], args, options: ExecutionOptions) -> None:
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [
        "# GSE benchmark: authors' ResNet20 on CIFAR-10 ([-1, 1] bounds, paper presets)",
        "",
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} with `python bench/bench_gse.py` on {device_name}; "
        f"torch {torch.__version__}. Images: the first correctly classified of the 500 shared CIFAR-10 test images. "
        "Targeted rows count (image, target) pairs. Batched rows run all images in one call. "
        f"Model passes: {_options_text(options)}.",
        "",
        "| setting | n | ASR | ACP | ANC | ℓ2 | d2,0 | s/image | passes/image | attack s | model-pass replay s | ratio | outside model calls | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['n']} | {100 * r['asr']:.1f}% | {r['acp']:.1f} | {r['anc']:.2f} | {r['l2']:.2f} | {r['d20']:.0f} | "
            f"{r['per_image']:.3f} | {r['passes']:.0f} | {r['seconds']:.1f} | {r['replay']:.1f} | {r['ratio']:.2f} | {100 * r['outside']:.1f}% | {r['compile']:.1f} |"
        )
    lines += [
        "",
        "*ratio* = attack wall time / time of replaying exactly the model calls the attack made (same batch sizes, "
        "forward or forward+backward, same loss) with no attack around them, the faster of two replays: the attack's own overhead (target ≤ 1.2). *outside model calls* = share of the attack's wall time spent outside its model calls (the attack's tensor work); the rest of a ratio above 1 is the model calls themselves running slower inside the attack than in the replay (cache effects of that work). "
        "*compile s* = wall time of the model calls that compiled a graph (`--compile`; the first setting pays "
        "for the graphs, later ones reuse them unless a new graph is needed), excluded from s/image and attack s. "
        "ℓ2 on the [-1, 1] scale. One run; these machines are noisy, so compare ratios within a run.",
        "",
        "Paper (Table 1/4, NVIDIA A40, whole test set): untargeted GSE 0.13 s/image batched, ACP 41.7, ANC 1.66; "
        "targeted 0.16 s/image, average-case ACP 86.3, ANC 1.76.",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print("\n".join(lines))


def _options_text(options: ExecutionOptions) -> str:
    return ", ".join(options.labels()) or "eager float32 (no execution options)"


if __name__ == "__main__":
    main()
