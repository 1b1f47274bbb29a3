"""Running a grid: the references, then each cell in stage order (train what is missing, score what is
missing), resumable at every step. `run_cell` and `run_references` are the units: `run_experiment` loops over
them in this process, bench/experiment/executors.py submits each as a job of its own."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from bench.experiment.deadline import FILL_MIN, Deadline, fitting, work_left
from bench.experiment.plan import (check_references, checkpoint_dir, check_stages, describe_plan, eval_spec,
                                   is_trained, plan, shard_filter, shard_steps, stage_tasks, stored_key, suite_key,
                                   train_options)
from bench.experiment.schema import Experiment, Stage, suites_of, unique_cells
from bench.costs import Pace, duration
from bench.results import ResultStore


def run_experiment(experiment: Experiment, models_dir: str | None = None, dry_run: bool = False, log=print,
                   cache: bool = True, batch_size: int = 32, stages: list[int] | None = None,
                   shard: tuple[int, int] | None = None, references: list[str] | None = None,
                   device: str | None = None, precision: str | None = None,
                   until: Deadline | None = None, fill: bool = False) -> list[str]:
    """Train and evaluate what the grid still lacks, in stage order. Returns the cells (checkpoint names) left
    for a later run because they would not finish before `until` (with dry_run: those a run now would leave).
    stages: 1-based stage numbers to run (default all).
    shard (k, n): run only every n-th cell of the grid, starting at the k-th (1-based, counted in stage order
    over the whole grid, so that n processes or machines given 1/n .. n/n share it without overlap); the
    references are scored by shard 1 only.
    references: the references to score (default: all of the file's; [] for none).
    device: where training and dense encoding run (default: the GPU when there is one).
    precision: of training and encoding, instead of the file's (fp32 or bf16).
    until: start a cell (or the references) only when what it still needs at the measured pace fits before
    this deadline (bench/experiment/deadline.py); the stop at the deadline itself is the caller's.
    fill: with `until`, once no cell left fits, start the first of them anyway (and the next, should it end
    early): its training stops at the deadline with its state saved and the next run with the same models
    folder resumes it, so a cell longer than any one run still gets done, and no run ends idle."""
    if precision is not None:
        experiment = replace(experiment, precision=precision)
    tasks_cache: dict = {}
    steps = plan(experiment, models_dir, tasks_cache)
    mine = shard_filter(shard)
    pace = Pace.measure(ResultStore(experiment.name))  # read once: the plan's times and --until's fit
    log(describe_plan(experiment, shard_steps(steps, shard), shard, pace))
    chosen = check_stages(experiment, stages)
    wanted_refs = check_references(experiment, references)
    elsewhere = {s.model for s in steps if s.action == "train" and s.elsewhere}
    cells = [(index, stage, cell) for index, (stage, cell) in enumerate(unique_cells(experiment))
             if experiment.stages.index(stage) + 1 in chosen and mine(index)
             and checkpoint_dir(experiment, cell, models_dir).name not in elsewhere]
    if dry_run:
        if until is None:
            return []
        work = [(checkpoint_dir(experiment, cell, models_dir).name, work_left(steps, index, pace))
                for index, _, cell in cells]
        work = [(name, need) for name, need in work if need != 0]  # done: nothing to start
        started, later = fitting(work, until)
        log(f"{until.describe()}: would start {len(started)} cell(s)" + "".join(f"\n  {n}" for n in started)
            + (f"\nand leave {len(later)} for a later run" if later else "")
            + (f"\n--fill: the time left after them goes to {later[0]}" if fill and later else ""))
        return later
    prepare(experiment, device)
    unit = dict(log=log, cache=cache, batch_size=batch_size, device=device, tasks_cache=tasks_cache)
    if shard is None or shard[0] == 1:
        need = work_left(steps, None, pace) if until is not None else None
        if until is None or until.fits(need):
            run_references(experiment, wanted_refs, **unit)
        else:
            log(f"[later] references: need about {duration(need)}, {until.describe()}")
    later, shown = [], []

    def start(index: int, stage: Stage) -> None:
        if stage not in shown:
            shown.append(stage)
            log(f"== stage: {stage.name}" + (f" (shard {shard[0]}/{shard[1]})" if shard else ""))
        run_cell(experiment, index, models_dir, elsewhere=False, **unit)

    for index, stage, cell in cells:
        name = checkpoint_dir(experiment, cell, models_dir).name
        if until is not None and not until.fits(need := work_left(steps, index, pace)):
            later.append((index, stage, name))
            log(f"[later] {name}: needs about {duration(need)}, {until.describe()}")
            continue
        start(index, stage)
    while fill and until is not None and later and until.left() >= FILL_MIN:  # the estimate may be generous
        index, stage, name = later.pop(0)
        log(f"[fill] {name}: started with {until.describe()}; its training stops then with its state saved, and "
            "the next run with this models folder resumes it")
        start(index, stage)
    return [name for _, _, name in later]


def prepare(experiment: Experiment, device: str | None = None) -> None:
    """Before any work: bf16 where this machine would only emulate it is refused here, not after the references;
    the experiment file goes beside its results."""
    from bench.precision import PrecisionError, bf16_problem, check_precision

    device = device or ("cpu" if experiment.precision == "fp32" else _default_device())
    if experiment.precision == "bf16" and (problem := bf16_problem(device)):
        # The grid's cells are defined by their precision: say where they can run, and that fp32 makes new cells.
        raise PrecisionError(f"experiment {experiment.name} runs in bf16, but {problem}. Run it where bf16 is native "
                             "(a CPU with avx512_bf16 or amx_bf16 in lscpu, or a GPU with --device cuda); "
                             "--precision fp32 would train and score other cells, under their own run ids, never "
                             "pooled with these")
    check_precision(experiment.precision, device)
    _keep_definition(experiment, ResultStore(experiment.name).folder)


def run_references(experiment: Experiment, names: list[str] | None = None, *, log=print, cache: bool = True,
                   batch_size: int = 32, device: str | None = None, tasks_cache: dict | None = None) -> None:
    """Score the references (default: all of the file's) untrained on every evaluation set; what is done is
    skipped."""
    from bench.models.registry import resolve_model

    tasks_cache = {} if tasks_cache is None else tasks_cache
    for name in check_references(experiment, names):
        _evaluate(experiment, resolve_model(name), suites_of(experiment, None), None, log=log, cache=cache,
                  batch_size=batch_size, device=device, tasks_cache=tasks_cache)


def run_cell(experiment: Experiment, index: int, models_dir: str | None = None, *, log=print, cache: bool = True,
             batch_size: int = 32, device: str | None = None, tasks_cache: dict | None = None,
             elsewhere: bool | None = None) -> bool:
    """One grid cell, the `index`-th of unique_cells(): train its checkpoint when it is missing, then score what
    is missing. A cell scored in full on another machine (its training manifest beside complete results, no
    checkpoint here) is skipped; `elsewhere` says so when the caller already knows from the plan, None: look.
    Returns whether anything was run."""
    from bench.models.registry import resolve_model
    from bench.train.run import train

    tasks_cache = {} if tasks_cache is None else tasks_cache
    cells = unique_cells(experiment)
    if not 0 <= index < len(cells):
        from bench.experiment.schema import ExperimentError

        raise ExperimentError(f"experiment {experiment.name} has cells 0 to {len(cells) - 1}; no cell {index}")
    stage, cell = cells[index]
    if elsewhere is None:
        elsewhere = _scored_elsewhere(experiment, stage, cell, models_dir, tasks_cache)
    if elsewhere:
        log(f"{checkpoint_dir(experiment, cell, models_dir).name}: scored in full; checkpoint not on this machine")
        return False
    options = train_options(experiment, cell, models_dir)
    if device:
        options.device = device
    folder = train(options, log=log)
    spec = resolve_model(str(folder))
    suites = suites_of(experiment, cell)
    # The manifest goes beside the results first: a cell cut off while being scored still says what was
    # trained (and, with its checkpoint gone, that it must be trained again to finish).
    _keep_manifest(folder, ResultStore(experiment.name).folder, [eval_spec(experiment, spec, s).key for s in suites])
    _evaluate(experiment, spec, suites, stage, log=log, cache=cache, batch_size=batch_size, device=device,
              tasks_cache=tasks_cache)
    return True


def _evaluate(experiment: Experiment, spec, suites: list[str], stage: Stage | None, *, log, cache: bool,
              batch_size: int, device: str | None, tasks_cache: dict) -> None:
    from bench.eval.runner import run_models

    for suite in suites:
        run_models([eval_spec(experiment, spec, suite)], stage_tasks(experiment, stage, suite, tasks_cache),
                   experiment.name, batch_size=batch_size, log=log, cache=cache, device=device)


def _scored_elsewhere(experiment: Experiment, stage: Stage, cell, models_dir: str | None, tasks_cache: dict) -> bool:
    """As plan() says of one cell: no checkpoint here, but its manifest beside results complete on every set."""

    if is_trained(experiment, cell, models_dir):
        return False
    key = stored_key(experiment, cell, models_dir)
    if not key:
        return False
    store = ResultStore(experiment.name)
    return all(store.done(suite_key(experiment, key, suite), task)
               for suite in suites_of(experiment, cell) for task in stage_tasks(experiment, stage, suite, tasks_cache))


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
