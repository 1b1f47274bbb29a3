"""The mtl sweep: train a few configurations of the auxiliary weights and the reversal strength with a dev split
held out from the training questions (devsplit.py), score each on that split, write a tidy table.

Never scored on an evaluation set: without a dev split the sweep refuses to run. Resumable: a configuration
whose rows are already in the table (same training options) is not trained again."""

from __future__ import annotations

import json
import numbers
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.cli.common import positive_int
from bench.train.options import TrainOptions, option

# (name, loss weights and reversal strength); w_mono = w_cross = 1 throughout: the retrieval tasks themselves.
# The first is the weights in force before the sweep; the rest vary one auxiliary at a time, then both.
GRID: tuple[tuple[str, dict], ...] = (
    ("before-sweep", {"w_lid": 1.0, "reversal": 0.1, "w_translation": 0.5}),
    ("no-aux", {"w_lid": 0.0, "reversal": 0.1, "w_translation": 0.0}),
    ("translation-only", {"w_lid": 0.0, "reversal": 0.1, "w_translation": 0.5}),
    ("lid-only", {"w_lid": 1.0, "reversal": 0.1, "w_translation": 0.0}),
    ("strong-reversal", {"w_lid": 1.0, "reversal": 1.0, "w_translation": 0.5}),
)
REFERENCE = "untrained-base"  # the base model scored on the same dev questions, beside the configurations
KEYS = ("config", "trainer", "w_mono", "w_cross", "w_lid", "w_translation", "reversal", "precision", "steps",
        "batch_size", "freeze_embeddings", "seed", "train_data", "langs", "dev_fraction")


@dataclass(frozen=True)
class SweepOptions:
    """Each field is also `bench sweep`'s flag of the same name (bench.train.options.option)."""

    trainer: str = option("mtl", positional=True, nargs="?", help="a trainer with heads (default {default})")
    base: str = option("me5-small", help="default {default}")
    train_data: str = option("mlqa-r", help="default {default}")
    langs: tuple[str, ...] | None = None  # None: every language of the training set
    dev_fraction: float | None = option(0.1, help="share of the training question ids held out and scored "
                                        "(default {default}; required)")
    steps: int = option(100, type=positive_int, help="default {default}")
    batch_size: int = option(32, type=positive_int, help="default {default}")
    seed: int = option(1, help="default {default}")
    precision: str = option("fp32", help="training precision (default {default}); scoring is fp32")
    freeze_embeddings: bool = option(False, help="freeze the word-embedding matrix (about half the step time of "
                                     "me5-small on a CPU: its 96M-weight vocabulary)")
    threads: int | None = option(None, type=positive_int, help="torch CPU threads")
    configs: tuple[str, ...] | None = option(None, nargs="+", metavar="NAME", help="only these of: "
                                             + ", ".join(name for name, _ in GRID))
    out: str = option("results/mtl-sweep", help="table folder (default {default})")
    models_dir: str | None = option(None, help="checkpoints root while a configuration is scored (default: "
                                    "$BENCH_MODELS, else <project>/models); each is deleted once scored")


