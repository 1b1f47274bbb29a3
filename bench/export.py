"""Results in MTEB's results layout, so MTEB tooling (mteb.results.TaskResult.from_disk, leaderboards) reads
them: <out>/<model>/<revision>/<Task>.json and model_meta.json, one file per model and task.

BEIR sets map to MTEB's own tasks (SciFact, NFCorpus, ArguAna; main score ndcg_at_10). XQuAD-R and MLQA-R
follow LAReQA's protocol, which no MTEB task implements (MTEB's XQuADRetrieval / MLQARetrieval use other
corpora), so they are written under their own names, XQuADR-LAReQA and MLQAR-LAReQA, with one hf_subset per
setting and language pair (e.g. "cross-de-en") and mAP as the main score; Tatoeba as Tatoeba-bench with
accuracy@1 per direction. TaskResult.get_score() averages over hf_subsets, i.e. over settings too: read a
setting's subsets for the paper's per-setting numbers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from bench.results import ResultStore, atomic_write, safe_name

TASK_NAMES = {"scifact": "SciFact", "nfcorpus": "NFCorpus", "arguana": "ArguAna", "miracl": "MIRACLRetrieval",
              "xquad-r": "XQuADR-LAReQA", "mlqa-r": "MLQAR-LAReQA", "tatoeba": "Tatoeba-bench"}
MAIN_SCORE = {"beir": "ndcg_at_10", "miracl": "ndcg_at_10", "xquad-r": "map", "mlqa-r": "map",
              "tatoeba": "accuracy_at_1"}
SCRIPTS = {"ar": "arb-Arab", "de": "deu-Latn", "el": "ell-Grek", "en": "eng-Latn", "es": "spa-Latn",
           "hi": "hin-Deva", "ru": "rus-Cyrl", "th": "tha-Thai", "tr": "tur-Latn", "vi": "vie-Latn",
           "zh": "zho-Hans"}


def mteb_metric(name: str) -> str:
    """bench's metric names in MTEB's spelling: ndcg@10 -> ndcg_at_10, recall@1 -> recall_at_1."""
    return name.replace("@", "_at_")


def _subset(row) -> str:
    if row.suite == "beir":
        return "default"
    if row.suite == "miracl":
        return row.query_lang
    return f"{row.setting}-{row.query_lang}-{row.doc_lang}"


def _languages(rows: pd.DataFrame) -> list[str]:
    langs = set(rows["query_lang"]) | set(rows["doc_lang"])
    if "multi" in langs:
        langs = langs - {"multi"} | set(rows["query_lang"])
    return sorted(SCRIPTS.get(lang, lang) for lang in langs)


def task_result(rows: pd.DataFrame, dataset: str, split: str, seconds: float | None) -> dict:
    """One MTEB TaskResult dict for one model on one dataset."""
    main = MAIN_SCORE.get("beir" if rows["suite"].iloc[0] == "beir" else dataset,
                          mteb_metric(rows["metric"].iloc[0]))
    subsets = []
    for subset, group in rows.groupby(rows.apply(_subset, axis=1), sort=True):
        scores = {mteb_metric(m): float(v) for m, v in zip(group["metric"], group["value"])}
        subsets.append({**scores, "main_score": scores.get(main), "hf_subset": subset,
                        "languages": _languages(group)})
    return {"dataset_revision": "bench-offline-mirror", "task_name": TASK_NAMES.get(dataset, dataset),
            "mteb_version": version("mteb"), "scores": {split: subsets}, "evaluation_time": seconds,
            "kg_co2_emissions": None, "date": datetime.now(timezone.utc).timestamp()}


def model_meta(rows: pd.DataFrame, run_id: str) -> dict:
    first = rows.iloc[0]
    return {"name": run_id, "revision": _revision(run_id), "base_model": first["base_model"],
            "trainer": first["trainer"], "seed": None if pd.isna(first["seed"]) else int(first["seed"]),
            "alpha": None if pd.isna(first["alpha"]) else float(first["alpha"]), "framework": ["bench"]}


def _revision(run_id: str) -> str:
    """Checkpoints carry a weights fingerprint after '@'; registry models have no revision of their own."""
    return run_id.split("@", 1)[1] if "@" in run_id else "no_revision_available"


def export_mteb(experiment: str, out: Path | None = None) -> list[Path]:
    """Write every (model, dataset) of an experiment; returns the files written."""
    store = ResultStore(experiment)
    frame = store.load()
    if frame.empty:
        raise ValueError(f"no results in {store.folder}: nothing to export")
    seconds = _task_seconds(store)
    out = Path(out or store.folder / "mteb")
    written = []
    for (run_id, dataset, split), rows in frame.groupby(["run_id", "dataset", "split"], sort=True, dropna=False):
        folder = out / safe_name(run_id) / _revision(run_id)
        result = task_result(rows, dataset, split, seconds.get((run_id, dataset)))
        path = folder / f"{result['task_name']}.json"
        atomic_write(path, lambda p, r=result: p.write_text(json.dumps(r, indent=2)))
        meta = model_meta(rows, run_id)
        atomic_write(folder / "model_meta.json", lambda p, m=meta: p.write_text(json.dumps(m, indent=2)))
        written.append(path)
    return written


def _task_seconds(store: ResultStore) -> dict[tuple[str, str], float]:
    """Wall seconds per (run, dataset), summed over its tasks from the run records."""
    totals: dict[tuple[str, str], float] = {}
    for path, record in store.record_files():
        key = (path.parent.name, record["dataset"])
        totals[key] = totals.get(key, 0.0) + sum(v for k, v in record["seconds"].items() if k != "load_model")
    return {k: round(v, 3) for k, v in totals.items()}
