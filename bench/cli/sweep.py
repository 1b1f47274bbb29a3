"""`python -m bench sweep`: tune mtl's auxiliary weights on a dev split."""

from __future__ import annotations

import argparse
import sys

from bench.cli.common import positive_int


def handle(args: argparse.Namespace) -> int:
    from bench.train.sweep import SweepOptions, best, run_sweep

    options = SweepOptions(trainer=args.trainer, base=args.base, train_data=args.train_data,
                           dev_fraction=args.dev_fraction, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                           precision=args.precision, freeze_embeddings=args.freeze_embeddings, threads=args.threads,
                           configs=tuple(args.configs) if args.configs else None, out=args.out,
                           models_dir=args.models_dir)
    table = run_sweep(options, log=lambda message: print(message, file=sys.stderr))
    top = best(table)
    print(f"{table}: best mean dev mAP {top['value']:.4f}: {top['config']} (w_lid {top['w_lid']}, reversal "
          f"{top['reversal']}, w_translation {top['w_translation']})")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.train.sweep import GRID, SweepOptions

    d = SweepOptions()
    sweep = commands.add_parser("sweep", help="tune mtl's auxiliary weights on a dev split held out from the "
                                "training questions",
                                description="Trains each configuration of bench/train/sweep.py's GRID with "
                                "--dev-fraction of the training questions held out, scores it on them (LAReQA mAP "
                                "mono, cross, multi) and appends to <out>/sweep.csv; configurations already there are "
                                "skipped. Never scores on an evaluation set.")
    sweep.add_argument("trainer", nargs="?", default=d.trainer, help=f"a trainer with heads (default {d.trainer})")
    sweep.add_argument("--base", default=d.base, help=f"default {d.base}")
    sweep.add_argument("--train-data", default=d.train_data, help=f"default {d.train_data}")
    sweep.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="share of the training question "
                       f"ids held out and scored (default {d.dev_fraction}; required)")
    sweep.add_argument("--steps", type=positive_int, default=d.steps, help=f"default {d.steps}")
    sweep.add_argument("--batch-size", type=positive_int, default=d.batch_size, help=f"default {d.batch_size}")
    sweep.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    sweep.add_argument("--precision", default=d.precision, help=f"training precision (default {d.precision}); "
                       "scoring is fp32")
    sweep.add_argument("--freeze-embeddings", action="store_true", help="freeze the word-embedding matrix (about "
                       "half the step time of me5-small on a CPU)")
    sweep.add_argument("--threads", type=positive_int, help="torch CPU threads")
    sweep.add_argument("--configs", nargs="+", metavar="NAME", help="only these of: "
                       + ", ".join(name for name, _ in GRID))
    sweep.add_argument("--out", default=d.out, help=f"table folder (default {d.out})")
    sweep.add_argument("--models-dir", help="checkpoints root while a configuration is scored (default: "
                       "$BENCH_MODELS, else <project>/models); each is deleted once scored")
    sweep.set_defaults(func=handle)