def check(options: SweepOptions) -> list[tuple[str, dict]]:
    """The configurations to run; ValueError for a sweep that would score on anything but a dev split."""
    from bench.train.trainers import get_trainer

    if not options.dev_fraction:
        raise ValueError("an mtl sweep is scored on a dev split held out from the training set's questions, never "
                         "on an evaluation set: give --dev-fraction (e.g. 0.1)")
    if not get_trainer(options.trainer).uses_heads:
        raise ValueError(f"the sweep tunes the auxiliary heads' weights; {options.trainer} has none")
    names = [name for name, _ in GRID]
    unknown = sorted(set(options.configs or ()) - set(names))
    if unknown:
        raise ValueError(f"unknown sweep configuration(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return [(name, weights) for name, weights in GRID if not options.configs or name in options.configs]


def train_options(options: SweepOptions, name: str, weights: dict) -> TrainOptions:
    return TrainOptions(trainer=options.trainer, base=options.base, train_data=options.train_data,
                        langs=options.langs, seed=options.seed,
                        steps=options.steps, batch_size=options.batch_size, dev_fraction=options.dev_fraction,
                        precision=options.precision, freeze_embeddings=options.freeze_embeddings,
                        threads=options.threads, out_dir=options.models_dir,
                        run_id=f"sweep-{name}-{options.trainer}-s{options.seed}-{options.steps}steps", force=True,
                        **weights)


def _key(row: dict) -> tuple:
    """A configuration's options as read back from the CSV (where an int column with gaps turns float)."""
    def value(v) -> str:
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        return repr(float(v)) if isinstance(v, numbers.Number) else str(v)

    return tuple(value(row[k]) for k in KEYS)


def run_sweep(options: SweepOptions, log: Callable[[str], None] = print) -> Path:
    """Train and score every configuration not yet in <out>/sweep.csv; returns the table's path."""
    import pandas as pd

    from bench.data.lareqa import load_lareqa
    from bench.results import atomic_write
    from bench.train.devsplit import split_dev
    from bench.train.run import train

    configs = check(options)
    table = Path(options.out) / "sweep.csv"
    rows = pd.read_csv(table).to_dict("records") if table.is_file() else []
    done = {_key(r) for r in rows}
    _, split = split_dev(load_lareqa(options.train_data, langs=options.langs), options.dev_fraction)
    fingerprint = split.record()["ids_fingerprint"]
    langs = " ".join(options.langs) if options.langs else "all"

    def add(common: dict, scores: dict[str, float]) -> None:
        common = {**common, "dev_questions": len(split.ids), "dev_ids_fingerprint": fingerprint}
        rows.extend({**common, "setting": s, "metric": "map", "value": round(v, 6)} for s, v in scores.items())
        rows.append({**common, "setting": "mean", "metric": "map", "value": round(sum(scores.values()) / 3, 6)})
        frame = pd.DataFrame(rows)
        atomic_write(table, lambda p: frame.to_csv(p, index=False))

    # The untrained base on the same questions: what the configurations move away from.
    if not any(r["config"] == REFERENCE and r["dev_ids_fingerprint"] == fingerprint for r in rows):
        from bench.models.registry import resolve_model

        start = time.perf_counter()
        scores = _scored(Path(resolve_model(options.base).locate()), split, options.threads)
        log(f"{REFERENCE}: dev mAP " + ", ".join(f"{s} {v:.4f}" for s, v in scores.items()))
        add({"config": REFERENCE, "trainer": "none", "precision": "fp32", "steps": 0, "train_data": options.train_data,
             "langs": langs, "dev_fraction": options.dev_fraction,
             "wall_seconds": round(time.perf_counter() - start, 1)}, scores)
    for name, weights in configs:
        opts = train_options(options, name, weights)
        key_values = {"config": name, **{k: getattr(opts, k) for k in KEYS if k != "config"}, "langs": langs}
        if _key(key_values) in done:
            log(f"{name}: in {table} already")
            continue
        start = time.perf_counter()
        folder = train(opts, log=log)
        text = (folder / "manifest.json").read_text()
        manifest = json.loads(text)
        if manifest["dev_split"]["ids_fingerprint"] != fingerprint:
            raise RuntimeError(f"{folder} was trained with another dev split than the one scored")
        scores = _scored(folder, split, options.threads)
        # The manifest (loss curves, batches) is kept beside the table; the weights are not needed any more.
        atomic_write(table.parent / "manifests" / f"{name}.json", lambda p: p.write_text(text))
        shutil.rmtree(folder)
        log(f"{name}: dev mAP " + ", ".join(f"{s} {v:.4f}" for s, v in scores.items()))
        add({**key_values, "train_seconds": manifest["train_seconds"],
             "wall_seconds": round(time.perf_counter() - start, 1), "final_loss": manifest["loss_curve"][-1]["loss"]},
            scores)
    return table


def _scored(folder: Path, split, threads: int | None) -> dict[str, float]:
    """score_dev on the checkpoint in `folder`, on `threads` torch threads as its training was (on a busy CPU
    more threads than free cores is several times slower)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from bench.train.devsplit import score_dev

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return score_dev(SentenceTransformer(str(folder), device="cpu"), split)
    finally:
        torch.set_num_threads(before)


def best(table: Path) -> dict:
    """The trained configuration with the highest mean dev mAP over mono, cross and multi."""
    import pandas as pd

    frame = pd.read_csv(table)
    means = frame[(frame["setting"] == "mean") & (frame["config"] != REFERENCE)].sort_values("value", ascending=False)
    return means.iloc[0].to_dict()
