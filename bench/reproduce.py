"""Reproduce and compare, as pyserini's two-click reproductions: the committed results are expected scores,
read-only; `run` computes into the user's output folder and ends by setting what it obtained beside what
is committed for the same run id (model, length, precision, backend) and task (dataset, split, setting,
languages): OK (equal within 1e-6), OKish (within the row's tolerance, bench.check's), FAIL otherwise.
`run --dry-run` says what would be computed and how long it took when the committed results were made."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bench.check import OK_TOLERANCE, okish_tolerances
from bench.data.task import RetrievalTask
from bench.models.registry import ModelSpec
from bench.paths import committed_results, results_root
from bench.results import DamagedResult, ResultStore, read_record

KEY = ["run_id", "dataset", "split", "setting", "query_lang", "doc_lang", "metric"]
# One line per (run, dataset, setting, metric): LAReQA's 110 language pairs are summarised, not listed.
GROUP = ["run_id", "dataset", "split", "setting", "metric"]
STATUSES = ("OK", "OKish", "FAIL")


def expected_store(experiment: str) -> ResultStore | None:
    """The committed results of `experiment`, or None when this run writes them (--output results: the
    curator's own update) or there are none."""
    committed = committed_results()
    if results_root().resolve() == committed.resolve() or not (committed / experiment).is_dir():
        return None
    return ResultStore(experiment, committed)


def expected_scores(experiment: str, run_ids: list[str], tasks: list[RetrievalTask]) -> tuple[pd.DataFrame, list[str]]:
    """The committed rows of these (run, task) pairs that stand for the same inputs as the output folder's
    (data files, model, metrics, depth: bench.fingerprint), each with its OKish tolerance; and a note for
    every pair left out because its inputs differ. Empty when nothing is committed."""
    from bench.fingerprint import differences

    store, frames, notes = expected_store(experiment), [], []
    output = ResultStore(experiment)
    for run_id in run_ids if store else []:
        for task in tasks:
            if not store.scores_path(run_id, task).is_file():
                continue
            ours, theirs = _inputs(output, run_id, task), _inputs(store, run_id, task)
            why = ["no input fingerprint"] if ours is None or theirs is None else differences(theirs, ours)
            if why:
                notes.append(f"not compared: {run_id} {task.key}: the committed score is of other inputs "
                             f"({'; '.join(why)})")
                continue
            frames.append(store.load_pairs([run_id], [task]))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if rows.empty:
        return pd.DataFrame(columns=[*KEY, "expected", "tolerance"]), notes
    frame = rows[[*KEY, "value"]].rename(columns={"value": "expected"})
    frame["tolerance"] = okish_tolerances(rows)
    return frame.reset_index(drop=True), notes


def _inputs(store: ResultStore, run_id: str, task: RetrievalTask) -> dict | None:
    path = store.record_path(run_id, task)
    try:
        return read_record(path).get("inputs") if path.is_file() else None
    except DamagedResult as damaged:
        store.note(f"warning: {damaged}")
        return None


def compare(expected: pd.DataFrame, obtained: pd.DataFrame) -> pd.DataFrame:
    """One row per expected score that this run computed: obtained, |difference|, status."""
    merged = expected.merge(obtained[[*KEY, "value"]].rename(columns={"value": "obtained"}), on=KEY, how="inner")
    merged["difference"] = (merged["obtained"] - merged["expected"]).abs()
    merged["status"] = [
        "OK" if d <= OK_TOLERANCE else "OKish" if d <= t else "FAIL"
        for d, t in zip(merged["difference"], merged["tolerance"])
    ]
    return merged


def summary(result: pd.DataFrame) -> pd.DataFrame:
    """Per (run, dataset, setting, metric): macro expected and obtained, the largest |difference| of any
    language pair, and the worst status among them."""
    worst = {s: i for i, s in enumerate(STATUSES)}
    grouped = result.groupby(GROUP, sort=True)
    table = grouped.agg(tasks=("expected", "size"), expected=("expected", "mean"), obtained=("obtained", "mean"),
                        max_difference=("difference", "max"))
    table["status"] = grouped["status"].agg(lambda s: max(s, key=worst.__getitem__))
    return table.reset_index()


def format_summary(table: pd.DataFrame, folder: str) -> str:
    lines = [f"reproduction: obtained beside the committed {folder} (expected)"]
    header = f"{'':6} {'run':<22} {'dataset':<10} {'setting':<7} {'metric':<11} {'tasks':>5} " \
             f"{'expected':>9} {'obtained':>9} {'max|diff|':>9}"
    lines.append(header)
    for row in table.itertuples(index=False):
        lines.append(f"[{row.status:<5}] {row.run_id:<22} {row.dataset:<10} {row.setting:<7} {row.metric:<11} "
                     f"{row.tasks:>5} {row.expected:>9.5f} {row.obtained:>9.5f} {row.max_difference:>9.1e}")
    counts = table["status"].value_counts()
    lines.append(" ".join(f"{s} {int(counts.get(s, 0))}" for s in STATUSES) + f" of {len(table)}")
    return "\n".join(lines)


def plan(specs: list[ModelSpec], tasks: list[RetrievalTask], experiment: str, k: int, force: bool,
         log: Callable[[str], None], dense_options=None) -> pd.DataFrame:
    """What `run` would compute: one row per (run, task) not already in the output folder, with the seconds
    it took when the committed results were made (NaN where there is no committed record)."""
    from bench.fingerprint import tasks_to_run

    store, committed = ResultStore(experiment), expected_store(experiment)
    rows = []
    for spec in specs:
        for task, _ in tasks_to_run(store, spec, tasks, k, force, log, dense_options):
            rows.append({"run_id": spec.key, "task": task.key, "queries": len(task.queries),
                         "docs": len(task.corpus), **_stored_seconds(committed, spec.key, task)})
    return pd.DataFrame(rows, columns=["run_id", "task", "queries", "docs", "seconds", "load_seconds", "cpus"])


def _stored_seconds(store: ResultStore | None, run_id: str, task: RetrievalTask) -> dict:
    path = store.record_path(run_id, task) if store else None
    if path is None or not path.is_file():
        return {"seconds": float("nan"), "load_seconds": float("nan"), "cpus": None}
    try:
        record = read_record(path)
    except DamagedResult:
        return {"seconds": float("nan"), "load_seconds": float("nan"), "cpus": None}
    seconds = record["seconds"]
    return {"seconds": sum(v for s, v in seconds.items() if s != "load_model"),
            "load_seconds": seconds.get("load_model", 0.0), "cpus": record.get("machine", {}).get("cpus")}


def format_plan(table: pd.DataFrame, output: str) -> str:
    if table.empty:
        return f"nothing to compute: every task is already in {output}"
    lines = [f"would compute {len(table)} task(s) into {output}:"]
    for row in table.itertuples(index=False):
        took = "no committed timing" if pd.isna(row.seconds) else f"{_duration(row.seconds)} on {row.cpus} cores"
        lines.append(f"  {row.run_id:<22} {row.task:<34} {row.queries:>6} queries {row.docs:>8} docs  {took}")
    known = table.dropna(subset=["seconds"])
    # Model loading is paid once per run id, not per task.
    total = known["seconds"].sum() + known.groupby("run_id")["load_seconds"].first().sum()
    unknown = len(table) - len(known)
    lines.append(f"expected time: about {_duration(total)} for {len(known)} timed task(s)"
                 + (f", plus {unknown} without a committed timing" if unknown else "")
                 + " (without the embedding cache; committed timings, on the machine that made them)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
