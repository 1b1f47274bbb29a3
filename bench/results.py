"""Tidy results: one row per (run, dataset, setting, query language, doc language, metric), per-query
scores beside them (parquet), a run record (JSON) and, for top-k tasks, the ranking as a TREC run file.
Writes are atomic; a finished task is skipped."""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench import __version__
from bench.data.task import RetrievalTask
from bench.models.registry import ModelSpec
from bench.paths import PROJECT_ROOT, experiment_root, results_root
from bench.safety import atomic_write, check_name, remove_stale_temps

__all__ = ["ResultStore", "DamagedResult", "atomic_write", "safe_name", "git_sha", "read_record", "read_scores",
           "tidy_rows", "per_query_frame", "TIDY_COLUMNS", "trec_lines", "read_trec"]

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


def is_dense(record: dict) -> bool:
    """A run record of a dense model: it states the length its encoder read (BM25 records a backend, no length)."""
    return record.get("model_max_seq_length") is not None


def summed_stages(records: pd.DataFrame) -> list[str]:
    """The stage-seconds columns of ResultStore.records() that add up over a run's tasks: model loading is paid
    once per run (each record repeats it), so it is not one of them."""
    return [c for c in records.columns if c.startswith("s_") and c != "s_load_model"]


class ResultStore:
    """results/<experiment>/<run_id>/<task key>.{csv,per_query.parquet,record.json,trec.gz}"""

    def __init__(self, experiment: str, root: Path | None = None, note: Callable[[str], None] | None = None):
        self.experiment = check_name(experiment, "experiment name")
        self.folder = Path(root or results_root()) / experiment
        # Where damaged files are named as they are skipped (stderr by default).
        self.note = note or (lambda message: print(message, file=sys.stderr))

    @classmethod
    def find(cls, experiment: str, note: Callable[[str], None] | None = None) -> ResultStore:
        """The store a reader means by `experiment`: the user's own results when there are any, else the
        committed ones (bench.paths.experiment_root)."""
        return cls(experiment, experiment_root(check_name(experiment, "experiment name")), note)

    def _stem(self, run_id: str, task: RetrievalTask) -> Path:
        return self.folder / safe_name(run_id) / task.key

    def scores_path(self, run_id: str, task: RetrievalTask) -> Path:
        return self._stem(run_id, task).with_suffix(".csv")

    def done(self, run_id: str, task: RetrievalTask) -> bool:
        """The task's scores file exists (it is written last) and is whole: one finite value per metric."""
        path = self.scores_path(run_id, task)
        if not path.is_file():
            return False
        try:
            missing = sorted(set(task.metrics) - check_scores(path))
            if missing:
                raise DamagedResult(f"{path}: no row for {', '.join(missing)}")
        except DamagedResult as damaged:
            self.note(f"warning: {damaged}; computing it again")
            return False
        return True

    def record_path(self, run_id: str, task: RetrievalTask) -> Path:
        stem = self._stem(run_id, task)
        return stem.with_name(stem.name + ".record.json")

    def record(self, run_id: str, task: RetrievalTask) -> dict | None:
        """The task's run record; None (with a note) when it is missing or damaged."""
        try:
            return read_record(self.record_path(run_id, task))
        except DamagedResult as damaged:
            self.note(f"warning: {damaged}")
            return None

    def trec_path(self, run_id: str, task: RetrievalTask) -> Path:
        stem = self._stem(run_id, task)
        return stem.with_name(stem.name + ".trec.gz")

    def update_record(self, run_id: str, task: RetrievalTask, record: dict) -> None:
        atomic_write(self.record_path(run_id, task), lambda p: p.write_text(_record_json(record)))

    def write(self, run_id: str, task: RetrievalTask, rows: pd.DataFrame, per_query: pd.DataFrame,
              record: dict, run: dict[str, dict[str, float]] | None = None) -> None:
        """run: the task's top-k ranking, kept as a TREC run file (None for full-ranking tasks)."""
        stem = self._stem(run_id, task)
        remove_stale_temps(stem.parent)  # left by writers killed mid-write
        if run is not None:
            atomic_write(self.trec_path(run_id, task), lambda p: _write_trec(p, run, run_id))
        atomic_write(stem.with_name(stem.name + ".per_query.parquet"), lambda p: per_query.to_parquet(p, index=False))
        atomic_write(self.record_path(run_id, task), lambda p: p.write_text(_record_json(record)))
        atomic_write(self.scores_path(run_id, task), lambda p: rows[TIDY_COLUMNS].to_csv(p, index=False))

    def record_files(self) -> Iterator[tuple[Path, dict]]:
        """(path, run record) of every readable record; damaged ones are named and skipped."""
        for path in sorted(self.folder.rglob("*.record.json")):
            try:
                yield path, read_record(path)
            except DamagedResult as damaged:
                self.note(f"warning: skipped {damaged}")

    def records(self) -> pd.DataFrame:
        """One row per finished (model, task): the run record's stage seconds, docs/s, peak memory, whether the
        model is dense, its threads and device, and the texts it read from the embedding cache."""
        rows = [{"run_id": path.parent.name, "suite": record["suite"], "dataset": record["dataset"],
                 "setting": record["setting"], **{f"s_{k}": v for k, v in record["seconds"].items()},
                 "docs_per_second": record.get("docs_per_second"), "peak_memory_mb": record.get("peak_memory_mb"),
                 "dense": is_dense(record),
                 "threads": record.get("model_threads"), "cached_texts": record.get("cached_texts") or 0,
                 "device": record.get("model_device_name") or (record.get("machine") or {}).get("processor")
                 or "not recorded"}
                for path, record in self.record_files()]
        return pd.DataFrame(rows)

    def stage_totals(self) -> pd.DataFrame:
        """Seconds per stage summed over tasks, tasks and peak memory, per (run, suite, setting). Model loading
        is paid once per run, so it is not summed."""
        records = self.records()
        if records.empty:
            return records
        keys = ["run_id", "suite", "setting"]
        totals = records.groupby(keys)[summed_stages(records)].sum(min_count=1)
        totals["tasks"] = records.groupby(keys).size()
        totals["peak_memory_mb"] = records.groupby(keys)["peak_memory_mb"].max()
        return totals.rename(columns=lambda c: c.removeprefix("s_"))

    def run_options(self) -> pd.DataFrame:
        """One row per run id: the options its records say it was run with (one row per distinct set; runs
        recorded before options were, as "not recorded")."""
        rows = [{"run_id": path.parent.name, **(record.get("options") or {"options": "not recorded"})}
                for path, record in self.record_files()]
        if not rows:
            return pd.DataFrame()
        frame = pd.DataFrame(rows).astype(str).drop_duplicates()
        return frame.set_index("run_id").sort_index()

    def load(self) -> pd.DataFrame:
        return self._read_all(sorted(self.folder.rglob("*.csv")))

    def load_pairs(self, run_ids: list[str], tasks: list[RetrievalTask]) -> pd.DataFrame:
        """The stored rows of these (run, task) pairs only: a grid's store holds thousands of files."""
        paths = [self.scores_path(r, t) for r in run_ids for t in tasks]
        return self._read_all([p for p in paths if p.is_file()])

    def _read_all(self, paths: list[Path]) -> pd.DataFrame:
        frames = []
        for path in paths:
            try:
                frames.append(read_scores(path))
            except DamagedResult as damaged:
                self.note(f"warning: skipped {damaged}")
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS)


