"""MTEB results layout: files mteb's own loaders (TaskResult, ResultCache with validation, ModelMeta) accept,
with our numbers."""

import json

import numpy as np
import pandas as pd
import pytest
from mteb.results import TaskResult

from bench.export import dataset_revision, export_mteb, mteb_metric
from bench.export.tasks import mteb_task, task_name
from bench.results import ResultStore
from support.scores import tidy


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
    return pd.concat([frame, cross, beir], ignore_index=True)


def test_mteb_reads_back_our_scores(tmp_path):
    store_rows(lareqa_rows())
    files = export_mteb("exp", tmp_path / "mteb")
    names = sorted(p.relative_to(tmp_path / "mteb/results/bench__base/no_revision_available").as_posix()
                   for p in files)
    assert names == ["SciFact.json", "XQuADR-LAReQA-cross.json", "XQuADR-LAReQA-mono.json"]

    folder = tmp_path / "mteb/results/bench__base/no_revision_available"
    scifact = TaskResult.from_disk(folder / "SciFact.json")
    assert scifact.task_name == "SciFact" and scifact.get_score() == pytest.approx(0.7)
    assert scifact.scores["test"][0]["recall_at_100"] == pytest.approx(0.9)
    mono = TaskResult.from_disk(folder / "XQuADR-LAReQA-mono.json")
    (en,) = mono.scores["test"]
    assert en["hf_subset"] == "en-en" and en["main_score"] == 0.5 and en["recall_at_1"] == 0.25
    cross = TaskResult.from_disk(folder / "XQuADR-LAReQA-cross.json")
    assert cross.get_score() == pytest.approx(0.3)  # one setting only: no longer averaged with mono
    assert cross.scores["test"][0]["languages"] == ["eng-Latn", "deu-Latn"]
    assert cross.dataset_revision == "unrecorded"  # the fixture has no run records naming data files


def _loaded(out, tasks):
    """mteb's own loader over an export, validation on; a result that fails validation is dropped by mteb (only
    logged), so callers count what came back."""
    from mteb import ResultCache

    return ResultCache(out).load_results(tasks=tasks, include_remote=False, validate_and_filter=True)


def test_mteb_loads_the_export_with_validation_and_every_score_matches(tmp_path):
    frame = lareqa_rows()
    multi = tidy({("base", "map"): 0.2, ("base", "rank_distance"): 0.4})
    multi["setting"], multi["doc_lang"], multi["suite"], multi["split"] = "multi", "multi", "xquad-r", "test"
    trained = lareqa_rows()
    trained["run_id"], trained["trainer"], trained["base_model"] = "hybrid-me5-small-mlqa-r-s1-5steps@0123abcd", \
        "hybrid", "me5-small"
    trained["value"] = trained["value"] / 2
    frame = pd.concat([frame, multi, trained], ignore_index=True)
    store_rows(frame)
    files = export_mteb("exp", tmp_path / "mteb")
    # the custom tasks, filtered (mteb's own mechanism) to the language pairs this small fixture scored
    tasks = []
    for name in sorted({p.stem for p in files}):
        task = mteb_task(name)
        scored = {s["hf_subset"] for p in files if p.stem == name for s in json.loads(p.read_text())["scores"]["test"]}
        tasks.append(task.filter_languages(None, hf_subsets=sorted(scored)))
    results = _loaded(tmp_path / "mteb", tasks)

    compared = 0
    loaded = {(m.model_name, t.task_name): t for m in results.model_results for t in m.task_results}
    assert len(loaded) == len(files) == 7
    for row in frame.itertuples():
        name = task_name(row.suite, row.dataset, row.setting)
        model = "bench/" + row.run_id.split("@")[0]
        scores = {s["hf_subset"]: s for s in loaded[(model, name)].scores[row.split]}
        key = "default" if row.suite == "beir" else f"{row.query_lang}-{row.doc_lang}"
        assert scores[key][mteb_metric(row.metric)] == pytest.approx(row.value, abs=0)
        compared += 1
    assert compared == len(frame) == 12
    assert loaded[("bench/base", "XQuADR-LAReQA-multi")].get_score() == pytest.approx(0.2)
    # unfiltered, the full task counts the pairs not scored as missing (NaN), as mteb does for any partial run
    full = _loaded(tmp_path / "mteb", [mteb_task("XQuADR-LAReQA-mono")]).model_results[0].task_results[0]
    assert len(full.scores["test"]) == 11 and np.isnan(full.get_score())


