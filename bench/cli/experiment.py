"""`python -m bench experiment`: run an experiment grid, in this process or as jobs (--executor)."""

from __future__ import annotations

import argparse
import sys

from bench.cli.common import add_output_argument, positive_int, shard_arg

SLURM_FLAGS = ("slurm_partition", "slurm_gpus_per_job", "slurm_cpus_per_job", "slurm_mem_gb", "slurm_time_min")


def handle(args: argparse.Namespace) -> int:
    from bench.experiment import load_experiment, run_experiment
    from bench.experiment.deadline import parse_until, stop_at
    from bench.preflight import check_models_root

    until = parse_until(args.until) if args.until else None
    if args.fill and not until:
        raise ValueError("--fill fills the time left before --until WHEN; give --until too")
    if until and args.executor:
        raise ValueError("--until is for a grid run in this process; jobs take the scheduler's time limit "
                         "(--slurm-time-min) instead")
    if args.executor:
        from bench.experiment.executors import ExecutorError, check_executor

        if args.shard:
            raise ExecutorError("--executor and --shard do not go together: the executor gives each cell a job of "
                                "its own; --shard K/N is for machines without a scheduler")
        if not args.dry_run:
            check_executor(args.executor)  # before reading data: no cluster, one line
    experiment = load_experiment(args.name)
    check_models_root(args.models_dir, "--models-dir")
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    if args.executor and not args.dry_run:
        return _submit(args, experiment, log)
    with stop_at(None if args.dry_run else until):
        later = run_experiment(experiment, models_dir=args.models_dir, dry_run=args.dry_run,
                               cache=not args.no_cache, batch_size=args.batch_size, log=log, stages=args.stages,
                               shard=args.shard, references=args.references, device=args.device,
                               precision=args.precision, until=until, fill=args.fill)
    if later and not args.dry_run:
        print(f"experiment {experiment.name}: {len(later)} cell(s) left for a later run, as they would not finish "
              f"before --until {until.text}; `python -m bench experiment {args.name}` goes on with them")
    elif args.executor:  # --dry-run: the jobs a submit would make
        _print_units(args, experiment)
    elif args.shard:
        print(f"experiment {experiment.name}: shard {args.shard[0]}/{args.shard[1]} done; when every shard is, "
              f"`python -m bench experiment {args.name} --dry-run` shows the grid and `python -m bench export "
              f"{experiment.name}` writes the MTEB-layout results")
    elif not args.dry_run:
        _export(experiment)
    return 0


def _export(experiment) -> None:
    from bench.export import export_mteb

    files = export_mteb(experiment.name)
    print(f"experiment {experiment.name}: complete; MTEB-layout results in {files[0].parents[2]}")


def _print_units(args: argparse.Namespace, experiment) -> None:
    from dataclasses import replace

    from bench.experiment import plan
    from bench.experiment.executors import pending_units

    if args.precision is not None:
        experiment = replace(experiment, precision=args.precision)
    units = pending_units(experiment, plan(experiment, args.models_dir), args.stages, args.references)
    print(f"experiment {experiment.name}: --executor {args.executor} would submit {len(units)} job(s)"
          + "".join(f"\n  {unit.label}" for unit in units))


