"""Reproduce and compare (bench/reproduce.py and `run`'s ending): a fresh run computes into the output folder,
never into the committed results, and sets each score beside the committed one: OK / OKish / FAIL, exit 1
on FAIL; `--dry-run` computes nothing and quotes the committed timings."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from bench import paths
from bench.cli import main


@pytest.fixture
def project(tmp_path, monkeypatch, beir_fixture_dir):
    """A project root in tmp (committed results/ and outputs/ under it), BENCH_RESULTS unset, the fixture data."""
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    return tmp_path / "project"


def run_beir(model, *args: str) -> int:
    return main(["run", "--suite", "beir", "-t", "scifact", "-m", str(model), *args])


def commit_results(project, source):
    """Make `source` (an output folder) the project's committed results/."""
    shutil.copytree(source, project / "results", dirs_exist_ok=True)


def committed_csv(project):
    return next((project / "results" / "beir-baselines").rglob("*.csv"))


def test_output_folder_defaults_and_lookup(project, monkeypatch):
    assert paths.results_root() == project / "outputs" / "results"
    assert paths.committed_results() == project / "results"
    assert paths.reports_root(paths.committed_results()) == project / "reports"
    assert paths.reports_root(paths.results_root()) == project / "outputs" / "reports"
    # A reader finds the user's own results first, else the committed ones.
    (project / "results" / "a").mkdir(parents=True)
    assert paths.experiment_root("a") == project / "results"
    (project / "outputs" / "results" / "a").mkdir(parents=True)
    assert paths.experiment_root("a") == project / "outputs" / "results"
    monkeypatch.setenv("BENCH_RESULTS", str(project / "elsewhere"))
    assert paths.experiment_root("a") == project / "elsewhere"


def test_fresh_run_computes_and_compares(project, tiny_model_dir, capsys):
    # The first run writes into outputs/ (nothing committed yet: nothing to compare with).
    assert run_beir(tiny_model_dir) == 0
    assert "no committed scores to compare with" in capsys.readouterr().out
    assert not (project / "results").exists()
    commit_results(project, project / "outputs" / "results")
    shutil.rmtree(project / "outputs")

    # A fresh clone: the committed scores are not reused, they are the expected ones.
    assert run_beir(tiny_model_dir) == 0
    out = capsys.readouterr().out
    assert "reproduction: obtained beside the committed" in out
    assert "OK 4 OKish 0 FAIL 0 of 4" in out
    assert list((project / "outputs" / "results" / "beir-baselines").rglob("*.csv"))


@pytest.mark.parametrize("shift, status, code", [(5e-5, "OKish", 0), (0.01, "FAIL", 1)])
def test_differences_are_graded(project, tiny_model_dir, capsys, shift, status, code):
    assert run_beir(tiny_model_dir, "--output", str(project / "first")) == 0
    commit_results(project, project / "first")
    path = committed_csv(project)
    rows = pd.read_csv(path)
    rows.loc[rows["metric"] == "ndcg@10", "value"] += shift
    rows.to_csv(path, index=False)
    capsys.readouterr()

    assert run_beir(tiny_model_dir, "-o", str(project / "second")) == code
    line = next(l for l in capsys.readouterr().out.splitlines() if "ndcg@10" in l and l.startswith("["))
    assert line.startswith(f"[{status:<5}]")
    assert f"{shift:.1e}" in line


def test_malformed_expected_scores_are_named_not_fatal(project, tiny_model_dir, capsys):
    assert run_beir(tiny_model_dir, "--output", str(project / "first")) == 0
    commit_results(project, project / "first")
    committed_csv(project).write_text("not,a\nscores,file\n")
    capsys.readouterr()

    assert run_beir(tiny_model_dir, "--output", str(project / "second")) == 0
    captured = capsys.readouterr()
    assert "no committed scores to compare with" in captured.out
    assert str(committed_csv(project)) in captured.err  # the damaged file is named
    assert list((project / "second" / "beir-baselines").rglob("*.csv"))  # what was computed is kept


def test_dry_run_plans_with_committed_timings(project, tiny_model_dir, capsys):
    assert run_beir(tiny_model_dir, "--output", str(project / "first")) == 0
    commit_results(project, project / "first")
    capsys.readouterr()

    assert run_beir(tiny_model_dir, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would compute 1 task(s) into" in out and "scifact__test__mono__en-en" in out
    assert "expected time: about" in out and "1 timed task(s)" in out
    assert not (project / "outputs" / "results" / "beir-baselines").exists() or \
        not list((project / "outputs" / "results" / "beir-baselines").rglob("*.csv"))

    # Once computed, the plan is empty.
    assert run_beir(tiny_model_dir) == 0
    capsys.readouterr()
    assert run_beir(tiny_model_dir, "--dry-run") == 0
    assert "nothing to compute" in capsys.readouterr().out


def test_output_flag_is_scoped_to_the_command(project, tiny_model_dir):
    import os

    assert run_beir(tiny_model_dir, "--output", str(project / "mine")) == 0
    assert "BENCH_RESULTS" not in os.environ
    assert list((project / "mine" / "beir-baselines").rglob("*.csv"))


def test_curator_writing_the_committed_results_compares_nothing(project, tiny_model_dir, capsys):
    assert run_beir(tiny_model_dir, "--output", str(project / "results")) == 0
    assert run_beir(tiny_model_dir, "--output", str(project / "results")) == 0
    assert "this run wrote the committed results themselves" in capsys.readouterr().out


def test_scores_of_other_data_are_not_compared(project, tiny_model_dir, beir_fixture_dir, tmp_path, monkeypatch,
                                               capsys):
    assert run_beir(tiny_model_dir, "--output", str(project / "first")) == 0
    commit_results(project, project / "first")
    # The same dataset name over other files (another mirror, a changed qrels): not the committed inputs.
    data = tmp_path / "other-data"
    shutil.copytree(beir_fixture_dir.parent.parent, data)
    qrels = data / "beir" / "scifact" / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    qrels.write_text("\n".join(lines[:-1]) + "\n")
    monkeypatch.setenv("BENCH_DATA", str(data))
    capsys.readouterr()

    assert run_beir(tiny_model_dir) == 0
    out = capsys.readouterr().out
    assert "not compared:" in out and "data changed (beir/scifact/qrels/test.tsv)" in out
    assert "FAIL" not in out
