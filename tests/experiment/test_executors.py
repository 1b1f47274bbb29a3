"""Grids as jobs (--executor): one submitit job per cell and one for the references, the same rows as a run in
this process, a second submit that finds everything done, and a clear refusal where there is no cluster."""

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.experiment import parse_experiment, run_experiment
from bench.experiment.executors import ExecutorError, Unit, check_executor, submit_experiment, wait_for
from bench.results import ResultStore
from support.experiments import grid, write
from support.training import quiet

# A checkpoint's run id ends in its folder's fingerprint, which covers its manifest (timings) too: rows are
# matched on the model's name.
KEY = ["model", "dataset", "setting", "query_lang", "doc_lang", "metric"]


def scores(results: Path) -> pd.DataFrame:
    rows = ResultStore("grid", root=results).load()
    return rows[KEY + ["trainer", "value", "n_queries"]].sort_values(KEY).reset_index(drop=True)


def small_grid(tiny: Path) -> dict:
    raw = grid(tiny)
    raw["evaluation"]["lareqa"]["settings"] = ["mono"]
    return raw


def job_folders(results: Path) -> list[Path]:
    return sorted(p for p in (results / "grid" / "jobs").iterdir() if p.is_dir())


def test_local_jobs_give_the_rows_of_a_plain_run_one_job_per_cell_and_resume(tiny_model_dir, data_dir, tmp_path,
                                                                            monkeypatch, capsys):
    path = write(tmp_path, small_grid(tiny_model_dir))
    # The plain run, in this process, into its own results and checkpoints folders.
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "plain"))
    run_experiment(parse_experiment(small_grid(tiny_model_dir), source=path), models_dir=str(tmp_path / "m1"),
                   log=quiet)
    plain = scores(tmp_path / "plain")

    # The same grid as local jobs: BENCH_RESULTS and BENCH_MODELS reach the jobs from this process's environment.
    results = tmp_path / "jobs-run"
    monkeypatch.setenv("BENCH_RESULTS", str(results))
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "m2"))
    assert main(["experiment", str(path), "--executor", "local", "--wait", "--max-parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("submitted job ") == 3 and out.count("ok     job ") == 3 and "FAILED" not in out
    assert f"logs under {results / 'grid' / 'jobs'}" in out and "complete; MTEB-layout results" in out
    # One job per cell and one for the references, each with its own folder and logs.
    folders = job_folders(results)
    submitted = [json.loads(line) for line in (results / "grid" / "jobs" / "submitted.jsonl").read_text().splitlines()]
    assert [s["unit"] for s in submitted] == ["references", "hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps",
                                              "xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    assert sorted(f.name for f in folders) == sorted(s["job_id"] for s in submitted)
    assert all(any(f.glob("*_log.out")) for f in folders)
    assert sorted(p.name for p in (tmp_path / "m2").iterdir()) == ["hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps",
                                                                  "xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    assert (results / "grid" / "experiment.yaml").is_file()
    assert len(list((results / "grid").glob("*/training_manifest.json"))) == 2

    jobs = scores(results)
    assert len(jobs) == len(plain) > 0
    pd.testing.assert_frame_equal(jobs, plain)
    for name in ("hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps", "xx-mono-tiny-bert-mlqa-r-s1-2steps"):
        assert (tmp_path / "m1" / name / "model.safetensors").read_bytes() == \
            (tmp_path / "m2" / name / "model.safetensors").read_bytes()

    # A second submit finds everything done: no job, nothing rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in (results / "grid").rglob("*.csv")}
    assert main(["experiment", str(path), "--executor", "local", "--wait"]) == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert job_folders(results) == folders
    assert {p: p.stat().st_mtime_ns for p in (results / "grid").rglob("*.csv")} == stamps


def test_only_what_is_left_is_submitted(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    experiment = parse_experiment(small_grid(tiny_model_dir))
    models = str(tmp_path / "models")
    # The references and the first cell done in this process; the jobs get the second cell only.
    run_experiment(experiment, models_dir=models, log=quiet, shard=(1, 2))
    lines: list[str] = []
    submitted = submit_experiment(experiment, "local", models_dir=models, log=quiet, out=lines.append)
    assert [s.unit.label for s in submitted] == ["xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    [outcome] = wait_for(submitted)
    assert outcome.ok
    assert len(lines) == 1 and lines[0].startswith("submitted job ")
    assert set(ResultStore("grid").load()["trainer"]) == {"none", "hybrid", "xx-mono"}
    assert submit_experiment(experiment, "local", models_dir=models, log=quiet, out=lines.append) == []


def test_a_failed_job_is_reported_with_its_last_log_lines(tiny_model_dir, tmp_path):
    import submitit

    from bench.experiment.executors import Submitted, job_environment, run_unit

    experiment = parse_experiment(small_grid(tiny_model_dir))
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs" / "%j")
    executor.update_parameters(timeout_min=5)
    unit = Unit(99, "no-such-cell")
    job = executor.submit(run_unit, experiment, unit, str(tmp_path / "models"), job_environment(None))
    [outcome] = wait_for([Submitted(unit, job, tmp_path / "jobs" / str(job.job_id))], poll_s=0.2)
    assert not outcome.ok and outcome.unit.label == "no-such-cell"
    assert any("has cells 0 to 1; no cell 99" in line for line in outcome.log_tail)


def test_slurm_without_a_cluster_says_what_is_missing(tiny_model_dir, tmp_path, monkeypatch, capsys):
    path = write(tmp_path, small_grid(tiny_model_dir))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExecutorError, match="no `sbatch` or `srun` on PATH"):
        check_executor("slurm")
    assert main(["experiment", str(path), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --executor slurm: no `sbatch`") and "\n" not in err
    assert "--executor local" in err and "--shard K/N" in err
    assert not ResultStore("grid").folder.exists()


def test_executor_options_that_do_not_go_together(tiny_model_dir, tmp_path, capsys):
    path = write(tmp_path, small_grid(tiny_model_dir))
    assert main(["experiment", str(path), "--executor", "local", "--shard", "1/2"]) == 2
    assert "--executor and --shard do not go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", str(path), "--executor", "pbs"])
    assert "invalid choice: 'pbs'" in capsys.readouterr().err


def test_dry_run_with_an_executor_lists_the_jobs_and_submits_nothing(tiny_model_dir, data_dir, tmp_path, capsys):
    path = write(tmp_path, small_grid(tiny_model_dir))
    assert main(["experiment", str(path), "--executor", "slurm", "--dry-run",
                 "--models-dir", str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out
    assert "would submit 3 job(s)" in out and "references" in out and "xx-mono-tiny-bert-mlqa-r-s1-2steps" in out
    assert not ResultStore("grid").folder.exists()


def test_slurm_jobs_are_one_array_with_the_resources_and_roots(tiny_model_dir, data_dir, tmp_path, monkeypatch,
                                                                capsys):
    """Against a stand-in sbatch (no cluster here): what is submitted, not how it runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/batch.sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))
    path = write(tmp_path, small_grid(tiny_model_dir))
    assert main(["experiment", str(path), "--executor", "slurm", "--max-parallel", "2", "--slurm-partition", "gpu",
                 "--slurm-time-min", "30"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[2] for line in out.splitlines() if line.startswith("submitted job")] == \
        ["4242_0:", "4242_1:", "4242_2:"]
    batch = (tmp_path / "batch.sh").read_text()
    for flag in ("--array=0-2%2", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB",
                 "--time=30"):
        assert f"#SBATCH {flag}" in batch
    results = ResultStore("grid").folder
    assert f"export BENCH_RESULTS={results.parent}" in batch and f"export BENCH_MODELS={tmp_path / 'models'}" in batch
    assert f"export BENCH_DATA={data_dir}" in batch
    assert str(results / "jobs") in batch  # the logs
