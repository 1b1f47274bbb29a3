"""`python -m bench cache`: the embedding cache: size per model, or clear it."""

from __future__ import annotations

import argparse


def handle(args: argparse.Namespace) -> int:
    from bench.retrieval.dense.cache import clear, embeddings_root, inventory, matching

    entries = inventory()
    if args.model:
        chosen = matching(entries, args.model)
        if not chosen:
            known = ", ".join(sorted({e.label for e in entries})) or "none"
            raise ValueError(f"no cached embeddings for {args.model!r} in {embeddings_root()}; cached models: {known}")
    else:
        chosen = entries
    mb = 1024 * 1024
    if args.action == "clear":
        freed = clear(chosen)
        what = args.model or "all models"
        print(f"cleared {len(chosen)} cache folder(s) of {what} in {embeddings_root()}: {freed / mb:.1f} MB freed")
        return 0
    print(f"embedding cache: {embeddings_root()}")
    if not chosen:
        print("empty")
        return 0
    width = max(len(e.label) for e in chosen)
    folder_width = max(len(e.folder.name) for e in chosen)
    print(f"{'model':<{width}}  {'folder':<{folder_width}}  {'segments':>8}  {'vectors':>9}  {'MB':>9}")
    for e in chosen:
        print(f"{e.label:<{width}}  {e.folder.name:<{folder_width}}  {e.segments:>8}  {e.vectors:>9}  "
              f"{e.bytes / mb:>9.2f}")
    print(f"{'total':<{width}}  {'':<{folder_width}}  {sum(e.segments for e in chosen):>8}  "
          f"{sum(e.vectors for e in chosen):>9}  {sum(e.bytes for e in chosen) / mb:>9.2f}")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    cache = commands.add_parser("cache", help="the embedding cache: size per model, or clear it",
                                description="Dense embeddings are cached on disk per (model fingerprint, max "
                                "sequence length) under $BENCH_CACHE/embeddings (default ~/.cache/bench).")
    cache.add_argument("action", nargs="?", choices=["info", "clear"], default="info",
                       help="info: folders, segments, vectors, MB (default); clear: delete cached embeddings")
    cache.add_argument("--model", help="only this model: a registry name, run id, model folder or fingerprint")
    cache.set_defaults(func=handle)