def test_model_meta_validates_with_mteb(tmp_path):
    from mteb.models.model_meta import ModelMeta

    rows = tidy({("base", "map"): 0.5})
    rows["run_id"], rows["base_model"], rows["suite"], rows["split"] = "me5-small", "me5-small", "xquad-r", "test"
    trained = rows.assign(run_id="hybrid-a0.5-me5-small-mlqa-r-s1-300steps@0123abcd", trainer="hybrid")
    bm25 = rows.assign(run_id="bm25", base_model="bm25")
    store_rows(pd.concat([rows, trained, bm25], ignore_index=True))
    export_mteb("exp", tmp_path)
    metas = {}
    for path in sorted((tmp_path / "results").glob("*/*/model_meta.json")):
        meta = ModelMeta.model_validate_json_resolved(path.read_text())  # raises on any invalid field
        metas[meta.name] = meta
        assert path.parent.parent.name == meta.model_name_as_path() and path.parent.name == meta.revision
    assert sorted(metas) == ["bench/bm25", "bench/hybrid-a0.5-me5-small-mlqa-r-s1-300steps", "bench/me5-small"]
    base, ckpt = metas["bench/me5-small"], metas["bench/hybrid-a0.5-me5-small-mlqa-r-s1-300steps"]
    assert base.adapted_from == "intfloat/multilingual-e5-small" and base.languages == ["eng-Latn"]
    assert base.release_date == "2026-01-01" and base.loader is None and base.open_weights is True
    assert ckpt.revision == "0123abcd" and ckpt.adapted_from == "bench/me5-small" and ckpt.open_weights is None
    assert {"MLQAR-LAReQA-mono", "MLQAR-LAReQA-cross", "MLQAR-LAReQA-multi"} <= ckpt.training_datasets
    assert not base.training_datasets & {"MLQAR-LAReQA-mono"} and metas["bench/bm25"].training_datasets == set()


def test_checkpoint_revision_is_its_fingerprint(tmp_path):
    rows = tidy({("trained", "map"): 0.4})
    rows["run_id"], rows["suite"], rows["split"], rows["seed"] = "hybrid-x@0123abcd", "xquad-r", "test", 1
    store_rows(rows)
    (path,) = export_mteb("exp", tmp_path)
    assert path.parent.name == "0123abcd" and path.parent.parent.name == "bench__hybrid-x"


def test_dataset_revision_is_a_content_hash_of_the_recorded_files():
    one = {"lareqa/xquad-r/en.json": "aa", "lareqa/xquad-r/de.json": "bb"}
    revision = dataset_revision([one, {"lareqa/xquad-r/en.json": "aa"}])
    assert revision.startswith("files-sha256:") and revision == dataset_revision([one])
    assert dataset_revision([one, None]) == "unrecorded"
    with pytest.raises(ValueError, match="two contents"):
        dataset_revision([one, {"lareqa/xquad-r/en.json": "cc"}])


def test_metric_names_and_bad_input():
    assert mteb_metric("ndcg@10") == "ndcg_at_10" and mteb_metric("map") == "map"
    with pytest.raises(ValueError, match="nothing to export.*score something first"):
        export_mteb("nothing-here")
    rows = tidy({("base", "map"): 0.5})
    rows["suite"], rows["dataset"] = "mystery", "mystery"
    store_rows(rows, "odd")
    with pytest.raises(ValueError, match="no MTEB task for suite 'mystery'.*bench/export/tasks.py"):
        export_mteb("odd")
