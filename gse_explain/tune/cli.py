"""``python -m gse_explain.tune``: argument parsing over :func:`gse_explain.tune.tune`.

The data, model, attack and run flags are the evaluation CLI's (``python -m gse_explain.evaluate``; the base
run), plus the search's: ``--grid NAME=VALUES`` (repeatable), ``--objective``, ``--min-asr``, ``--eta``,
``--rungs`` / ``--min-rung``, ``--tie-tolerance`` and ``--save-preset``. ``--output`` is the search folder, ``--shard i/n`` shares the search
between n processes, ``--overwrite`` moves a different search aside. Exit status 1 when no trial meets the
constraint.
"""

from __future__ import annotations

import argparse
import sys

from ..evaluate import USER_ERRORS, build_parser as evaluate_parser, cli_message, config_from_args
from .objective import parse_grid_values
from .search import TuneError, tune

__all__ = ["build_parser", "main"]


def _parse_grid(text: str) -> tuple[str, list]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip() or not raw.strip():
        raise argparse.ArgumentTypeError(f"--grid must look like NAME=V1,V2,... or NAME=lin(START,STOP,NUM) / "
                                         f"NAME=log(START,STOP,NUM); got {text!r}")
    try:
        return name.strip(), parse_grid_values(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--grid {name}: {exc}") from None


def _parse_rungs(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rungs must be comma-separated image counts (e.g. 2,4,10); got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = evaluate_parser()
    parser.prog = "python -m gse_explain.tune"
    parser.description = ("Grid search for an attack's options (the GSE paper's App. D.1): minimise an objective (default "
                          "ACP + ANC) subject to ASR ≥ --min-asr on a tuning set (the first --num-images correctly classified "
                          "images), dropping trials early by successive halving. Every trial is a result store under "
                          "--output/trials; the ranked table goes to --output/ranking.md and .csv, the best preset to "
                          "--output/preset.json (use it with --preset PATH).")
    parser.set_defaults(num_images=10, batch_size=2)
    search = parser.add_argument_group("search")
    search.add_argument("--grid", action="append", type=_parse_grid, default=[], required=True, metavar="NAME=VALUES",
                        help="an option and its values: q=0.1,0.25,0.5, k_hat=lin(10,50,3) or mu=log(0.01,1,3) (repeatable; "
                        "every combination is a trial)")
    search.add_argument("--objective", default="acp+anc", help="what is minimised: [WEIGHT*]METRIC terms joined by + or - "
                        "over acp, anc, l2, d20, time (default: acp+anc, the paper's)")
    search.add_argument("--min-asr", type=float, default=100.0, help="constraint: ASR ≥ this percentage on the tuning set (default 100)")
    search.add_argument("--eta", type=float, default=3.0, help="each rung keeps 1/eta of its trials (default 3)")
    search.add_argument("--rungs", type=_parse_rungs, help="image counts of the rungs, e.g. 2,4,10 (multiples of --batch-size, "
                        "the last = the tuning set; default: from --eta)")
    search.add_argument("--min-rung", type=int, metavar="N", help="default rungs: the first rung has at least N images "
                        "(e.g. 4: 10 images in batches of 2 give rungs 4, 10); not with --rungs")
    search.add_argument("--tie-tolerance", type=float, default=1e-6, metavar="FRACTION",
                        help="a trial below a rung's cut whose objective is within this fraction of the last kept trial's "
                        "goes on too (default 1e-6: exact ties; e.g. 0.02 also keeps near-ties)")
    search.add_argument("--row", choices=["best", "average", "worst"], default="average",
                        help="targeted: the summary row ranked (default: average)")
    search.add_argument("--save-preset", metavar="PATH.json", help="also write the best preset here (e.g. presets/my_model.json)")
    search.add_argument("--wait-timeout", type=float, help="sharded search: seconds to wait for the other shards' results "
                        "of a rung (default: forever)")
    # The evaluation CLI's defaults, said for this command (num_images and batch_size differ).
    for action in parser._actions:
        if action.dest == "num_images":
            action.help = "tuning set: the first N correctly classified images (default: 10)"
        elif action.dest == "batch_size":
            action.help = "images per attack call; the rungs add whole batches (default: 2)"
        elif action.dest == "output":
            action.help = "search folder (default: runs/tune-<dataset>-<model>-<attack>-<mode>)"
        elif action.dest == "overwrite":
            action.help = "if --output holds a different search, move it aside and start anew"
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        output = args.output or f"runs/tune-{config.dataset}-{config.model}-{config.attack}-{config.mode}"
        result = tune(config, dict(args.grid), output, objective=args.objective, min_asr=args.min_asr / 100.0,
                      eta=args.eta, rungs=args.rungs, min_rung=args.min_rung, tie_tolerance=args.tie_tolerance,
                      row=args.row, average=args.average, save_preset=args.save_preset, overwrite=args.overwrite,
                      progress=not args.no_progress, log=sys.stderr, wait_timeout=args.wait_timeout)
    except (*USER_ERRORS, TuneError) as exc:
        if args.debug:
            raise
        raise SystemExit(f"error: {cli_message(exc)}") from None
    except KeyboardInterrupt:
        if args.debug:
            raise
        raise SystemExit("interrupted: the finished batches are stored; run the same command to resume") from None
    print(result.table)
    return 0 if result.best else 1
