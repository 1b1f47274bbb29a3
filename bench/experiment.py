"""Experiments as data: a YAML file names base models, trainers, seeds, training data, suites and the step
budget; `run_experiment` trains what is missing, evaluates what is missing and skips what is done.

Resuming is free: a checkpoint is written to a temporary folder and renamed when complete, and every
(model, task) result is written atomically, so a killed run loses at most the training or task in flight.
Stages run in the file's order, so the most informative cells exist first when time runs out."""

from __future__ import annotations

import glob
import json
import re
import shutil
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from bench.paths import PROJECT_ROOT
from bench.safety import check_name
from bench.precision import DEFAULT_PRECISION, PRECISIONS
from bench.protocol import DEFAULT_ALPHA, DEFAULT_BEIR, HELD_OUT, SETTINGS
from bench.train.trainers import uses_alpha

EXPERIMENTS_DIR = PROJECT_ROOT / "bench" / "experiments"
# Training data -> the held-out LAReQA set it is scored on (DESIGN.md, "Training protocol").
# What the runner appends to a model's results key: a length cut (-L128), then a precision (+bf16).
_EVAL_SUFFIX = re.compile(r"(-L\d+)?(\+\w+)?$")
TOP_KEYS = {"name", "description", "base_models", "references", "precision", "training", "evaluation", "stages",
            "notes"}
STAGE_KEYS = {"name", "trainers", "seeds", "train_data", "alphas", "base_models", "beir_datasets"}
EVAL_KEYS = {"beir", "lareqa"}


class ExperimentError(ValueError):
    """A malformed or inconsistent experiment file."""


@dataclass(frozen=True)
class Cell:
    """One checkpoint of the grid: a trainer (with alpha) on a base model, training data and seed."""

    trainer: str
    base: str
    train_data: str
    seed: int
    alpha: float | None = None  # hybrid only (its default filled in), None for the others


@dataclass(frozen=True)
class Stage:
    name: str
    cells: tuple[Cell, ...]
    # The BEIR datasets this stage's cells are scored on: a subset of the file's (None: all of them), so a
    # cheaper stage (an alpha sweep, say) can leave out a costly set.
    beir_datasets: tuple[str, ...] | None = None


@dataclass
class Experiment:
    name: str
    description: str
    base_models: tuple[str, ...]
    references: tuple[str, ...]
    training: dict
    beir: dict | None
    lareqa: dict | None
    stages: tuple[Stage, ...]
    source: Path | None = None
    notes: list[str] = field(default_factory=list)
    # Numerics of every cell's training and of every encoding (bench/precision.py); in the checkpoints' run ids
    # (-bf16) and the results keys (+bf16), so cells of two precisions never stand in for each other.
    precision: str = DEFAULT_PRECISION

    def cells(self) -> list[Cell]:
        """Every cell once, in stage order."""
        return [cell for _, cell in unique_cells(self)]

    def eval_sets(self) -> list[str]:
        """The held-out LAReQA sets the grid is scored on, in the order of first use."""
        sets = dict.fromkeys(HELD_OUT[c.train_data] for c in self.cells())
        return list(sets) if self.lareqa is not None else []


# ------------------------------------------------------------------------------------------ loading


def experiment_path(name_or_file: str) -> Path:
    """A shipped experiment name (bench/experiments/<name>.yaml) or a YAML file path."""
    path = Path(name_or_file).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ExperimentError(f"experiment file {path} does not exist")
        return path
    shipped = EXPERIMENTS_DIR / f"{name_or_file}.yaml"
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
        raise ExperimentError(f"unknown experiment {name_or_file!r}; shipped: {names}; or give a YAML file path")
    return shipped


def load_experiment(name_or_file: str) -> Experiment:
    path = experiment_path(name_or_file)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ExperimentError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return parse_experiment(raw, source=path)


