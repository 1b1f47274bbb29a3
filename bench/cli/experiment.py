"""`python -m bench experiment`: run an experiment grid."""

from __future__ import annotations

import argparse
import sys

from bench.cli.common import add_output_argument, positive_int, shard_arg


def handle(args: argparse.Namespace) -> int:
    from bench.experiment import load_experiment, run_experiment
    from bench.export import export_mteb
    from bench.preflight import check_models_root

    experiment = load_experiment(args.name)
    check_models_root(args.models_dir, "--models-dir")
    run_experiment(experiment, models_dir=args.models_dir, dry_run=args.dry_run, cache=not args.no_cache,
                   batch_size=args.batch_size, log=lambda message: print(message, file=sys.stderr), stages=args.stages,
                   shard=args.shard, references=args.references, device=args.device,
                   precision=args.precision)
    if args.shard:
        print(f"experiment {experiment.name}: shard {args.shard[0]}/{args.shard[1]} done; when every shard is, "
              f"`python -m bench experiment {args.name} --dry-run` shows the grid and `python -m bench export "
              f"{experiment.name}` writes the MTEB-layout results")
    elif not args.dry_run:
        files = export_mteb(experiment.name)
        print(f"experiment {experiment.name}: complete; MTEB-layout results in {files[0].parents[2]}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    experiment = commands.add_parser("experiment", help="run an experiment grid (trains and evaluates what is "
                                     "missing, resumable)")
    experiment.add_argument("name", help="a shipped experiment (paper, smoke) or a YAML file")
    add_output_argument(experiment)
    experiment.add_argument("--dry-run", action="store_true", help="print the plan and what is done, run nothing")
    experiment.add_argument("--models-dir", help="checkpoints root (default: $BENCH_MODELS, else <project>/models)")
    experiment.add_argument("--batch-size", type=positive_int, default=32, help="encoding batch size (default 32)")
    experiment.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    experiment.add_argument("--shard", type=shard_arg, metavar="K/N", help="run every N-th cell of the grid from the "
                            "K-th (stage order), for N processes or machines sharing one grid; shard 1 also "
                            "scores the references")
    experiment.add_argument("--references", nargs="*", metavar="MODEL", help="score only these of the file's "
                            "references (none when given without names; default: all)")
    experiment.add_argument("--device", help="where training and dense encoding run: cpu, cuda, cuda:1 ... "
                            "(default: the GPU when there is one, else cpu)")
    experiment.add_argument("--stages", nargs="+", type=positive_int, metavar="N",
                            help="run only these stages (1-based, in the file's order); default all")
    experiment.add_argument("--precision", metavar="fp32|bf16", help="numerics of training and encoding for this "
                            "run (default: the file's `precision`); cells of another precision are other cells "
                            "(run ids -bf16 / +bf16)")
    experiment.set_defaults(func=handle)
