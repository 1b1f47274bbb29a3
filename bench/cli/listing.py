"""`python -m bench list`: what the registries hold."""

from __future__ import annotations

import argparse


def handle(args: argparse.Namespace) -> int:
    from bench.data.beir import BEIR_DATASETS
    from bench.data.suites import SUITES
    from bench.models.registry import MODELS

    what = args.what or "all"
    if what in ("models", "all"):
        print("models (or a sentence-transformers folder path, or a Hugging Face id):")
        for spec in MODELS.values():
            print(f"  {spec.name:<12} {spec.kind:<6} {spec.description}")
    if what in ("suites", "all"):
        print("suites:")
        for suite in SUITES.values():
            print(f"  {suite.name:<12} {suite.description}")
    if what in ("datasets", "all"):
        print("BEIR datasets (offline mirror: scifact, nfcorpus, arguana):")
        for dataset in BEIR_DATASETS.values():
            print(f"  {dataset.name:<18} splits: {', '.join(dataset.splits)}")
    if what in ("trainers", "all"):
        from bench.train.run import list_trainers

        print("trainers (python -m bench train --trainer NAME):")
        for line in list_trainers():
            print(f"  {line}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("list", help="what the registries hold")
    listing.add_argument("what", nargs="?", choices=["models", "suites", "datasets", "trainers", "all"])
    listing.set_defaults(func=handle)
