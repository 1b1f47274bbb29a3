"""MTEB results layout: files MTEB's own TaskResult reads back with our numbers."""

import json

import pytest
from mteb.results import TaskResult

from bench.export import export_mteb, mteb_metric
from bench.results import ResultStore
from test_check import tidy


def store_rows(frame, experiment="exp"):
    folder = ResultStore(experiment).folder
    for run_id, rows in frame.groupby("run_id"):
        (folder / run_id).mkdir(parents=True, exist_ok=True)
        rows.to_csv(folder / run_id / "task.csv", index=False)


def lareqa_rows():
    frame = tidy({("base", "map"): 0.5, ("base", "recall@1"): 0.25})
    cross = tidy({("base", "map"): 0.3})
    cross["setting"], cross["doc_lang"] = "cross", "de"
    beir = tidy({("base", "ndcg@10"): 0.7, ("base", "recall@100"): 0.9})
    beir["suite"], beir["dataset"], beir["split"] = "beir", "scifact", "test"
    for rows in (frame, cross):
        rows["suite"], rows["split"] = "xquad-r", "test"
    import pandas as pd

    return pd.concat([frame, cross, beir], ignore_index=True)


def test_mteb_reads_back_our_scores(tmp_path):
    store_rows(lareqa_rows())
    files = export_mteb("exp", tmp_path / "mteb")
    names = sorted(p.relative_to(tmp_path / "mteb").as_posix() for p in files)
    assert names == ["base/no_revision_available/SciFact.json", "base/no_revision_available/XQuADR-LAReQA.json"]

    scifact = TaskResult.from_disk(tmp_path / "mteb/base/no_revision_available/SciFact.json")
    assert scifact.task_name == "SciFact" and scifact.get_score() == pytest.approx(0.7)
    assert scifact.scores["test"][0]["recall_at_100"] == pytest.approx(0.9)
    xquad = TaskResult.from_disk(tmp_path / "mteb/base/no_revision_available/XQuADR-LAReQA.json")
    subsets = {s["hf_subset"]: s for s in xquad.scores["test"]}
    assert set(subsets) == {"mono-en-en", "cross-en-de"}
    assert subsets["mono-en-en"]["main_score"] == 0.5 and subsets["mono-en-en"]["recall_at_1"] == 0.25
    assert subsets["cross-en-de"]["languages"] == ["deu-Latn", "eng-Latn"]
    meta = json.loads((tmp_path / "mteb/base/no_revision_available/model_meta.json").read_text())
    assert meta["trainer"] == "none"


def test_checkpoint_revision_is_its_fingerprint(tmp_path):
    rows = tidy({("trained", "map"): 0.4})
    rows["run_id"], rows["suite"], rows["split"], rows["seed"] = "hybrid-x@0123abcd", "xquad-r", "test", 1
    store_rows(rows)
    (path,) = export_mteb("exp", tmp_path)
    assert path.parent.name == "0123abcd" and path.parent.parent.name == "hybrid-x@0123abcd"


def test_metric_names_and_empty_experiments():
    assert mteb_metric("ndcg@10") == "ndcg_at_10" and mteb_metric("map") == "map"
    with pytest.raises(ValueError, match="nothing to export"):
        export_mteb("nothing-here")
