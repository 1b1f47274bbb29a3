"""Everything a report reads, loaded once: an experiment's tidy scores (one run per model and task), its
per-query scores, the training manifests, the experiment definition and the paper's reported numbers.

Models are gathered into groups: a trained group is one (base model, trainer, alpha, training data) over its
seeds; an untrained model (a reference such as BM25 or the base encoder) is a group of its own.

The evaluation length and precision of every score are read from its run record (`model_max_seq_length`,
`precision`; a record without `precision` predates bf16 and is fp32), never from run ids. A run id's `-L<N>` or
`+<variant>` suffix only keeps such a run apart as a model of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.results import ResultStore, is_dense, safe_name
from bench.runkey import RunKey
from bench.train.trainers import uses_alpha

REFERENCE_DIR = Path(__file__).parent / "reference"
REPORTED_CSV = REFERENCE_DIR / "elmahdy2024_reported.csv"
CLAIMS_MD = REFERENCE_DIR / "claims.md"

REPORTED_DATASETS = {"xquad-r": "xquad-r", "mlqa-r": "mlqa-r", "miracl": "miracl-dev"}  # ours -> the paper's
LOWER_IS_BETTER = {"rank_distance"}
TASK_KEY = ["dataset", "setting", "query_lang", "doc_lang"]
PER_QUERY_COLUMNS = ["run_id", "dataset", "setting", "query_lang", "doc_lang", "query_id", "metric", "value"]
# The per-query metrics a report tests or checks (a paper grid holds tens of millions of per-query rows).
TESTED_METRICS = ("map", "rank_distance", "ndcg@10")


@dataclass
class ReportData:
    name: str
    folder: Path
    scores: pd.DataFrame      # tidy rows, one run per (model, task, metric), plus group / train_data / length cut
    groups: pd.DataFrame      # one row per group: group, label, kind, base_model, trainer, alpha, train_data, ...
    per_query: pd.DataFrame   # per-query rows of the kept runs, plus model / group / seed
    manifests: dict[str, dict] = field(default_factory=dict)       # model -> training manifest
    manifest_sources: dict[str, Path] = field(default_factory=dict)
    definition: dict | None = None
    definition_path: Path | None = None
    reported: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)               # what loading dropped or had to guess
    _units: dict | None = field(default=None, repr=False)

    def units(self, group: str, dataset: str, setting: str, metric: str) -> pd.DataFrame:
        """The per-query rows of one group on one (dataset, setting, metric), indexed once for every lookup."""
        if self._units is None:
            keys = ["group", "dataset", "setting", "metric"]
            self._units = {key: part for key, part in self.per_query.groupby(keys, sort=False, observed=True)}
        return self._units.get((group, dataset, setting, metric), self.per_query.iloc[:0])

    def group_row(self, group: str) -> pd.Series:
        return self.groups.set_index("group").loc[group]

    def label(self, group: str) -> str:
        return str(self.group_row(group)["label"])

    def trained_groups(self, trainer: str | None = None) -> pd.DataFrame:
        trained = self.groups[self.groups["kind"] == "trained"]
        return trained if trainer is None else trained[trained["trainer"] == trainer]


def load_report_data(name: str, root: Path | None = None, models_root: Path | None = None) -> ReportData:
    store = ResultStore(name, root) if root else ResultStore.find(name)
    if not store.folder.is_dir():
        siblings = sorted(p.name for p in store.folder.parent.glob("*") if p.is_dir())
        raise ValueError(f"no results at {store.folder}; experiments there: {', '.join(siblings) or 'none'}")
    notes: list[str] = []
    scores = with_records(store.folder, kept_runs(store.load(), notes))
    manifests, sources = training_manifests(store.folder, scores, models_root, notes)
    definition, definition_path = experiment_definition(name, store.folder)
    scores = with_groups(scores, manifests, *planned_cells(definition, notes))
    return ReportData(
        name=name, folder=store.folder, scores=scores, groups=group_table(scores),
        per_query=per_query_scores(store.folder, scores), manifests=manifests, manifest_sources=sources,
        definition=definition, definition_path=definition_path, reported=reported_scores(), notes=notes,
    )


# --------------------------------------------------------------------------------------------- scores


def kept_runs(tidy: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """One run per (model, task, metric): where a model was scored twice on a task (a re-run with other
    weights, or another length cut) the newest run is kept, and the report says which were dropped.

    An encoder or search variant that changes the numerics (`<key>+int8`, `+onnx`, `+hnsw`) is a model of its
    own, `<model>+<variant>`, reported beside the fp32 exact one; `checkpoint` keeps the plain name."""
    if tidy.empty:
        return tidy.assign(variant=pd.Series(dtype=str), checkpoint=pd.Series(dtype=str))
    tidy = tidy.copy()
    keys = [RunKey.parse(str(r)) for r in tidy["run_id"]]
    tidy["variant"] = ["+".join(key.variants) for key in keys]
    tidy["checkpoint"] = tidy["model"].astype(str)
    tidy["model"] = [replace(key, model=checkpoint).format() for key, checkpoint in zip(keys, tidy["checkpoint"])]
    key = ["model", "split", *TASK_KEY, "metric"]
    newest = tidy.sort_values("created_at").drop_duplicates(key, keep="last")
    dropped = sorted(set(tidy["run_id"]) - set(newest["run_id"]))
    partly = tidy.merge(newest[[*key, "run_id"]], on=key, suffixes=("", "_kept"))
    partly = sorted(set(partly.loc[partly["run_id"] != partly["run_id_kept"], "run_id"]) - set(dropped))
    if dropped or partly:
        notes.append(f"runs superseded by a newer run of the same model and task (not reported): "
                     f"{', '.join(dropped + partly)}")
    return newest.reset_index(drop=True)


def _suffix(variant: str) -> str:
    """'L128+int8' -> '-L128+int8', 'int8' -> '+int8'."""
    if not variant:
        return ""
    return f"-{variant}" if variant.startswith("L") and variant[1:2].isdigit() else f"+{variant}"


RECORD_KEY = ["run_id", *TASK_KEY]


def with_records(folder: Path, scores: pd.DataFrame) -> pd.DataFrame:
    """Each score with the evaluation length and precision its run record states: `eval_length` (tokens; nan
    for BM25, which reads whole texts, or without a record) and `precision` ("fp32" when a dense model's record
    predates the key, "" for BM25, "not recorded" without a record)."""
    rows = []
    for run in sorted(set(scores["run_id"].astype(str))) if len(scores) else []:
        for path in (folder / safe_name(run)).glob("*.record.json"):
            try:
                record = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            length = record.get("model_max_seq_length")
            rows.append({"run_id": run, **{k: str(record.get(k, "")) for k in TASK_KEY},
                         "eval_length": float(length) if length is not None else np.nan,
                         "precision": str(record.get("precision") or ("fp32" if is_dense(record) else ""))})
    records = pd.DataFrame(rows, columns=[*RECORD_KEY, "eval_length", "precision"]).drop_duplicates(RECORD_KEY)
    keyed = scores.astype({k: str for k in RECORD_KEY})
    merged = keyed.merge(records, on=RECORD_KEY, how="left")
    merged["precision"] = merged["precision"].fillna("not recorded")
    for column in scores.columns:  # the tidy columns keep their own types
        merged[column] = scores[column].to_numpy()
    return merged


def planned_cells(definition: dict | None, notes: list[str]) -> tuple[dict, int | None]:
    """(checkpoint name -> its Cell, the file's step budget) of the experiment file the results were made under;
    the budget is None when no stage sets other steps, and ({}, None) without a readable file."""
    from bench.experiment.plan import checkpoint_dir
    from bench.experiment.schema import ExperimentError, parse_experiment, training_steps, unique_cells

    if not definition:
        return {}, None
    try:
        experiment = parse_experiment(definition)
    except (ExperimentError, ValueError) as error:
        notes.append(f"the experiment file beside the results could not be read ({error})")
        return {}, None
    cells = {checkpoint_dir(experiment, cell).name: cell for _, cell in unique_cells(experiment)}
    # Step counts tell groups apart only where the file asks for a learning curve (a stage with `steps:`).
    curve = any(cell.steps is not None for cell in cells.values())
    return cells, training_steps(experiment.training) if curve else None


def train_data_of(checkpoint: str, manifest: dict | None, planned: dict) -> str:
    """The training set of a checkpoint: its manifest's, else what the experiment file planned for a checkpoint
    of that name, else "unknown"."""
    if manifest and manifest.get("train_data"):
        return str(manifest["train_data"])
    return planned[checkpoint].train_data if checkpoint in planned else "unknown"


def steps_of(checkpoint: str, manifest: dict | None, planned: dict, default: int | None) -> float:
    """A checkpoint's optimiser steps when they differ from the file's budget (a learning-curve cell), else nan:
    from its manifest, else from the experiment file."""
    steps = (manifest or {}).get("options", {}).get("steps")
    if steps is None and checkpoint in planned:
        steps = planned[checkpoint].steps
    return float(steps) if steps is not None and default is not None and int(steps) != default else np.nan


def with_groups(scores: pd.DataFrame, manifests: dict[str, dict], planned: dict | None = None,
                default_steps: int | None = None) -> pd.DataFrame:
    planned = planned or {}
    scores = scores.copy()
    trained = scores["trainer"].fillna("none") != "none"
    scores["trainer"] = scores["trainer"].fillna("none")
    scores["train_data"] = [train_data_of(c, manifests.get(m), planned) if t else ""
                            for m, c, t in zip(scores["model"], scores["checkpoint"], trained)]
    scores["steps"] = [steps_of(c, manifests.get(m), planned, default_steps) if t else np.nan
                       for m, c, t in zip(scores["model"], scores["checkpoint"], trained)]
    alpha = scores["alpha"].map(lambda a: "" if pd.isna(a) else f"{float(a):g}")
    steps = scores["steps"].map(lambda n: "" if pd.isna(n) else f"|{int(n)}steps")
    scores["group"] = np.where(
        trained, scores["trainer"] + "|" + alpha + "|" + scores["base_model"].astype(str) + "|" + scores["train_data"]
        + "|" + scores["variant"] + steps, scores["model"].astype(str))
    return scores


def group_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per group with a short label: the trainer (and alpha for hybrid), with the base model and the
    training data added only where the experiment has several of them."""
    columns = ["group", "label", "kind", "base_model", "trainer", "alpha", "train_data", "steps", "models", "seeds"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for group, part in scores.groupby("group", sort=False):
        first = part.iloc[0]
        # A checkpoint trained for other than the file's steps is a point of a learning curve, not a seed of the
        # strategy's main group: a kind of its own, which the comparisons and claims leave out.
        kind = "reference" if first["trainer"] == "none" else "trained" if pd.isna(first["steps"]) else "learning-curve"
        rows.append({"group": group, "kind": kind,
                     "variant": first["variant"],
                     "base_model": first["base_model"], "trainer": first["trainer"], "alpha": first["alpha"],
                     "train_data": first["train_data"], "steps": first["steps"], "models": sorted(set(part["model"])),
                     "seeds": sorted({int(s) for s in part["seed"].dropna()})})
    groups = pd.DataFrame(rows, columns=[c for c in columns if c != "label"] + ["variant"])
    trained = groups[groups["kind"] == "trained"]
    several_bases = trained["base_model"].nunique() > 1
    several_data = trained["train_data"].nunique() > 1
    groups["label"] = [_label(row, several_bases, several_data) for row in groups.itertuples()]
    order = {"reference": 0, "trained": 1, "learning-curve": 2}
    groups = groups.assign(_kind=groups["kind"].map(order), _trainer=groups["trainer"].map(trainer_rank))
    return groups.sort_values(["_kind", "_trainer", "base_model", "train_data", "alpha", "label"]) \
        .drop(columns=["_kind", "_trainer"]).reset_index(drop=True)[columns]


TRAINER_ORDER = ("hybrid", "mtl", "xx-mono", "xy", "x-x", "en-en")


def trainer_rank(trainer: str) -> int:
    return TRAINER_ORDER.index(trainer) if trainer in TRAINER_ORDER else len(TRAINER_ORDER)


def _label(row, several_bases: bool, several_data: bool) -> str:
    if row.kind == "reference":
        if row.group == "bm25":
            return row.group
        key = RunKey.parse(row.group)  # a run kept apart by its cut is named by it; its length is recorded
        return f"{replace(key, length=None).format()} (untrained, cut to {key.length})" if key.length \
            else f"{row.group} (untrained)"
    label = f"{row.trainer} α={float(row.alpha):g}" if uses_alpha(row.trainer) and pd.notna(row.alpha) else row.trainer
    extra = [row.base_model] if several_bases else []
    extra += [f"on {row.train_data}"] if several_data else []
    extra += [f"{int(row.steps)} steps"] if pd.notna(row.steps) else []
    label = f"{label} ({', '.join(extra)})" if extra else label
    return f"{label} {_suffix(row.variant).lstrip('-')}" if row.variant else label


def per_query_scores(folder: Path, scores: pd.DataFrame) -> pd.DataFrame:
    """Per-query rows of the kept runs only (the metrics a report tests), with each run's model, group and seed.

    One parquet file holds one (run, task): a file whose task was superseded is skipped whole, and the run's
    labels are added as constant columns, so no join over millions of rows is needed."""
    columns = [*PER_QUERY_COLUMNS, "model", "group", "seed"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    kept = {tuple(key): (model, group, seed) for *key, model, group, seed in
            scores[["run_id", *TASK_KEY, "model", "group", "seed"]].itertuples(index=False)}
    tables = []
    for path in sorted(folder.rglob("*.per_query.parquet")):
        if path.parent.name not in {key[0] for key in kept}:
            continue
        table = pq.read_table(path, columns=PER_QUERY_COLUMNS, filters=[("metric", "in", list(TESTED_METRICS))],
                              read_dictionary=PER_QUERY_COLUMNS[:-1])
        if table.num_rows == 0:
            continue
        key = tuple(str(table.column(c)[0].as_py()) for c in ["run_id", *TASK_KEY])
        if key not in kept:
            continue
        model, group, seed = kept[key]
        n = table.num_rows
        tables.append(table.append_column("model", _constant(model, n)).append_column("group", _constant(group, n))
                      .append_column("seed", pa.array(np.full(n, np.nan if pd.isna(seed) else float(seed)))))
    if not tables:
        return pd.DataFrame(columns=columns)
    # Dictionary-encoded strings become categories: millions of rows stay small (every groupby over them
    # passes observed=True).
    return pa.concat_tables(tables, promote_options="default").to_pandas()[columns]


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([str(value)]))


# --------------------------------------------------------------------------------- manifests, definitions


def training_manifests(folder: Path, scores: pd.DataFrame, models_root: Path | None,
                       notes: list[str]) -> tuple[dict[str, dict], dict[str, Path]]:
    """model -> its training manifest: results/<experiment>/<run_id>/training_manifest.json, else (until the
    runner has copied it) models/<model>/manifest.json."""
    manifests: dict[str, dict] = {}
    sources: dict[str, Path] = {}
    if scores.empty:
        return manifests, sources
    trained = scores[scores["trainer"].fillna("none") != "none"]
    for (model, checkpoint), runs in trained.groupby(["model", "checkpoint"])["run_id"]:
        candidates = [folder / run / "training_manifest.json" for run in sorted(set(runs))]
        candidates.append(_models_root(models_root) / str(checkpoint) / "manifest.json")
        for path in candidates:
            if path.is_file():
                try:
                    manifests[model] = json.loads(path.read_text())
                    sources[model] = path
                    break
                except json.JSONDecodeError:
                    notes.append(f"unreadable training manifest {path}")
    outside = sorted(m for m, p in sources.items() if p.name == "manifest.json")
    if outside:
        notes.append(f"training manifests read from the checkpoint folders (not yet copied beside the results): "
                     f"{', '.join(outside)}")
    missing = sorted(set(trained["model"]) - set(manifests))
    if missing:
        notes.append(f"no training manifest for {', '.join(missing)}: leakage, batch kinds and loss curves "
                     f"of these models are not reported")
    return manifests, sources


def _models_root(models_root: Path | None) -> Path:
    from bench.train.options import models_root as default_root

    return default_root(models_root)


def experiment_definition(name: str, folder: Path) -> tuple[dict | None, Path | None]:
    """The experiment file the numbers were made under (the copy beside the results), else the shipped one."""
    from bench.paths import PROJECT_ROOT

    for path in (folder / "experiment.yaml", PROJECT_ROOT / "bench" / "experiments" / f"{name}.yaml"):
        if path.is_file():
            try:
                raw = yaml.safe_load(path.read_text())
            except yaml.YAMLError:
                continue
            if isinstance(raw, dict):
                return raw, path
    return None, None


def reported_scores() -> pd.DataFrame:
    """The paper's reported numbers (arXiv:2408.10536, Tables 3-8, 12, 13): one row per value."""
    return pd.read_csv(REPORTED_CSV) if REPORTED_CSV.is_file() else pd.DataFrame(
        columns=["source", "table", "base_model", "dataset", "setting", "language", "strategy", "metric", "value"])
