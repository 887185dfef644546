"""``python -m gse_explain.status STORE [STORE ...] [--verify]``: is each result store complete and intact?

Exit status 0 when every store is complete (and, with ``--verify``, every batch file's images match their
recorded hashes), 1 otherwise; one block of lines per store. The work is done by
:func:`gse_explain.evaluation.status.store_status`.
"""

from __future__ import annotations

import argparse
import sys

from .evaluation.status import store_status
from .evaluation.store import StoreError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gse_explain.status", description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", help="result store folders (e.g. the --output of the evaluation CLI)")
    parser.add_argument("--verify", action="store_true", help="also re-read every batch's images and check their hashes")
    args = parser.parse_args(argv)
    ok = True
    for path in args.stores:
        try:
            status = store_status(path, verify=args.verify)
        except StoreError as exc:
            print(f"{path}: error: {exc}")
            ok = False
            continue
        print(status.describe())
        ok &= status.complete
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
