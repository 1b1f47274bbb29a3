"""Running the beir suite in-process on the fixture data, and finding what a run wrote."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.models.registry import resolve_model
from bench.paths import results_root

@pytest.fixture
def data_env(beir_fixture_dir, monkeypatch):
    """BENCH_DATA pointing at <tmp>/data, which holds the fixture as beir/scifact/."""
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    return beir_fixture_dir


def run_beir(*args: str) -> int:
    return main(["run", "--suite", "beir", "--datasets", "scifact", *args])


def run_id_of(model_dir) -> str:
    """A folder model's run id: its name and a fingerprint of its weights."""
    return resolve_model(str(model_dir)).key


def task_files(model_name: str, experiment: str = "beir-baselines"):
    stem = results_root() / experiment / model_name / "scifact__test__mono__en-en"
    return (stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".per_query.parquet"),
            stem.with_name(stem.name + ".record.json"))
