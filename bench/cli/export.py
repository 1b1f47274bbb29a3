"""`python -m bench export`: an experiment's results in MTEB's results layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def handle(args: argparse.Namespace) -> int:
    from bench.export import export_mteb

    files = export_mteb(args.experiment, Path(args.out) if args.out else None)
    print(f"wrote {len(files)} MTEB result files under {files[0].parents[2]}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write an experiment's results in MTEB's results layout")
    export.add_argument("experiment", help="results/<experiment>/")
    export.add_argument("--out", help="folder (default results/<experiment>/mteb)")
    export.set_defaults(func=handle)
