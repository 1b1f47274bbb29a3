"""What a stored result was computed from: everything that changes its numbers, recorded as `inputs` in the
run record and compared on every re-run (DESIGN.md, "Results: expected scores and outputs").

The parts: the data files' content hashes, the ranking depth k (top-k tasks only), the model's fingerprint
(the sha256 of its folder, which holds the weights, the prompts and the similarity function; for BM25 its
parameters and the pyserini version, which fixes the analyzers), the length cut, precision, encoder backend,
search method, the metrics and the version of their code. Everything is known before a model is loaded, so
a re-run decides what to skip without loading one.

Results stored before fingerprints existed have no `inputs`. They are migrated, not recomputed: their inputs
are rebuilt from the run record (model fingerprint, length, backend, precision) and the data as it is now,
with k taken as the default 1000 it was always run at; a record whose document or query count no longer
matches the data is left unmigrated, so the task is computed again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.data.task import RetrievalTask
from bench.digest import file_digest
from bench.eval.metrics import METRIC_CODE_VERSION
from bench.models.registry import ModelSpec, search_of_suffix
from bench.paths import data_root
from bench.protocol import LAREQA_SETS
from bench.runkey import RunKey

LEGACY_K = 1000  # the only depth `run` and `experiment` used before k was recorded
_model_digests: dict[str, str] = {}


def data_name(path: Path) -> str:
    """A data file as named in a fingerprint: relative to the data root when inside it."""
    try:
        return str(Path(path).resolve().relative_to(data_root().resolve()))
    except ValueError:
        return str(path)


def data_digests(task: RetrievalTask) -> dict[str, str]:
    return {data_name(path): file_digest(path) for path in task.files}


# Files of a model folder that describe it without changing its numbers: the provisioning record (with its
# build time) and a checkpoint's training manifest (loss curve, timings).
_METADATA_FILES = frozenset({"provenance.json", "manifest.json"})


def model_fingerprint(spec: ModelSpec) -> str:
    """The model part of a fingerprint, without loading the model (memoised per location): BM25's parameters
    and pyserini version; a model folder's files other than its metadata (so rebuilding the same weights
    does not change it); a Hugging Face id as named."""
    if spec.kind == "bm25":
        from bench.retrieval.bm25.jvm import pyserini_version

        return bm25_fingerprint(spec.bm25_k1, spec.bm25_b, pyserini_version())
    location = spec.locate()
    if location not in _model_digests:
        _model_digests[location] = folder_digest(Path(location)) if Path(location).is_dir() else f"hf:{location}"
    return _model_digests[location]


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in _METADATA_FILES):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(file_digest(path).encode())
    return digest.hexdigest()[:16]


def bm25_fingerprint(k1: float, b: float, pyserini: str) -> str:
    return f"bm25(k1={float(k1):g},b={float(b):g},pyserini={pyserini})"


def inputs(spec: ModelSpec, task: RetrievalTask, k: int, model: str, dense_options=None) -> dict:
    """Everything that changes the numbers of (spec, task) at depth k; `model` from model_fingerprint;
    `dense_options` (bench.retrieval.dense.options.DenseOptions): a stored float16 matrix or ANN parameters
    other than the defaults ("dense_store", None otherwise, as results recorded before it existed)."""
    dense = spec.kind == "dense"
    return {
        "data": data_digests(task), "k": k if task.ranking == "topk" else None, "model": model,
        "max_seq_length": spec.max_seq_length if dense else None, "precision": spec.precision if dense else None,
        "backend": spec.backend if dense else None, "search": spec.search if dense else None,
        "metrics": list(task.metrics), "metric_code": METRIC_CODE_VERSION,
        "dense_store": dense_options.numerics() if dense and dense_options is not None else None,
    }


def differences(stored: dict, current: dict) -> list[str]:
    """What changed, in words: [] when the stored result stands for the current inputs."""
    out = []
    for key in current:
        old, new = stored.get(key), current[key]
        if old == new:
            continue
        if key == "data" and isinstance(old, dict):
            changed = sorted(name for name in {*old, *new} if old.get(name) != new.get(name))
            out.append(f"data changed ({', '.join(changed)})")
        else:
            out.append(f"{key} {old} -> {new}")
    return out


def migrated_inputs(record: dict, spec: ModelSpec, task: RetrievalTask, model: str) -> dict | None:
    """The inputs of a result stored before fingerprints, from its run record and the data as it is now;
    None when the record does not match the data (its document or query count differs).
    BM25's part comes from the record (k1, b, pyserini version). A dense model's is `model`, the fingerprint
    of the model the results key names now: that key already pinned the model (a registry name is a bundled,
    version-pinned model; a checkpoint's key carries its weights' fingerprint)."""
    if record.get("n_docs") != len(task.corpus) or record.get("n_queries", 0) > len(task.queries):
        return None
    if spec.kind == "bm25":
        try:
            model = bm25_fingerprint(record["model_k1"], record["model_b"], record["libraries"]["pyserini"])
        except (KeyError, TypeError, ValueError):
            return None
    migrated = inputs(spec, task, LEGACY_K, model)
    if spec.kind == "dense":  # the length cut is part of the results key, so it matches by construction
        migrated.update(precision=record.get("precision", record.get("model_precision", "fp32")),
                        backend=record.get("model_backend", "torch"), search=record.get("model_search", "exact"))
    return migrated


def stale_data(record: dict) -> list[str]:
    """The data files of a stored result whose content is no longer what it was computed from (missing
    files included); [] when all match or the record has no fingerprint."""
    data = (record.get("inputs") or {}).get("data") or {}
    root = data_root()
    stale = []
    for name, digest in data.items():
        path = Path(name) if os.path.isabs(name) else root / name
        try:
            if file_digest(path) != digest:
                stale.append(name)
        except OSError:
            stale.append(f"{name} (missing)")
    return stale


def tasks_to_run(store, spec: ModelSpec, tasks: list[RetrievalTask], k: int, force: bool = False,
                 log=print, dense_options=None) -> list[tuple[RetrievalTask, dict]]:
    """(task, its inputs) of every task of `spec` that has no stored result standing for its current inputs,
    saying why a stored one is recomputed. Results stored before fingerprints are migrated on the way."""
    model = model_fingerprint(spec)
    todo, kept = [], 0
    for task in tasks:
        wanted = inputs(spec, task, k, model, dense_options)
        if force or not store.done(spec.key, task):
            todo.append((task, wanted))
            continue
        record = store.record(spec.key, task)
        stored = (record or {}).get("inputs")
        if record is not None and stored is None:
            stored = migrated_inputs(record, spec, task, model)
            if stored == wanted:
                store.update_record(spec.key, task, {**record, "inputs": stored, "inputs_migrated": True})
        why = (["no readable run record"] if record is None else
               ["stored before fingerprints, and its document or query count differs from the data"]
               if stored is None else differences(stored, wanted))
        if why:
            log(f"{spec.key}: {task.suite}/{task.key}: recomputing the stored result: {'; '.join(why)}")
            todo.append((task, wanted))
        else:
            kept += 1
    if kept:
        log(f"{spec.key}: {kept} task(s) already done in {store.folder} with the same inputs (--force to redo)")
    return todo


def stale_notes(store) -> list[str]:
    """Warnings for `show`: stored results whose data files changed since, and results without fingerprint."""
    changed, unprinted = [], 0
    for path, record in store.record_files():
        if "inputs" not in record:
            unprinted += 1
        elif stale := stale_data(record):
            changed.append(f"  {path.parent.name}/{path.name.removesuffix('.record.json')}: {', '.join(stale)}")
    notes = []
    if changed:
        notes += [f"warning: {len(changed)} stored result(s) were computed from data that has changed since "
                  f"(a re-run recomputes them):", *changed]
    if unprinted:
        notes.append(f"note: {unprinted} stored result(s) predate input fingerprints; a re-run checks and records them")
    return notes


def migrate(store, log=print) -> tuple[int, int]:
    """Write `inputs` into every run record of the store that lacks them, from the record and the data as it
    is now (see the module docstring); returns (migrated, left as they were). Nothing is recomputed."""
    from bench.results import safe_name

    records = [(path, record) for path, record in store.record_files() if "inputs" not in record]
    langs: dict[str, set[str]] = {}
    for _, record in records:
        langs.setdefault(record["suite"], set()).update({record.get("query_lang"), record.get("doc_lang")})
    loaded: dict[tuple, dict[str, RetrievalTask]] = {}
    migrated = left = 0
    unmigrated: dict[str, int] = {}
    for path, record in records:
        task = _task_of(record, langs.get(record["suite"], set()), loaded)
        run_id = path.parent.name
        spec = _spec_of(record, run_id)
        model = "" if spec.kind == "bm25" else _current_model(record)
        found = migrated_inputs(record, spec, task, model) if task is not None and model is not None else None
        if found is None or safe_name(run_id) != run_id:
            left += 1
            unmigrated[run_id] = unmigrated.get(run_id, 0) + 1
            continue
        store.update_record(run_id, task, {**record, "inputs": found, "inputs_migrated": True})
        migrated += 1
    for run_id, count in unmigrated.items():
        log(f"{store.folder / run_id}: {count} record(s) left as they were (model not on this machine, data "
            f"counts that differ, or a corpus that is not recorded); a re-run of their tasks checks them")
    return migrated, left


def _task_of(record: dict, langs: set, loaded: dict) -> RetrievalTask | None:
    """The task a record was computed on, loaded the way `run` loads it (None when it cannot be: MIRACL's
    corpus folder is not recorded)."""
    from bench.data.suites import SuiteOptions, suite_tasks
    from bench.data.task import DataError

    suite = record["suite"]
    if suite == "beir":
        key, options = ("beir", record["dataset"], record["split"]), SuiteOptions(datasets=(record["dataset"],),
                                                                                   split=record["split"])
    elif suite in LAREQA_SETS:
        from bench.data.lareqa import LAREQA_LANGS

        chosen = tuple(lang for lang in LAREQA_LANGS[suite] if lang in langs)
        key, options = (suite, chosen), SuiteOptions(langs=chosen)
    elif suite == "tatoeba":
        lang = record["query_lang"] if record["query_lang"] != "en" else record["doc_lang"]
        key, options = ("tatoeba", lang), SuiteOptions(langs=(lang,))
    else:
        return None
    if key not in loaded:
        try:
            loaded[key] = {t.key: t for t in suite_tasks(key[0], options)}
        except (DataError, ValueError):
            loaded[key] = {}
    task_key = "__".join([record["dataset"], record["split"], record["setting"],
                          f"{record['query_lang']}-{record['doc_lang']}"])
    return loaded[key].get(task_key)


def _current_model(record: dict) -> str | None:
    """The fingerprint of the model a dense record names, as it is here: a registry model, or the checkpoint
    folder it was loaded from (None when that folder is not on this machine)."""
    from bench.models.registry import MODELS

    name, location = str(record.get("model")), record.get("model_location")
    if name in MODELS:
        return model_fingerprint(MODELS[name])
    if location and Path(location).is_dir():
        return folder_digest(Path(location))
    return None


def _spec_of(record: dict, run_id: str) -> ModelSpec:
    """The spec a stored run was made with, as far as its key says (the parts that enter its inputs)."""
    key = RunKey.parse(run_id)
    return ModelSpec(name=str(record.get("model")), kind="bm25" if record.get("model") == "bm25" else "dense",
                     description="", max_seq_length=key.length, run_id=key.model, backend=key.backend or "torch",
                     precision=key.precision or "fp32", search=search_of_suffix(key.search))


if __name__ == "__main__":  # python -m bench.fingerprint EXPERIMENT...: migrate stored results
    import sys

    from bench.results import ResultStore

    for name in sys.argv[1:]:
        done, kept = migrate(ResultStore.find(name))
        print(f"{name}: {done} run record(s) given input fingerprints, {kept} left as they were")
