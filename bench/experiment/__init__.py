"""Experiments as data: a YAML file names base models, trainers, seeds, training data, suites and the step
budget; `run_experiment` trains what is missing, evaluates what is missing and skips what is done.

Resuming is free: a checkpoint is written to a temporary folder and renamed when complete, and every
(model, task) result is written atomically, so a killed run loses at most the training or task in flight.
Stages run in the file's order, so the most informative cells exist first when time runs out.

schema.py reads and expands the file (torch-free), plan.py says what each cell needs and what is done,
run.py does it."""

from bench.experiment.plan import Step, checkpoint_dir, describe_plan, eval_spec, plan, train_options
from bench.experiment.run import run_experiment
from bench.experiment.schema import (Cell, Experiment, ExperimentError, Stage, expected_sets, load_experiment,
                                     parse_experiment, unique_cells)

__all__ = ["Cell", "Experiment", "ExperimentError", "Stage", "Step", "checkpoint_dir", "describe_plan", "eval_spec",
           "expected_sets", "load_experiment", "parse_experiment", "plan", "run_experiment", "train_options",
           "unique_cells"]
