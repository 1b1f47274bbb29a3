"""Grids on a cluster: one submitit job per grid cell still to do, and the references as one job of their own.

The jobs are the units a plain run loops over (run.py's `run_cell` and `run_references`), so each resumes exactly
as a plain run does: a cell trains its checkpoint when it is missing, then scores what is missing, and every
result is written atomically. What is done is found by the same plan as `--dry-run` (plan.py), and a cell or
reference with nothing left is not submitted, so submitting again after a failure (or twice) submits only what
is left. Job folders, logs and submitit's pickles go under <results>/<experiment>/jobs/<job id>/.

Executors: `local` (submitit's LocalExecutor: each job a local process; tests use it) and `slurm` (submitit's
SlurmExecutor through AutoExecutor: one job array, `max_parallel` as its %N throttle). The submitting process's
BENCH_RESULTS / BENCH_MODELS / BENCH_DATA / BENCH_CACHE (resolved to absolute folders) are handed to each job,
as an argument of the pickled call and, on Slurm, also exported in the batch script."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.experiment.plan import Step, check_references, check_stages, plan
from bench.experiment.schema import Experiment, unique_cells

EXECUTORS = ("local", "slurm")
ENV_VARS = ("BENCH_RESULTS", "BENCH_MODELS", "BENCH_DATA", "BENCH_CACHE")
PASSED_THROUGH = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "BENCH_ONLINE", "BENCH_GIT_SHA")
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # LocalExecutor kills a job after 2 minutes unless told otherwise
LOG_TAIL = 15  # lines of a failed job's log in the report


class ExecutorError(ValueError):
    """A grid that cannot be submitted: no cluster to reach, options that do not go together."""


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of one job; the defaults fit one me5-small cell (train ~300 steps and score it) on a GPU."""

    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    mem_gb: int = 32
    time_min: int = 120


@dataclass(frozen=True)
class Unit:
    """What one job runs: a grid cell (its position in unique_cells) or, with index None, the references."""

    index: int | None
    label: str  # the cell's checkpoint name, or "references"


@dataclass
class Submitted:
    unit: Unit
    job: object  # submitit.Job
    folder: Path


@dataclass
class Outcome:
    unit: Unit
    job_id: str
    ok: bool
    log_tail: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- what to submit


def pending_units(experiment: Experiment, steps: list[Step], stages: list[int] | None = None,
                  references: list[str] | None = None) -> list[Unit]:
    """The jobs the grid still needs, as a plain run would do them (references first, then cells in stage
    order): a unit with every step of it done in `steps` (plan()'s) is left out."""
    chosen = check_stages(experiment, stages)
    wanted = set(check_references(experiment, references))
    units = []
    if any(s.cell is None and s.model in wanted and not s.done for s in steps):
        units.append(Unit(None, "references"))
    for index, (stage, _cell) in enumerate(unique_cells(experiment)):
        mine = [s for s in steps if s.cell == index]
        if experiment.stages.index(stage) + 1 in chosen and not all(s.done for s in mine):
            units.append(Unit(index, next(s.model for s in mine if s.action == "train")))
    return units


def job_environment(models_dir: str | None) -> dict[str, str | None]:
    """The roots as this process sees them, absolute, for jobs that may start elsewhere (another folder,
    another node)."""
    from bench.paths import cache_root, data_root, results_root
    from bench.train.options import models_root

    roots = {"BENCH_RESULTS": results_root(), "BENCH_MODELS": models_root(models_dir), "BENCH_DATA": data_root(),
             "BENCH_CACHE": cache_root()}
    env: dict[str, str | None] = {name: str(Path(path).absolute()) for name, path in roots.items()}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    return env


def jobs_folder(experiment: Experiment) -> Path:
    from bench.results import ResultStore

    return ResultStore(experiment.name).folder / "jobs"


# ------------------------------------------------------------------------------------------------ the job


