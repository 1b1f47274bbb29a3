"""`python -m bench export`: an experiment's results in MTEB's results layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def handle(args: argparse.Namespace) -> int:
    from bench.export import export_mteb

    files = export_mteb(args.experiment, Path(args.out) if args.out else None)
    out = files[0].parents[3]
    print(f"wrote {len(files)} MTEB result files under {out}/results (mteb.ResultCache({str(out)!r}) reads them; "
          f"bench.export.tasks.mteb_task gives the tasks mteb has no registry entry for)")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write an experiment's results in MTEB's results layout")
    export.add_argument("experiment", help="results/<experiment>/")
    export.add_argument("--out", help="an mteb ResultCache folder: files go to <DIR>/results/<model>/<revision>/ "
                        "(default results/<experiment>/mteb)")
    export.set_defaults(func=handle)
