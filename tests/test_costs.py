"""Measured costs: training seconds from the manifests kept beside the results, scoring seconds from the run
records (re-scores served from the embedding cache and BM25 kept apart), and the pace the plan estimates from."""

import json

import numpy as np
import pytest

from bench.costs import Pace, duration, scoring_costs, training_costs
from bench.results import ResultStore


def record(dataset: str, seconds: dict, *, dense: bool = True, cached: int = 0) -> dict:
    return {"suite": "beir" if dataset != "xquad-r" else "xquad-r", "dataset": dataset, "setting": "mono",
            "seconds": seconds, "model_max_seq_length": 512 if dense else None,
            "model_backend": "torch" if dense else "pyserini", "model_threads": 2 if dense else None,
            "model_device_name": "Test CPU" if dense else None, "machine": {"processor": "Test CPU"},
            "cached_texts": cached}


def manifest(trainer: str, seconds: float, steps: int, pairs_per_step: dict, timeline: list | None = None) -> dict:
    return {"trainer": trainer, "train_seconds": seconds, "steps": steps, "torch_threads": 2,
            "device_name": "Test CPU", "options": {"batch_size": 32}, "batches": {"pairs_per_step": pairs_per_step},
            **({"timeline": timeline} if timeline else {})}


@pytest.fixture
def store(tmp_path):
    store = ResultStore("costs", tmp_path)
    files = {
        "a@1/scifact.record.json": record("scifact", {"encode_corpus": 400.0, "search": 1.0, "load_model": 9.0}),
        "a@1/xquad-r-de.record.json": record("xquad-r", {"encode_corpus": 2.0, "search_and_evaluate": 1.0}),
        "a@1/xquad-r-en.record.json": record("xquad-r", {"encode_corpus": 0.5, "search_and_evaluate": 0.5}),
        "b@2/xquad-r-de.record.json": record("xquad-r", {"encode_corpus": 30.0, "search_and_evaluate": 1.0}),
        "b@2/scifact.record.json": record("scifact", {"encode_corpus": 500.0, "search": 1.0}),
        "c@3/scifact.record.json": record("scifact", {"encode_corpus": 900.0, "search": 1.0}),
        "a@9/scifact.record.json": record("scifact", {"encode_corpus": 0.1, "search": 1.0}, cached=5183),
        "bm25/scifact.record.json": record("scifact", {"search": 6.0}, dense=False),
        "a@1/training_manifest.json": manifest("hybrid", 1800.0, 300, {"batch": 32}),
        "b@2/training_manifest.json": manifest("mtl", 1900.0, 300, {"mono": 16, "cross": 16}),
        "c@3/training_manifest.json": manifest("xy", 4000.0, 300, {"batch": 32}),
    }
    for name, content in files.items():
        path = store.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    return store


def test_training_costs_read_the_manifests(store):
    costs = training_costs(store.folder).set_index("run_id")
    assert costs.loc["b@2", "pairs"] == 300 * 32  # mtl's two half batches are one batch of pairs
    assert costs.loc["c@3", "seconds"] == 4000.0 and costs.loc["a@1", "threads"] == 2


def test_scoring_costs_sum_stages_per_dataset_and_flag_cached_rescoring(store):
    costs = scoring_costs(store).set_index(["run_id", "dataset"])
    assert costs.loc[("a@1", "scifact"), "seconds"] == pytest.approx(401.0)  # model loading left out
    assert costs.loc[("a@1", "xquad-r"), "tasks"] == 2
    assert costs.loc[("a@1", "xquad-r"), "seconds"] == pytest.approx(4.0)
    assert costs.loc[("a@9", "scifact"), "cached"] and not costs.loc[("a@1", "scifact"), "cached"]
    assert not costs.loc[("bm25", "scifact"), "dense"] and costs.loc[("a@1", "scifact"), "dense"]


def test_the_pace_is_a_median_that_ignores_cached_runs(store):
    pace = Pace.measure(store)
    # seconds per pair: medians of 1800, 1900, 4000 over 9600 pairs; the slow run moves nothing
    assert pace.seconds_per_pair == pytest.approx(1900 / 9600)
    assert pace.seconds_per_task[(True, "scifact")] == pytest.approx(501.0)  # not the cached 1.1 s
    assert pace.seconds_per_task[(False, "scifact")] == pytest.approx(6.0)
    assert pace.training(300 * 32) == pytest.approx(1900.0)
    # b@2 is one task into XQuAD-R (its first, which encodes the passages): not the pace of a task
    assert pace.seconds_per_task[(True, "xquad-r")] == pytest.approx(2.0)
    assert pace.scoring(True, {"scifact": 2, "xquad-r": 132}) == pytest.approx(2 * 501 + 132 * 2.0)
    assert pace.scoring(True, {"arguana": 1}) is None  # never measured: no guess
    assert (pace.checkpoints, pace.runs) == (3, 4)


def test_an_empty_store_has_no_pace(tmp_path):
    pace = Pace.measure(ResultStore("nothing", tmp_path))
    assert pace.seconds_per_pair is None and pace.training(300 * 32) is None and pace.scoring(True, {"x": 1}) is None


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (27 * 60, "27 min"), (3.4 * 3600, "3.4 h")])
def test_durations_read_at_a_glance(seconds, text):
    assert duration(seconds) == text


def test_a_timeline_gives_the_steady_pace_that_a_pause_leaves_alone(store):
    from bench.costs import steady_step_seconds

    # 5 s a step, with a 600-s pause between steps 20 and 30 (a stopped process, a resume)
    timeline = [[10, 50.0], [20, 100.0], [30, 750.0], [40, 800.0], [300, 2100.0]]
    assert steady_step_seconds(timeline) == pytest.approx(5.0)
    assert np.isnan(steady_step_seconds([])) and np.isnan(steady_step_seconds([[10, 50.0]]))
    (store.folder / "c@3" / "training_manifest.json").write_text(
        json.dumps(manifest("xy", 4000.0, 300, {"batch": 32}, timeline)))
    costs = training_costs(store.folder).set_index("run_id")
    assert costs.loc["c@3", "step_seconds"] == pytest.approx(5.0) and np.isnan(costs.loc["a@1", "step_seconds"])
    assert costs.loc["c@3", "seconds"] == 4000.0  # what was recorded stays what is shown as spent
    # the pace: medians of 1800, 1900 and c's steady 300 x 5 s over 9600 pairs each
    assert Pace.measure(store).seconds_per_pair == pytest.approx(1800 / 9600)
