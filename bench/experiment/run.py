"""Running a grid: the references, then each cell in stage order (train what is missing, score what is
missing), resumable at every step."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from bench.experiment.plan import (Step, check_references, checkpoint_dir, check_stages, describe_plan, eval_spec,
                                   plan, shard_filter, shard_steps, stage_tasks, train_options)
from bench.experiment.schema import Experiment, Stage, suites_of, unique_cells


def run_experiment(experiment: Experiment, models_dir: str | None = None, dry_run: bool = False, log=print,
                   cache: bool = True, batch_size: int = 32, stages: list[int] | None = None,
                   shard: tuple[int, int] | None = None, references: list[str] | None = None,
                   device: str | None = None, precision: str | None = None) -> list[Step]:
    """Train and evaluate what the grid still lacks, in stage order. Returns the plan as it stood at the start.
    stages: 1-based stage numbers to run (default all).
    shard (k, n): run only every n-th cell of the grid, starting at the k-th (1-based, counted in stage order
    over the whole grid, so that n processes or machines given 1/n .. n/n share it without overlap); the
    references are scored by shard 1 only.
    references: the references to score (default: all of the file's; [] for none).
    device: where training and dense encoding run (default: the GPU when there is one).
    precision: of training and encoding, instead of the file's (fp32 or bf16)."""
    from bench.eval.runner import run_models
    from bench.models.registry import resolve_model
    from bench.precision import check_precision
    from bench.results import ResultStore
    from bench.train.run import train

    if precision is not None:
        experiment = replace(experiment, precision=precision)
    tasks_cache: dict = {}
    steps = plan(experiment, models_dir, tasks_cache)
    mine = shard_filter(shard)
    log(describe_plan(experiment, shard_steps(steps, shard), shard))
    chosen = check_stages(experiment, stages)
    wanted_refs = check_references(experiment, references)
    if dry_run:
        return steps
    # Before any work: bf16 where this machine would only emulate it is refused here, not after the references.
    check_precision(experiment.precision, device or ("cpu" if experiment.precision == "fp32" else _default_device()))
    store = ResultStore(experiment.name)
    _keep_definition(experiment, store.folder)

    def evaluate(spec, suites: list[str], stage: Stage | None = None) -> None:
        for suite in suites:
            run_models([eval_spec(experiment, spec, suite)], stage_tasks(experiment, stage, suite, tasks_cache),
                       experiment.name, batch_size=batch_size, log=log, cache=cache, device=device)

    if shard is None or shard[0] == 1:
        for name in wanted_refs:
            evaluate(resolve_model(name), suites_of(experiment, None))
    elsewhere = {s.model for s in steps if s.action == "train" and s.elsewhere}
    current = None
    for index, (stage, cell) in enumerate(unique_cells(experiment)):
        if experiment.stages.index(stage) + 1 not in chosen or not mine(index) \
                or checkpoint_dir(experiment, cell, models_dir).name in elsewhere:
            continue
        if stage is not current:
            current = stage
            log(f"== stage: {stage.name}" + (f" (shard {shard[0]}/{shard[1]})" if shard else ""))
        options = train_options(experiment, cell, models_dir)
        if device:
            options.device = device
        folder = train(options, log=log)
        spec = resolve_model(str(folder))
        suites = suites_of(experiment, cell)
        # The manifest goes beside the results first: a cell cut off while being scored still says what was
        # trained (and, with its checkpoint gone, that it must be trained again to finish).
        _keep_manifest(folder, store.folder, [eval_spec(experiment, spec, s).key for s in suites])
        evaluate(spec, suites, stage)
    return steps


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _keep_definition(experiment: Experiment, folder: Path) -> None:
    """The experiment file beside its results, so a report knows the cuts the numbers were made under."""
    from bench.results import atomic_write

    if experiment.source is not None:
        atomic_write(folder / "experiment.yaml", lambda p: shutil.copyfile(experiment.source, p))


def _keep_manifest(checkpoint: Path, results: Path, run_ids: list[str]) -> None:
    """The training manifest (loss curve, batch kinds, leakage, speed) beside the checkpoint's results:
    weights are never committed, the manifest is."""
    from bench.results import atomic_write, safe_name

    text = (checkpoint / "manifest.json").read_text()
    for run_id in dict.fromkeys(run_ids):
        atomic_write(results / safe_name(run_id) / "training_manifest.json", lambda p: p.write_text(text))
