"""The grid's plan: each cell's checkpoint and training options, the tasks and run ids it is scored under,
what is already done (here, or scored in full on another machine), and the shard a cell belongs to."""

from __future__ import annotations

import glob
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.experiment.schema import (Cell, Experiment, ExperimentError, Stage, suites_of,
                                     unique_cells)
from bench.runkey import RunKey
from bench.costs import Pace, duration



def train_options(experiment: Experiment, cell: Cell, models_dir: str | None = None):
    from bench.train.options import TrainOptions

    training = {**experiment.training, **({"steps": cell.steps} if cell.steps is not None else {})}
    return TrainOptions(trainer=cell.trainer, base=cell.base, train_data=cell.train_data, seed=cell.seed,
                        alpha=cell.alpha, out_dir=models_dir, precision=experiment.precision, **training)


def checkpoint_dir(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> Path:
    from bench.train.options import models_root, run_id_of

    return models_root(models_dir) / run_id_of(train_options(experiment, cell, models_dir), cell.alpha)


def is_trained(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> bool:
    """A finished checkpoint trained with exactly this cell's options."""
    from bench.train.options import existing_run, identity, same_run

    found = existing_run(checkpoint_dir(experiment, cell, models_dir))
    return bool(found) and same_run(found.get("options"), identity(train_options(experiment, cell, models_dir),
                                                                    cell.alpha))


def resumed_steps(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> int:
    """Training steps of this cell that a run cut off mid-way saved and the next run resumes from
    (bench/train/resume.py); 0 when no state of exactly this run is saved."""
    from bench.train.resume import state_folder

    folder = checkpoint_dir(experiment, cell, models_dir)
    if not state_folder(folder).is_dir():
        return 0
    from bench.train.checkpoint import code_fingerprint
    from bench.train.options import identity
    from bench.train.resume import ResumePoint

    wanted = identity(train_options(experiment, cell, models_dir), cell.alpha)
    return ResumePoint(folder, wanted, code_fingerprint()).progress()


def suite_tasks_for(experiment: Experiment, suite: str, cache: dict) -> list:
    """The tasks of one evaluation suite (`beir` or a LAReQA set), built once per run."""
    from bench.data.suites import SuiteOptions, suite_tasks

    if suite not in cache:
        if suite == "beir":
            block = experiment.beir or {}
            options = SuiteOptions(datasets=tuple(block["datasets"]) if block.get("datasets") else None)
        else:
            block = experiment.lareqa or {}
            options = SuiteOptions(settings=tuple(block["settings"]) if block.get("settings") else None,
                                   langs=tuple(block["langs"]) if block.get("langs") else None)
        cache[suite] = suite_tasks(suite, options)
    return cache[suite]


def stage_tasks(experiment: Experiment, stage: Stage | None, suite: str, cache: dict) -> list:
    """A suite's tasks as `stage`'s cells are scored on them (its beir_datasets; references: all)."""
    tasks = suite_tasks_for(experiment, suite, cache)
    if suite != "beir" or stage is None or stage.beir_datasets is None:
        return tasks
    return [t for t in tasks if t.dataset in stage.beir_datasets]


def eval_spec(experiment: Experiment, spec, suite: str):
    """The spec as scored on `suite`: the experiment's sequence-length cut and precision apply to dense models."""
    from bench.models.registry import with_max_seq_length, with_precision

    block = (experiment.beir if suite == "beir" else experiment.lareqa) or {}
    spec = with_max_seq_length(spec, int(block["max_seq_length"])) if block.get("max_seq_length") else spec
    return with_precision(spec, experiment.precision)


@dataclass
class Step:
    """One line of the plan: train a cell, or score a model on one suite."""

    stage: str
    action: str  # "train" | "evaluate"
    model: str
    suite: str = ""
    tasks_total: int = 0
    tasks_done: int = 0
    done: bool = False
    elsewhere: bool = False  # trained and scored in full on another machine: its checkpoint is not here
    cell: int | None = None  # position in unique_cells(), the unit a shard takes; None for a reference
    remaining: dict[str, int] = field(default_factory=dict)  # evaluate: dataset -> tasks left
    dense: bool = True  # evaluate: a dense model (BM25 is not), for the measured pace
    pairs: int = 0  # train: optimiser steps still to take x batch size
    resumes_at: int = 0  # train: the step a saved state of a cut-off run resumes from

    def estimate(self, pace: Pace) -> float | None:
        """Seconds this step still needs at the measured pace; None when nothing like it was measured yet."""
        if self.done:
            return 0.0
        if self.action == "train":
            return pace.training(self.pairs)
        return pace.scoring(self.dense, self.remaining)

    def describe(self, pace: Pace | None = None) -> str:
        seconds = self.estimate(pace) if pace is not None and not self.done else None
        about = f"about {duration(seconds)}" if seconds else ""
        if self.action == "train":
            where = " (scored in full; checkpoint not on this machine)" if self.elsewhere else ""
            line = f"[{'done' if self.done else 'todo'}] train     {self.model}{where}"
            notes = [f"resumes at step {self.resumes_at}"] if self.resumes_at and not self.done else []
            notes += [about] if about else []
            return line + (f" ({', '.join(notes)})" if notes else "")
        state = "done" if self.done else f"{self.tasks_done}/{self.tasks_total} done" + (f", {about}" if about else "")
        return f"[{'done' if self.done else 'todo'}] evaluate  {self.model} on {self.suite} ({state})"


def stored_key(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> str | None:
    """The results key (`<run name>@<weights fingerprint>`) under which this cell's checkpoint was scored, found
    through the training manifest kept beside its results: so a grid resumes on a machine that never held the
    checkpoint (trained on a lent GPU, say), as long as nothing of the cell is left to score."""
    from bench.results import ResultStore
    from bench.train.options import identity, same_run

    store = ResultStore(experiment.name)
    name = checkpoint_dir(experiment, cell, models_dir).name
    wanted = identity(train_options(experiment, cell, models_dir), cell.alpha)
    for path in sorted(store.folder.glob(f"{glob.escape(name)}@*/training_manifest.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if same_run(manifest.get("options"), wanted):
            return RunKey.parse(path.parent.name).model
    return None


def plan(experiment: Experiment, models_dir: str | None = None, tasks_cache: dict | None = None) -> list[Step]:
    """Every step of the grid in order, with what is already done."""
    from bench.models.registry import resolve_model
    from bench.results import ResultStore

    store = ResultStore(experiment.name)
    cache = {} if tasks_cache is None else tasks_cache
    steps: list[Step] = []

    def evaluation(stage: Stage | None, label: str, keys: dict[str, str] | None, suites: list[str],
                   dense: bool = True) -> list[Step]:
        added = []
        for suite in suites:
            tasks = stage_tasks(experiment, stage, suite, cache)
            todo = [t for t in tasks if keys is None or not store.done(keys[suite], t)]
            added.append(Step(stage.name if stage else "references", "evaluate", label, suite, len(tasks),
                              len(tasks) - len(todo), not todo, remaining=dict(Counter(t.dataset for t in todo)),
                              dense=dense))
        steps.extend(added)
        return added

    for name in experiment.references:
        spec = resolve_model(name)
        suites = suites_of(experiment, None)
        evaluation(None, name, {s: eval_spec(experiment, spec, s).key for s in suites}, suites,
                   dense=spec.kind == "dense")
    for index, (stage, cell) in enumerate(unique_cells(experiment)):
        folder = checkpoint_dir(experiment, cell, models_dir)
        suites = suites_of(experiment, cell)
        options = train_options(experiment, cell, models_dir)
        done = is_trained(experiment, cell, models_dir)
        resumes_at = 0 if done else resumed_steps(experiment, cell, models_dir)
        train = Step(stage.name, "train", folder.name, done=done, cell=index, resumes_at=resumes_at,
                     pairs=(options.steps - resumes_at) * options.batch_size)
        steps.append(train)
        if train.done:
            scored = evaluation(stage, folder.name, {s: eval_spec(experiment, resolve_model(str(folder)), s).key
                                                     for s in suites}, suites)
        else:
            key = stored_key(experiment, cell, models_dir)
            scored = evaluation(stage, folder.name, {s: suite_key(experiment, key, s) for s in suites}
                                if key else None, suites)
            # Scored in full elsewhere: nothing to train here. Partly scored: the checkpoint is needed again.
            train.done = bool(key) and all(step.done for step in scored)
            train.elsewhere = train.done
        for step in scored:
            step.cell = index
    return steps


def suite_key(experiment: Experiment, key: str, suite: str) -> str:
    """A dense model's results key on `suite` (as eval_spec's): the experiment's length cut and precision."""
    block = (experiment.beir if suite == "beir" else experiment.lareqa) or {}
    return RunKey(model=key, length=int(block["max_seq_length"]) if block.get("max_seq_length") else None,
                  precision=None if experiment.precision == "fp32" else experiment.precision).format()


def shard_filter(shard: tuple[int, int] | None):
    """index -> whether the cell at that grid position belongs to this shard."""
    if shard is None:
        return lambda index: True
    k, n = shard
    if not (n >= 1 and 1 <= k <= n):
        raise ExperimentError(f"shard {k}/{n}: expected K/N with 1 <= K <= N")
    return lambda index: index % n == k - 1


def shard_steps(steps: list[Step], shard: tuple[int, int] | None) -> list[Step]:
    """The steps a shard runs: its cells, and the references when it is shard 1 (as run_experiment does)."""
    if shard is None:
        return steps
    mine = shard_filter(shard)
    return [s for s in steps if (shard[0] == 1 if s.cell is None else mine(s.cell))]


def check_references(experiment: Experiment, references: list[str] | None) -> list[str]:
    if references is None:
        return list(experiment.references)
    unknown = [r for r in references if r not in experiment.references]
    if unknown:
        raise ExperimentError(f"experiment {experiment.name} has no reference {', '.join(unknown)}; its references: "
                              f"{', '.join(experiment.references) or 'none'}")
    return list(references)


def check_stages(experiment: Experiment, stages: list[int] | None) -> set[int]:
    numbers = set(range(1, len(experiment.stages) + 1))
    if stages is None:
        return numbers
    unknown = sorted(set(stages) - numbers)
    if unknown:
        raise ExperimentError(f"experiment {experiment.name} has stages 1 to {len(numbers)}; no stage "
                              f"{', '.join(map(str, unknown))}")
    return set(stages)


def describe_plan(experiment: Experiment, steps: list[Step], shard: tuple[int, int] | None = None,
                  pace: Pace | None = None) -> str:
    """steps: the whole plan, or a shard's part of it (shard_steps), which the header then names. With the time
    left at the pace measured so far on this experiment's results, where there is one."""
    from bench.results import ResultStore

    pace = pace or Pace.measure(ResultStore(experiment.name))
    todo_train = sum(s.action == "train" and not s.done for s in steps)
    todo_eval = sum(s.tasks_total - s.tasks_done for s in steps if s.action == "evaluate")
    part = f", shard {shard[0]}/{shard[1]}" if shard else ""
    lines = [f"experiment {experiment.name} ({experiment.source or 'inline'}{part}): "
             f"{sum(s.action == 'train' for s in steps)} checkpoints, {todo_train} to train, "
             f"{todo_eval} (model, task) evaluations to run; precision {experiment.precision}"]
    lines += left_lines(steps, pace)
    stage, elapsed = None, 0.0
    for step in steps:
        if step.stage != stage:
            stage = step.stage
            seconds, left = stage_left(stage, steps, pace)
            elapsed += seconds
            # stages run in the file's order, so a stage is finished when those before it are
            finished = f", finished about {duration(elapsed)} from now" if seconds else ""
            lines.append(f"  {stage}:" + (f" {left}{finished}" if left else ""))
        lines.append(f"    {step.describe(pace)}")
    return "\n".join(lines)


def stage_left(stage: str, steps: list[Step], pace: Pace) -> tuple[float, str]:
    """(seconds the stage's steps still need at the measured pace, 'N of M checkpoints to train: about T');
    '' for references and a stage with nothing left."""
    mine = [s for s in steps if s.stage == stage]
    todo = [s for s in mine if not s.done]
    if not todo:
        return 0.0, ""
    seconds = sum(e for e in (s.estimate(pace) for s in todo) if e is not None)
    trained = [s for s in mine if s.action == "train"]
    text = (f"{sum(not s.done for s in trained)} of {len(trained)} checkpoints to train" if trained
            else f"{len(todo)} evaluations to run")
    return seconds, text + (f": about {duration(seconds)}" if seconds else "")


def left_lines(steps: list[Step], pace: Pace) -> list[str]:
    """The time left at the measured pace: training and scoring apart, and what has no pace yet."""
    todo = [s for s in steps if not s.done]
    if not todo:
        return []
    estimates = [(s, s.estimate(pace)) for s in todo]
    train = sum(e for s, e in estimates if s.action == "train" and e is not None)
    score = sum(e for s, e in estimates if s.action == "evaluate" and e is not None)
    unknown = [s for s, e in estimates if e is None]
    if not train and not score:
        return ["  time left: no pace measured yet (no finished training or scoring in these results)"]
    pace_of = (f"{pace.checkpoints} trained checkpoint{'s' * (pace.checkpoints != 1)} and {pace.runs} scored "
               f"run{'s' * (pace.runs != 1)} so far, medians")
    line = f"  time left: about {duration(train + score)} (training {duration(train)}, scoring {duration(score)})"
    line += f" at the pace of the {pace_of}, on the machine that ran them"
    if unknown:
        line += f"; {len(unknown)} step{'s' * (len(unknown) != 1)} with no measured pace not counted"
    return [line]