def _submit(args: argparse.Namespace, experiment, log) -> int:
    from bench.experiment.executors import SlurmOptions, jobs_folder, submit_experiment, wait_for

    slurm = SlurmOptions(partition=args.slurm_partition, gpus_per_job=args.slurm_gpus_per_job,
                         cpus_per_job=args.slurm_cpus_per_job, mem_gb=args.slurm_mem_gb,
                         time_min=args.slurm_time_min)
    submitted = submit_experiment(experiment, args.executor, models_dir=args.models_dir, log=log,
                                  cache=not args.no_cache, batch_size=args.batch_size, stages=args.stages,
                                  references=args.references, device=args.device, precision=args.precision,
                                  slurm=slurm, max_parallel=args.max_parallel, out=print)
    if not submitted:
        print(f"experiment {experiment.name}: nothing to submit, every chosen cell and reference is done")
        if args.stages is None and args.references is None:
            _export(experiment)
        return 0
    folder = jobs_folder(experiment)
    print(f"experiment {experiment.name}: {len(submitted)} job(s) submitted ({args.executor}); logs under "
          f"{folder}/<job id>/")
    if not args.wait:
        print(f"when they end, `python -m bench experiment {args.name} --dry-run` shows the grid, and submitting "
              f"again submits only what is left; `python -m bench export {experiment.name}` writes the "
              "MTEB-layout results")
        return 0
    outcomes = wait_for(submitted)
    failed = [o for o in outcomes if not o.ok]
    for outcome in outcomes:
        print(f"{'ok    ' if outcome.ok else 'FAILED'} job {outcome.job_id}: {outcome.unit.label}")
    for outcome in failed:
        print(f"--- job {outcome.job_id} ({outcome.unit.label}), last lines of {folder / outcome.job_id}:")
        print("\n".join(f"    {line}" for line in outcome.log_tail))
    if failed:
        print(f"experiment {experiment.name}: {len(failed)} of {len(outcomes)} job(s) failed; fix and submit "
              "again: what finished is kept and only what is left is submitted")
        return 1
    if args.stages is None and args.references is None:
        _export(experiment)
    else:
        print(f"experiment {experiment.name}: {len(outcomes)} job(s) succeeded")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from bench.experiment.executors import EXECUTORS, SlurmOptions

    experiment = commands.add_parser("experiment", help="run an experiment grid (trains and evaluates what is "
                                     "missing, resumable)")
    experiment.add_argument("name", help="a shipped experiment (paper, smoke) or a YAML file")
    add_output_argument(experiment)
    experiment.add_argument("--dry-run", action="store_true", help="print the plan and what is done, run nothing")
    experiment.add_argument("--models-dir", help="checkpoints root (default: $BENCH_MODELS, else <project>/models)")
    experiment.add_argument("--batch-size", type=positive_int, default=32, help="encoding batch size (default 32)")
    experiment.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    experiment.add_argument("--shard", type=shard_arg, metavar="K/N", help="run every N-th cell of the grid from the "
                            "K-th (stage order), for N processes or machines sharing one grid; shard 1 also "
                            "scores the references")
    experiment.add_argument("--references", nargs="*", metavar="MODEL", help="score only these of the file's "
                            "references (none when given without names; default: all)")
    experiment.add_argument("--device", help="where training and dense encoding run: cpu, cuda, cuda:1 ... "
                            "(default: the GPU when there is one, else cpu)")
    experiment.add_argument("--stages", nargs="+", type=positive_int, metavar="N",
                            help="run only these stages (1-based, in the file's order); default all")
    experiment.add_argument("--precision", metavar="fp32|bf16", help="numerics of training and encoding for this "
                            "run (default: the file's `precision`); cells of another precision are other cells "
                            "(run ids -bf16 / +bf16)")
    experiment.add_argument("--until", metavar="WHEN", help="stop by WHEN (21:15, 2026-12-05 21:15, or a "
                            "duration: 2h30m) as Ctrl-C stops, and start only the cells whose training and scoring "
                            "fit before it at the pace measured so far; for machines whose checkpoints do not "
                            "outlive the session (with --dry-run: which cells would start)")
    experiment.add_argument("--fill", action="store_true", help="with --until: once no cell left fits, start the "
                            "next one anyway; its training stops at WHEN with its state saved and the next run "
                            "resumes it (needs the models folder kept between runs)")
    jobs = experiment.add_argument_group("jobs", "submit one job per grid cell still to do (and one for the "
                                         "references) through submitit, instead of running in this process")
    jobs.add_argument("--executor", choices=EXECUTORS, help="local: jobs as processes on this machine; slurm: "
                      "a Slurm job array (default: none, the grid runs in this process)")
    jobs.add_argument("--max-parallel", type=positive_int, metavar="N", help="at most N jobs at once (default: "
                      "all; slurm: the array's %%N throttle)")
    jobs.add_argument("--wait", action="store_true", help="wait for the jobs and report which cells succeeded or "
                      "failed (with a failed job's last log lines); exit status 1 on any failure")
    defaults = SlurmOptions()
    jobs.add_argument("--slurm-partition", help="partition to submit to (default: the cluster's)")
    jobs.add_argument("--slurm-gpus-per-job", type=_non_negative, default=defaults.gpus_per_job, metavar="N",
                      help=f"GPUs per job (default {defaults.gpus_per_job})")
    jobs.add_argument("--slurm-cpus-per-job", type=positive_int, default=defaults.cpus_per_job, metavar="N",
                      help=f"CPUs per job (default {defaults.cpus_per_job})")
    jobs.add_argument("--slurm-mem-gb", type=positive_int, default=defaults.mem_gb, metavar="GB",
                      help=f"memory per job (default {defaults.mem_gb})")
    jobs.add_argument("--slurm-time-min", type=positive_int, default=defaults.time_min, metavar="MIN",
                      help=f"time limit per job in minutes (default {defaults.time_min}: one me5-small cell)")
    experiment.set_defaults(func=handle)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value
