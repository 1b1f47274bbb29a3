"""What a command line is checked for before any work starts: names that would escape their folder, flags
that do not apply, duplicate names, output folders that are not folders. A mistake found here costs
nothing; found after the first task, it costs that task and may leave half a grid behind."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.paths import PROJECT_ROOT, committed_results, experiment_root, reports_root
from bench.safety import check_name, inside, remove_stale_temps

# Options of `run` that only dense models read, and those only BM25 reads (None when not given).
DENSE_ONLY = ("max_seq_length", "backend", "search", "query_prompt", "doc_prompt")
BM25_ONLY = ("bm25_k1", "bm25_b")


def unique(values: Sequence[str] | None, flag: str, note=None) -> list[str] | None:
    """`values` without repeats (first occurrence kept), with a note naming what was dropped."""
    if values is None:
        return None
    kept = list(dict.fromkeys(values))
    if len(kept) < len(values):
        repeated = sorted({v for v in values if values.count(v) > 1})
        (note or _note)(f"note: {flag} names {', '.join(repeated)} more than once; each runs once")
    return kept


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def check_run(args: argparse.Namespace) -> None:
    """`run`: de-duplicates the name lists in place; ValueError for a bad experiment name, a flag the suite
    does not read, or dense-only options with BM25 alone."""
    from bench.data.suites import check_flags

    for flag in ("model", "datasets", "langs", "settings"):
        setattr(args, flag, unique(getattr(args, flag), f"--{flag}"))
    if args.experiment is not None:
        check_name(args.experiment, "experiment name")
    check_flags(args.suite, {flag for flag in ("datasets", "split", "langs", "settings", "corpus", "k")
                             if getattr(args, flag) is not None})
    given = [f"--{o.replace('_', '-')}" for o in DENSE_ONLY if getattr(args, o, None) is not None]
    if given and args.model and all(name == "bm25" for name in args.model):
        raise ValueError(f"{', '.join(given)} only apply to dense models; --model names BM25 alone")
    given = [f"--{o.replace('_', '-')}" for o in BM25_ONLY if getattr(args, o, None) is not None]
    if given and args.model and "bm25" not in args.model:
        raise ValueError(f"{', '.join(given)} only apply to BM25; --model does not name bm25")
    if given:
        from bench.models.registry import check_bm25_parameters

        check_bm25_parameters(getattr(args, "bm25_k1", None), getattr(args, "bm25_b", None))


def check_train(args: argparse.Namespace) -> None:
    """`train`: the run id is one folder name, the models root is a folder (or can become one), the evaluation
    sets exist; stale temp folders of killed checkpoint writes are removed."""
    from bench.data.beir import BEIR_DATASETS
    from bench.data.lareqa import LAREQA_LANGS

    if args.run_id is not None:
        check_name(args.run_id, "run id")
    check_models_root(args.out_dir, "--out-dir")
    if args.eval_data:
        args.eval_data = unique(args.eval_data, "--eval-data")
        known = [*LAREQA_LANGS, *BEIR_DATASETS]
        unknown = [name for name in args.eval_data if name not in known]
        if unknown:
            raise ValueError(f"unknown --eval-data {', '.join(unknown)}; known: {', '.join(known)}")


def check_models_root(folder: str | None, flag: str) -> Path:
    """The checkpoints root, refused when it is a file (found only after training, before); stale temp folders
    of checkpoint writes that were cut off are removed from it."""
    from bench.train.run import models_root

    root = models_root(folder)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{flag} {root} is a file; the models root must be a folder")
    for path in remove_stale_temps(root):
        _note(f"note: removed {path}, left by a checkpoint write that was cut off")
    return root


def report_folder(name: str, out: Path | None) -> Path:
    """Where `report NAME` writes: reports/<NAME>/ of the project whose results it reads, or --out, which must
    not be the project root, the results folder or one of their ancestors (a report overwrites README.md)."""
    check_name(name, "experiment name")
    reports = reports_root(experiment_root(name))
    if out is None:
        return inside(reports, reports / name, "report folder")
    folder = Path(out).resolve()
    for guarded in (PROJECT_ROOT, committed_results(), experiment_root(name), reports):
        guarded = guarded.resolve()
        if folder == guarded or folder in guarded.parents:
            raise ValueError(f"--out {out} would write the report over {guarded}; give a folder of its own")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    return folder


def check_report(name: str) -> None:
    """`report`: the experiment has valid results (a report of nothing fails deep inside its tables)."""
    from bench.results import DamagedResult, ResultStore, read_scores

    store = ResultStore.find(name)
    if not store.folder.is_dir():
        return  # the report names the experiments there are
    for path in store.folder.rglob("*.csv"):
        try:
            read_scores(path)
            return
        except DamagedResult:
            continue
    raise ValueError(f"no valid results in {store.folder}: nothing to report")
