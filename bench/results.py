"""Tidy results: one row per (run, dataset, setting, query language, doc language, metric), per-query
scores beside them (parquet) and a run record (JSON). Writes are atomic; a finished task is skipped."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench import __version__
from bench.data.task import RetrievalTask
from bench.models.registry import ModelSpec
from bench.paths import PROJECT_ROOT, results_root
from bench.safety import atomic_write, check_name, remove_stale_temps

__all__ = ["ResultStore", "atomic_write", "safe_name", "git_sha", "tidy_rows", "per_query_frame", "TIDY_COLUMNS"]

TIDY_COLUMNS = [
    "experiment", "run_id", "model", "base_model", "trainer", "alpha", "seed", "suite", "dataset", "split",
    "setting", "query_lang", "doc_lang", "metric", "value", "n_queries", "bench_version", "git_sha", "created_at",
]


def git_sha() -> str:
    """HEAD's short sha (+dirty when bench/ has uncommitted changes); $BENCH_GIT_SHA where the code runs from
    an exported copy without .git (a lent GPU machine)."""
    if os.environ.get("BENCH_GIT_SHA"):
        return os.environ["BENCH_GIT_SHA"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "bench"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def safe_name(name: str) -> str:
    """A run id as a folder name: a Hugging Face id's '/' becomes '__'; '.', '..' and empty names are refused."""
    return check_name(str(name).replace("/", "__").replace("\\", "__"), "run id")


class ResultStore:
    """results/<experiment>/<run_id>/<task key>.{csv,per_query.parquet,record.json}"""

    def __init__(self, experiment: str, root: Path | None = None):
        self.experiment = check_name(experiment, "experiment name")
        self.folder = Path(root or results_root()) / experiment

    def _stem(self, run_id: str, task: RetrievalTask) -> Path:
        return self.folder / safe_name(run_id) / task.key

    def scores_path(self, run_id: str, task: RetrievalTask) -> Path:
        return self._stem(run_id, task).with_suffix(".csv")

    def done(self, run_id: str, task: RetrievalTask) -> bool:
        # The scores file is written last, so its presence means the task finished.
        return self.scores_path(run_id, task).is_file()

    def write(self, run_id: str, task: RetrievalTask, rows: pd.DataFrame, per_query: pd.DataFrame,
              record: dict) -> None:
        stem = self._stem(run_id, task)
        remove_stale_temps(stem.parent)  # left by writers killed mid-write
        atomic_write(stem.with_name(stem.name + ".per_query.parquet"), lambda p: per_query.to_parquet(p, index=False))
        atomic_write(stem.with_name(stem.name + ".record.json"),
                     lambda p: p.write_text(json.dumps(record, indent=2, sort_keys=True, default=str)))
        atomic_write(self.scores_path(run_id, task), lambda p: rows[TIDY_COLUMNS].to_csv(p, index=False))

    def records(self) -> pd.DataFrame:
        """One row per finished (model, task): the run record's stage seconds, docs/s and peak memory."""
        rows = []
        for path in sorted(self.folder.rglob("*.record.json")):
            record = json.loads(path.read_text())
            rows.append({"run_id": path.parent.name, "suite": record["suite"], "dataset": record["dataset"],
                         "setting": record["setting"], **{f"s_{k}": v for k, v in record["seconds"].items()},
                         "docs_per_second": record.get("docs_per_second"),
                         "peak_memory_mb": record.get("peak_memory_mb")})
        return pd.DataFrame(rows)

    def load(self) -> pd.DataFrame:
        return _read_scores(sorted(self.folder.rglob("*.csv")))

    def load_pairs(self, run_ids: list[str], tasks: list[RetrievalTask]) -> pd.DataFrame:
        """The stored rows of these (run, task) pairs only: a grid's store holds thousands of files."""
        paths = [self.scores_path(r, t) for r in run_ids for t in tasks]
        return _read_scores([p for p in paths if p.is_file()])


def _read_scores(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS)


def tidy_rows(experiment: str, spec: ModelSpec, run_id: str, task: RetrievalTask,
              scores: dict[str, float], n_queries: int, sha: str) -> pd.DataFrame:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return pd.DataFrame([{
        "experiment": experiment, "run_id": run_id, "model": spec.name, "base_model": spec.base_model,
        "trainer": spec.trainer, "alpha": spec.alpha, "seed": spec.seed, "suite": task.suite,
        "dataset": task.dataset, "split": task.split, "setting": task.setting, "query_lang": task.query_lang,
        "doc_lang": task.doc_lang, "metric": metric, "value": value, "n_queries": n_queries,
        "bench_version": __version__, "git_sha": sha, "created_at": created,
    } for metric, value in scores.items()], columns=TIDY_COLUMNS)


def per_query_frame(run_id: str, task: RetrievalTask, per_query: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(run_id, task.dataset, task.setting, task.query_lang, task.doc_lang, qid, metric, value)
         for qid, scores in per_query.items() for metric, value in scores.items()],
        columns=["run_id", "dataset", "setting", "query_lang", "doc_lang", "query_id", "metric", "value"],
    )
