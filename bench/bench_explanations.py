"""How long the explain study's agreement table takes to compute from stored runs, cold and from the cache.

    OMP_NUM_THREADS=1 python bench/bench_explanations.py --on cifar10 --data-root DATA.npz --weights resnet20.pt \
        [--runs runs/cifar10] [--fresh] [--out bench/results/explanations_cifar10.md]

It builds the ``explain`` study on the base study (its targeted main runs, read from ``--runs``; nothing is
attacked: every store must be complete), then computes :func:`gse_explain.figures.explain.agreement_tables` twice:
cold (``--fresh`` first removes the stores' ``explanations/`` cache folders, which only the analysis writes) and
again with every map read from the cache. It writes the per-method seconds and the table at P into ``--out``.
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from gse_explain.analysis.runs import run_model
from gse_explain.evaluation import load_results
from gse_explain.figures import StudyOptions, build_study
from gse_explain.io import atomic_write_bytes
from gse_explain.figures.explain import DEFAULT_EXPLANATIONS, DEFAULT_PERCENTILE, agreement_markdown, agreement_tables


def _timed(runs, model, methods, percentile):
    log = io.StringIO()
    start = time.perf_counter()
    per_example, curves = agreement_tables(runs, model, methods, percentile, log=log)
    seconds = time.perf_counter() - start
    per_method = {line.split(":")[0].strip(): line.rsplit(" in ", 1)[1] for line in log.getvalue().splitlines() if " in " in line}
    return seconds, per_method, per_example, curves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--on", default="cifar10")
    parser.add_argument("--data-root")
    parser.add_argument("--weights")
    parser.add_argument("--runs", help="the base study's runs folder (default runs/<base>)")
    parser.add_argument("--explanations", help="comma-separated methods (default: asm and the captum methods)")
    parser.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    parser.add_argument("--fresh", action="store_true", help="remove the stores' explanations/ caches first (a cold run)")
    parser.add_argument("--out", help="Markdown file (default bench/results/explanations_<base>.md)")
    args = parser.parse_args(argv)
    methods = tuple(args.explanations.split(",")) if args.explanations else DEFAULT_EXPLANATIONS
    study = build_study("explain", StudyOptions(on=args.on, data_root=args.data_root, weights=args.weights,
                                                explanations=list(methods), percentile=args.percentile))
    runs_dir = Path(args.runs or f"runs/{study.runs_name}")
    runs = {spec.attack: load_results(runs_dir / spec.key) for spec in study.runs}
    incomplete = [name for name, run in runs.items() if not run.complete]
    if incomplete:
        print(f"error: stores not complete yet: {incomplete}", file=sys.stderr)
        return 1
    if args.fresh:
        for run in runs.values():
            shutil.rmtree(Path(run.store.path) / "explanations", ignore_errors=True)
    model = run_model(next(iter(runs.values())), None, "cpu")
    rows = {name: int(len(run.records)) for name, run in runs.items()}
    cold, cold_methods, _, curves = _timed(runs, model, methods, args.percentile)
    warm, warm_methods, _, warm_curves = _timed(runs, model, methods, args.percentile)
    assert warm_curves.equals(curves), "cached maps must give the same table"
    lines = [f"# Explanation agreement table: compute time ({args.on})", "",
             f"`python bench/bench_explanations.py --on {args.on} ... {'--fresh' if args.fresh else ''}`: the `explain` "
             f"study's table ({len(methods)} methods × {len(runs)} attacks, IS at the paper's percentiles and P = "
             f"{args.percentile:g}) from the stored runs ({', '.join(f'{k}: {v} rows' for k, v in rows.items())}); model "
             f"{study.main_label}.", "",
             f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} thread(s) (OMP_NUM_THREADS=1; other jobs shared the 2 cores).", "",
             "| method | cold (s) | cached (s) |", "|---|---|---|"]
    lines += [f"| {m} | {cold_methods.get(m, '?').rstrip(' s')} | {warm_methods.get(m, '?').rstrip(' s')} |" for m in methods]
    lines += [f"| **total** | **{cold:.1f}** | **{warm:.1f}** |", "", "The table (cached run, identical to the cold one):", "",
              agreement_markdown(curves, args.percentile, study.main_label)]
    out = Path(args.out or f"bench/results/explanations_{args.on}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "\n".join(lines).encode(), overwrite=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
