"""`python -m bench train`: fine-tune a base encoder with a registered trainer."""

from __future__ import annotations

import argparse
import os
import sys


def handle(args: argparse.Namespace) -> int:
    from bench.preflight import check_train
    from bench.train.run import TrainOptions, train

    check_train(args)
    options = TrainOptions(
        trainer=args.trainer, base=args.base, train_data=args.train_data, seed=args.seed, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm, max_seq_length=args.max_seq_length or None,
        freeze_embeddings=args.freeze_embeddings, alpha=args.alpha, langs=tuple(args.langs) if args.langs else None,
        hard_negatives=not args.no_hard_negatives, tatoeba=None if args.tatoeba is None else tuple(args.tatoeba),
        eval_data=tuple(args.eval_data) if args.eval_data else None, allow_leak=args.allow_leak, scale=args.scale,
        w_mono=args.w_mono, w_cross=args.w_cross, w_lid=args.w_lid, w_translation=args.w_translation,
        reversal=args.reversal, head_lr=args.head_lr, precision=args.precision, dev_fraction=args.dev_fraction,
        log_every=args.log_every, device=args.device, threads=args.threads, out_dir=args.out_dir, run_id=args.run_id,
        force=args.force,
    )
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
    from bench.protocol import DEFAULT_ALPHA
    from bench.train.run import TrainOptions

    d = TrainOptions(trainer="", base="")
    train = commands.add_parser(
        "train", help="fine-tune a base encoder with a registered trainer into models/<run-id>/",
        description="Fine-tune a base encoder; writes <out-dir>/<run-id>/ (a sentence-transformers folder plus "
                    "manifest.json). Under DDP: torchrun --nproc-per-node N -m bench train ... (batch size per rank).")
    train.add_argument("--trainer", required=True, help="a registered trainer (python -m bench list trainers)")
    train.add_argument("--base", required=True, help="base model: me5-small, minilm-l6, or a model folder")
    train.add_argument("--train-data", default=d.train_data, help=f"mlqa-r or xquad-r (default {d.train_data})")
    train.add_argument("--seed", type=int, default=d.seed, help=f"default {d.seed}")
    train.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    train.add_argument("--batch-size", type=int, default=d.batch_size, help=f"pairs per batch and rank "
                       f"(default {d.batch_size})")
    train.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr})")
    train.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    train.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio, help="linear warmup share of the "
                       f"steps, then linear decay (default {d.warmup_ratio})")
    train.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="gradient clipping, 0 for "
                       f"none (default {d.max_grad_norm})")
    train.add_argument("--max-seq-length", type=int, default=d.max_seq_length, help="truncate texts to this many "
                       f"tokens, 0 for the model's own limit (default {d.max_seq_length})")
    train.add_argument("--freeze-embeddings", action="store_true", help="freeze the word-embedding matrix "
                       "(about half the step time for me5-small)")
    train.add_argument("--alpha", type=float, help=f"hybrid: probability of a mono batch (default {DEFAULT_ALPHA})")
    train.add_argument("--langs", nargs="+", help="training languages (default: all of the training set)")
    train.add_argument("--no-hard-negatives", action="store_true", help="train on pairs, without the hard "
                       "negative (default: triplets; pairs whose paragraph has one sentence are left out)")
    train.add_argument("--tatoeba", nargs="*", metavar="LANG", help="mtl: add Tatoeba bitext pairs to the "
                       "translation-ranking data (no LANG: the training languages)")
    train.add_argument("--eval-data", nargs="+", help="the sets the run will be scored on, for the leakage audit "
                       "(default: the other LAReQA set + scifact nfcorpus arguana)")
    train.add_argument("--allow-leak", action="store_true", help="allow evaluating on the training set")
    train.add_argument("--scale", type=float, default=d.scale, help=f"InfoNCE scale, 1/temperature (default "
                       f"{d.scale})")
    train.add_argument("--w-mono", type=float, default=d.w_mono, help=f"mtl: mono-batch loss weight ({d.w_mono})")
    train.add_argument("--w-cross", type=float, default=d.w_cross, help=f"mtl: cross-batch loss weight "
                       f"({d.w_cross})")
    train.add_argument("--w-lid", type=float, default=d.w_lid, help=f"mtl: language-ID head weight, 0 to drop it "
                       f"({d.w_lid})")
    train.add_argument("--w-translation", type=float, default=d.w_translation, help="mtl: translation-ranking "
                       f"weight, 0 to drop it ({d.w_translation})")
    train.add_argument("--reversal", type=float, default=d.reversal, help="mtl: gradient-reversal strength lambda "
                       f"({d.reversal})")
    train.add_argument("--head-lr", type=float, default=d.head_lr, help=f"mtl: learning rate of the heads "
                       f"({d.head_lr})")
    train.add_argument("--precision", default=d.precision, help="fp32, or bf16: autocast bf16 forward and "
                       "backward with fp32 master weights, optimiser state, similarities and losses; needs native "
                       "bf16 (CPU avx512_bf16/amx_bf16, or a bf16 GPU); recorded, run id -bf16 "
                       f"(default {d.precision})")
    train.add_argument("--dev-fraction", type=float, default=d.dev_fraction, help="hold out this share of the "
                       "training set's question ids (whole paragraphs) as a dev split, left out of training "
                       "(run id -dev<F>; for tuning, e.g. the mtl sweep)")
    train.add_argument("--log-every", type=int, default=d.log_every, help="loss-curve point every N steps "
                       f"(default {d.log_every})")
    train.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the local GPU if any, else cpu)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: OMP_NUM_THREADS, else the cores; "
                       "on a busy machine 1 can be several times faster)")
    train.add_argument("--out-dir", help="models root (default: $BENCH_MODELS, else <project>/models)")
    train.add_argument("--run-id", help="folder name (default {trainer}[-a{alpha}]-{base}-{data}-s{seed}-{steps}steps"
                       "[-dev{fraction}][-bf16])")
    train.add_argument("--force", action="store_true", help="overwrite an existing checkpoint folder")
    train.set_defaults(func=handle)
