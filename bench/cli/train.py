"""`python -m bench train`: fine-tune a base encoder with a registered trainer."""

from __future__ import annotations

import argparse
import os
import sys


def handle(args: argparse.Namespace) -> int:
    from bench.preflight import check_train
    from bench.train.options import TrainOptions, options_from_args
    from bench.train.run import train

    check_train(args)
    options = options_from_args(TrainOptions, args)
    path = train(options, log=lambda message: print(message, file=sys.stderr))
    print(path)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the checkpoint is written and the process group destroyed by now, yet gloo's C++ threads
        # can still abort the interpreter's teardown ("terminate called without an active exception", exit -6,
        # seen once in CI): leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.train.options import TrainOptions, add_option_arguments

    train = commands.add_parser(
        "train", help="fine-tune a base encoder with a registered trainer into models/<run-id>/",
        description="Fine-tune a base encoder; writes <out-dir>/<run-id>/ (a sentence-transformers folder plus "
                    "manifest.json). Under DDP: torchrun --nproc-per-node N -m bench train ... (batch size per rank).")
    add_option_arguments(train, TrainOptions)  # every option, declared once in bench/train/options.py
    train.set_defaults(func=handle)