def run_unit(experiment: Experiment, unit: Unit, models_dir: str, env: dict[str, str | None],
             references: list[str] | None = None, batch_size: int = 32, cache: bool = True,
             device: str | None = None) -> str:
    """The body of one job (pickled by submitit, run in the job's process): the cell or the references, exactly
    as `run_experiment` runs them. Returns a line for the submitter."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    from bench.experiment.run import prepare, run_cell, run_references

    def log(message: str) -> None:
        print(message, flush=True)

    prepare(experiment, device)
    started = time.monotonic()
    if unit.index is None:
        run_references(experiment, references, log=log, cache=cache, batch_size=batch_size, device=device)
    else:
        run_cell(experiment, unit.index, models_dir, log=log, cache=cache, batch_size=batch_size, device=device)
    return f"{unit.label}: done in {time.monotonic() - started:.0f} s"


# ------------------------------------------------------------------------------------------------ submitting


def check_executor(kind: str) -> None:
    """Refuse, in one line, an executor that cannot run here, before any planning."""
    if kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor {kind!r}; known: {', '.join(EXECUTORS)}")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ExecutorError(f"--executor {kind} needs submitit (pip install 'submitit>=1.5,<2'); without it, "
                            "use --shard K/N to split the grid by hand") from None
    if kind == "slurm":
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if missing:
            raise ExecutorError(f"--executor slurm: no {' or '.join(f'`{t}`' for t in missing)} on PATH, so no Slurm "
                                "cluster to submit to; use --executor local to run the jobs as processes on this "
                                "machine, or --shard K/N to split the grid over machines by hand")


def make_executor(kind: str, folder: Path, experiment: Experiment, slurm: SlurmOptions,
                  max_parallel: int | None, env: dict[str, str | None]):
    import submitit

    pattern = folder / "%j"
    if kind == "local":
        executor = submitit.LocalExecutor(folder=pattern)
        executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        return executor
    try:
        executor = submitit.AutoExecutor(folder=pattern, cluster="slurm")
        exports = [f"export {name}={shlex.quote(value)}" for name, value in env.items() if value is not None]
        executor.update_parameters(name=f"bench-{experiment.name}", timeout_min=slurm.time_min,
                                   gpus_per_node=slurm.gpus_per_job, cpus_per_task=slurm.cpus_per_job,
                                   mem_gb=slurm.mem_gb, slurm_setup=exports,
                                   **({"slurm_partition": slurm.partition} if slurm.partition else {}),
                                   **({"slurm_array_parallelism": max_parallel} if max_parallel else {}))
    except Exception as e:  # submitit's own checks: no srun, a bad parameter
        raise ExecutorError(f"--executor slurm: submitit cannot use the cluster ({_one_line(e)}); use --executor "
                            "local or --shard K/N") from None
    return executor


def submit_experiment(experiment: Experiment, executor: str, models_dir: str | None = None, log=print,
                      cache: bool = True, batch_size: int = 32, stages: list[int] | None = None,
                      references: list[str] | None = None, device: str | None = None,
                      precision: str | None = None, slurm: SlurmOptions | None = None,
                      max_parallel: int | None = None, out=print) -> list[Submitted]:
    """Submit one job per unit the grid still needs (pending_units). Returns them, submitted; an empty list
    when the grid is done. `log` gets the plan (as run_experiment prints it), `out` a line per job.
    max_parallel: at most this many jobs at once (Slurm: the array's throttle; local: the next job starts
    when one ends, so this call returns once the last job has started)."""
    from bench.experiment.plan import describe_plan
    from bench.experiment.run import _keep_definition, prepare

    check_executor(executor)
    if precision is not None:
        experiment = replace(experiment, precision=precision)
    steps = plan(experiment, models_dir)
    log(describe_plan(experiment, steps))
    units = pending_units(experiment, steps, stages, references)
    if not units:
        return []
    folder = jobs_folder(experiment)
    if executor == "local":
        prepare(experiment, device)  # the jobs run here: refuse bf16 without native support before starting any
    else:
        from bench.results import ResultStore

        _keep_definition(experiment, ResultStore(experiment.name).folder)  # the nodes check their own precision
    folder.mkdir(parents=True, exist_ok=True)
    tidy(folder)
    (folder / ".gitignore").write_text("# submitit job folders: logs and pickles, never committed\n*\n")
    env = job_environment(models_dir)
    if executor == "local":
        # LocalExecutor sets CUDA_VISIBLE_DEVICES to the GPUs it was asked for (none): a job sees the GPUs this
        # process sees, as a plain run would.
        env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    ex = make_executor(executor, folder, experiment, slurm or SlurmOptions(), max_parallel, env)
    models = env["BENCH_MODELS"]
    wanted_refs = check_references(experiment, references)

    def call(unit: Unit) -> tuple:
        return (run_unit, experiment, unit, models, env, wanted_refs, batch_size, cache, device)

    submitted: list[Submitted] = []

    def record(unit: Unit, job) -> None:
        entry = Submitted(unit, job, folder / str(job.job_id))
        submitted.append(entry)
        with open(folder / "submitted.jsonl", "a") as f:
            f.write(json.dumps({"job_id": str(job.job_id), "unit": unit.label, "cell": unit.index,
                                "executor": executor, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
        out(f"submitted job {job.job_id}: {unit.label}")

    try:
        if executor == "slurm":
            with ex.batch():
                jobs = [ex.submit(*call(unit)) for unit in units]
            for unit, job in zip(units, jobs):
                record(unit, job)
        else:
            running: list = []
            for unit in units:
                while max_parallel and len(running) >= max_parallel:
                    time.sleep(0.5)
                    running = [job for job in running if not job.done()]
                job = ex.submit(*call(unit))
                running.append(job)
                record(unit, job)
    except ExecutorError:
        raise
    except Exception as e:  # sbatch missing or refusing (partition, account, limits)
        raise ExecutorError(f"--executor {executor}: submitting failed after {len(submitted)} of {len(units)} "
                            f"jobs ({_one_line(e)}); use --executor local or --shard K/N") from None
    return submitted


def wait_for(submitted: list[Submitted], poll_s: float = 1.0) -> list[Outcome]:
    """Wait for every job; each one's outcome, with the last lines of a failed job's log."""
    outcomes = []
    for entry in submitted:
        job = entry.job
        while not job.done():
            time.sleep(poll_s)
        error = job.exception()
        ok = error is None
        outcomes.append(Outcome(entry.unit, str(job.job_id), ok, [] if ok else _log_tail(job, error)))
    for folder in {entry.folder.parent for entry in submitted}:
        tidy(folder)
    return outcomes


def tidy(folder: Path) -> None:
    """LocalExecutor's job processes each make the folder pattern itself (an empty `%j`): remove it."""
    try:
        (folder / "%j").rmdir()
    except OSError:
        pass


def _log_tail(job, error) -> list[str]:
    lines: list[str] = []
    for read in (job.stderr, job.stdout):
        try:
            text = read() or ""
        except Exception:  # noqa: BLE001  (a log not written: the job never started)
            text = ""
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            break
    return lines[-LOG_TAIL:] or [_one_line(error)]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