def parse_experiment(raw: dict, source: Path | None = None) -> Experiment:
    where = str(source or "experiment")
    _check_keys(raw, TOP_KEYS, where)
    if not raw.get("name"):
        raise ExperimentError(f"{where}: 'name' is required (it names results/<name>/)")
    try:
        check_name(str(raw["name"]), "experiment name")
    except ValueError as error:
        raise ExperimentError(f"{where}: {error}") from None
    base_models = tuple(_as_list(raw.get("base_models"), f"{where}: base_models"))
    evaluation = raw.get("evaluation") or {}
    _check_keys(evaluation, EVAL_KEYS, f"{where}: evaluation")
    training = dict(raw.get("training") or {})
    _check_training(training, where)
    stages = tuple(_stage(s, i, base_models, where) for i, s in enumerate(raw.get("stages") or []))
    if not stages:
        raise ExperimentError(f"{where}: no stages; list at least one stage of trainers x seeds x train_data")
    experiment = Experiment(
        name=str(raw["name"]), description=str(raw.get("description", "")).strip(), base_models=base_models,
        references=tuple(_as_list(raw.get("references") or [], f"{where}: references")), training=training,
        beir=_eval_block(evaluation, "beir"), lareqa=_eval_block(evaluation, "lareqa"), stages=stages,
        source=source, notes=list(raw.get("notes") or []), precision=_precision(raw, where),
    )
    _check_names(experiment, where)
    _check_stage_beir(experiment, where)
    return experiment


def _check_stage_beir(experiment: Experiment, where: str) -> None:
    """A stage's beir_datasets narrow the file's BEIR sets; they cannot add one."""
    for stage in experiment.stages:
        if stage.beir_datasets is None:
            continue
        if experiment.beir is None:
            raise ExperimentError(f"{where}: stage {stage.name!r} names beir_datasets but the file evaluates no "
                                  "BEIR")
        extra = sorted(set(stage.beir_datasets) - set(beir_datasets(experiment)))
        if extra:
            raise ExperimentError(f"{where}: stage {stage.name!r}: beir_datasets {', '.join(extra)} are not among "
                                  f"evaluation.beir.datasets ({', '.join(beir_datasets(experiment))})")


def beir_datasets(experiment: Experiment) -> tuple[str, ...]:

    return tuple((experiment.beir or {}).get("datasets") or DEFAULT_BEIR) if experiment.beir is not None else ()


def lareqa_settings(experiment: Experiment) -> tuple[str, ...]:

    return tuple((experiment.lareqa or {}).get("settings") or SETTINGS) if experiment.lareqa is not None else ()


def expected_sets(experiment: Experiment) -> list[tuple[str, Cell | None, list[tuple[str, str]]]]:
    """What the grid asks for, model by model: (reference name or "", cell or None, [(dataset, setting)]),
    references first. The one expansion of the file that the runner and the report both read."""
    out: list[tuple[str, Cell | None, list[tuple[str, str]]]] = []
    settings = lareqa_settings(experiment)
    for name in experiment.references:
        sets = [(d, s) for d in experiment.eval_sets() for s in settings]
        out.append((name, None, sets + [(d, "mono") for d in beir_datasets(experiment)]))
    for stage, cell in unique_cells(experiment):
        lareqa = [(d, s) for d in suites_of(experiment, cell) if d != "beir" for s in settings]
        beir = stage.beir_datasets if stage.beir_datasets is not None else beir_datasets(experiment)
        out.append(("", cell, lareqa + [(d, "mono") for d in beir]))
    return out


