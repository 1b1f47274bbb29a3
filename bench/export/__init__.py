"""Results in MTEB's results layout, which mteb's own loaders accept with validation on:
<out>/results/<org__model>/<revision>/<Task>.json and model_meta.json, so that
`mteb.ResultCache(<out>).load_results(tasks=..., validate_and_filter=True)` reads them (pass the tasks of
`bench.export.tasks.mteb_task` for the tasks mteb has no registry entry for).

Tasks (bench/export/tasks.py): BEIR sets and MIRACL map to MTEB's own tasks (SciFact, ...; main score
ndcg_at_10). XQuAD-R and MLQA-R follow LAReQA's protocol, which no MTEB task implements, so they are tasks of
their own, one per setting (XQuADR-LAReQA-mono, -cross, -multi; MLQAR-LAReQA-...), with one hf_subset per
language pair ("de-en", "de-multi") and mAP as the main score: get_score() is one setting's mean. Tatoeba is
Tatoeba-bench, accuracy@1 per direction.

dataset_revision: the offline data mirror records no Hugging Face revisions, so it is a content hash,
"files-sha256:<16 hex>": sha256 over the sorted "<file> <sha256 of the file, 16 hex>" lines of the data files
the run records name (their `inputs.data`). Results whose records name no data files (stored before
fingerprints, never migrated: `python -m bench.fingerprint`) say "unrecorded". Model metadata: meta.py."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from bench.export.meta import model_meta, model_name, revision
from bench.export.tasks import mteb_task, subset, task_name
from bench.results import ResultStore, atomic_write, safe_name

__all__ = ["export_mteb", "mteb_metric", "task_result", "dataset_revision"]
UNRECORDED = "unrecorded"


def mteb_metric(name: str) -> str:
    """bench's metric names in MTEB's spelling: ndcg@10 -> ndcg_at_10, recall@1 -> recall_at_1."""
    return name.replace("@", "_at_")


def dataset_revision(data: list[dict | None]) -> str:
    """The content hash of the data files named by the records of one result file (see the module docstring)."""
    if not data or any(not files for files in data):
        return UNRECORDED
    merged: dict[str, str] = {}
    for files in data:
        for name, digest in files.items():
            if merged.setdefault(name, digest) != digest:
                raise ValueError(f"{name}: run records of one task name two contents ({merged[name]}, {digest}); "
                                 f"the results were computed on different data: re-run the experiment, which "
                                 f"recomputes results whose data changed")
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(merged.items()))
    return "files-sha256:" + hashlib.sha256(lines.encode()).hexdigest()[:16]


def task_result(rows: pd.DataFrame, name: str, split: str, seconds: float | None, data_revision: str) -> dict:
    """One MTEB TaskResult dict for one model on one task; every subset's languages and main score come from the
    task's metadata, and a subset the task does not define is refused."""
    task = mteb_task(name)
    languages = task.metadata.hf_subsets_to_langscripts
    main = task.metadata.main_score
    subsets = []
    for key, group in rows.groupby(rows.apply(subset, axis=1), sort=True):
        if key not in languages:
            raise ValueError(f"{name}: no hf_subset {key!r} in its task metadata (known: "
                             f"{', '.join(sorted(languages)[:12])}, ...); extend bench/export/tasks.py")
        scores = {mteb_metric(m): float(v) for m, v in zip(group["metric"], group["value"])}
        if main not in scores:
            raise ValueError(f"{name} {key}: no {main} (the main score) among {', '.join(scores)}; re-run the task")
        subsets.append({**scores, "main_score": scores[main], "hf_subset": key, "languages": languages[key]})
    computed = pd.to_datetime(rows["created_at"], utc=True, format="ISO8601").max()
    return {"dataset_revision": data_revision, "task_name": name, "mteb_version": version("mteb"),
            "scores": {split: subsets}, "evaluation_time": seconds, "kg_co2_emissions": None,
            "date": computed.timestamp()}


def export_mteb(experiment: str, out: Path | None = None) -> list[Path]:
    """Write every (model, task) of an experiment; returns the result files written (not model_meta.json)."""
    store = ResultStore.find(experiment)
    frame = store.load()
    if frame.empty:
        raise ValueError(f"no results in {store.folder}: nothing to export; score something first "
                         f"(`python -m bench experiment {experiment}` or `python -m bench run`)")
    frame = frame.assign(task=[task_name(*key) for key in zip(frame["suite"], frame["dataset"], frame["setting"])])
    records = _records(store)
    out = Path(out or store.folder / "mteb")
    written = []
    for run_id, run_rows in frame.groupby("run_id", sort=True):
        folder = out / "results" / safe_name(model_name(run_id)) / revision(run_id)
        languages = set()
        for (name, split), rows in run_rows.groupby(["task", "split"], sort=True):
            keys = [(safe_name(run_id), name, split, s) for s in sorted(set(rows.apply(subset, axis=1)))]
            found = [records.get(key) for key in keys]
            seconds = sum(r["seconds"] for r in found if r) if all(found) else None
            result = task_result(rows, name, split, None if seconds is None else round(seconds, 3),
                                 dataset_revision([r["data"] if r else None for r in found]))
            languages |= {lang for s in result["scores"][split] for lang in s["languages"]}
            path = folder / f"{name}.json"
            atomic_write(path, lambda p, r=result: p.write_text(json.dumps(r, indent=2)))
            written.append(path)
        run_records = [r["record"] for key, r in records.items() if key[0] == safe_name(run_id)]
        meta = model_meta(run_id, run_rows, run_records, sorted(languages)).to_dict()
        meta["training_datasets"] = sorted(meta["training_datasets"]) if meta["training_datasets"] else meta[
            "training_datasets"]  # a set in ModelMeta: sorted, so that a re-export writes the same file
        atomic_write(folder / "model_meta.json", lambda p, m=meta: p.write_text(json.dumps(m, indent=2, default=str)))
    return written


def _records(store: ResultStore) -> dict[tuple[str, str, str, str], dict]:
    """(run id, task, split, hf_subset) -> its run record, wall seconds (model loading left out) and data files."""
    found = {}
    for path, record in store.record_files():
        row = pd.Series({k: record.get(k) for k in ("suite", "dataset", "setting", "query_lang", "doc_lang")})
        key = (path.parent.name, task_name(row.suite, row.dataset, row.setting), record["split"], subset(row))
        found[key] = {"record": record, "data": (record.get("inputs") or {}).get("data"),
                      "seconds": sum(v for k, v in record["seconds"].items() if k != "load_model")}
    return found
