"""The report's compute section: minutes per group and dataset from the manifests and run records, cached
re-scores shown as such and left out of the totals."""

import json

from bench.report.cost import cost_lines
from bench.report.data import load_report_data
from bench.results import ResultStore
from support.reports import Model, write_experiment


def _record(path, dataset, seconds, cached=0):
    path.write_text(json.dumps({"suite": "beir" if dataset == "scifact" else dataset, "dataset": dataset,
                                "setting": "mono", "seconds": seconds, "model_max_seq_length": 512,
                                "model_threads": 2, "model_device_name": "Test CPU", "cached_texts": cached}))


def test_minutes_per_group_and_dataset_and_the_total(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))
    models = [Model("me5-small"), *[Model(f"hybrid-a0.5-me5-small-mlqa-r-s{s}-10steps", "hybrid", s, 0.5)
                                    for s in (1, 2)]]
    write_experiment("timed", models)
    folder = ResultStore("timed").folder
    # seed 2 was paused: its recorded time is longer, its timeline shows one long interval
    timelines = {1: [[2, 240.0], [4, 480.0], [6, 720.0]], 2: [[2, 260.0], [4, 1100.0], [6, 1360.0], [8, 1620.0]]}
    for seed, train, encode in ((1, 1200.0, 300.0), (2, 1800.0, 420.0)):
        run = folder / f"hybrid-a0.5-me5-small-mlqa-r-s{seed}-10steps@abcd1234"
        manifest = json.loads((run / "training_manifest.json").read_text())
        (run / "training_manifest.json").write_text(json.dumps({**manifest, "train_seconds": train, "steps": 10,
                                                                "torch_threads": 2, "device_name": "Test CPU",
                                                                "timeline": timelines[seed]}))
        _record(run / "scifact__test__mono__en-en.record.json", "scifact", {"encode_corpus": encode, "search": 0.0,
                                                                            "load_model": 30.0})
        _record(run / "xquad-r__test__mono__en-en.record.json", "xquad-r", {"encode_corpus": 60.0})
    _record(folder / "me5-small" / "scifact__test__mono__en-en.record.json", "scifact", {"encode_corpus": 0.5},
            cached=5000)

    text = "\n".join(cost_lines(load_report_data("timed")))
    # training 20 and 30 min, SciFact 5 and 7 min (loading left out), XQuAD-R 1 min each
    # s a step: medians 120 and 130 (not seed 2's paused 420), their median 125
    assert "| hybrid α=0.5 | 2 | 25 (20–30) | 125.00 | 1 | 6 (5–7) | 32 |" in text
    assert "| me5-small (untrained) | 1 | – | – | – | cached | 0 (cached left out) |" in text
    assert "In all: 1.1 h of wall-clock time (2 checkpoints trained in 0.8 h, 2 runs scored in 0.2 h), 2.1 " \
           "core-hours, on Test CPU with 2 threads." in text
    assert "1 (run, dataset) scorings read their embeddings from the cache" in text


def test_no_timings_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))
    write_experiment("untimed", [Model("me5-small")])
    assert cost_lines(load_report_data("untimed")) == ["No timings recorded."]