def trec_lines(run: dict[str, dict[str, float]], tag: str) -> Iterator[str]:
    """The standard six columns, `qid Q0 docid rank score tag`: ranks from 1 by score descending, ties by doc id
    (trec_eval re-sorts by score itself; the rank column is for readers that trust it)."""
    tag = tag.replace(" ", "_")  # the tag is one whitespace-free column
    for qid in sorted(run):
        ranking = sorted(run[qid].items(), key=lambda hit: (-hit[1], hit[0]))
        for rank, (doc_id, score) in enumerate(ranking, 1):
            yield f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n"


def _write_trec(path: Path, run: dict[str, dict[str, float]], tag: str) -> None:
    # mtime=0: the same ranking gives the same bytes.
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        out.write("".join(trec_lines(run, tag)).encode())


def read_trec(path: Path) -> dict[str, dict[str, float]]:
    """A (gzipped) TREC run file as a run dict {query id: {doc id: score}}."""
    run: dict[str, dict[str, float]] = {}
    with gzip.open(path, "rt") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if len(fields) != 6:
                raise DamagedResult(f"{path}, line {number}: {len(fields)} columns, not the six of a TREC run")
            run.setdefault(fields[0], {})[fields[2]] = float(fields[4])
    return run


def _record_json(record: dict) -> str:
    return json.dumps(record, indent=2, sort_keys=True, default=str)


class DamagedResult(ValueError):
    """A stored results file that cannot be trusted; the message names it, what is wrong and the fix."""


_FIX = "delete it, or re-run its task with --force"


def check_scores(path: Path) -> set[str]:
    """The metrics of a tidy scores file, once it is checked: every column, at least one row, finite values,
    n_queries >= 1, and a time in created_at, its last column (a file cut short loses that first). The csv
    module, not pandas: `plan` checks every stored task of a grid this way."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DamagedResult(f"{path}: unreadable as CSV ({error}); {_FIX}") from None
    header = rows[0] if rows else []
    missing = [c for c in TIDY_COLUMNS if c not in header]
    if missing:
        raise DamagedResult(f"{path}: not a results table (no column {', '.join(missing)}); {_FIX}")
    if len(rows) < 2:
        raise DamagedResult(f"{path}: a header without scores; {_FIX}")
    at = {name: header.index(name) for name in ("metric", "value", "n_queries", "created_at")}
    for line, row in enumerate(rows[1:], 2):
        fields = {name: row[i] if i < len(row) else "" for name, i in at.items()}
        if len(row) != len(header) or not _finite(fields["value"]) or not fields["n_queries"].isdigit() \
                or int(fields["n_queries"]) < 1 or not _is_time(fields["created_at"]):
            raise DamagedResult(f"{path}:{line}: value {fields['value']!r}, n_queries {fields['n_queries']!r}, "
                                f"created_at {fields['created_at']!r}: expected a finite number, a count of at "
                                f"least 1 and a time; {_FIX}")
    return {row[at["metric"]] for row in rows[1:]}


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def read_scores(path: Path) -> pd.DataFrame:
    """A tidy scores file, checked (check_scores)."""
    check_scores(path)
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return frame[TIDY_COLUMNS]


def read_record(path: Path) -> dict:
    """A run record, checked for the keys readers use."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DamagedResult(f"{path}: unreadable as JSON ({error}); {_FIX}") from None
    if not isinstance(record, dict) or not all(k in record for k in ("suite", "dataset", "setting", "seconds")) \
            or not isinstance(record["seconds"], dict):
        raise DamagedResult(f"{path}: not a run record (suite, dataset, setting, seconds expected); {_FIX}")
    return record


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