def _check_keys(mapping: dict, allowed: set[str], where: str) -> None:
    if not isinstance(mapping, dict):
        raise ExperimentError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ExperimentError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _as_list(value, where: str) -> list:
    if value is None:
        raise ExperimentError(f"{where} is required")
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _precision(raw: dict, where: str) -> str:
    precision = str(raw.get("precision", DEFAULT_PRECISION))
    if precision not in PRECISIONS:
        raise ExperimentError(f"{where}: unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    return precision


def _check_training(training: dict, where: str) -> None:
    from bench.train.options import TrainOptions

    if "precision" in training:
        raise ExperimentError(f"{where}: precision is a top-level key (it applies to training and encoding alike)")
    per_cell = {"trainer", "base", "train_data", "seed", "alpha", "out_dir", "run_id", "force", "precision"}
    allowed = {f.name for f in fields(TrainOptions)} - per_cell
    _check_keys(training, allowed, f"{where}: training")
    if "langs" in training:
        training["langs"] = tuple(training["langs"])


def _eval_block(evaluation: dict, name: str) -> dict | None:
    if name not in evaluation:
        return None
    block = dict(evaluation[name] or {})
    allowed = {"datasets", "max_seq_length"} if name == "beir" else {"langs", "settings", "max_seq_length"}
    _check_keys(block, allowed, f"evaluation.{name}")
    return block


def _stage(raw: dict, index: int, base_models: tuple[str, ...], where: str) -> Stage:
    _check_keys(raw, STAGE_KEYS, f"{where}: stage {index + 1}")
    name = str(raw.get("name") or f"stage {index + 1}")
    trainers = _as_list(raw.get("trainers"), f"{where}: stage {name!r} trainers")
    seeds = [int(s) for s in _as_list(raw.get("seeds"), f"{where}: stage {name!r} seeds")]
    data = _as_list(raw.get("train_data"), f"{where}: stage {name!r} train_data")
    unknown = [d for d in data if d not in HELD_OUT]
    if unknown:
        raise ExperimentError(f"{where}: stage {name!r}: unknown train_data {', '.join(map(str, unknown))}; "
                              f"known: {', '.join(HELD_OUT)}")
    alphas = [float(a) for a in _as_list(raw["alphas"], f"{where}: stage {name!r} alphas")] if "alphas" in raw \
        else [DEFAULT_ALPHA]
    bases = tuple(raw.get("base_models") or base_models)
    cells = tuple(
        Cell(trainer, base, d, seed, alpha if uses_alpha(trainer) else None)
        for base in bases for d in data for seed in seeds for trainer in trainers
        for alpha in (alphas if uses_alpha(trainer) else [None]))
    beir = raw.get("beir_datasets")
    return Stage(name, tuple(dict.fromkeys(cells)),
                 tuple(_as_list(beir, f"{where}: stage {name!r} beir_datasets")) if beir is not None else None)


def _check_names(experiment: Experiment, where: str) -> None:
    from bench.models.registry import resolve_model
    from bench.train.samplers import check_alpha
    from bench.train.trainers import get_trainer

    for name in (*experiment.base_models, *experiment.references):
        try:
            resolve_model(name)
        except ValueError as error:
            raise ExperimentError(f"{where}: {error}") from error
    for cell in experiment.cells():
        try:
            get_trainer(cell.trainer)
            if cell.alpha is not None:
                check_alpha(cell.alpha)
        except ValueError as error:
            raise ExperimentError(f"{where}: {error}") from error


# --------------------------------------------------------------------------------------------- plan


def train_options(experiment: Experiment, cell: Cell, models_dir: str | None = None):
    from bench.train.options import TrainOptions

    return TrainOptions(trainer=cell.trainer, base=cell.base, train_data=cell.train_data, seed=cell.seed,
                        alpha=cell.alpha, out_dir=models_dir, precision=experiment.precision, **experiment.training)


def checkpoint_dir(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> Path:
    from bench.train.options import models_root, run_id_of

    return models_root(models_dir) / run_id_of(train_options(experiment, cell, models_dir), cell.alpha)


def is_trained(experiment: Experiment, cell: Cell, models_dir: str | None = None) -> bool:
    """A finished checkpoint trained with exactly this cell's options."""
    from bench.train.options import existing_run, identity, same_run

    found = existing_run(checkpoint_dir(experiment, cell, models_dir))
    return bool(found) and same_run(found.get("options"), identity(train_options(experiment, cell, models_dir),
                                                                    cell.alpha))


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


def suites_of(experiment: Experiment, cell: Cell | None) -> list[str]:
    """What a cell is scored on (its held-out LAReQA set, then BEIR); references: every set in use."""
    lareqa = experiment.eval_sets() if cell is None else ([HELD_OUT[cell.train_data]] if experiment.lareqa is not None
                                                          else [])
    return [*lareqa, *(["beir"] if experiment.beir is not None else [])]


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

    def describe(self) -> str:
        if self.action == "train":
            where = " (scored in full; checkpoint not on this machine)" if self.elsewhere else ""
            return f"[{'done' if self.done else 'todo'}] train     {self.model}{where}"
        state = "done" if self.done else f"{self.tasks_done}/{self.tasks_total} done"
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
            return _EVAL_SUFFIX.sub("", path.parent.name, count=1)
    return None


def suite_key(experiment: Experiment, key: str, suite: str) -> str:
    """A dense model's results key on `suite`: `key`, plus `-L<N>` where the experiment cuts the length, plus
    `+<precision>` when it is not fp32 (as eval_spec's run id)."""
    block = (experiment.beir if suite == "beir" else experiment.lareqa) or {}
    key = f"{key}-L{int(block['max_seq_length'])}" if block.get("max_seq_length") else key
    return f"{key}+{experiment.precision}" if experiment.precision != DEFAULT_PRECISION else key


def plan(experiment: Experiment, models_dir: str | None = None, tasks_cache: dict | None = None) -> list[Step]:
    """Every step of the grid in order, with what is already done."""
    from bench.models.registry import resolve_model
    from bench.results import ResultStore

    store = ResultStore(experiment.name)
    cache = {} if tasks_cache is None else tasks_cache
    steps: list[Step] = []

    def evaluation(stage: Stage | None, label: str, keys: dict[str, str] | None, suites: list[str]) -> list[Step]:
        added = []
        for suite in suites:
            tasks = stage_tasks(experiment, stage, suite, cache)
            done = 0 if keys is None else sum(store.done(keys[suite], t) for t in tasks)
            added.append(Step(stage.name if stage else "references", "evaluate", label, suite, len(tasks), done,
                              done == len(tasks)))
        steps.extend(added)
        return added

    for name in experiment.references:
        spec = resolve_model(name)
        suites = suites_of(experiment, None)
        evaluation(None, name, {s: eval_spec(experiment, spec, s).key for s in suites}, suites)
    for index, (stage, cell) in enumerate(unique_cells(experiment)):
        folder = checkpoint_dir(experiment, cell, models_dir)
        suites = suites_of(experiment, cell)
        train = Step(stage.name, "train", folder.name, done=is_trained(experiment, cell, models_dir), cell=index)
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


def unique_cells(experiment: Experiment) -> list[tuple[Stage, Cell]]:
    """(the first stage that lists it, cell), in stage order."""
    seen: set[Cell] = set()
    out = []
    for stage in experiment.stages:
        for cell in stage.cells:
            if cell not in seen:
                seen.add(cell)
                out.append((stage, cell))
    return out


# ---------------------------------------------------------------------------------------------- run


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


def describe_plan(experiment: Experiment, steps: list[Step], shard: tuple[int, int] | None = None) -> str:
    """steps: the whole plan, or a shard's part of it (shard_steps), which the header then names."""
    todo_train = sum(s.action == "train" and not s.done for s in steps)
    todo_eval = sum(s.tasks_total - s.tasks_done for s in steps if s.action == "evaluate")
    part = f", shard {shard[0]}/{shard[1]}" if shard else ""
    lines = [f"experiment {experiment.name} ({experiment.source or 'inline'}{part}): "
             f"{sum(s.action == 'train' for s in steps)} checkpoints, {todo_train} to train, "
             f"{todo_eval} (model, task) evaluations to run; precision {experiment.precision}"]
    stage = None
    for step in steps:
        if step.stage != stage:
            stage = step.stage
            lines.append(f"  {stage}:")
        lines.append(f"    {step.describe()}")
    return "\n".join(lines)


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
