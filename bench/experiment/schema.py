"""An experiment file, read and checked: the YAML schema (base models, references, training options, the
evaluation sets, stages of trainers x seeds x training data x alphas) and its one expansion into cells and
the (dataset, setting) pairs each is scored on. No torch, so that the report can read it too."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from bench.paths import PROJECT_ROOT
from bench.precision import DEFAULT_PRECISION, PRECISIONS
from bench.protocol import DEFAULT_ALPHA, DEFAULT_BEIR, HELD_OUT, SETTINGS
from bench.safety import check_name
from bench.train.trainers import uses_alpha

EXPERIMENTS_DIR = PROJECT_ROOT / "bench" / "experiments"
TOP_KEYS = {"name", "description", "base_models", "references", "precision", "training", "evaluation", "stages",
            "notes"}
STAGE_KEYS = {"name", "trainers", "seeds", "train_data", "alphas", "base_models", "beir_datasets", "steps"}
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
    # Optimiser steps when a stage sets them apart from the file's `training.steps` (a learning curve); None: the
    # file's. A stage step count equal to the file's is None too, so that the cell is the same as a plain one.
    steps: int | None = None


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
    stages = tuple(_stage(s, i, base_models, training_steps(training), where)
                   for i, s in enumerate(raw.get("stages") or []))
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


def _step_count(value, where: str) -> int:
    try:
        steps = int(value)
    except (TypeError, ValueError):
        steps = 0
    if steps < 1 or str(value).strip() != str(steps):
        raise ExperimentError(f"{where}: {value!r} is not a positive whole number of steps")
    return steps


def training_steps(training: dict) -> int:
    """The file's step budget: training.steps, else TrainOptions' default."""
    from bench.train.options import TrainOptions

    return int(training.get("steps", TrainOptions(trainer="", base="").steps))


def _stage(raw: dict, index: int, base_models: tuple[str, ...], default_steps: int, where: str) -> Stage:
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
    steps = [_step_count(s, f"{where}: stage {name!r} steps")
             for s in _as_list(raw["steps"], f"{where}: stage {name!r} steps")] if "steps" in raw else [None]
    bases = tuple(raw.get("base_models") or base_models)
    cells = tuple(
        Cell(trainer, base, d, seed, alpha if uses_alpha(trainer) else None, None if n == default_steps else n)
        for base in bases for d in data for n in steps for seed in seeds for trainer in trainers
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


def suites_of(experiment: Experiment, cell: Cell | None) -> list[str]:
    """What a cell is scored on (its held-out LAReQA set, then BEIR); references: every set in use."""
    lareqa = experiment.eval_sets() if cell is None else ([HELD_OUT[cell.train_data]] if experiment.lareqa is not None
                                                          else [])
    return [*lareqa, *(["beir"] if experiment.beir is not None else [])]


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
